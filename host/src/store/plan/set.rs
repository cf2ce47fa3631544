//! Sets: `SADD` + `PEXPIRE`, `SREM`, `SISMEMBER` (a boolean answer),
//! `SRANDMEMBER` with a count (members, sorted) and `SCARD`.

use super::{Ctx, Kind, PlanLimits, TtlBounds, count, expire, names, value};
use crate::plugin::bindings::{SetAdd, SetContains, SetCount, SetMembers, SetRemove};
use crate::store::{StoreError, reply};
use redis::{Cmd, Value};

impl Kind for SetAdd {
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
        names(&self.members, limits)
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

impl Kind for SetRemove {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        names(&self.members, limits)
    }
    /// No `PEXPIRE`: removing members creates nothing that could outlive it.
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("SREM");
        cmd.arg(&self.key).arg(&self.members);
        Ok(vec![cmd])
    }
}

impl Kind for SetMembers {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        false
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        count(self.count, limits)
    }
    /// A positive count: distinct members, every one when the set has no
    /// more (a negative count would repeat members).
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("SRANDMEMBER");
        cmd.arg(&self.key).arg(self.count);
        Ok(vec![cmd])
    }
    /// The members as strings, sorted by their bytes, so that the same set
    /// gives the same answer (Redis returns them in no order); an empty
    /// set is a miss, as an absent key is.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        let (Value::Array(mut members) | Value::Set(mut members)) = reply else {
            return None;
        };
        members.sort_by(|a, b| member_bytes(a).cmp(member_bytes(b)));
        (!members.is_empty()).then(|| reply::msgpack(Value::Array(members)))
    }
    /// Not cacheable: when the set holds more than `count`, which members
    /// come back is chance, and a copy would make it one draw for everyone.
    fn cacheable(&self) -> bool {
        false
    }
}

/// A member's bytes, to sort by.
fn member_bytes(v: &Value) -> &[u8] {
    match v {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.as_bytes(),
        _ => &[],
    }
}

impl Kind for SetCount {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        false
    }
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("SCARD");
        cmd.arg(&self.key);
        Ok(vec![cmd])
    }
    /// The count; 0, no key, is an answer, not a miss.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        Some(reply::msgpack(reply))
    }
    /// A read of one key with nothing else to it: any change to the set
    /// (an expiry included) is heard through tracking.
    fn cacheable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{check, check_one, describe_one, json, plan};
    use super::super::{cacheable_key, shape, written_keys};
    use crate::plugin::bindings::{Action, SetCount, SetMembers, SetRemove};
    use redis::Value;

    fn members(count: u32) -> Action {
        Action::SetMembers(SetMembers {
            key: "cache:s".into(),
            count,
        })
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn set_remove_removes_members_and_answers_the_count() {
        let srem = |n: usize| {
            Action::SetRemove(SetRemove {
                key: "cache:s".into(),
                members: (0..n).map(|i| format!("m{i}")).collect(),
            })
        };
        assert_eq!(describe_one(srem(2)), ["SREM cache:s m0 m1"]);
        assert_eq!(
            check_one(srem(0)).unwrap_err(),
            "an action with nothing to write"
        );
        assert!(check_one(srem(1025)).unwrap_err().contains("1025 items"));
        assert_eq!(json(shape(&srem(1), Value::Int(1))), 1);
        assert_eq!(json(shape(&srem(1), Value::Int(0))), 0);
        let p = plan(vec![srem(1)]);
        assert_eq!(written_keys(&p).collect::<Vec<_>>(), ["cache:s"]);
    }

    #[test]
    fn set_members_asks_for_one_to_max_items_distinct_members() {
        assert_eq!(describe_one(members(10)), ["SRANDMEMBER cache:s 10"]);
        assert_eq!(check_one(members(1)), Ok(()));
        assert_eq!(check_one(members(1024)), Ok(()));
        assert_eq!(
            check_one(members(0)).unwrap_err(),
            "a count of 0 reads nothing"
        );
        assert_eq!(
            check_one(members(1025)).unwrap_err(),
            "a count of 1025, at most 1024 allowed"
        );
        let mut p = plan(vec![members(3)]);
        p.respond = Some(0);
        assert_eq!(check(&p), Ok(()));
        assert_eq!(written_keys(&p).count(), 0);
        assert_eq!(cacheable_key(&p), None, "a random draw is not kept");
    }

    #[test]
    fn set_members_are_answered_sorted_and_an_empty_set_is_a_miss() {
        let reply = Value::Array(vec![bulk("pear"), bulk("apple"), bulk("fig")]);
        assert_eq!(
            json(shape(&members(3), reply)),
            serde_json::json!(["apple", "fig", "pear"])
        );
        let set = Value::Set(vec![bulk("b"), bulk("a")]);
        assert_eq!(json(shape(&members(3), set)), serde_json::json!(["a", "b"]));
        assert_eq!(shape(&members(3), Value::Array(vec![])), None);
        assert_eq!(shape(&members(3), Value::Nil), None);
    }

    #[test]
    fn set_count_is_scard_zero_included_and_may_be_kept() {
        let scard = Action::SetCount(SetCount {
            key: "cache:s".into(),
        });
        assert_eq!(describe_one(scard.clone()), ["SCARD cache:s"]);
        assert_eq!(json(shape(&scard, Value::Int(3))), 3);
        assert_eq!(json(shape(&scard, Value::Int(0))), 0, "0 is an answer");
        let mut p = plan(vec![scard]);
        p.respond = Some(0);
        assert_eq!(written_keys(&p).count(), 0);
        assert_eq!(cacheable_key(&p), Some("cache:s"));
    }
}
