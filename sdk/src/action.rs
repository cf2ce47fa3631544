//! The Redis actions a plan is made of. Each is a plain struct a policy builds
//! with named options and a test reads back from [`Plan::actions`](crate::Plan::actions);
//! the WIT types they become are the SDK's business.

use crate::bindings::sluice::policy::types as wit;
use crate::{Error, IntoValue, Value};

/// One Redis action of a plan.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // each variant is documented on its struct
pub enum Action {
    Get(Get),
    Set(Set),
    Delete(Delete),
    Expire(Expire),
    HashGet(HashGet),
    HashSet(HashSet),
    StreamAdd(StreamAdd),
    ZsetAdd(ZsetAdd),
    ZsetIncr(ZsetIncr),
    ZsetRange(ZsetRange),
    ZsetTrim(ZsetTrim),
    SetAdd(SetAdd),
    SetContains(SetContains),
    Script(Script),
}

/// Anything a plan accepts as an action: the action structs of this module
/// (their values are encoded as the action is added) and [`Action`] itself.
pub trait IntoAction {
    /// The action, or why it cannot be one (a value that does not encode, a
    /// contradictory option); the plan keeps the first such error.
    fn into_action(self) -> Result<Action, Error>;
}

impl IntoAction for Action {
    fn into_action(self) -> Result<Action, Error> {
        Ok(self)
    }
}

macro_rules! plain_actions {
    ($($name:ident),*) => {$(
        impl IntoAction for $name {
            fn into_action(self) -> Result<Action, Error> {
                Ok(Action::$name(self))
            }
        }
    )*};
}
plain_actions!(
    Get,
    Delete,
    Expire,
    HashGet,
    ZsetAdd,
    ZsetIncr,
    ZsetTrim,
    SetAdd,
    SetContains
);

/// The TTL option of writes: `None` takes the plan's TTL, else the domain's
/// `ttl_s`; the host keeps every TTL within the domain's bounds.
macro_rules! ttl_option {
    ($($name:ident $(<$v:ident>)?),*) => {$(
        impl$(<$v>)? $name$(<$v>)? {
            /// Expire after this many ms (`None`: the plan's TTL, else the domain's).
            pub fn ttl_ms(mut self, ttl_ms: impl Into<Option<u64>>) -> Self {
                self.ttl_ms = ttl_ms.into();
                self
            }
        }
    )*};
}
ttl_option!(Set<V>, HashSet<V>, ZsetAdd, ZsetIncr, SetAdd);

/// `GET key`: the reply is the stored value, a miss is a 404.
#[derive(Debug, Clone, PartialEq)]
pub struct Get {
    /// The key.
    pub key: String,
}

impl Get {
    /// Read `key`.
    pub fn new(key: impl Into<String>) -> Self {
        Get { key: key.into() }
    }
}

/// `SET key value PX ttl`: store a value as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Set<V = Value> {
    /// The key.
    pub key: String,
    /// The value (MessagePack once in a plan).
    pub value: V,
    /// See [`Set::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl<V: IntoValue> Set<V> {
    /// Store `value` (a [`Value`], or a reference to anything serializable) at `key`.
    pub fn new(key: impl Into<String>, value: V) -> Self {
        Set {
            key: key.into(),
            value,
            ttl_ms: None,
        }
    }
}

impl<V: IntoValue> IntoAction for Set<V> {
    fn into_action(self) -> Result<Action, Error> {
        let value = self.value.into_value()?;
        Ok(Action::Set(Set {
            key: self.key,
            value,
            ttl_ms: self.ttl_ms,
        }))
    }
}

/// `DEL key`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    /// The key.
    pub key: String,
}

impl Delete {
    /// Remove `key`, whatever it holds.
    pub fn new(key: impl Into<String>) -> Self {
        Delete { key: key.into() }
    }
}

/// `PEXPIRE key ttl`, e.g. to extend the life of a key that is read often.
#[derive(Debug, Clone, PartialEq)]
pub struct Expire {
    /// The key.
    pub key: String,
    /// Its new TTL (kept within the domain's bounds by the host).
    pub ttl_ms: u64,
}

impl Expire {
    /// Let `key` live `ttl_ms` from now.
    pub fn new(key: impl Into<String>, ttl_ms: u64) -> Self {
        Expire {
            key: key.into(),
            ttl_ms,
        }
    }
}

/// `HGETALL key`, or `HMGET key field ...`: the reply is an object.
#[derive(Debug, Clone, PartialEq)]
pub struct HashGet {
    /// The key.
    pub key: String,
    /// The fields to read; empty: all of them.
    pub fields: Vec<String>,
}

impl HashGet {
    /// Read the whole hash at `key`.
    pub fn new(key: impl Into<String>) -> Self {
        HashGet {
            key: key.into(),
            fields: Vec::new(),
        }
    }

    /// Read only these fields (all of them when the list is empty, as a
    /// request's `fields` is when the client named none).
    pub fn fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.fields = fields.into_iter().map(Into::into).collect();
        self
    }
}

/// `HSET key field value ...`, then `PEXPIRE`.
#[derive(Debug, Clone, PartialEq)]
pub struct HashSet<V = Value> {
    /// The key.
    pub key: String,
    /// Field names and values (MessagePack once in a plan).
    pub fields: Vec<(String, V)>,
    /// See [`HashSet::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl<V: IntoValue> HashSet<V> {
    /// Set these fields of the hash at `key`, e.g. an object's [`Value::fields`].
    pub fn new<S: Into<String>>(
        key: impl Into<String>,
        fields: impl IntoIterator<Item = (S, V)>,
    ) -> Self {
        let fields = fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
        HashSet {
            key: key.into(),
            fields,
            ttl_ms: None,
        }
    }
}

fn encode_fields<V: IntoValue>(fields: Vec<(String, V)>) -> Result<Vec<(String, Value)>, Error> {
    fields
        .into_iter()
        .map(|(k, v)| Ok((k, v.into_value()?)))
        .collect()
}

impl<V: IntoValue> IntoAction for HashSet<V> {
    fn into_action(self) -> Result<Action, Error> {
        let fields = encode_fields(self.fields)?;
        Ok(Action::HashSet(HashSet {
            key: self.key,
            fields,
            ttl_ms: self.ttl_ms,
        }))
    }
}

/// `XADD stream [MAXLEN ~ n] * field value ...`: append an entry to a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAdd<V = Value> {
    /// The stream's key.
    pub stream: String,
    /// The entry's fields (MessagePack once in a plan).
    pub fields: Vec<(String, V)>,
    /// See [`StreamAdd::max_len`].
    pub max_len: Option<u64>,
}

impl<V: IntoValue> StreamAdd<V> {
    /// Append an entry of these fields to `stream`.
    pub fn new<S: Into<String>>(
        stream: impl Into<String>,
        fields: impl IntoIterator<Item = (S, V)>,
    ) -> Self {
        let fields = fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
        StreamAdd {
            stream: stream.into(),
            fields,
            max_len: None,
        }
    }

    /// Keep the stream at about `n` entries (`MAXLEN ~ n`: Redis trims whole
    /// nodes, which is much cheaper than an exact cap).
    pub fn max_len(mut self, n: u64) -> Self {
        self.max_len = Some(n);
        self
    }
}

impl<V: IntoValue> IntoAction for StreamAdd<V> {
    fn into_action(self) -> Result<Action, Error> {
        let fields = encode_fields(self.fields)?;
        Ok(Action::StreamAdd(StreamAdd {
            stream: self.stream,
            fields,
            max_len: self.max_len,
        }))
    }
}

/// A sorted-set member and its score: what [`ZsetAdd`] adds and what a
/// [`ZsetRange`] answers (a list of `{"member": .., "score": ..}`), so a
/// request body of that shape decodes straight into it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoredMember {
    /// The member.
    pub member: String,
    /// Its score.
    pub score: f64,
}

impl ScoredMember {
    /// `member` with `score`.
    pub fn new(member: impl Into<String>, score: f64) -> Self {
        ScoredMember {
            member: member.into(),
            score,
        }
    }
}

/// When [`ZsetAdd`] changes a member that is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZsetCondition {
    /// Always: add new members, update existing scores.
    #[default]
    Always,
    /// `NX`: only add members that are not there yet.
    IfAbsent,
    /// `GT`: add new members; update a score only when the new one is greater.
    IfGreater,
    /// `LT`: add new members; update a score only when the new one is less.
    IfLess,
}

/// `ZADD key [NX|GT|LT] score member ...`, then `PEXPIRE`.
#[derive(Debug, Clone, PartialEq)]
pub struct ZsetAdd {
    /// The key.
    pub key: String,
    /// The members and their scores.
    pub members: Vec<ScoredMember>,
    /// See [`ZsetAdd::if_greater`] and the others.
    pub condition: ZsetCondition,
    /// See [`ZsetAdd::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl ZsetAdd {
    /// Add `member` with `score` to the sorted set at `key`.
    pub fn new(key: impl Into<String>, member: impl Into<String>, score: f64) -> Self {
        ZsetAdd::members(key, [ScoredMember::new(member, score)])
    }

    /// Add several members at once.
    pub fn members(
        key: impl Into<String>,
        members: impl IntoIterator<Item = ScoredMember>,
    ) -> Self {
        let members = members.into_iter().collect();
        ZsetAdd {
            key: key.into(),
            members,
            condition: ZsetCondition::Always,
            ttl_ms: None,
        }
    }

    /// `GT`: keep a member's best score (a high score table).
    pub fn if_greater(mut self) -> Self {
        self.condition = ZsetCondition::IfGreater;
        self
    }

    /// `LT`: keep a member's lowest score (a best time).
    pub fn if_less(mut self) -> Self {
        self.condition = ZsetCondition::IfLess;
        self
    }

    /// `NX`: never change a member that is there (first score wins).
    pub fn if_absent(mut self) -> Self {
        self.condition = ZsetCondition::IfAbsent;
        self
    }
}

/// `ZINCRBY key by member`, then `PEXPIRE`: the reply is the new score.
#[derive(Debug, Clone, PartialEq)]
pub struct ZsetIncr {
    /// The key.
    pub key: String,
    /// The member (added with score `by` when it is not there).
    pub member: String,
    /// How much to add (negative to subtract).
    pub by: f64,
    /// See [`ZsetIncr::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl ZsetIncr {
    /// Add `by` to the score of `member` in the sorted set at `key`.
    pub fn new(key: impl Into<String>, member: impl Into<String>, by: f64) -> Self {
        ZsetIncr {
            key: key.into(),
            member: member.into(),
            by,
            ttl_ms: None,
        }
    }
}

/// Which slice of a sorted set a [`ZsetRange`] reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ZsetBounds {
    /// By rank, inclusive; negative counts from the end (`0, -1` is all).
    /// Reversed, rank 0 is the highest score.
    Rank(i64, i64),
    /// By score, inclusive, always `(min, max)`, also reversed; infinities allowed.
    Score(f64, f64),
}

/// `ZRANGE key start stop [BYSCORE] [REV] [LIMIT 0 n] WITHSCORES`: the reply is
/// a list of `{member, score}`; an empty range is a miss (404).
#[derive(Debug, Clone, PartialEq)]
pub struct ZsetRange {
    /// The key.
    pub key: String,
    /// By rank or by score.
    pub bounds: ZsetBounds,
    /// Highest score first.
    pub reverse: bool,
    /// At most this many members (score ranges only).
    pub limit: Option<u32>,
}

impl ZsetRange {
    /// Members `start..=stop` by rank, lowest score first unless [`rev`](Self::rev):
    /// `rank(key, 0, 9).rev()` is the top ten.
    pub fn rank(key: impl Into<String>, start: i64, stop: i64) -> Self {
        ZsetRange {
            key: key.into(),
            bounds: ZsetBounds::Rank(start, stop),
            reverse: false,
            limit: None,
        }
    }

    /// Members scored `min..=max` (always in that order, also with [`rev`](Self::rev)).
    pub fn score(key: impl Into<String>, min: f64, max: f64) -> Self {
        ZsetRange {
            key: key.into(),
            bounds: ZsetBounds::Score(min, max),
            reverse: false,
            limit: None,
        }
    }

    /// Highest score first.
    pub fn rev(mut self) -> Self {
        self.reverse = true;
        self
    }

    /// At most `n` members (`LIMIT 0 n`). Score ranges only: a rank range is
    /// limited by its bounds, and Redis refuses `LIMIT` on one.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }
}

impl IntoAction for ZsetRange {
    fn into_action(self) -> Result<Action, Error> {
        match self.bounds {
            ZsetBounds::Rank(start, stop) if self.limit.is_some() => Err(Error::internal(format!(
                "ZsetRange::rank({start}, {stop}) with .limit(): a rank range is limited by its bounds; limit applies to score ranges"
            ))),
            ZsetBounds::Score(min, max) if min > max => Err(Error::internal(format!(
                "ZsetRange::score({min}, {max}): score bounds are (min, max), also with .rev()"
            ))),
            _ => Ok(Action::ZsetRange(self)),
        }
    }
}

/// `ZREMRANGEBYRANK key start stop`: drop members by rank, lowest score first.
#[derive(Debug, Clone, PartialEq)]
pub struct ZsetTrim {
    /// The key.
    pub key: String,
    /// First rank to remove (negative counts from the end).
    pub start: i64,
    /// Last rank to remove, inclusive.
    pub stop: i64,
}

impl ZsetTrim {
    /// Remove the members ranked `start..=stop` (0 is the lowest score).
    pub fn new(key: impl Into<String>, start: i64, stop: i64) -> Self {
        ZsetTrim {
            key: key.into(),
            start,
            stop,
        }
    }

    /// Keep only the `n` highest scores (`ZREMRANGEBYRANK key 0 -(n+1)`).
    pub fn keep_highest(key: impl Into<String>, n: u32) -> Self {
        ZsetTrim::new(key, 0, -i64::from(n) - 1)
    }

    /// Keep only the `n` lowest scores (`ZREMRANGEBYRANK key n -1`).
    pub fn keep_lowest(key: impl Into<String>, n: u32) -> Self {
        ZsetTrim::new(key, i64::from(n), -1)
    }
}

/// `SADD key member ...`, then `PEXPIRE`.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAdd {
    /// The key.
    pub key: String,
    /// The members.
    pub members: Vec<String>,
    /// See [`SetAdd::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl SetAdd {
    /// Add `members` to the set at `key`.
    pub fn new<S: Into<String>>(
        key: impl Into<String>,
        members: impl IntoIterator<Item = S>,
    ) -> Self {
        let members = members.into_iter().map(Into::into).collect();
        SetAdd {
            key: key.into(),
            members,
            ttl_ms: None,
        }
    }
}

/// `SISMEMBER key member`: the reply is `true` or `false`.
#[derive(Debug, Clone, PartialEq)]
pub struct SetContains {
    /// The key.
    pub key: String,
    /// The member asked about.
    pub member: String,
}

impl SetContains {
    /// Whether `member` is in the set at `key`.
    pub fn new(key: impl Into<String>, member: impl Into<String>) -> Self {
        SetContains {
            key: key.into(),
            member: member.into(),
        }
    }
}

/// `EVALSHA` of a Lua script the operator registered under `name` (the host
/// refuses any other script).
#[derive(Debug, Clone, PartialEq)]
pub struct Script<V = Value> {
    /// The script's registered name.
    pub name: String,
    /// `KEYS`: each inside the domain's namespace.
    pub keys: Vec<String>,
    /// `ARGV` (MessagePack once in a plan).
    pub args: Vec<V>,
}

impl Script {
    /// Call the script registered as `name`, with no keys or arguments yet.
    pub fn new(name: impl Into<String>) -> Self {
        Script {
            name: name.into(),
            keys: Vec::new(),
            args: Vec::new(),
        }
    }
}

impl<V> Script<V> {
    /// With these `KEYS`.
    pub fn keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.keys = keys.into_iter().map(Into::into).collect();
        self
    }

    /// With these arguments (each a [`Value`] or a reference to anything serializable).
    pub fn args<A: IntoValue>(self, args: impl IntoIterator<Item = A>) -> Script<A> {
        Script {
            name: self.name,
            keys: self.keys,
            args: args.into_iter().collect(),
        }
    }
}

impl<V: IntoValue> IntoAction for Script<V> {
    fn into_action(self) -> Result<Action, Error> {
        let args = self
            .args
            .into_iter()
            .map(IntoValue::into_value)
            .collect::<Result<_, _>>()?;
        Ok(Action::Script(Script {
            name: self.name,
            keys: self.keys,
            args,
        }))
    }
}

impl Action {
    /// The key it touches: a stream's key, a script's first key (its others
    /// are in [`Script::keys`]).
    pub fn key(&self) -> &str {
        match self {
            Action::Get(Get { key })
            | Action::Set(Set { key, .. })
            | Action::Delete(Delete { key })
            | Action::Expire(Expire { key, .. })
            | Action::HashGet(HashGet { key, .. })
            | Action::HashSet(HashSet { key, .. })
            | Action::StreamAdd(StreamAdd { stream: key, .. })
            | Action::ZsetAdd(ZsetAdd { key, .. })
            | Action::ZsetIncr(ZsetIncr { key, .. })
            | Action::ZsetRange(ZsetRange { key, .. })
            | Action::ZsetTrim(ZsetTrim { key, .. })
            | Action::SetAdd(SetAdd { key, .. })
            | Action::SetContains(SetContains { key, .. }) => key,
            Action::Script(s) => s.keys.first().map_or("", String::as_str),
        }
    }

    /// Whether the action only reads, so it may be in a [`Plan::read`](crate::Plan::read):
    /// `Get`, `HashGet`, `ZsetRange` and `SetContains`. A script counts as a
    /// write: the gateway cannot tell what it does.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Action::Get(_) | Action::HashGet(_) | Action::ZsetRange(_) | Action::SetContains(_)
        )
    }

    /// The contract's names of the actions that only read, for messages.
    pub(crate) const READS: &[&str] = &["get", "hash-get", "zset-range", "set-contains"];

    /// The contract's name of the action, for messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Action::Get(_) => "get",
            Action::Set(_) => "set",
            Action::Delete(_) => "delete",
            Action::Expire(_) => "expire",
            Action::HashGet(_) => "hash-get",
            Action::HashSet(_) => "hash-set",
            Action::StreamAdd(_) => "stream-add",
            Action::ZsetAdd(_) => "zset-add",
            Action::ZsetIncr(_) => "zset-incr",
            Action::ZsetRange(_) => "zset-range",
            Action::ZsetTrim(_) => "zset-trim",
            Action::SetAdd(_) => "set-add",
            Action::SetContains(_) => "set-contains",
            Action::Script(_) => "script",
        }
    }

    /// The contract's form of the action.
    pub(crate) fn into_wit(self) -> wit::Action {
        let fields = |fields: Vec<(String, Value)>| {
            let to_wit = |(name, v): (String, Value)| wit::FieldValue {
                name,
                value: v.into_bytes(),
            };
            fields.into_iter().map(to_wit).collect()
        };
        match self {
            Action::Get(Get { key }) => wit::Action::Get(wit::StringGet { key }),
            Action::Set(Set { key, value, ttl_ms }) => wit::Action::Set(wit::StringSet {
                key,
                value: value.into_bytes(),
                ttl_ms,
            }),
            Action::Delete(Delete { key }) => wit::Action::Delete(wit::KeyDelete { key }),
            Action::Expire(Expire { key, ttl_ms }) => {
                wit::Action::Expire(wit::KeyExpire { key, ttl_ms })
            }
            Action::HashGet(HashGet { key, fields }) => {
                wit::Action::HashGet(wit::HashGet { key, fields })
            }
            Action::HashSet(h) => wit::Action::HashSet(wit::HashSet {
                key: h.key,
                fields: fields(h.fields),
                ttl_ms: h.ttl_ms,
            }),
            Action::StreamAdd(s) => wit::Action::StreamAdd(wit::StreamAdd {
                stream: s.stream,
                fields: fields(s.fields),
                max_len: s.max_len,
            }),
            Action::ZsetAdd(z) => wit::Action::ZsetAdd(wit::ZsetAdd {
                key: z.key,
                members: z
                    .members
                    .into_iter()
                    .map(|m| wit::ScoredMember {
                        member: m.member,
                        score: m.score,
                    })
                    .collect(),
                condition: match z.condition {
                    ZsetCondition::Always => wit::ZsetCondition::Always,
                    ZsetCondition::IfAbsent => wit::ZsetCondition::IfAbsent,
                    ZsetCondition::IfGreater => wit::ZsetCondition::IfGreater,
                    ZsetCondition::IfLess => wit::ZsetCondition::IfLess,
                },
                ttl_ms: z.ttl_ms,
            }),
            Action::ZsetIncr(ZsetIncr {
                key,
                member,
                by,
                ttl_ms,
            }) => wit::Action::ZsetIncr(wit::ZsetIncr {
                key,
                member,
                by,
                ttl_ms,
            }),
            Action::ZsetRange(r) => wit::Action::ZsetRange(wit::ZsetRange {
                key: r.key,
                bounds: match r.bounds {
                    ZsetBounds::Rank(start, stop) => wit::ZsetBounds::Rank((start, stop)),
                    ZsetBounds::Score(min, max) => wit::ZsetBounds::Score((min, max)),
                },
                reverse: r.reverse,
                limit: r.limit,
            }),
            Action::ZsetTrim(ZsetTrim { key, start, stop }) => {
                wit::Action::ZsetTrim(wit::ZsetTrim { key, start, stop })
            }
            Action::SetAdd(SetAdd {
                key,
                members,
                ttl_ms,
            }) => wit::Action::SetAdd(wit::SetAdd {
                key,
                members,
                ttl_ms,
            }),
            Action::SetContains(SetContains { key, member }) => {
                wit::Action::SetContains(wit::SetContains { key, member })
            }
            Action::Script(s) => wit::Action::Script(wit::ScriptCall {
                name: s.name,
                keys: s.keys,
                args: s.args.into_iter().map(Value::into_bytes).collect(),
            }),
        }
    }
}
