//! Validated plans become commands in one pipeline: one round trip, whatever
//! the number of actions — or of plans, for batches. A plan that asks for
//! atomicity is wrapped in MULTI/EXEC inside the pipeline. Every write carries
//! its expiry in the same round trip: the host, not the plugin, guarantees
//! that keys expire.

use super::scripts::{self, Scripts};
use super::{Store, StoreError, reply_error};
use crate::plugin::bindings::{Action, Plan, ZsetBounds};
use crate::telemetry::METRICS;
use redis::{Pipeline, Value};
use std::ops::Range;

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

/// Where each action's reply will be in the pipeline's replies.
#[derive(Debug, Clone)]
pub struct Placed {
    /// Per action: the reply index, and inside EXEC's array when atomic.
    at: Vec<(usize, Option<usize>)>,
    /// Every reply index this plan owns (to find its error replies).
    span: Range<usize>,
}

/// Run one plan: one round trip. The result has one reply per action.
pub async fn run(store: &Store, plan: &Plan, ttl: &TtlBounds) -> Result<Vec<Value>, StoreError> {
    let mut pipe = super::pipeline();
    let placed = append(&mut pipe, plan, ttl, store.scripts())?;
    let mut replies = store.query(&pipe).await?;
    take(&placed, &mut replies)
}

/// Append a plan's commands to `pipe`.
pub fn append(
    pipe: &mut Pipeline,
    plan: &Plan,
    ttl: &TtlBounds,
    scripts: &Scripts,
) -> Result<Placed, StoreError> {
    let start = pipe.len();
    if plan.atomic {
        pipe.cmd("MULTI");
        // Inside a transaction a NOSCRIPT cannot be retried without breaking
        // atomicity, so the scripts it uses are loaded first, in it.
        for name in plan.actions.iter().filter_map(|a| match a {
            Action::Script(s) => Some(&s.name),
            _ => None,
        }) {
            if let Some(s) = scripts.get(name) {
                pipe.cmd("SCRIPT").arg("LOAD").arg(&s.source);
            }
        }
    }
    let mut own = Vec::with_capacity(plan.actions.len());
    for action in &plan.actions {
        own.push(pipe.len());
        command(pipe, action, plan, ttl, scripts)?;
    }
    let at = if plan.atomic {
        pipe.cmd("EXEC");
        let exec = pipe.len() - 1;
        own.iter().map(|&i| (exec, Some(i - start - 1))).collect()
    } else {
        own.into_iter().map(|i| (i, None)).collect()
    };
    Ok(Placed {
        at,
        span: start..pipe.len(),
    })
}

/// A plan's replies out of the pipeline's; the first error reply among its
/// commands fails the plan (its other commands may have run: plans that need
/// all-or-nothing ask for atomicity).
pub fn take(placed: &Placed, replies: &mut [Value]) -> Result<Vec<Value>, StoreError> {
    let span = replies
        .get(placed.span.clone())
        .ok_or_else(|| StoreError::Command("fewer replies than commands".into()))?;
    for v in span {
        if let Some(e) = reply_error(v) {
            return Err(e);
        }
        if let Value::Array(inner) = v
            && let Some(e) = inner.iter().find_map(reply_error)
        {
            return Err(e);
        }
    }
    let mut out = Vec::with_capacity(placed.at.len());
    for &(i, inner) in &placed.at {
        let v = match (inner, replies.get_mut(i)) {
            (None, Some(v)) => Some(std::mem::take(v)),
            (Some(j), Some(Value::Array(items))) => items.get_mut(j).map(std::mem::take),
            _ => None,
        };
        out.push(v.unwrap_or(Value::Nil));
    }
    Ok(out)
}

fn command(
    pipe: &mut Pipeline,
    action: &Action,
    plan: &Plan,
    ttl: &TtlBounds,
    scripts: &Scripts,
) -> Result<(), StoreError> {
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
            pipe.cmd("PEXPIRE")
                .arg(&e.key)
                .arg(ttl.pick(Some(e.ttl_ms), None));
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
            // HSET's reply is the action's; PEXPIRE follows as an extra command.
            expire_after(pipe, &h.key, ttl.pick(h.ttl_ms, plan.ttl_ms));
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
            expire_after(pipe, &z.key, ttl.pick(z.ttl_ms, plan.ttl_ms));
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
            expire_after(pipe, &s.key, ttl.pick(s.ttl_ms, plan.ttl_ms));
        }
        Action::SetContains(s) => {
            pipe.cmd("SISMEMBER").arg(&s.key).arg(&s.member);
        }
        Action::Script(s) => {
            let script = scripts.get(&s.name).ok_or_else(|| {
                StoreError::Command(format!("no registered script named {:?}", s.name))
            })?;
            METRICS
                .script_calls
                .with_label_values(&[&script.name])
                .inc();
            pipe.add_command(scripts::evalsha(script, &s.keys, &s.args));
        }
    }
    Ok(())
}

fn expire_after(pipe: &mut Pipeline, key: &str, ms: u64) {
    pipe.cmd("PEXPIRE").arg(key).arg(ms);
}

/// Scores as Redis spells them, infinities included.
fn score(s: f64) -> String {
    match s {
        f64::INFINITY => "+inf".into(),
        f64::NEG_INFINITY => "-inf".into(),
        s => s.to_string(),
    }
}
