//! Sorted sets (rankings, leaderboards): `ZADD [NX|GT|LT]`, `ZINCRBY`,
//! `ZRANGE … WITHSCORES`, `ZREMRANGEBYRANK`, `ZREM`, `ZSCORE` and `ZCARD`.
//! Writes that can create the set get their `PEXPIRE`.

use super::{Ctx, Kind, PlanLimits, TtlBounds, expire, items, names, not_nan, score, value};
use crate::plugin::bindings::{
    ZsetAdd, ZsetBounds, ZsetCondition, ZsetCount, ZsetIncr, ZsetRange, ZsetRemove, ZsetScore,
    ZsetTrim,
};
use crate::store::{StoreError, reply};
use redis::{Cmd, Value};

impl Kind for ZsetAdd {
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
        items(self.members.len(), limits)?;
        for m in &self.members {
            not_nan("score", m.score)?;
            value(m.member.as_bytes(), limits)?;
        }
        Ok(())
    }
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(&self.key);
        match self.condition {
            ZsetCondition::Always => {}
            ZsetCondition::IfAbsent => {
                cmd.arg("NX");
            }
            ZsetCondition::IfGreater => {
                cmd.arg("GT");
            }
            ZsetCondition::IfLess => {
                cmd.arg("LT");
            }
        }
        for m in &self.members {
            cmd.arg(score(m.score)).arg(&m.member);
        }
        Ok(vec![cmd, expire(&self.key, ctx.ttl(self.ttl_ms))])
    }
}

impl Kind for ZsetIncr {
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
        not_nan("increment", self.by)?;
        value(self.member.as_bytes(), limits)
    }
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("ZINCRBY");
        cmd.arg(&self.key).arg(score(self.by)).arg(&self.member);
        Ok(vec![cmd, expire(&self.key, ctx.ttl(self.ttl_ms))])
    }
    /// The new score, as a number.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        Some(reply::msgpack(Value::Double(reply::score(reply))))
    }
}

impl Kind for ZsetRange {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        false
    }
    fn check(&self, _: &PlanLimits) -> Result<(), String> {
        match (self.bounds, self.limit) {
            (ZsetBounds::Rank(_), Some(_)) => Err(
                "a limit applies to score ranges; a rank range is limited by its bounds (0, 9 is ten)"
                    .into(),
            ),
            (ZsetBounds::Score((min, max)), _) => {
                not_nan("bound", min)?;
                not_nan("bound", max)
            }
            _ => Ok(()),
        }
    }
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(&self.key);
        match self.bounds {
            ZsetBounds::Rank((start, stop)) => {
                cmd.arg(start).arg(stop);
            }
            // Bounds are (min, max); with REV Redis wants the higher first.
            ZsetBounds::Score((min, max)) => {
                let (a, b) = if self.reverse { (max, min) } else { (min, max) };
                cmd.arg(score(a)).arg(score(b)).arg("BYSCORE");
            }
        }
        if self.reverse {
            cmd.arg("REV");
        }
        if let Some(n) = self.limit {
            cmd.arg("LIMIT").arg(0).arg(n);
        }
        cmd.arg("WITHSCORES");
        Ok(vec![cmd])
    }
    /// `[{member, score}, ...]`; an empty range is a miss, as an absent key is.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        let Value::Array(flat) = reply else {
            return None;
        };
        let mut members = Vec::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let Some(item) = it.next() {
            // RESP3 nests [member, score]; RESP2 interleaves them.
            let (m, s) = match item {
                Value::Array(pair) if pair.len() == 2 => {
                    let mut pair = pair.into_iter();
                    (pair.next(), pair.next())
                }
                m => (Some(m), it.next()),
            };
            let (m, s) = (m.unwrap_or(Value::Nil), s.unwrap_or(Value::Nil));
            members.push(Value::Map(vec![
                (Value::SimpleString("member".into()), m),
                (
                    Value::SimpleString("score".into()),
                    Value::Double(reply::score(s)),
                ),
            ]));
        }
        (!members.is_empty()).then(|| reply::msgpack(Value::Array(members)))
    }
    fn cacheable(&self) -> bool {
        true
    }
}

impl Kind for ZsetTrim {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("ZREMRANGEBYRANK");
        cmd.arg(&self.key).arg(self.start).arg(self.stop);
        Ok(vec![cmd])
    }
}

impl Kind for ZsetRemove {
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
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(&self.key).arg(&self.members);
        Ok(vec![cmd])
    }
}

impl Kind for ZsetScore {
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
        let mut cmd = redis::cmd("ZSCORE");
        cmd.arg(&self.key).arg(&self.member);
        Ok(vec![cmd])
    }
    /// The score as a number (a RESP2 bulk string, a RESP3 double); an
    /// absent member is a miss.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        match reply {
            Value::Nil => None,
            other => Some(reply::msgpack(Value::Double(reply::score(other)))),
        }
    }
    /// Not cacheable: near-cache copies are kept by Redis key, and this
    /// answer is one member's, not the key's.
    fn cacheable(&self) -> bool {
        false
    }
}

impl Kind for ZsetCount {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        false
    }
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("ZCARD");
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
    use super::super::tests::{check_one, describe_one, json, plan};
    use super::super::{cacheable_key, shape, written_keys};
    use crate::plugin::bindings::{Action, ZsetCount, ZsetRemove, ZsetScore};
    use redis::Value;

    fn score_of(member: &str) -> Action {
        Action::ZsetScore(ZsetScore {
            key: "cache:z".into(),
            member: member.into(),
        })
    }

    #[test]
    fn zset_remove_removes_members_and_answers_the_count() {
        let zrem = |n: usize| {
            Action::ZsetRemove(ZsetRemove {
                key: "cache:z".into(),
                members: (0..n).map(|i| format!("m{i}")).collect(),
            })
        };
        assert_eq!(describe_one(zrem(2)), ["ZREM cache:z m0 m1"]);
        assert_eq!(
            check_one(zrem(0)).unwrap_err(),
            "an action with nothing to write"
        );
        assert!(check_one(zrem(1025)).unwrap_err().contains("1025 items"));
        assert_eq!(json(shape(&zrem(2), Value::Int(2))), 2);
        let p = plan(vec![zrem(1)]);
        assert_eq!(written_keys(&p).collect::<Vec<_>>(), ["cache:z"]);
    }

    #[test]
    fn zset_score_is_a_float_from_either_protocol_and_absent_is_a_miss() {
        let a = score_of("ann");
        assert_eq!(describe_one(a.clone()), ["ZSCORE cache:z ann"]);
        let resp2 = shape(&a, Value::BulkString(b"12.5".to_vec())).unwrap();
        assert_eq!(resp2[0], 0xcb, "a float 64, not the string");
        assert_eq!(json(Some(resp2)), 12.5);
        assert_eq!(json(shape(&a, Value::Double(12.5))), 12.5);
        assert_eq!(json(shape(&a, Value::BulkString(b"3".to_vec()))), 3.0);
        // Infinite scores are scores: MessagePack carries them as floats.
        let inf = shape(&a, Value::BulkString(b"inf".to_vec())).unwrap();
        assert_eq!(rmp_serde::from_slice::<f64>(&inf).unwrap(), f64::INFINITY);
        assert_eq!(shape(&a, Value::Nil), None);
        let big = score_of(&"m".repeat((4 << 20) + 1));
        assert!(check_one(big).unwrap_err().contains("value of"));
        let mut p = plan(vec![a]);
        p.respond = Some(0);
        assert_eq!(written_keys(&p).count(), 0);
        assert_eq!(cacheable_key(&p), None, "one member's, not the key's");
    }

    #[test]
    fn zset_count_is_zcard_zero_included_and_may_be_kept() {
        let zcard = Action::ZsetCount(ZsetCount {
            key: "cache:z".into(),
        });
        assert_eq!(describe_one(zcard.clone()), ["ZCARD cache:z"]);
        assert_eq!(json(shape(&zcard, Value::Int(0))), 0, "0 is an answer");
        assert_eq!(json(shape(&zcard, Value::Int(7))), 7);
        let mut p = plan(vec![zcard]);
        p.respond = Some(0);
        assert_eq!(cacheable_key(&p), Some("cache:z"));
    }
}
