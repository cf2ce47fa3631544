//! Sorted sets (rankings, leaderboards): `ZADD [NX|GT|LT]`, `ZINCRBY`,
//! `ZRANGE … WITHSCORES` and `ZREMRANGEBYRANK`. Writes get their `PEXPIRE`.

use super::{Ctx, Kind, PlanLimits, expire, items, not_nan, score, value};
use crate::plugin::bindings::{ZsetAdd, ZsetBounds, ZsetCondition, ZsetIncr, ZsetRange, ZsetTrim};
use crate::store::{StoreError, reply};
use redis::{Cmd, Value};

impl Kind for ZsetAdd {
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
