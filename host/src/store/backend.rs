//! What the store talks to, chosen once in `Store::new`: a single Redis
//! ([`Single`]) or a Redis Cluster ([`Cluster`]). Each answers the same
//! questions — which connection and which breaker serve a call, a
//! connection of its own for a key, how a batch splits into pipelines,
//! ready, INFO, its background tasks — and this is the one place that
//! asks which it is.

use super::breaker;
use super::chain;
use super::cluster::{Cluster, cut, topology};
use super::connect::ClientError;
use super::error::StoreError;
use super::pipeline::{Job, one, pipeline, script};
use super::pool::Exclusive;
use super::scripts::{self, Scripts};
use super::single::Single;
use super::tracking::Tracking;
use crate::config::{BreakerConfig, RedisConfig, Topology};
use crate::plugin::bindings::Plan;
use redis::{Pipeline, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub(super) enum Backend {
    Single(Single),
    /// Boxed: its two links are far larger than the lanes' handle.
    Cluster(Box<Cluster>),
}

/// Jobs of a batch that go in one pipeline.
#[derive(Default)]
pub(super) struct Batch<'a> {
    /// A key of theirs: picks the breaker (on a cluster, of their slot).
    pub key: Option<&'a str>,
    /// Their reads may go to replicas.
    pub replicas: bool,
    /// Their indexes in the batch, in order.
    pub members: Vec<usize>,
}

impl Backend {
    pub fn new(
        config: &RedisConfig,
        breaker: BreakerConfig,
        scripts: Arc<Scripts>,
        tracking: Tracking,
    ) -> Result<Backend, ClientError> {
        Ok(match config.topology {
            Topology::Cluster => {
                Backend::Cluster(Box::new(Cluster::new(config, breaker, scripts, tracking)?))
            }
            Topology::Single => {
                Backend::Single(Single::new(config, breaker, scripts, tracking.invalidate)?)
            }
        })
    }

    /// One call through the chain, on the connection and through the
    /// breaker that serve `key` (`None`: the call names no key), its reads
    /// on replicas when `replicas` and the backend has them.
    pub async fn call(
        &self,
        pipe: &Pipeline,
        key: Option<&str>,
        replicas: bool,
        scripts: &Scripts,
        deadline: Duration,
    ) -> Result<Vec<Value>, StoreError> {
        match self {
            Backend::Single(s) => chain::call(&s.gate(), s.lanes(), pipe, scripts, deadline).await,
            Backend::Cluster(c) => {
                chain::call(&c.gate(key), c.link(replicas), pipe, scripts, deadline).await
            }
        }
    }

    /// A call that holds a connection of its own for `key` up to
    /// `holds_for` (a blocking read).
    pub async fn hold(
        &self,
        pipe: &Pipeline,
        key: &str,
        deadline: Duration,
        holds_for: Duration,
    ) -> Result<Vec<Value>, StoreError> {
        match self {
            Backend::Single(s) => {
                chain::hold(&s.gate(), s.exclusive(false), pipe, deadline, holds_for).await
            }
            Backend::Cluster(c) => {
                let open = c.exclusive(key, false);
                let result = chain::hold(&c.gate(Some(key)), open, pipe, deadline, holds_for).await;
                if let Err(e) = &result
                    && e.is_unavailable()
                {
                    c.moved();
                }
                result
            }
        }
    }

    /// A connection of its own for `key`'s node, held across round trips
    /// (read-then-write), waited for within `deadline`.
    pub async fn session(
        &self,
        key: &str,
        deadline: Duration,
    ) -> Result<chain::Session<'_, Exclusive>, StoreError> {
        match self {
            Backend::Single(s) => chain::session(s.gate(), s.exclusive(true), deadline).await,
            Backend::Cluster(c) => {
                let result =
                    chain::session(c.gate(Some(key)), c.exclusive(key, true), deadline).await;
                if let Err(e) = &result
                    && e.is_unavailable()
                {
                    c.moved();
                }
                result
            }
        }
    }

    /// How a batch's jobs go to Redis: `None` for all in one pipeline (a
    /// single Redis, with nothing to work out per request); on a cluster,
    /// where a pipeline cannot span slots, one per hash slot (a plan's keys
    /// share one once `cluster::cut` is done) and per choice of replica reads.
    pub fn batches<'a>(&self, jobs: &[Job<'a>]) -> Option<Vec<Batch<'a>>> {
        match self {
            Backend::Single(_) => None,
            Backend::Cluster(_) => {
                // A map: a batch may span as many slots as it has keys.
                let mut by_slot: HashMap<(Option<u16>, bool), Batch<'a>> = HashMap::new();
                for (i, job) in jobs.iter().enumerate() {
                    let key = job.first_key();
                    let slot = key.map(|k| topology::slot(k.as_bytes()));
                    let batch = by_slot.entry((slot, job.replica)).or_insert(Batch {
                        key,
                        replicas: job.replica,
                        members: Vec::new(),
                    });
                    batch.members.push(i);
                }
                Some(by_slot.into_values().collect())
            }
        }
    }

    /// A job's plan cut into one plan per hash slot, when it must be: on a
    /// cluster, a plan that is not atomic (and writes no record) whose keys
    /// span slots (see `cluster::cut`). `None`: it runs as it is.
    pub fn parts(&self, job: &Job) -> Option<Vec<Plan>> {
        match self {
            Backend::Single(_) => None,
            Backend::Cluster(_) => job.record.is_none().then(|| cut::cut(job.plan)).flatten(),
        }
    }

    /// Whether a tracked read opts in (`CLIENT CACHING YES`) on the
    /// connection that reads it; a cluster's trackers hear every change
    /// of the tracked prefixes instead.
    pub fn opts_in(&self) -> bool {
        matches!(self, Backend::Single(_))
    }

    /// Whether every key of one plan must share a hash slot.
    pub fn one_slot(&self) -> bool {
        matches!(self, Backend::Cluster(_))
    }

    /// Ready when Redis runs a script (EVALSHA), not merely answers PING;
    /// on a cluster, when every primary does its part (see [`Cluster::ready`]).
    pub async fn ready(&self, scripts: &Scripts, deadline: Duration) -> Result<(), StoreError> {
        match self {
            Backend::Single(_) => {
                let pipe = script(scripts, scripts::READY, &[], &[])?;
                one(self.call(&pipe, None, false, scripts, deadline).await?).map(drop)
            }
            Backend::Cluster(c) => c.ready(deadline).await,
        }
    }

    /// `INFO memory stats clients` of the one Redis (node `""`), or of every
    /// primary of a cluster (by address).
    pub async fn info(
        &self,
        scripts: &Scripts,
        deadline: Duration,
    ) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Backend::Single(_) => {
                let mut pipe = pipeline();
                pipe.cmd("INFO").arg("memory").arg("stats").arg("clients");
                let text = super::reply::text(one(self
                    .call(&pipe, None, false, scripts, deadline)
                    .await?)?)?;
                Ok(vec![(String::new(), text)])
            }
            Backend::Cluster(c) => c.info(deadline).await,
        }
    }

    /// The background tasks: the breaker's (or every primary's), and on a
    /// cluster the trackers of the near-cached prefixes (a single Redis's
    /// lanes track each kept read themselves).
    pub fn start(&self, deadline: Duration) {
        match self {
            Backend::Single(s) => s.start(deadline),
            Backend::Cluster(c) => c.start(deadline),
        }
    }

    /// Whether every change to keys under `prefixes` is heard.
    pub fn hears(&self, prefixes: &[String]) -> bool {
        match self {
            Backend::Single(_) => true,
            Backend::Cluster(c) => c.hears(prefixes),
        }
    }

    pub fn status(&self) -> breaker::Status {
        match self {
            Backend::Single(s) => s.status(),
            Backend::Cluster(c) => c.status(),
        }
    }

    pub fn set_breaker_config(&self, config: BreakerConfig) {
        match self {
            Backend::Single(s) => s.set_breaker_config(config),
            Backend::Cluster(c) => c.set_breaker_config(config),
        }
    }

    pub fn pool_state(&self) -> (u32, u32) {
        match self {
            Backend::Single(s) => s.pool_state(),
            Backend::Cluster(c) => c.pool_state(),
        }
    }
}
