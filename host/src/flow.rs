//! The request flow every data route shares: a client's [`Call`] → the
//! domain's policy → a plan the store checks → the near cache, or the store
//! (which runs the plan and shapes its answer) → an [`Answer`]. One call or
//! a batch in one round trip; a write at most once per `Idempotency-Key`.

use crate::access::{AccessTracker, Event};
use crate::error::{Conflict, Error};
use crate::generation::{Domain, Gateway};
use crate::near_cache::{Entry, Kept};
use crate::plugin::bindings::{Decision, Operation, Plan, Request};
use crate::plugin::{Planner, PluginError};
use crate::store::{Done, Job, Record, Reply, Seen, StoreError};
use crate::telemetry::METRICS;
use bytes::Bytes;
use hyper::StatusCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a client asks of a domain.
#[derive(Debug)]
pub enum Call {
    /// Read `key`; `fields` of a hash-stored object (none: all of it).
    Get {
        key: String,
        fields: Vec<String>,
    },
    /// Store a value (MessagePack), for `ttl_s` when the client asks.
    Put {
        key: String,
        value: Vec<u8>,
        ttl_s: Option<u64>,
    },
    Delete {
        key: String,
    },
    /// Publish an event (MessagePack): it has no key; the policy picks the
    /// stream(s).
    Publish {
        event: Vec<u8>,
    },
}

impl Call {
    /// A read of `key`, whole.
    pub fn get(key: String) -> Call {
        Call::Get {
            key,
            fields: Vec::new(),
        }
    }

    /// The client's key (a publish has none).
    pub fn key(&self) -> Option<&str> {
        match self {
            Call::Get { key, .. } | Call::Put { key, .. } | Call::Delete { key } => Some(key),
            Call::Publish { .. } => None,
        }
    }

    fn fields(&self) -> &[String] {
        match self {
            Call::Get { fields, .. } => fields,
            _ => &[],
        }
    }

    fn operation(&self) -> Operation {
        match self {
            Call::Get { .. } => Operation::Get,
            Call::Put { .. } => Operation::Put,
            Call::Delete { .. } => Operation::Delete,
            Call::Publish { .. } => Operation::Publish,
        }
    }

    /// The policy's request: the key, fields and value move into it (the
    /// value for good; [`Call::restore`] takes the key and fields back).
    fn lend(&mut self, ttl_ms: Option<u64>, now_ms: u64, entropy: u64, stats: Stats) -> Request {
        let operation = self.operation();
        let (key, fields, value) = match self {
            Call::Get { key, fields } => (take(key), take(fields), None),
            Call::Put { key, value, .. } => (take(key), Vec::new(), Some(take(value))),
            Call::Delete { key } => (take(key), Vec::new(), None),
            Call::Publish { event } => (String::new(), Vec::new(), Some(take(event))),
        };
        Request {
            key,
            operation,
            value,
            fields,
            ttl_ms,
            now_ms,
            entropy,
            stats,
        }
    }

    /// Take back the key and fields lent to the policy's request: they go
    /// on with the call (near cache, statistics). A request the policy is
    /// asked again (after a read) keeps them: they are copied back.
    fn restore(&mut self, req: &mut Request, again: bool) {
        match self {
            Call::Get { key, fields } if again => {
                (*key, *fields) = (req.key.clone(), req.fields.clone())
            }
            Call::Get { key, fields } => {
                (*key, *fields) = (take(&mut req.key), take(&mut req.fields))
            }
            Call::Put { key, .. } | Call::Delete { key } if again => *key = req.key.clone(),
            Call::Put { key, .. } | Call::Delete { key } => *key = take(&mut req.key),
            Call::Publish { .. } => {}
        }
    }

    fn reply(&self) -> Reply {
        match self {
            Call::Publish { .. } => Reply::Published,
            _ => Reply::Respond,
        }
    }
}

/// What the policy decided for a call, checked by the store.
enum Planned {
    /// Run this plan.
    Run(Plan),
    /// Run these reads, then ask the policy again with their answers and
    /// this request (see [`Gateway::two_rounds`]).
    Read { read: Plan, req: Request },
}

/// How many times a read-then-write runs both rounds when another writer
/// keeps changing what it read, before the client gets 409 `conflict`.
const WATCH_ATTEMPTS: u32 = 4;

type Stats = crate::plugin::bindings::AccessStats;

fn take<T: Default>(v: &mut T) -> T {
    std::mem::take(v)
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
    /// Served now; unless `recorded` with the write, `record` takes the
    /// response once it is known ([`Gateway::answered`]).
    Fresh {
        answer: Answer,
        record: Record,
        recorded: bool,
    },
    /// Served before with this key: the first response (status, MessagePack
    /// body or nothing).
    Replay { status: u16, body: Vec<u8> },
}

/// A client's `Idempotency-Key`, whose it is and the fingerprint of its
/// request.
pub struct Idempotent {
    pub key: String,
    /// The configured client that sent it, `-` when the API is open.
    pub client: String,
    pub fingerprint: String,
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
        /// Written in the same transaction as the plan (an idempotency record).
        record: Option<redis::Cmd>,
    },
    /// A read-then-write: two rounds on a connection of its own.
    Rounds {
        call: Call,
        read: Plan,
        req: Request,
        record: Option<redis::Cmd>,
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
        let single_flight = matches!(call, Call::Get { .. }) && !domain.near.fresh_for.is_zero();
        // A hot read: a fresh copy of what the policy read last time for
        // this key answers before the policy runs.
        if single_flight
            && let Some(copy) = (domain.routes.as_ref())
                .and_then(|r| r.get(call.key().unwrap_or_default()))
                .and_then(|key| self.near().fresh_at(&key, call.fields()))
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
            Step::Redis {
                call,
                plan,
                kept,
                record,
            } if single_flight => {
                let turn = self
                    .near()
                    .turn(&domain.name, call.key().unwrap_or_default());
                _turn = tokio::time::timeout(TURN_WAIT, turn).await.ok();
                // The reader ahead in line may have filled the cache meanwhile.
                let filled = (kept.as_ref()).and_then(|k| self.near().fresh(k, call.fields()));
                match filled {
                    Some(copy) => {
                        L1_HIT.inc();
                        Step::Near(copy)
                    }
                    None => Step::Redis {
                        call,
                        plan,
                        kept,
                        record,
                    },
                }
            }
            step => step,
        };
        // Boxed: what goes to Redis is a future of kilobytes, and every
        // future that holds it inline is that large too, moved (copied) by
        // each spawn, an HTTP/2 stream's included; a hot read never builds
        // it, and a round trip dwarfs one allocation.
        Box::pin(self.finish_one(domain, step)).await
    }

    /// Serve a write at most once per idempotency key: plan it, claim the
    /// key in the write's place (a duplicate in flight is a 409, one done
    /// is replayed), then write and record together. `known` is the
    /// response when it is known before the write (a PUT's 204) and the
    /// plan gives no answer of its own; otherwise the caller records it
    /// with [`Gateway::answered`] once built.
    pub async fn call_once(
        &self,
        domain: &Domain,
        mut call: Call,
        once: Idempotent,
        known: Option<(StatusCode, &[u8])>,
    ) -> Result<Outcome, Error> {
        let now = now_ms();
        let planned = self.plan(domain, &mut domain.plugin.planner(), &mut call, now)?;
        // The record shares a slot with what the plan touches first.
        let first = match &planned {
            Planned::Run(plan) | Planned::Read { read: plan, .. } => plan,
        };
        let lasts = (self.idempotency_window(), &domain.ttl);
        let (key, client) = (&once.key, &once.client);
        let record = (self.store())
            .record_for(&domain.name, client, key, once.fingerprint, first, lasts)
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        match self.store().claim(&record, now).await? {
            Seen::Claimed => {}
            Seen::Done { status, body } => return Ok(Outcome::Replay { status, body }),
            Seen::InFlight => return Err(Error::Idempotency(Conflict::InFlight)),
            Seen::Applied => return Err(Error::Idempotency(Conflict::Unrecorded)),
            Seen::Reused => return Err(Error::Idempotency(Conflict::Reused)),
        }
        let known = known.filter(|_| matches!(&planned, Planned::Run(p) if p.respond.is_none()));
        let recorded = known.is_some();
        let written = match known {
            Some((status, body)) => record.done(status.as_u16(), body),
            None => record.applied(now),
        };
        let step = match planned {
            Planned::Run(plan) => Step::Redis {
                call,
                plan,
                kept: None,
                record: Some(written),
            },
            Planned::Read { read, req } => Step::Rounds {
                call,
                read,
                req,
                record: Some(written),
            },
        };
        let result = self.finish_one(domain, step).await;
        match &result {
            // Refused before anything was written: a retry may go ahead at once.
            Err(Error::Store(
                StoreError::CircuitOpen { .. } | StoreError::Busy(_) | StoreError::Contended(_),
            )) => self.store().release(&record).await,
            // The transaction ran, one of its commands refused: that is
            // what a retry is answered, not a second attempt.
            Err(e @ Error::Store(StoreError::Command(_))) => {
                self.answered(&record, e.status(), b"").await;
            }
            // A timeout or a lost connection may have landed: the claim
            // expires (`claim_for`), a record written with it stays.
            _ => {}
        }
        result.map(|answer| Outcome::Fresh {
            answer,
            record,
            recorded,
        })
    }

    /// Record a claimed request's response once it is built.
    pub async fn answered(&self, record: &Record, status: StatusCode, body: &[u8]) {
        if let Err(e) = self.store().answered(record, status.as_u16(), body).await {
            tracing::warn!(error = %e, "an idempotent request's response was not recorded; a retry gets 409");
        }
    }

    /// Serve calls into one domain: the policy decides for all of them in
    /// one call; reads the near cache can answer are answered; every other
    /// plan goes to Redis in one pipeline, and each call gets its own
    /// answer or error.
    pub async fn call_many(&self, domain: &Domain, calls: Vec<Call>) -> Vec<Result<Answer, Error>> {
        let now = now_ms();
        let (mut lent, mut reqs) = (Vec::with_capacity(calls.len()), Vec::new());
        for mut call in calls {
            let refused = match self.lend(domain, &mut call, now) {
                Ok(req) => {
                    reqs.push(req);
                    None
                }
                Err(e) => Some(e),
            };
            lent.push((call, refused));
        }
        let decisions = domain.plugin.planner().plan_batch(&reqs);
        let mut decided = reqs.into_iter().zip(decisions);
        let steps: Vec<Result<Step, Error>> = lent
            .into_iter()
            .map(|(mut call, refused)| {
                if let Some(e) = refused {
                    return Err(e);
                }
                let Some((req, decision)) = decided.next() else {
                    let e = StoreError::Internal("a call without a decision".into());
                    return Err(e.into());
                };
                let planned = self.conclude(domain, &mut call, req, decision);
                self.stepped(domain, call, planned)
            })
            .collect();
        self.finish(domain, steps).await
    }

    /// [`Gateway::finish`] of one step.
    async fn finish_one(&self, domain: &Domain, step: Step) -> Result<Answer, Error> {
        (self.finish(domain, vec![Ok(step)]).await.pop())
            .unwrap_or_else(|| Err(StoreError::Internal("a call without an answer".into()).into()))
    }

    /// Send the steps that need Redis in one pipeline, and the
    /// read-then-writes each on its own connection, at once; answer each step.
    async fn finish(
        &self,
        domain: &Domain,
        steps: Vec<Result<Step, Error>>,
    ) -> Vec<Result<Answer, Error>> {
        let jobs: Vec<Job> = steps
            .iter()
            .filter_map(|s| match s {
                Ok(Step::Redis {
                    call,
                    plan,
                    kept,
                    record,
                }) => Some(Job {
                    plan,
                    ttl: &domain.ttl,
                    track: kept.is_some(),
                    record: record.as_ref(),
                    replica: domain.replica_reads,
                    reply: call.reply(),
                }),
                _ => None,
            })
            .collect();
        let rounds = steps.iter().filter_map(|s| match s {
            Ok(Step::Rounds {
                call,
                read,
                req,
                record,
            }) => Some(self.two_rounds(domain, call, read, req, record.as_ref())),
            _ => None,
        });
        let (done, rounds) = futures_util::future::join(
            self.store().run(&jobs),
            futures_util::future::join_all(rounds),
        )
        .await;
        let (mut done, mut rounds) = (done.into_iter(), rounds.into_iter());
        steps
            .into_iter()
            .map(|step| match step? {
                Step::Near(copy) if copy.absent => Ok(Answer::Nothing),
                Step::Near(copy) => Ok(Answer::Near(copy)),
                Step::Redis {
                    call, plan, kept, ..
                } => {
                    let result = done.next().unwrap_or_else(|| {
                        Err(StoreError::Internal("a plan without a reply".into()))
                    });
                    self.answer(domain, &call, Some(&plan), kept, result)
                }
                Step::Rounds { call, .. } => match rounds.next() {
                    Some(Ok(done)) => self.answer(domain, &call, None, None, Ok(done)),
                    Some(Err(e)) => Err(e),
                    None => Err(StoreError::Internal("a read without a reply".into()).into()),
                },
            })
            .collect()
    }

    /// A read-then-write: the reads under `WATCH`, the policy's second
    /// decision, its writes as one transaction on the same connection; both
    /// rounds again when another writer changed a key read in between, up
    /// to [`WATCH_ATTEMPTS`] times. The response is the write plan's
    /// `respond`, or, when it has none, the read plan's.
    async fn two_rounds(
        &self,
        domain: &Domain,
        call: &Call,
        read: &Plan,
        req: &Request,
        record: Option<&redis::Cmd>,
    ) -> Result<Done, Error> {
        for _ in 0..WATCH_ATTEMPTS {
            let (watch, answers) = self.store().watch(read, &domain.ttl).await?;
            // A fresh planner each time: no instance is held across Redis.
            let mut write = domain.plugin.planner().after_read(req, &answers)?;
            if let Err(m) = self.store().check_after(&write, read, &domain.namespaces) {
                return Err(domain.plugin.invalid_plan(m).into());
            }
            let read_answer = (write.respond.is_none())
                .then(|| read.respond.and_then(|i| answers.get(i as usize).cloned()))
                .flatten()
                .flatten();
            if write.actions.is_empty() && record.is_none() {
                watch.release().await;
                return Ok(Done {
                    body: read_answer,
                    expires_at: None,
                });
            }
            write.atomic = true;
            let job = Job {
                plan: &write,
                ttl: &domain.ttl,
                track: false,
                record,
                replica: false,
                reply: call.reply(),
            };
            let committed = watch.commit(&job).await;
            self.near().forget_written(&write);
            match committed? {
                Some(done) => {
                    return Ok(Done {
                        body: done.body.or(read_answer),
                        expires_at: None,
                    });
                }
                None => METRICS.watch_conflicts.inc(),
            }
        }
        Err(StoreError::Contended(WATCH_ATTEMPTS).into())
    }

    /// Plan one call, and answer it from the near cache if a copy is fresh.
    fn step(
        &self,
        domain: &Domain,
        planner: &mut Planner,
        mut call: Call,
        now_ms: u64,
    ) -> Result<Step, Error> {
        let planned = self.plan(domain, planner, &mut call, now_ms);
        self.stepped(domain, call, planned)
    }

    /// What a call planned comes to: a near-cache copy, a plan for Redis,
    /// or a read-then-write.
    fn stepped(
        &self,
        domain: &Domain,
        call: Call,
        planned: Result<Planned, Error>,
    ) -> Result<Step, Error> {
        let plan = match planned? {
            Planned::Run(plan) => plan,
            Planned::Read { read, req } => {
                return Ok(Step::Rounds {
                    call,
                    read,
                    req,
                    record: None,
                });
            }
        };
        let kept = matches!(call, Call::Get { .. })
            .then(|| self.near().consider(domain.near, &plan))
            .flatten();
        if let (Some(k), Some(routes), Some(key)) = (&kept, &domain.routes, call.key()) {
            routes.learn(key, k);
        }
        if let Some(copy) = kept
            .as_ref()
            .and_then(|k| self.near().fresh(k, call.fields()))
        {
            L1_HIT.inc();
            return Ok(Step::Near(copy));
        }
        Ok(Step::Redis {
            call,
            plan,
            kept,
            record: None,
        })
    }

    /// Ask the policy, and have the store check what it decided.
    fn plan(
        &self,
        domain: &Domain,
        planner: &mut Planner,
        call: &mut Call,
        now_ms: u64,
    ) -> Result<Planned, Error> {
        let req = self.lend(domain, call, now_ms)?;
        let decision = planner.plan(&req);
        self.conclude(domain, call, req, decision)
    }

    /// The policy's request for a call, once the call is found sound.
    fn lend(&self, domain: &Domain, call: &mut Call, now_ms: u64) -> Result<Request, Error> {
        let max = self.max_key_bytes();
        if let Some(key) = call.key()
            && (key.is_empty() || key.len() > max)
        {
            return Err(Error::BadRequest(format!(
                "keys are 1 to {max} bytes; this one has {}",
                key.len()
            )));
        }
        let most = self.store().limits().max_items;
        if call.fields().len() > most {
            return Err(Error::BadRequest(format!(
                "{} fields asked for; at most {most}",
                call.fields().len()
            )));
        }
        let stats = match call.key() {
            Some(key) if domain.track_access => self.access().stats(&domain.name, key, now_ms),
            _ => AccessTracker::unknown(),
        };
        let ttl_ms = match call {
            Call::Put { ttl_s: Some(s), .. } => Some(domain.ttl_override(*s)?),
            _ => None,
        };
        Ok(call.lend(ttl_ms, now_ms, self.entropy(), stats))
    }

    /// What the policy decided, checked: the call gets back what it lent.
    fn conclude(
        &self,
        domain: &Domain,
        call: &mut Call,
        mut req: Request,
        decision: Result<Decision, PluginError>,
    ) -> Result<Planned, Error> {
        let read = matches!(decision, Ok(Decision::Read(_)));
        call.restore(&mut req, read);
        let plan = match decision? {
            Decision::Run(plan) => plan,
            Decision::Read(read) => {
                if let Err(m) = self.store().check_read(&read, &domain.namespaces) {
                    return Err(domain.plugin.invalid_plan(m).into());
                }
                return Ok(Planned::Read { read, req });
            }
        };
        if let Err(m) = self.store().check(&plan, &domain.namespaces) {
            // An object with more fields than a plan may write is the
            // client's mistake, not the plugin's.
            let most = self.store().limits().max_items;
            if let Some(n) = req.value.as_deref().and_then(map_len).filter(|n| *n > most) {
                return Err(Error::BadRequest(format!(
                    "the object has {n} fields; at most {most}"
                )));
            }
            return Err(domain.plugin.invalid_plan(m).into());
        }
        Ok(Planned::Run(plan))
    }

    /// Turn what the store made of a plan into the call's answer; keep or
    /// drop near copies (`plan`: what it wrote, when not forgotten yet);
    /// fall back to a kept copy when Redis could not answer a read.
    fn answer(
        &self,
        domain: &Domain,
        call: &Call,
        plan: Option<&Plan>,
        kept: Option<Kept>,
        result: Result<Done, StoreError>,
    ) -> Result<Answer, Error> {
        let done = match result {
            Ok(done) => done,
            Err(e) if e.is_unavailable() && kept.is_some() => {
                let stale = kept
                    .as_ref()
                    .and_then(|k| self.near().stale(k, call.fields()));
                let Some((body, age)) = stale else {
                    METRICS.l1.with_label_values(&["miss"]).inc();
                    return Err(e.into());
                };
                METRICS.l1.with_label_values(&["stale"]).inc();
                return Ok(Answer::Stale { body, age });
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(plan) = plan {
            self.near().forget_written(plan);
        }
        let body = done.body.map(Bytes::from);
        self.record(domain, call, body.is_some());
        // A kept read keeps what it found, or that it found nothing.
        if let Some(kept) = kept {
            (self.near()).keep(kept, call.fields(), body.clone(), done.expires_at);
        }
        Ok(body.map_or(Answer::Nothing, Answer::Fresh))
    }

    /// Access statistics for adaptive policies: reads (hit or miss) and writes.
    fn record(&self, domain: &Domain, call: &Call, found: bool) {
        if !domain.track_access {
            return;
        }
        let (key, event) = match call {
            Call::Get { key, .. } if found => (key, Event::Hit),
            Call::Get { key, .. } => (key, Event::Miss),
            Call::Put { key, .. } => (key, Event::Write),
            Call::Delete { .. } | Call::Publish { .. } => return,
        };
        self.access().record(&domain.name, key, event, now_ms());
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
