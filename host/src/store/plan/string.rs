//! Plain values: `GET`, `SET … PX` and `SET … NX PX`.

use super::{Ctx, Kind, PlanLimits, TtlBounds, value};
use crate::plugin::bindings::{SetIfAbsent, StringGet, StringSet};
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
    fn ttl(&self, bounds: &TtlBounds, plan_ttl: Option<u64>) -> Option<u64> {
        Some(bounds.pick(self.ttl_ms, plan_ttl))
    }
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

impl Kind for SetIfAbsent {
    fn ttl(&self, bounds: &TtlBounds, plan_ttl: Option<u64>) -> Option<u64> {
        Some(bounds.pick(self.ttl_ms, plan_ttl))
    }
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        value(&self.value, limits)
    }
    /// One command: stored with its expiry, or not at all.
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(&self.key)
            .arg(&self.value)
            .arg("NX")
            .arg("PX")
            .arg(ctx.ttl(self.ttl_ms));
        Ok(vec![cmd])
    }
    /// Whether it was stored: `OK`, or nil when the key was there. Never a
    /// miss: "not stored" is the answer.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        let stored = match reply {
            Value::Nil => false,
            Value::Okay => true,
            Value::SimpleString(s) => s == "OK",
            other => return Some(reply::msgpack(other)),
        };
        Some(reply::msgpack(Value::Boolean(stored)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::shape;
    use super::super::tests::{check_one, describe_one, json, plan};
    use super::super::written_keys;
    use crate::plugin::bindings::{Action, SetIfAbsent};
    use redis::Value;

    fn claim(value: Vec<u8>, ttl_ms: Option<u64>) -> Action {
        Action::SetIfAbsent(SetIfAbsent {
            key: "cache:lock".into(),
            value,
            ttl_ms,
        })
    }

    #[test]
    fn set_if_absent_stores_with_its_expiry_in_one_command() {
        assert_eq!(
            describe_one(claim(vec![0xc3], None)),
            ["SET cache:lock true NX PX 60000"]
        );
        // Held to the domain's bounds like every TTL.
        assert_eq!(
            describe_one(claim(vec![0xc3], Some(u64::MAX))),
            ["SET cache:lock true NX PX 120000"]
        );
        assert_eq!(check_one(claim(vec![0xc3], None)), Ok(()));
        let big = claim(vec![0; (4 << 20) + 1], None);
        assert!(
            check_one(big)
                .unwrap_err()
                .contains("value of 4194305 bytes")
        );
        let p = plan(vec![claim(vec![0xc3], None)]);
        assert_eq!(written_keys(&p).collect::<Vec<_>>(), ["cache:lock"]);
    }

    #[test]
    fn set_if_absent_answers_whether_it_stored_never_a_miss() {
        let a = claim(vec![0xc3], None);
        assert_eq!(json(shape(&a, Value::Okay)), true);
        assert_eq!(json(shape(&a, Value::SimpleString("OK".into()))), true);
        // RESP2's nil bulk string and RESP3's null both read as Nil.
        assert_eq!(json(shape(&a, Value::Nil)), false);
    }
}
