//! Plain values: `GET` and `SET … PX`.

use super::{Ctx, Kind, PlanLimits, value};
use crate::plugin::bindings::{StringGet, StringSet};
use crate::store::{StoreError, reply};
use redis::{Cmd, Value};

impl Kind for StringGet {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        false
    }
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(&self.key);
        Ok(vec![cmd])
    }
    /// Values the gateway wrote are MessagePack and pass through untouched;
    /// a value another client wrote becomes a string or binary.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        match reply {
            Value::Nil => None,
            Value::BulkString(bytes) if reply::is_one_msgpack_value(&bytes) => Some(bytes),
            Value::BulkString(bytes) => Some(reply::stored(&bytes)),
            other => Some(reply::msgpack(other)),
        }
    }
    fn cacheable(&self) -> bool {
        true
    }
}

impl Kind for StringSet {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        value(&self.value, limits)
    }
    /// The expiry rides in the same command: no moment without a TTL.
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(&self.key)
            .arg(&self.value)
            .arg("PX")
            .arg(ctx.ttl(self.ttl_ms));
        Ok(vec![cmd])
    }
}
