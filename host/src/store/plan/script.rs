//! Registered Lua scripts, by name: `EVALSHA` (the store recovers NOSCRIPT).

use super::{Ctx, Kind, PlanLimits, read_items, value};
use crate::plugin::bindings::ScriptCall;
use crate::store::scripts::{self, Script, Scripts};
use crate::store::{StoreError, reply};
use crate::telemetry::METRICS;
use redis::{Cmd, Value};
use std::sync::Arc;

impl Kind for ScriptCall {
    fn keys(&self) -> Vec<&str> {
        self.keys.iter().map(String::as_str).collect()
    }
    /// A script may write any of its keys.
    fn writes(&self) -> bool {
        true
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        read_items(self.keys.len().max(self.args.len()), limits)?;
        self.args.iter().try_for_each(|a| value(a, limits))
    }
    /// A TTL argument the script declares is held to the domain's bounds.
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let script = ctx.scripts.callable(&self.name).ok_or_else(|| {
            StoreError::Command(format!("no registered script named {:?}", self.name))
        })?;
        METRICS
            .script_calls
            .with_label_values(&[&script.name])
            .inc();
        let mut args = std::borrow::Cow::Borrowed(&self.args);
        if let Some(i) = script.ttl_arg
            && let Some(ms) = ttl_arg(self, i)
        {
            args.to_mut()[i] = ctx.ttl.pick(Some(ms), None).to_string().into_bytes();
        }
        Ok(vec![scripts::evalsha(script, &self.keys, &args)])
    }
    fn script<'s>(&self, scripts: &'s Scripts) -> Option<&'s Arc<Script>> {
        scripts.callable(&self.name)
    }
    /// A string the script returns is read as a stored value: one
    /// MessagePack value (`cmsgpack.pack(...)`) passes through as that
    /// value, anything else is a string or binary. Other replies become
    /// the closest MessagePack value; nil is a miss.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        match reply {
            Value::Nil => None,
            Value::BulkString(bytes) => Some(reply::stored(&bytes)),
            other => Some(reply::msgpack(other)),
        }
    }
}

/// Argument `i` of a call as a TTL in ms (ASCII digits), if it is one.
pub(super) fn ttl_arg(call: &ScriptCall, i: usize) -> Option<u64> {
    std::str::from_utf8(call.args.get(i)?).ok()?.parse().ok()
}
