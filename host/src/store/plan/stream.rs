//! Streams: `XADD … MAXLEN ~ n`, and the stream's expiry when it would
//! move, as one command: the host's own script (`stream.lua`,
//! [`scripts::STREAM_ADD`]), which goes the way every registered script
//! goes (see `counter.rs`). Every stream is capped and expires (a stream
//! lives 99–100% of the domain's TTL after its last entry, its consumer
//! groups with it). One command per stream, so a publish is a plain
//! pipeline, not a transaction. A publish answers with each stream's entry id.

use super::{Ctx, Kind, PlanLimits, items, value};
use crate::plugin::bindings::{Action, Plan, StreamAdd};
use crate::store::scripts::{self, Script, Scripts};
use crate::store::{StoreError, reply};
use crate::telemetry::METRICS;
use redis::{Cmd, Value};
use std::sync::Arc;

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
    /// `EVALSHA` of the stream script: the cap, the TTL (the plan's or the
    /// domain's, held to its bounds), then the fields.
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let script = self.script(ctx.scripts).ok_or_else(|| {
            StoreError::Internal(format!("no script {:?} registered", scripts::STREAM_ADD))
        })?;
        METRICS
            .script_calls
            .with_label_values(&[&script.name])
            .inc();
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&script.sha)
            .arg(1)
            .arg(&self.stream)
            .arg(self.max_len.unwrap_or(DEFAULT_MAX_LEN))
            .arg(ctx.ttl(None));
        for f in &self.fields {
            cmd.arg(&f.name).arg(&f.value);
        }
        Ok(vec![cmd])
    }
    fn script<'s>(&self, scripts: &'s Scripts) -> Option<&'s Arc<Script>> {
        scripts.get(scripts::STREAM_ADD)
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
