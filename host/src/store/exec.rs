//! A validated plan becomes one pipeline (or MULTI/EXEC): one round trip,
//! whatever the number of actions. Every write carries its expiry in the same
//! round trip: the host, not the plugin, guarantees that keys expire.

use crate::plugin::bindings::{Action, Plan, ZsetBounds};
use redis::{Pipeline, Value};

use super::{Store, StoreError};

/// The TTLs of a domain, in ms: what a write without TTL gets, and the
/// bounds any TTL is clamped into.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TtlBounds {
    pub default_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
}

impl TtlBounds {
    /// The TTL a write gets: its own, else the plan's, else the default; clamped.
    pub fn pick(&self, action: Option<u64>, plan: Option<u64>) -> u64 {
        action
            .or(plan)
            .unwrap_or(self.default_ms)
            .clamp(self.min_ms, self.max_ms)
    }
}

/// Run a validated plan. The result has one reply per action, in order.
pub async fn run(store: &Store, plan: &Plan, ttl: &TtlBounds) -> Result<Vec<Value>, StoreError> {
    store.query(&pipeline(plan, ttl)?).await
}

/// Translate a plan into commands. Commands added only for expiry have their
/// replies ignored, so replies line up with actions.
pub fn pipeline(plan: &Plan, ttl: &TtlBounds) -> Result<Pipeline, StoreError> {
    let mut pipe = redis::pipe();
    if plan.atomic {
        pipe.atomic();
    }
    for action in &plan.actions {
        match action {
            Action::Get(key) => {
                pipe.cmd("GET").arg(key);
            }
            Action::Set(s) => {
                let ms = ttl.pick(s.ttl_ms, plan.ttl_ms);
                pipe.cmd("SET").arg(&s.key).arg(&s.value).arg("PX").arg(ms);
            }
            Action::Delete(key) => {
                pipe.cmd("DEL").arg(key);
            }
            Action::Expire(e) => {
                let ms = ttl.pick(Some(e.ttl_ms), None);
                pipe.cmd("PEXPIRE").arg(&e.key).arg(ms);
            }
            Action::HashGet(h) if h.fields.is_empty() => {
                pipe.cmd("HGETALL").arg(&h.key);
            }
            Action::HashGet(h) => {
                pipe.cmd("HMGET").arg(&h.key).arg(&h.fields);
            }
            Action::HashSet(h) => {
                let cmd = pipe.cmd("HSET").arg(&h.key);
                for f in &h.fields {
                    cmd.arg(&f.name).arg(&f.value);
                }
                expire(&mut pipe, &h.key, ttl.pick(h.ttl_ms, plan.ttl_ms));
            }
            Action::StreamAdd(s) => {
                let cmd = pipe.cmd("XADD").arg(&s.stream);
                if let Some(n) = s.max_len {
                    cmd.arg("MAXLEN").arg("~").arg(n);
                }
                cmd.arg("*");
                for f in &s.fields {
                    cmd.arg(&f.name).arg(&f.value);
                }
            }
            Action::ZsetAdd(z) => {
                let cmd = pipe.cmd("ZADD").arg(&z.key);
                for m in &z.members {
                    cmd.arg(score(m.score)).arg(&m.member);
                }
                expire(&mut pipe, &z.key, ttl.pick(z.ttl_ms, plan.ttl_ms));
            }
            Action::ZsetRange(z) => {
                let cmd = pipe.cmd("ZRANGE").arg(&z.key);
                match z.bounds {
                    ZsetBounds::Rank((start, stop)) => {
                        cmd.arg(start).arg(stop);
                    }
                    // With REV the first bound is the higher one.
                    ZsetBounds::Score((min, max)) => {
                        let (a, b) = if z.reverse { (max, min) } else { (min, max) };
                        cmd.arg(score(a)).arg(score(b)).arg("BYSCORE");
                    }
                }
                if z.reverse {
                    cmd.arg("REV");
                }
                if let (ZsetBounds::Score(_), Some(n)) = (&z.bounds, z.limit) {
                    cmd.arg("LIMIT").arg(0).arg(n);
                }
                cmd.arg("WITHSCORES");
            }
            Action::SetAdd(s) => {
                pipe.cmd("SADD").arg(&s.key).arg(&s.members);
                expire(&mut pipe, &s.key, ttl.pick(s.ttl_ms, plan.ttl_ms));
            }
            Action::SetContains(s) => {
                pipe.cmd("SISMEMBER").arg(&s.key).arg(&s.member);
            }
            Action::Script(s) => {
                return Err(StoreError::Command(format!(
                    "script {:?}: registered scripts are not available yet",
                    s.name
                )));
            }
        }
    }
    Ok(pipe)
}

fn expire(pipe: &mut Pipeline, key: &str, ms: u64) {
    pipe.cmd("PEXPIRE").arg(key).arg(ms).ignore();
}

/// Scores as Redis spells them, infinities included.
fn score(s: f64) -> String {
    match s {
        f64::INFINITY => "+inf".into(),
        f64::NEG_INFINITY => "-inf".into(),
        s => s.to_string(),
    }
}
