//! Streams: `XADD … MAXLEN ~ n`. A publish answers with each stream's entry id.

use super::{Ctx, Kind, PlanLimits, items, value};
use crate::plugin::bindings::{Action, Plan, StreamAdd};
use crate::store::{StoreError, reply};
use redis::{Cmd, Value};

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
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.stream);
        if let Some(n) = self.max_len {
            cmd.arg("MAXLEN").arg("~").arg(n);
        }
        cmd.arg("*");
        for f in &self.fields {
            cmd.arg(&f.name).arg(&f.value);
        }
        Ok(vec![cmd])
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
