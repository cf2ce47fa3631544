//! The plan a policy answers with: Redis actions plus hints.

use crate::bindings::sluice::policy::types as wit;

pub use wit::Action;
pub use wit::CacheHint;
pub use wit::ZsetBounds;

/// What the gateway should do, built step by step:
///
/// ```
/// use sluice_sdk::Plan;
/// let plan = Plan::new()
///     .hash_set("price:btc:usd", vec![("price".into(), vec![0x2a])], Some(5_000))
///     .ttl_ms(5_000);
/// assert_eq!(plan.actions().len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Plan(wit::Plan);

impl Default for Plan {
    fn default() -> Self {
        Self::new()
    }
}

impl Plan {
    /// An empty plan: nothing to do, no response body.
    pub fn new() -> Self {
        Plan(wit::Plan {
            actions: Vec::new(),
            atomic: false,
            respond: None,
            ttl_ms: None,
            cache: None,
        })
    }

    /// Append any action.
    pub fn action(mut self, action: Action) -> Self {
        self.0.actions.push(action);
        self
    }

    /// `GET key`.
    pub fn get(self, key: impl Into<String>) -> Self {
        self.action(Action::Get(key.into()))
    }

    /// `SET key value PX ttl`; `None` takes the plan's TTL, else the domain's default.
    pub fn set(self, key: impl Into<String>, value: Vec<u8>, ttl_ms: Option<u64>) -> Self {
        self.action(Action::Set(wit::SetValue {
            key: key.into(),
            value,
            ttl_ms,
        }))
    }

    /// `DEL key`.
    pub fn delete(self, key: impl Into<String>) -> Self {
        self.action(Action::Delete(key.into()))
    }

    /// `PEXPIRE key ttl`.
    pub fn expire(self, key: impl Into<String>, ttl_ms: u64) -> Self {
        self.action(Action::Expire(wit::Expire {
            key: key.into(),
            ttl_ms,
        }))
    }

    /// `HMGET key fields...`, or `HGETALL key` when `fields` is empty.
    pub fn hash_get(self, key: impl Into<String>, fields: Vec<String>) -> Self {
        self.action(Action::HashGet(wit::HashGet {
            key: key.into(),
            fields,
        }))
    }

    /// `HSET key field value ...` then `PEXPIRE`; values are MessagePack.
    pub fn hash_set(
        self,
        key: impl Into<String>,
        fields: Vec<(String, Vec<u8>)>,
        ttl_ms: Option<u64>,
    ) -> Self {
        let fields = fields
            .into_iter()
            .map(|(name, value)| wit::FieldValue { name, value })
            .collect();
        self.action(Action::HashSet(wit::HashSet {
            key: key.into(),
            fields,
            ttl_ms,
        }))
    }

    /// `XADD stream MAXLEN ~ max_len * field value ...`.
    pub fn stream_add(
        self,
        stream: impl Into<String>,
        fields: Vec<(String, Vec<u8>)>,
        max_len: Option<u64>,
    ) -> Self {
        let fields = fields
            .into_iter()
            .map(|(name, value)| wit::FieldValue { name, value })
            .collect();
        self.action(Action::StreamAdd(wit::StreamAdd {
            stream: stream.into(),
            fields,
            max_len,
        }))
    }

    /// `ZADD key score member ...` then `PEXPIRE`.
    pub fn zset_add(
        self,
        key: impl Into<String>,
        members: Vec<(String, f64)>,
        ttl_ms: Option<u64>,
    ) -> Self {
        let members = members
            .into_iter()
            .map(|(member, score)| wit::ScoredMember { member, score })
            .collect();
        self.action(Action::ZsetAdd(wit::ZsetAdd {
            key: key.into(),
            members,
            ttl_ms,
        }))
    }

    /// `ZRANGE` by rank or score, with scores; `reverse` for highest first.
    pub fn zset_range(
        self,
        key: impl Into<String>,
        bounds: ZsetBounds,
        reverse: bool,
        limit: Option<u32>,
    ) -> Self {
        self.action(Action::ZsetRange(wit::ZsetRange {
            key: key.into(),
            bounds,
            reverse,
            limit,
        }))
    }

    /// `SADD key member ...` then `PEXPIRE`.
    pub fn set_add(
        self,
        key: impl Into<String>,
        members: Vec<String>,
        ttl_ms: Option<u64>,
    ) -> Self {
        self.action(Action::SetAdd(wit::SetAdd {
            key: key.into(),
            members,
            ttl_ms,
        }))
    }

    /// `SISMEMBER key member`.
    pub fn set_contains(self, key: impl Into<String>, member: impl Into<String>) -> Self {
        self.action(Action::SetContains(wit::SetContains {
            key: key.into(),
            member: member.into(),
        }))
    }

    /// `EVALSHA` of a script the operator registered under `name`.
    pub fn script(self, name: impl Into<String>, keys: Vec<String>, args: Vec<Vec<u8>>) -> Self {
        self.action(Action::Script(wit::ScriptCall {
            name: name.into(),
            keys,
            args,
        }))
    }

    /// The result of the last action added so far is the response body.
    pub fn respond_with_last(mut self) -> Self {
        self.0.respond = self.0.actions.len().checked_sub(1).map(|i| i as u32);
        self
    }

    /// Run the actions as MULTI/EXEC instead of a plain pipeline.
    pub fn atomic(mut self) -> Self {
        self.0.atomic = true;
        self
    }

    /// TTL for writes in this plan that carry none.
    pub fn ttl_ms(mut self, ttl_ms: u64) -> Self {
        self.0.ttl_ms = Some(ttl_ms);
        self
    }

    /// Whether the gateway may keep a copy of what it read, and how stale a
    /// copy may be served while Redis cannot answer.
    pub fn cache(mut self, keep: bool, max_stale_ms: u64) -> Self {
        self.0.cache = Some(CacheHint { keep, max_stale_ms });
        self
    }

    /// The actions so far, for assertions in tests.
    pub fn actions(&self) -> &[Action] {
        &self.0.actions
    }

    /// Which action's result is the response body.
    pub fn respond(&self) -> Option<u32> {
        self.0.respond
    }

    /// Whether the plan runs as MULTI/EXEC.
    pub fn is_atomic(&self) -> bool {
        self.0.atomic
    }

    /// The plan's default TTL for writes.
    pub fn default_ttl_ms(&self) -> Option<u64> {
        self.0.ttl_ms
    }

    #[doc(hidden)]
    pub fn into_raw(self) -> wit::Plan {
        self.0
    }
}
