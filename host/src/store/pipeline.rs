//! Plans into pipelines: where each plan's commands go in one pipeline
//! (one round trip for a call or a whole batch), plain reads merged into
//! one `MGET`, and each plan's replies taken back out, its error replies
//! failing that plan alone. Pure: nothing here talks to Redis.

use super::error::{StoreError, reply_error};
use super::plan::{self, TtlBounds};
use super::scripts::{self, Scripts};
use crate::plugin::bindings::{Action, Plan};
use crate::telemetry::METRICS;
use redis::{Pipeline, Value};
use std::time::{Duration, Instant};

/// How a read that gathers many values (an mget, a stream read or claim)
/// is split into round trips so that one request cannot pull more than
/// about `max_bytes` into memory: at most `per_round` items a round trip,
/// and no further round once `max_bytes` are gathered. One round holds at
/// most `per_round` × the largest value a client may write.
#[derive(Debug, Clone, Copy)]
pub struct Gather {
    pub max_bytes: usize,
    pub per_round: usize,
}

impl Gather {
    /// Rounds of up to twice `max_bytes` worth of the largest values
    /// (`max_item` bytes each), so a round may pass the bound by at most
    /// that much, and never more than `most` items.
    pub fn new(max_bytes: usize, max_item: usize, most: usize) -> Gather {
        let per_round = (max_bytes.saturating_mul(2) / max_item.max(1)).clamp(1, most.max(1));
        Gather {
            max_bytes,
            per_round,
        }
    }
}

/// One plan to run, with its domain's TTLs.
#[derive(Clone, Copy)]
pub struct Job<'a> {
    pub plan: &'a Plan,
    pub ttl: &'a TtlBounds,
    /// Track the key the plan responds with, and report its remaining life
    /// (for a near-cache copy that never outlives it). See [`plan::cacheable_key`].
    pub track: bool,
    /// An idempotency record written in the same transaction as the plan.
    pub record: Option<&'a redis::Cmd>,
    /// On a cluster: its reads may go to replicas (`read_from = "replica"`).
    pub replica: bool,
    /// What its answer is made of.
    pub reply: Reply,
}

/// What a plan's answer is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The reply of the action the plan responds with, shaped by its kind
    /// (none when it responds with none).
    Respond,
    /// The entry id each stream gave an event (a publish).
    Published,
}

impl<'a> Job<'a> {
    /// The first key its plan touches: on a cluster, its slot is the plan's.
    pub fn first_key(&self) -> Option<&'a str> {
        plan::first_key(self.plan)
    }
}

/// What a plan came to.
#[derive(Debug)]
pub struct Done {
    /// The answer's body, MessagePack (`None`: a miss, or nothing to say).
    pub body: Option<Vec<u8>>,
    /// For a tracked read: when the key ends in Redis (`None`: no expiry,
    /// or not tracked). Counted from before the command was sent, so it is
    /// never later than Redis's own expiry, however long the reply took.
    pub expires_at: Option<Instant>,
}

/// Where a job's replies will be in the pipeline's replies.
pub(super) struct Placed {
    /// Per action: the reply index, and inside EXEC's array when atomic.
    at: Vec<(usize, Option<usize>)>,
    /// Every reply index this plan owns (to find its error replies).
    span: std::ops::Range<usize>,
    /// The index of the tracked key's PTTL reply.
    pttl: Option<usize>,
    /// Its reply is one item of the batch's `MGET`, shared with the others
    /// (never an error reply of its own: an error fails the whole `MGET`).
    merged: bool,
}

/// Where a plain read waits for the batch's one `MGET`.
const MERGED: usize = usize::MAX;

/// Place a job's commands in the pipeline. A plan that is one plain `GET`
/// (untracked, outside a transaction) only adds its key to `gets`: a batch
/// of them becomes one `MGET` ([`merge_gets`]), far cheaper for Redis than
/// a `GET` per key.
/// `optin`: a tracked read opts in with `CLIENT CACHING YES` (one Redis);
/// on a cluster every change is heard anyway (`CLIENT TRACKING … BCAST`
/// per primary) and only its `PTTL` is sent.
pub(super) fn place<'a>(
    pipe: &mut Pipeline,
    job: &Job<'a>,
    scripts: &Scripts,
    gets: &mut Vec<&'a str>,
    optin: bool,
) -> Result<Placed, StoreError> {
    // Known before any command is built: a batch of them costs no command each.
    if let [Action::Get(get)] = &job.plan.actions[..]
        && !job.plan.atomic
        && !job.track
        && job.record.is_none()
    {
        gets.push(&get.key);
        return Ok(Placed {
            at: vec![(MERGED, Some(gets.len() - 1))],
            span: MERGED..MERGED,
            pttl: None,
            merged: true,
        });
    }
    let ctx = plan::Ctx {
        ttl: job.ttl,
        plan_ttl: job.plan.ttl_ms,
        scripts,
        with: job.record,
    };
    let plan::Commands { atomic, list } = plan::commands(job.plan, &ctx)?;
    let tracked = (job.track && !atomic)
        .then(|| plan::cacheable_key(job.plan))
        .flatten();
    if tracked.is_some() && optin {
        // Opt-in tracking: Redis remembers the key the next command reads.
        pipe.cmd("CLIENT").arg("CACHING").arg("YES");
    }
    let start = pipe.len();
    let mut at = vec![(0, None); job.plan.actions.len()];
    for (action, cmd) in list {
        if let Some(i) = action {
            // Inside MULTI/EXEC an action's reply is in EXEC's array, after MULTI.
            at[i] = if atomic {
                (0, Some(pipe.len() - start - 1))
            } else {
                (pipe.len(), None)
            };
        }
        pipe.add_command(cmd);
    }
    if atomic {
        let exec = pipe.len() - 1;
        at.iter_mut().for_each(|a| a.0 = exec);
    }
    let span = start..pipe.len();
    let pttl = tracked.map(|key| {
        pipe.cmd("PTTL").arg(key);
        pipe.len() - 1
    });
    Ok(Placed {
        at,
        span,
        pttl,
        merged: false,
    })
}

/// Send the batch's plain reads as one `MGET` at the end of the pipeline
/// (one alone as its `GET`: the same reply, error replies included) and
/// point each at its place in the reply. A key of another type reads as
/// absent in an `MGET` where a `GET` answers WRONGTYPE.
pub(super) fn merge_gets(
    pipe: &mut Pipeline,
    gets: Vec<&str>,
    placed: &mut [Result<Placed, StoreError>],
) {
    let at = pipe.len();
    let inner = match &gets[..] {
        [] => return,
        [key] => {
            pipe.cmd("GET").arg(key);
            None
        }
        _ => {
            pipe.cmd("MGET").arg(&gets);
            Some(())
        }
    };
    for p in placed.iter_mut().flatten() {
        if let [(MERGED, Some(j))] = p.at[..] {
            p.at = vec![(at, inner.map(|()| j))];
            p.span = at..at + 1;
        }
    }
}

impl Placed {
    /// `job`'s answer out of the pipeline's replies; the first error reply
    /// among its commands fails the plan (its other commands may have run:
    /// plans that need all-or-nothing ask for atomicity).
    pub(super) fn take(
        self,
        replies: &mut [Value],
        job: &Job,
        sent: Instant,
    ) -> Result<Done, StoreError> {
        let span = replies
            .get(self.span.clone())
            .ok_or_else(|| StoreError::Internal("fewer replies than commands".into()))?;
        for v in span {
            if let Some(e) = reply_error(v) {
                return Err(e);
            }
            // A transaction's replies come as EXEC's one array; an MGET's
            // array is every merged read's, scanned by none of them.
            if let Value::Array(inner) = v
                && !self.merged
                && let Some(e) = inner.iter().find_map(reply_error)
            {
                return Err(e);
            }
        }
        let mut out = Vec::with_capacity(self.at.len());
        for &(i, inner) in &self.at {
            let v = match (inner, replies.get_mut(i)) {
                (None, Some(v)) => Some(std::mem::take(v)),
                (Some(j), Some(Value::Array(items))) => items.get_mut(j).map(std::mem::take),
                _ => None,
            };
            out.push(v.unwrap_or(Value::Nil));
        }
        let expires_at = match self.pttl.and_then(|i| replies.get(i)) {
            Some(Value::Int(ms)) if *ms >= 0 => Some(sent + Duration::from_millis(*ms as u64)),
            _ => None,
        };
        let body = match (job.reply, job.plan.respond) {
            (Reply::Published, _) => Some(plan::published_ids(job.plan, out)),
            (Reply::Respond, None) => None,
            (Reply::Respond, Some(i)) => {
                let i = i as usize;
                match (job.plan.actions.get(i), out.into_iter().nth(i)) {
                    (Some(action), Some(reply)) => plan::shape(action, reply),
                    _ => {
                        let m = format!("no reply for action {i} of the plan");
                        return Err(StoreError::Internal(m));
                    }
                }
            }
        };
        Ok(Done { body, expires_at })
    }
}

/// The only reply of a one-command pipeline, an error reply as an error.
pub(super) fn one(replies: Vec<Value>) -> Result<Value, StoreError> {
    let reply = replies.into_iter().next().unwrap_or(Value::Nil);
    reply_error(&reply).map_or(Ok(reply), Err)
}

/// A new pipeline for [`Store::query`]: error replies come back in place
/// (`ignore_errors`), so one failing command does not hide the others.
pub(super) fn pipeline() -> Pipeline {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    pipe
}

/// A pipeline of one `EVALSHA` of the registered script `name`, counted by
/// name in `sluice_script_calls_total`.
pub(super) fn script(
    scripts: &Scripts,
    name: &str,
    keys: &[String],
    args: &[String],
) -> Result<redis::Pipeline, StoreError> {
    let script = scripts
        .get(name)
        .ok_or_else(|| StoreError::Internal(format!("no registered script named {name:?}")))?;
    METRICS
        .script_calls
        .with_label_values(&[&script.name])
        .inc();
    let mut pipe = pipeline();
    pipe.add_command(scripts::evalsha(script, keys, args));
    Ok(pipe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::{StringGet, StringSet};
    use crate::store::error::error_reply;

    const TTL: TtlBounds = TtlBounds {
        default_ms: 60_000,
        min_ms: 1_000,
        max_ms: 120_000,
    };

    fn plan(actions: Vec<Action>, atomic: bool) -> Plan {
        Plan {
            actions,
            atomic,
            respond: Some(0),
            ttl_ms: None,
            cache: None,
        }
    }

    fn get(key: &str) -> Action {
        Action::Get(StringGet { key: key.into() })
    }

    fn set(key: &str) -> Action {
        Action::Set(StringSet {
            key: key.into(),
            value: vec![1],
            ttl_ms: None,
        })
    }

    #[test]
    fn plans_in_one_pipeline_each_get_their_own_replies() {
        let scripts = Scripts::load(None).unwrap();
        let (a, b) = (
            plan(vec![get("d:a")], false),
            Plan {
                respond: Some(1),
                ..plan(vec![set("d:b"), get("d:b")], true)
            },
        );
        let mut pipe = pipeline();
        let jobs = [
            Job {
                plan: &a,
                ttl: &TTL,
                track: true,
                record: None,
                replica: false,
                reply: Reply::Respond,
            },
            Job {
                plan: &b,
                ttl: &TTL,
                track: false,
                record: None,
                replica: false,
                reply: Reply::Respond,
            },
        ];
        let placed: Vec<Placed> = jobs
            .iter()
            .map(|j| place(&mut pipe, j, &scripts, &mut Vec::new(), true).unwrap())
            .collect();
        // CLIENT CACHING YES, GET, PTTL; MULTI, SET, GET, EXEC.
        let names: Vec<String> = pipe
            .cmd_iter()
            .map(|c| plan::render(c).split(' ').next().unwrap_or("").to_owned())
            .collect();
        assert_eq!(
            names,
            ["CLIENT", "GET", "PTTL", "MULTI", "SET", "GET", "EXEC"]
        );
        let mut replies = vec![
            Value::Okay,
            Value::BulkString(b"x".to_vec()),
            Value::Int(1500),
            Value::Okay,
            Value::SimpleString("QUEUED".into()),
            Value::SimpleString("QUEUED".into()),
            Value::Array(vec![Value::Okay, Value::BulkString(b"y".to_vec())]),
        ];
        let mut placed = placed.into_iter();
        let sent = Instant::now();
        // Each answer is the shaped reply of the action its plan responds
        // with (MessagePack values pass through as they are).
        let first = placed
            .next()
            .unwrap()
            .take(&mut replies, &jobs[0], sent)
            .unwrap();
        assert_eq!(first.body.as_deref(), Some(&b"x"[..]));
        assert_eq!(first.expires_at, Some(sent + Duration::from_millis(1500)));
        let second = placed
            .next()
            .unwrap()
            .take(&mut replies, &jobs[1], sent)
            .unwrap();
        assert_eq!(second.body.as_deref(), Some(&b"y"[..]));
        assert_eq!(second.expires_at, None);
    }

    fn untracked(p: &Plan) -> Job<'_> {
        Job {
            plan: p,
            ttl: &TTL,
            track: false,
            record: None,
            replica: false,
            reply: Reply::Respond,
        }
    }

    #[test]
    fn a_batch_of_plain_reads_becomes_one_mget() {
        let scripts = Scripts::load(None).unwrap();
        let plans = [plan(vec![get("d:a")], false), plan(vec![get("d:b")], false)];
        let (mut pipe, mut gets) = (pipeline(), Vec::new());
        let mut placed: Vec<_> = plans
            .iter()
            .map(|p| place(&mut pipe, &untracked(p), &scripts, &mut gets, true))
            .collect();
        merge_gets(&mut pipe, gets, &mut placed);
        let lines: Vec<String> = pipe.cmd_iter().map(plan::render).collect();
        assert_eq!(lines, ["MGET d:a d:b"]);
        let mut replies = vec![Value::Array(vec![
            Value::BulkString(b"x".to_vec()),
            Value::Nil,
        ])];
        let mut placed = placed.into_iter().map(Result::unwrap);
        let a = placed.next().unwrap();
        let a = a
            .take(&mut replies, &untracked(&plans[0]), Instant::now())
            .unwrap();
        assert_eq!(a.body.as_deref(), Some(&b"x"[..]));
        let b = placed.next().unwrap();
        assert_eq!(
            b.take(&mut replies, &untracked(&plans[1]), Instant::now())
                .unwrap()
                .body,
            None
        );
        // One alone stays a GET.
        let (mut pipe, mut gets) = (pipeline(), Vec::new());
        let mut one = vec![place(
            &mut pipe,
            &untracked(&plans[0]),
            &scripts,
            &mut gets,
            true,
        )];
        merge_gets(&mut pipe, gets, &mut one);
        let lines: Vec<String> = pipe.cmd_iter().map(plan::render).collect();
        assert_eq!(lines, ["GET d:a"]);
    }

    #[test]
    fn an_error_reply_fails_its_plan_only() {
        let scripts = Scripts::load(None).unwrap();
        // Two reads each: not merged.
        let a = plan(vec![get("d:a"), get("d:a2")], false);
        let b = plan(vec![get("d:b"), get("d:b2")], false);
        let (mut pipe, mut gets) = (pipeline(), Vec::new());
        let pa = place(&mut pipe, &untracked(&a), &scripts, &mut gets, true).unwrap();
        let pb = place(&mut pipe, &untracked(&b), &scripts, &mut gets, true).unwrap();
        assert!(gets.is_empty());
        let mut replies = vec![error_reply("WRONGTYPE"), Value::Nil, Value::Nil, Value::Nil];
        let (ja, jb) = (untracked(&a), untracked(&b));
        assert!(matches!(
            pa.take(&mut replies, &ja, Instant::now()),
            Err(StoreError::Command(_))
        ));
        assert_eq!(
            pb.take(&mut replies, &jb, Instant::now()).unwrap().body,
            None
        );
        // A missing reply is the gateway's own error, not a panic.
        let pc = place(&mut pipe, &ja, &scripts, &mut gets, true).unwrap();
        assert!(matches!(
            pc.take(&mut replies, &ja, Instant::now()),
            Err(StoreError::Internal(_))
        ));
    }
}
