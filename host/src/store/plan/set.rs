//! Sets: `SADD` + `PEXPIRE` and `SISMEMBER` (a boolean answer).

use super::{Ctx, Kind, PlanLimits, expire, items, value};
use crate::plugin::bindings::{SetAdd, SetContains};
use crate::store::{StoreError, reply};
use redis::{Cmd, Value};

impl Kind for SetAdd {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        items(self.members.len(), limits)?;
        self.members
            .iter()
            .try_for_each(|m| value(m.as_bytes(), limits))
    }
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("SADD");
        cmd.arg(&self.key).arg(&self.members);
        Ok(vec![cmd, expire(&self.key, ctx.ttl(self.ttl_ms))])
    }
}

impl Kind for SetContains {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        false
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        value(self.member.as_bytes(), limits)
    }
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("SISMEMBER");
        cmd.arg(&self.key).arg(&self.member);
        Ok(vec![cmd])
    }
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        match reply {
            Value::Int(n) => Some(reply::msgpack(Value::Boolean(n == 1))),
            other => Some(reply::msgpack(other)),
        }
    }
    fn cacheable(&self) -> bool {
        true
    }
}
