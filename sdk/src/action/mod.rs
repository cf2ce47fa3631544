//! The Redis actions a plan is made of. Each is a plain struct a policy builds
//! with named options and a test reads back from [`Plan::actions`](crate::Plan::actions);
//! the WIT types they become are the SDK's business.

use crate::bindings::sluice::policy::types as wit;
use crate::{Error, IntoValue, Value};

/// Implements [`IntoAction`] for actions that hold no value to encode and
/// nothing to check.
macro_rules! plain_actions {
    ($($name:ident),*) => {$(
        impl IntoAction for $name {
            fn into_action(self) -> Result<Action, Error> {
                Ok(Action::$name(self))
            }
        }
    )*};
}

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

mod counter;
mod hash;
mod key;
mod list;
mod script;
mod set;
mod stream;
mod string;
mod zset;

pub use counter::{CounterAdd, CounterGet, Number};
pub use hash::{HashAdd, HashDelete, HashGet, HashSet};
pub use key::{Delete, Expire, KeyTtl};
pub use list::{ListEnd, ListPush, ListRange, ListRemove};
pub use script::Script;
pub use set::{SetAdd, SetContains, SetCount, SetMembers, SetRemove};
pub use stream::StreamAdd;
pub use string::{Get, Set, SetIfAbsent};
pub use zset::{
    ScoredMember, ZsetAdd, ZsetBounds, ZsetCondition, ZsetCount, ZsetIncr, ZsetRange, ZsetRemove,
    ZsetScore, ZsetTrim,
};

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
    CounterAdd(CounterAdd),
    SetIfAbsent(SetIfAbsent),
    KeyTtl(KeyTtl),
    HashDelete(HashDelete),
    HashAdd(HashAdd),
    SetRemove(SetRemove),
    SetMembers(SetMembers),
    SetCount(SetCount),
    ZsetRemove(ZsetRemove),
    ZsetScore(ZsetScore),
    ZsetCount(ZsetCount),
    ListPush(ListPush),
    ListRange(ListRange),
    ListRemove(ListRemove),
    CounterGet(CounterGet),
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
            | Action::SetContains(SetContains { key, .. })
            | Action::CounterAdd(CounterAdd { key, .. })
            | Action::SetIfAbsent(SetIfAbsent { key, .. })
            | Action::KeyTtl(KeyTtl { key })
            | Action::HashDelete(HashDelete { key, .. })
            | Action::HashAdd(HashAdd { key, .. })
            | Action::SetRemove(SetRemove { key, .. })
            | Action::SetMembers(SetMembers { key, .. })
            | Action::SetCount(SetCount { key })
            | Action::ZsetRemove(ZsetRemove { key, .. })
            | Action::ZsetScore(ZsetScore { key, .. })
            | Action::ZsetCount(ZsetCount { key })
            | Action::ListPush(ListPush { key, .. })
            | Action::ListRange(ListRange { key, .. })
            | Action::ListRemove(ListRemove { key, .. })
            | Action::CounterGet(CounterGet { key }) => key,
            Action::Script(s) => s.keys.first().map_or("", String::as_str),
        }
    }

    /// Whether the action only reads, so it may be in a [`Plan::read`](crate::Plan::read):
    /// `Get`, `HashGet`, `ZsetRange`, `ZsetScore`, `ZsetCount`,
    /// `SetContains`, `SetMembers`, `SetCount`, `ListRange`, `KeyTtl` and
    /// `CounterGet`.
    /// A script counts as a write: the gateway cannot tell what it does.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Action::Get(_)
                | Action::HashGet(_)
                | Action::ZsetRange(_)
                | Action::ZsetScore(_)
                | Action::ZsetCount(_)
                | Action::SetContains(_)
                | Action::SetMembers(_)
                | Action::SetCount(_)
                | Action::ListRange(_)
                | Action::KeyTtl(_)
                | Action::CounterGet(_)
        )
    }

    /// The contract's names of the actions that only read, for messages.
    pub(crate) const READS: &[&str] = &[
        "get",
        "hash-get",
        "zset-range",
        "zset-score",
        "zset-count",
        "set-contains",
        "set-members",
        "set-count",
        "list-range",
        "key-ttl",
        "counter-get",
    ];

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
            Action::CounterAdd(_) => "counter-add",
            Action::SetIfAbsent(_) => "set-if-absent",
            Action::KeyTtl(_) => "key-ttl",
            Action::HashDelete(_) => "hash-delete",
            Action::HashAdd(_) => "hash-add",
            Action::SetRemove(_) => "set-remove",
            Action::SetMembers(_) => "set-members",
            Action::SetCount(_) => "set-count",
            Action::ZsetRemove(_) => "zset-remove",
            Action::ZsetScore(_) => "zset-score",
            Action::ZsetCount(_) => "zset-count",
            Action::ListPush(_) => "list-push",
            Action::ListRange(_) => "list-range",
            Action::ListRemove(_) => "list-remove",
            Action::CounterGet(_) => "counter-get",
        }
    }

    /// The contract's form of the action.
    pub(crate) fn into_wit(self) -> wit::Action {
        match self {
            Action::Get(a) => a.into_wit(),
            Action::Set(a) => a.into_wit(),
            Action::Delete(a) => a.into_wit(),
            Action::Expire(a) => a.into_wit(),
            Action::HashGet(a) => a.into_wit(),
            Action::HashSet(a) => a.into_wit(),
            Action::StreamAdd(a) => a.into_wit(),
            Action::ZsetAdd(a) => a.into_wit(),
            Action::ZsetIncr(a) => a.into_wit(),
            Action::ZsetRange(a) => a.into_wit(),
            Action::ZsetTrim(a) => a.into_wit(),
            Action::SetAdd(a) => a.into_wit(),
            Action::SetContains(a) => a.into_wit(),
            Action::Script(a) => a.into_wit(),
            Action::CounterAdd(a) => a.into_wit(),
            Action::SetIfAbsent(a) => a.into_wit(),
            Action::KeyTtl(a) => a.into_wit(),
            Action::HashDelete(a) => a.into_wit(),
            Action::HashAdd(a) => a.into_wit(),
            Action::SetRemove(a) => a.into_wit(),
            Action::SetMembers(a) => a.into_wit(),
            Action::SetCount(a) => a.into_wit(),
            Action::ZsetRemove(a) => a.into_wit(),
            Action::ZsetScore(a) => a.into_wit(),
            Action::ZsetCount(a) => a.into_wit(),
            Action::ListPush(a) => a.into_wit(),
            Action::ListRange(a) => a.into_wit(),
            Action::ListRemove(a) => a.into_wit(),
            Action::CounterGet(a) => a.into_wit(),
        }
    }
}

/// Encode each field's value, for the builders that take fields.
fn encode_fields<V: IntoValue>(fields: Vec<(String, V)>) -> Result<Vec<(String, Value)>, Error> {
    fields
        .into_iter()
        .map(|(k, v)| Ok((k, v.into_value()?)))
        .collect()
}

/// Why an action that names items (fields, members, values) names none:
/// Redis refuses the command, so the plan fails before it gets there.
fn nothing(action: &str, key: &str, items: &str) -> Error {
    Error::internal(format!(
        "{action} of {key:?} with no {items}: it needs one at least"
    ))
}

/// Fields as the contract has them.
fn wit_fields(fields: Vec<(String, Value)>) -> Vec<wit::FieldValue> {
    let to_wit = |(name, v): (String, Value)| wit::FieldValue {
        name,
        value: v.into_bytes(),
    };
    fields.into_iter().map(to_wit).collect()
}
