//! Everything that talks to Redis, and the only place a Redis command is
//! built or sent: plans ([`plan`]: one file per action kind) and batches,
//! stream groups, the rate limiter, idempotency records, readiness and the
//! INFO poller all go through [`Store`].
//!
//! The store is a short facade over its parts, each in a file of its own:
//! - [`backend`] chooses, once, what Redis is: a single Redis ([`single`]:
//!   lanes out of one connection budget, [`pool`], and one breaker) or a
//!   Redis Cluster ([`cluster`]: the cluster client, replicas, a breaker per
//!   primary, the slot map);
//! - [`chain`] is the way every call goes: admission by its breaker
//!   ([`breaker`]), the command deadline, NOSCRIPT recovery ([`scripts`]);
//! - [`pipeline`] places plans in pipelines and takes their replies back;
//!   [`watch`] runs a read-then-write's two rounds on one connection;
//! - [`error`] says what went wrong and whose fault it was;
//! - [`connect`] makes clients from `[redis]`; [`tracking`] carries what
//!   Redis says changed to the near cache; [`reply`] turns replies into
//!   MessagePack; [`acl`] and [`info`] are the start-up check of the Redis
//!   user's rights and the INFO poller.

pub mod acl;
mod backend;
pub mod breaker;
mod chain;
pub mod cluster;
pub mod connect;
mod error;
mod idempotency;
pub mod info;
pub mod pipeline;
pub mod plan;
pub mod pool;
mod ratelimit;
pub mod reply;
pub mod scripts;
mod single;
mod streams;
pub mod tracking;
mod watch;

pub use error::StoreError;
pub use idempotency::{NoSlot, Record, Seen};
pub use pipeline::{Done, Gather, Job, Reply};
pub use ratelimit::Bucket;
pub use streams::Group;
pub use watch::{Answers, Watch};

use crate::config::{BreakerConfig, RedisConfig};
use crate::plugin::bindings::Plan;
use crate::telemetry::METRICS;
use backend::{Backend, Batch};
use pipeline::{Placed, merge_gets, one, place};
use plan::PlanLimits;
use redis::{Pipeline, Value};
use scripts::Scripts;
use std::sync::Arc;
use std::time::Duration;

/// The gateway's one way to Redis.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
    scripts: Arc<Scripts>,
    /// Raised at shutdown: ends blocking reads.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// How long any call may take (`redis.command_timeout_ms`).
    deadline: Duration,
    /// What one plan may ask for (on a cluster: its keys in one slot).
    limits: PlanLimits,
}

impl Store {
    /// Set up the backend `config` names. Connections are made lazily, so
    /// the gateway starts (and answers 503) while Redis is down; each new
    /// connection loads the registered scripts. `tracking` says where
    /// invalidations go and which prefixes are near-cached (on a cluster
    /// those are heard from the start on; see [`Store::hears`]).
    pub fn new(
        config: &RedisConfig,
        breaker: BreakerConfig,
        scripts: Arc<Scripts>,
        tracking: tracking::Tracking,
    ) -> Result<Store, connect::ClientError> {
        METRICS.pool_size.set(i64::from(config.pool_size));
        let backend = Backend::new(config, breaker, scripts.clone(), tracking)?;
        let limits = PlanLimits {
            one_slot: backend.one_slot(),
            ..PlanLimits::default()
        };
        Ok(Store {
            backend: Arc::new(backend),
            scripts,
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
            deadline: config.command_timeout(),
            limits,
        })
    }

    /// Start the background tasks: the breakers' (they probe Redis while
    /// open) and, on a cluster, the trackers of the near-cached prefixes.
    pub fn start(&self) {
        self.backend.start(self.deadline);
    }

    /// Whether this gateway hears every change to keys under `prefixes`
    /// (so a near-cache copy of them can be trusted): a single Redis tells
    /// each read's connection; a cluster's trackers hear only the prefixes
    /// near-cached when the gateway started.
    pub fn hears(&self, prefixes: &[String]) -> bool {
        self.backend.hears(prefixes)
    }

    /// What one plan may ask for.
    pub fn limits(&self) -> &PlanLimits {
        &self.limits
    }

    /// Check a plan before a byte of it reaches Redis (see [`plan::validate`]):
    /// a plugin is trusted to decide, not to be correct.
    pub fn check(&self, plan: &Plan, namespaces: &[String]) -> Result<(), String> {
        plan::validate(plan, namespaces, &self.scripts, &self.limits)
    }

    /// Check the first round of a read-then-write ([`plan::validate_read`]).
    pub fn check_read(&self, plan: &Plan, namespaces: &[String]) -> Result<(), String> {
        plan::validate_read(plan, namespaces, &self.scripts, &self.limits)
    }

    /// Check the plan that writes after `read` ([`plan::validate_after`]).
    pub fn check_after(
        &self,
        write: &Plan,
        read: &Plan,
        namespaces: &[String],
    ) -> Result<(), String> {
        plan::validate_after(write, read, namespaces, &self.scripts, &self.limits)
    }

    pub fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    pub fn set_breaker_config(&self, config: BreakerConfig) {
        self.backend.set_breaker_config(config);
    }

    /// The breaker's state, its last transitions (newest first) and, on a
    /// cluster, each primary's breaker.
    pub fn breaker_status(&self) -> breaker::Status {
        self.backend.status()
    }

    /// Whether one plan's keys must share a hash slot (on a cluster).
    fn one_slot(&self) -> bool {
        self.limits.one_slot
    }

    /// Run a pipeline for a call on `key` (`None`: one that names no key).
    /// Every command's reply comes back, error replies included, in order.
    async fn query(&self, pipe: &Pipeline, key: Option<&str>) -> Result<Vec<Value>, StoreError> {
        (self.backend)
            .call(pipe, key, false, &self.scripts, self.deadline)
            .await
    }

    /// Run a command that holds its connection (a blocking stream read) on a
    /// connection of its own from the same budget, allowing it `holds_for`
    /// beyond the command timeout. Never a half-open trial.
    async fn query_exclusive(
        &self,
        pipe: &Pipeline,
        key: &str,
        holds_for: Duration,
    ) -> Result<Vec<Value>, StoreError> {
        let mut closing = self.closing.subscribe();
        if *closing.borrow() {
            return Ok(vec![Value::Nil]);
        }
        tokio::select! {
            result = self.backend.hold(pipe, key, self.deadline, holds_for) => result,
            // Shutting down: the read ends now, as if it timed out empty
            // (the connection it held is discarded, its command unfinished).
            _ = closing.wait_for(|c| *c) => Ok(vec![Value::Nil]),
        }
    }

    /// Shutting down: blocking reads in flight end at once with nothing, and
    /// new ones do not block.
    pub fn close_blocking(&self) {
        let _ = self.closing.send(true);
    }

    /// `EVALSHA` of a registered script as its own round trip; the reply or
    /// the error Redis gave.
    async fn eval(
        &self,
        name: &str,
        keys: &[String],
        args: &[String],
    ) -> Result<Value, StoreError> {
        let pipe = pipeline::script(&self.scripts, name, keys, args)?;
        one(self.query(&pipe, keys.first().map(String::as_str)).await?)
    }

    /// Ready when Redis runs a script; on a cluster, when every primary
    /// serving slots is healthy and answers.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.backend.ready(&self.scripts, self.deadline).await
    }

    /// `INFO memory stats clients` of the one Redis (node `""`), or of every
    /// primary of a cluster (by address).
    pub async fn info(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.backend.info(&self.scripts, self.deadline).await
    }

    /// Connections open, and of those idle (not held by a lane or a caller).
    pub fn pool_state(&self) -> (u32, u32) {
        self.backend.pool_state()
    }

    /// Run plans — one call's or a whole batch's — in as few pipelines as
    /// the backend allows (one on a single Redis, one per hash slot on a
    /// cluster, sent at once). Each job gets its own replies (one per
    /// action) or error; a job whose commands cannot be built fails alone.
    /// A `track`ed job's read is tracked by Redis (client tracking: this
    /// gateway hears when the key changes) and reports the key's remaining life.
    pub async fn run(&self, jobs: &[Job<'_>]) -> Vec<Result<Done, StoreError>> {
        // On a cluster a plan whose keys span slots runs as one plan per slot.
        let parts: Vec<Option<Vec<Plan>>> = match self.limits.one_slot {
            false => Vec::new(),
            true => jobs.iter().map(|j| self.backend.parts(j)).collect(),
        };
        if parts.iter().all(Option::is_none) {
            return self.run_jobs(jobs).await;
        }
        let (mut cut, mut whose) = (Vec::new(), Vec::new());
        for (i, (job, plans)) in jobs.iter().zip(&parts).enumerate() {
            match plans {
                None => cut.push(*job),
                Some(plans) => cut.extend(plans.iter().map(|plan| Job { plan, ..*job })),
            }
            whose.resize(cut.len(), i);
        }
        let mut done: Vec<Vec<Result<Done, StoreError>>> =
            jobs.iter().map(|_| Vec::new()).collect();
        for (i, result) in whose.into_iter().zip(self.run_jobs(&cut).await) {
            done[i].push(result);
        }
        (done.into_iter().zip(jobs))
            .map(|(mut results, job)| match results.len() {
                1 => results
                    .pop()
                    .unwrap_or_else(|| Err(StoreError::Internal("no part".into()))),
                _ => cluster::cut::join(results, job.reply),
            })
            .collect()
    }

    /// [`Store::run`] for jobs that each run as they are.
    async fn run_jobs(&self, jobs: &[Job<'_>]) -> Vec<Result<Done, StoreError>> {
        // A single Redis takes every job in one pipeline: nothing to split.
        let Some(batches) = self.backend.batches(jobs) else {
            return self.run_batch(jobs, &Batch::default()).await;
        };
        if let [batch] = &batches[..] {
            return self.run_batch(jobs, batch).await;
        }
        let rounds = batches.iter().map(|b| {
            let members: Vec<Job> = b.members.iter().map(|&i| jobs[i]).collect();
            async move { self.run_batch(&members, b).await }
        });
        let mut out: Vec<Option<Result<Done, StoreError>>> = jobs.iter().map(|_| None).collect();
        for (batch, results) in batches
            .iter()
            .zip(futures_util::future::join_all(rounds).await)
        {
            for (&i, result) in batch.members.iter().zip(results) {
                out[i] = Some(result);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::Internal("a job of no batch".into()))))
            .collect()
    }

    /// One pipeline of `jobs` (the members of `batch`).
    async fn run_batch(
        &self,
        jobs: &[Job<'_>],
        batch: &Batch<'_>,
    ) -> Vec<Result<Done, StoreError>> {
        let mut pipe = pipeline::pipeline();
        let mut gets = Vec::new();
        let optin = self.backend.opts_in();
        let mut placed: Vec<Result<Placed, StoreError>> = jobs
            .iter()
            .map(|job| place(&mut pipe, job, &self.scripts, &mut gets, optin))
            .collect();
        merge_gets(&mut pipe, gets, &mut placed);
        let sent = std::time::Instant::now();
        let mut replies = match pipe.is_empty() {
            true => Ok(Vec::new()),
            false => {
                (self.backend)
                    .call(
                        &pipe,
                        batch.key,
                        batch.replicas,
                        &self.scripts,
                        self.deadline,
                    )
                    .await
            }
        };
        placed
            .into_iter()
            .zip(jobs)
            .map(|(placed, job)| {
                let placed = placed?;
                let replies = replies.as_mut().map_err(|e| e.clone())?;
                placed.take(replies, job, sent)
            })
            .collect()
    }
}
