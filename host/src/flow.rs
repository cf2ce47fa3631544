//! The request flow every data route shares: policy → plan → validation →
//! near cache or Redis → answer, for one call or a batch in one round trip.

use super::{Domain, Gateway};
use crate::access::{AccessTracker, Event};
use crate::error::{Conflict, Error};
use crate::near_cache::{Entry, Kept};
use crate::plugin::Planner;
use crate::plugin::bindings::{Operation, Plan, Request};
use crate::store::{Done, Job, Once, Seen, StoreError, plan};
use crate::telemetry::METRICS;
use bytes::Bytes;
use hyper::StatusCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One call into a domain: what the client asked for, before the policy.
pub struct Call {
    pub key: String,
    pub operation: Operation,
    pub value: Option<Vec<u8>>,
    pub fields: Vec<String>,
    pub ttl_s: Option<u64>,
    /// Written in the same transaction as the call's writes (an idempotency record).
    pub record: Option<redis::Cmd>,
}

impl Call {
    pub fn new(key: String, operation: Operation) -> Call {
        Call {
            key,
            operation,
            value: None,
            fields: Vec::new(),
            ttl_s: None,
            record: None,
        }
    }
}

/// What a call came to.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The body the plan pointed at (MessagePack), from Redis.
    Fresh(Bytes),
    /// The same, from the near cache (not changed since, as far as Redis told).
    Near(Arc<Entry>),
    /// Redis could not answer; this copy, read `age` ago, stands in.
    Stale { body: Bytes, age: Duration },
    /// A read that found nothing, or a write (no body).
    Nothing,
}

/// What an idempotent call came to.
#[derive(Debug)]
pub enum Outcome {
    /// Served now.
    Fresh(Answer),
    /// Served before with this key: the first response (status, MessagePack
    /// body or nothing).
    Replay { status: u16, body: Vec<u8> },
}

/// One call on its way: answered from the near cache, or planned for Redis.
/// (Steps live for one request; boxing the large variant would only add an
/// allocation per call.)
#[allow(clippy::large_enum_variant)]
enum Step {
    Near(Arc<Entry>),
    Redis {
        call: Call,
        plan: Plan,
        kept: Option<Kept>,
    },
}

/// `sluice_l1_total{result="hit"}`, looked up once: hot reads count it.
static L1_HIT: std::sync::LazyLock<prometheus::IntCounter> =
    std::sync::LazyLock::new(|| METRICS.l1.with_label_values(&["hit"]));

/// How long a read waits for another read of the same key to fill the near
/// cache before it asks Redis itself.
const TURN_WAIT: Duration = Duration::from_millis(100);

impl Gateway {
    /// Serve one call. A read a fresh near-cache copy answers takes no turn
    /// and no timer; concurrent reads of one key that must go to Redis in a
    /// near-cached domain take turns (single flight), awaited only briefly:
    /// when Redis is slow, waiting in line would add a timeout per reader.
    pub async fn call(&self, domain: &Domain, call: Call) -> Result<Answer, Error> {
        let single_flight = call.operation == Operation::Get && !domain.near.fresh_for.is_zero();
        // A hot read: a fresh copy of what the policy read last time for
        // this key answers before the policy runs.
        if single_flight
            && let Some(copy) = (domain.routes.as_ref())
                .and_then(|r| r.get(&call.key))
                .and_then(|key| self.near.fresh_at(&key, &call.fields))
        {
            L1_HIT.inc();
            return Ok(if copy.absent {
                Answer::Nothing
            } else {
                Answer::Near(copy)
            });
        }
        let step = self.step(domain, &mut domain.plugin.planner(), call, now_ms())?;
        // Held until this read's answer is kept (or it gave up waiting).
        let mut _turn = None;
        let step = match step {
            Step::Redis { call, plan, kept } if single_flight => {
                let turn = self.near.turn(&domain.name, &call.key);
                _turn = tokio::time::timeout(TURN_WAIT, turn).await.ok();
                // The reader ahead in line may have filled the cache meanwhile.
                let filled = kept.as_ref().and_then(|k| self.near.fresh(k, &call.fields));
                match filled {
                    Some(copy) => {
                        L1_HIT.inc();
                        Step::Near(copy)
                    }
                    None => Step::Redis { call, plan, kept },
                }
            }
            step => step,
        };
        let mut answers = self.finish(domain, vec![Ok(step)]).await;
        answers.pop().unwrap_or(Ok(Answer::Nothing))
    }

    /// Serve a write at most once per idempotency key: claim the key (a
    /// duplicate in flight is a 409, one done is replayed), then write and
    /// record together. `known` is the response when it is known before
    /// the write (a PUT's 204); otherwise the caller records it with
    /// [`Gateway::record_response`] once built.
    pub async fn call_once(
        &self,
        domain: &Domain,
        mut call: Call,
        once: &Once,
        known: Option<(StatusCode, &[u8])>,
    ) -> Result<Outcome, Error> {
        match self.store.claim(once, now_ms()).await? {
            Seen::Claimed => {}
            Seen::Done { status, body } => return Ok(Outcome::Replay { status, body }),
            Seen::InFlight => return Err(Error::Idempotency(Conflict::InFlight)),
            Seen::Applied => return Err(Error::Idempotency(Conflict::Unrecorded)),
            Seen::Reused => return Err(Error::Idempotency(Conflict::Reused)),
        }
        call.record = Some(match known {
            Some((status, body)) => once.done(status.as_u16(), body),
            None => once.applied(now_ms()),
        });
        let result = self.call(domain, call).await;
        match &result {
            // Refused before Redis saw it: a retry may go ahead at once.
            Err(Error::Store(StoreError::CircuitOpen { .. } | StoreError::Busy(_)))
            | Err(Error::BadRequest(_) | Error::Plugin(_)) => self.store.release(once).await,
            // The transaction ran, one of its commands refused: that is
            // what a retry is answered, not a second attempt.
            Err(e @ Error::Store(StoreError::Command(_))) => {
                self.record_response(once, once.done(e.status().as_u16(), b""))
                    .await;
            }
            // A timeout or a lost connection may have landed: the claim
            // expires (`claim_for`), a record written with it stays.
            _ => {}
        }
        result.map(Outcome::Fresh)
    }

    /// The first key the policy would touch for `call`: a dry plan, nothing
    /// sent (on a cluster an idempotency record must share its slot).
    pub fn first_key(&self, domain: &Domain, call: &Call) -> Result<Option<String>, Error> {
        let mut dry = Call {
            key: call.key.clone(),
            operation: call.operation,
            value: call.value.clone(),
            fields: call.fields.clone(),
            ttl_s: call.ttl_s,
            record: None,
        };
        let plan = self.plan(domain, &mut domain.plugin.planner(), &mut dry, now_ms())?;
        Ok(plan::first_key(&plan).map(str::to_owned))
    }

    /// Record a claimed request's response once it is built.
    pub async fn record_response(&self, once: &Once, record: redis::Cmd) {
        if let Err(e) = self.store.record(once, record).await {
            tracing::warn!(error = %e, "an idempotent request's response was not recorded; a retry gets 409");
        }
    }

    /// Serve calls into one domain: each asks the policy; reads the near
    /// cache can answer are answered; every other plan goes to Redis in one
    /// pipeline, and each call gets its own answer or error.
    pub async fn call_many(&self, domain: &Domain, calls: Vec<Call>) -> Vec<Result<Answer, Error>> {
        let now = now_ms();
        let mut planner = domain.plugin.planner();
        let steps: Vec<Result<Step, Error>> = calls
            .into_iter()
            .map(|call| self.step(domain, &mut planner, call, now))
            .collect();
        drop(planner);
        self.finish(domain, steps).await
    }

    /// Send the steps that need Redis in one pipeline; answer each step.
    async fn finish(
        &self,
        domain: &Domain,
        steps: Vec<Result<Step, Error>>,
    ) -> Vec<Result<Answer, Error>> {
        let jobs: Vec<Job> = steps
            .iter()
            .filter_map(|s| match s {
                Ok(Step::Redis { call, plan, kept }) => Some(Job {
                    plan,
                    ttl: &domain.ttl,
                    track: kept.is_some(),
                    record: call.record.as_ref(),
                    replica: domain.replica_reads,
                }),
                _ => None,
            })
            .collect();
        let mut done = self.store.run(&jobs).await.into_iter();
        steps
            .into_iter()
            .map(|step| match step? {
                Step::Near(copy) if copy.absent => Ok(Answer::Nothing),
                Step::Near(copy) => Ok(Answer::Near(copy)),
                Step::Redis { call, plan, kept } => {
                    let result = done
                        .next()
                        .unwrap_or(Err(StoreError::Command("no reply".into())));
                    self.answer(domain, &call, &plan, kept, result)
                }
            })
            .collect()
    }

    /// Plan one call, and answer it from the near cache if a copy is fresh.
    fn step(
        &self,
        domain: &Domain,
        planner: &mut Planner,
        mut call: Call,
        now_ms: u64,
    ) -> Result<Step, Error> {
        let plan = self.plan(domain, planner, &mut call, now_ms)?;
        let kept = (call.operation == Operation::Get)
            .then(|| self.near.consider(domain.near, &plan))
            .flatten();
        if let (Some(k), Some(routes)) = (&kept, &domain.routes) {
            routes.learn(&call.key, k);
        }
        if let Some(copy) = kept.as_ref().and_then(|k| self.near.fresh(k, &call.fields)) {
            L1_HIT.inc();
            return Ok(Step::Near(copy));
        }
        Ok(Step::Redis { call, plan, kept })
    }

    /// Ask the policy and check its plan.
    fn plan(
        &self,
        domain: &Domain,
        planner: &mut Planner,
        call: &mut Call,
        now_ms: u64,
    ) -> Result<Plan, Error> {
        let keyless = call.operation == Operation::Publish;
        let max = self.max_key_bytes();
        if (call.key.is_empty() && !keyless) || call.key.len() > max {
            return Err(Error::BadRequest(format!(
                "keys are 1 to {max} bytes; this one has {}",
                call.key.len()
            )));
        }
        let most = self.plan_limits.max_items;
        if call.fields.len() > most {
            return Err(Error::BadRequest(format!(
                "{} fields asked for; at most {most}",
                call.fields.len()
            )));
        }
        let stats = if domain.track_access && !keyless {
            self.access.stats(&domain.name, &call.key, now_ms)
        } else {
            AccessTracker::unknown()
        };
        let req = Request {
            ttl_ms: call.ttl_s.map(|s| domain.ttl_override(s)).transpose()?,
            key: std::mem::take(&mut call.key),
            operation: call.operation,
            value: call.value.take(),
            fields: std::mem::take(&mut call.fields),
            now_ms,
            entropy: self.entropy(),
            stats,
        };
        let plan = planner.plan(&req);
        // The key and fields go on with the call (near cache, statistics).
        (call.key, call.fields) = (req.key, req.fields);
        let plan = plan?;
        let checked = plan::validate(
            &plan,
            &domain.namespaces,
            self.store.scripts(),
            &self.plan_limits,
        );
        if let Err(m) = checked {
            // An object with more fields than a plan may write is the
            // client's mistake, not the plugin's.
            if let Some(n) = req.value.as_deref().and_then(map_len).filter(|n| *n > most) {
                return Err(Error::BadRequest(format!(
                    "the object has {n} fields; at most {most}"
                )));
            }
            return Err(domain.plugin.invalid_plan(m).into());
        }
        Ok(plan)
    }

    /// Turn a plan's replies into the call's answer; keep or drop near
    /// copies; fall back to a kept copy when Redis could not answer a read.
    fn answer(
        &self,
        domain: &Domain,
        call: &Call,
        plan: &Plan,
        kept: Option<Kept>,
        result: Result<Done, StoreError>,
    ) -> Result<Answer, Error> {
        let done = match result {
            Ok(done) => done,
            Err(e) if e.is_unavailable() && kept.is_some() => {
                let stale = kept.as_ref().and_then(|k| self.near.stale(k, &call.fields));
                let Some((body, age)) = stale else {
                    METRICS.l1.with_label_values(&["miss"]).inc();
                    return Err(e.into());
                };
                METRICS.l1.with_label_values(&["stale"]).inc();
                return Ok(Answer::Stale { body, age });
            }
            Err(e) => return Err(e.into()),
        };
        // This gateway changed them: no copy of them may outlive the change.
        plan::written_keys(plan).for_each(|k| self.near.forget(k));
        if call.operation == Operation::Publish {
            return Ok(Answer::Fresh(
                plan::published_ids(plan, done.replies).into(),
            ));
        }
        let Some(i) = plan.respond.map(|i| i as usize) else {
            if call.operation != Operation::Get {
                self.record(domain, call, false);
            }
            return Ok(Answer::Nothing);
        };
        let (Some(action), Some(reply)) = (plan.actions.get(i), done.replies.into_iter().nth(i))
        else {
            let m = format!("responds with action {i}, which has no reply");
            return Err(domain.plugin.invalid_plan(m).into());
        };
        let body = plan::shape(action, reply).map(Bytes::from);
        self.record(domain, call, body.is_some());
        // A kept read keeps what it found, or that it found nothing.
        if let Some(kept) = kept {
            self.near
                .keep(kept, &call.fields, body.clone(), done.expires_in);
        }
        Ok(body.map_or(Answer::Nothing, Answer::Fresh))
    }

    /// Access statistics for adaptive policies: reads (hit or miss) and writes.
    fn record(&self, domain: &Domain, call: &Call, found: bool) {
        let event = match call.operation {
            _ if !domain.track_access => return,
            Operation::Get if found => Event::Hit,
            Operation::Get => Event::Miss,
            Operation::Put => Event::Write,
            Operation::Delete | Operation::Publish => return,
        };
        self.access.record(&domain.name, &call.key, event, now_ms());
    }
}

/// The number of entries of a MessagePack map (`None`: not a map).
fn map_len(value: &[u8]) -> Option<usize> {
    rmp::decode::read_map_len(&mut &value[..])
        .ok()
        .map(|n| n as usize)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
