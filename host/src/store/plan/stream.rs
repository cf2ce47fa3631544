//! Streams: `XADD … MAXLEN ~ n`, then `PEXPIRE`. Every stream is capped and
//! expires (a stream lives the domain's TTL after its last entry, its
//! consumer groups with it). A publish answers with each stream's entry id.

use super::{Ctx, Kind, PlanLimits, expire, items, value};
use crate::plugin::bindings::{Action, Plan, StreamAdd};
use crate::store::{StoreError, reply};
use redis::{Cmd, Value};

/// The cap of a stream whose plan names none: no stream grows without bound.
pub const DEFAULT_MAX_LEN: u64 = 10_000;

impl Kind for StreamAdd {
    fn keys(&self) -> Vec<&str> {
        vec![&self.stream]
    }
    /// Adding an entry does not change what a kept read returned.
    fn writes(&self) -> bool {
        false
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        items(self.fields.len(), limits)?;
        if self.max_len == Some(0) {
            return Err("max-len 0 would empty the stream on every add".into());
        }
        self.fields.iter().try_for_each(|f| value(&f.value, limits))
    }
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.max_len.unwrap_or(DEFAULT_MAX_LEN))
            .arg("*");
        for f in &self.fields {
            cmd.arg(&f.name).arg(&f.value);
        }
        Ok(vec![cmd, expire(&self.stream, ctx.ttl(None))])
    }
}

/// The answer to a publish: `{stream: entry id}` for each stream added to.
pub fn published_ids(plan: &Plan, replies: Vec<Value>) -> Vec<u8> {
    let pairs = plan
        .actions
        .iter()
        .zip(replies)
        .filter_map(|(a, id)| match a {
            Action::StreamAdd(s) => Some((Value::SimpleString(s.stream.clone()), id)),
            _ => None,
        })
        .collect();
    reply::msgpack(Value::Map(pairs))
}
