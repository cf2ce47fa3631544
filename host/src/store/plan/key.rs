//! Any key: `DEL`, `PEXPIRE` and `PTTL`.

use super::{Ctx, Kind, TtlBounds, expire};
use crate::plugin::bindings::{KeyDelete, KeyExpire, KeyTtl};
use crate::store::{StoreError, reply};
use redis::{Cmd, Value};

impl Kind for KeyDelete {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&self.key);
        Ok(vec![cmd])
    }
}

impl Kind for KeyExpire {
    fn ttl(&self, bounds: &TtlBounds, _: Option<u64>) -> Option<u64> {
        Some(bounds.pick(Some(self.ttl_ms), None))
    }
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    /// Kept within the domain's bounds like every other TTL.
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        Ok(vec![expire(
            &self.key,
            ctx.ttl.pick(Some(self.ttl_ms), None),
        )])
    }
}

impl Kind for KeyTtl {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        false
    }
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("PTTL");
        cmd.arg(&self.key);
        Ok(vec![cmd])
    }
    /// The ms left; nil when the key never expires; a miss when there is
    /// no key (`-2`), as a read of it would be.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        match reply {
            Value::Int(-2) => None,
            Value::Int(-1) => Some(reply::msgpack(Value::Nil)),
            other => Some(reply::msgpack(other)),
        }
    }
    /// Not cacheable: the time left shrinks without the key changing, and
    /// client tracking only tells of changes.
    fn cacheable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{describe_one, json, plan};
    use super::super::{cacheable_key, shape, written_keys};
    use crate::plugin::bindings::{Action, KeyTtl};
    use redis::Value;

    fn ttl() -> Action {
        Action::KeyTtl(KeyTtl {
            key: "cache:k".into(),
        })
    }

    #[test]
    fn a_keys_ttl_is_its_pttl_nil_without_expiry_and_a_miss_without_key() {
        assert_eq!(describe_one(ttl()), ["PTTL cache:k"]);
        assert_eq!(json(shape(&ttl(), Value::Int(1500))), 1500);
        assert_eq!(
            json(shape(&ttl(), Value::Int(-1))),
            serde_json::Value::Null,
            "no expiry: an answer of nil"
        );
        assert_eq!(shape(&ttl(), Value::Int(-1)), Some(vec![0xc0]));
        assert_eq!(shape(&ttl(), Value::Int(-2)), None, "no key: a miss");
        let mut p = plan(vec![ttl()]);
        p.respond = Some(0);
        assert_eq!(written_keys(&p).count(), 0, "a read");
        assert_eq!(cacheable_key(&p), None, "it shrinks unheard: no copy");
    }
}
