//! Objects as hashes: `HMGET`/`HGETALL` and `HSET` + `PEXPIRE`. Field values
//! are MessagePack, so an object read back keeps its types.

use super::{Ctx, Kind, PlanLimits, expire, items, read_items, value};
use crate::plugin::bindings::{HashGet, HashSet};
use crate::store::{StoreError, reply};
use redis::{Cmd, Value};

impl Kind for HashGet {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        false
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        read_items(self.fields.len(), limits)
    }
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = if self.fields.is_empty() {
            redis::cmd("HGETALL")
        } else {
            redis::cmd("HMGET")
        };
        cmd.arg(&self.key).arg(&self.fields);
        Ok(vec![cmd])
    }
    /// An object of the fields present; a miss when none is.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        let pairs: Vec<(Value, Value)> = match reply {
            // HMGET: values in the order asked, nil where absent.
            Value::Array(values) if !self.fields.is_empty() => self
                .fields
                .iter()
                .zip(values)
                .filter(|(_, v)| *v != Value::Nil)
                .map(|(name, v)| (Value::SimpleString(name.clone()), v))
                .collect(),
            // HGETALL: a RESP3 map, or a RESP2 flat array.
            Value::Map(pairs) => pairs,
            Value::Array(flat) => reply::pairs(flat),
            _ => Vec::new(),
        };
        (!pairs.is_empty()).then(|| reply::object(pairs))
    }
    fn cacheable(&self) -> bool {
        true
    }
}

impl Kind for HashSet {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        items(self.fields.len(), limits)?;
        self.fields.iter().try_for_each(|f| value(&f.value, limits))
    }
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&self.key);
        for f in &self.fields {
            cmd.arg(&f.name).arg(&f.value);
        }
        Ok(vec![cmd, expire(&self.key, ctx.ttl(self.ttl_ms))])
    }
}
