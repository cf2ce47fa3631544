//! Registered Lua scripts, by name: `EVALSHA` (the store recovers NOSCRIPT).

use super::{Ctx, Kind, PlanLimits, read_items, value};
use crate::plugin::bindings::ScriptCall;
use crate::store::{StoreError, scripts};
use crate::telemetry::METRICS;
use redis::Cmd;

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
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let script = ctx.scripts.get(&self.name).ok_or_else(|| {
            StoreError::Command(format!("no registered script named {:?}", self.name))
        })?;
        METRICS
            .script_calls
            .with_label_values(&[&script.name])
            .inc();
        Ok(vec![scripts::evalsha(script, &self.keys, &self.args)])
    }
}
