//! Everything that talks to Redis, and the only place a Redis command is
//! built: the one pool, the circuit breaker, the script cache, plans
//! ([`plan`]: one file per action kind), batches, stream groups, the rate
//! limiter, readiness and the INFO poller.
//!
//! Routes and the request flow never see a connection or a command: they
//! call [`Store`]'s methods, which own admission (breaker), timeouts,
//! NOSCRIPT recovery, error classification and round-trip metrics. With
//! `redis.cluster` the cluster client stands in for the lanes behind the
//! same methods (`pool::Link`), and batches go one pipeline per hash slot.

pub mod acl;
pub mod breaker;
pub mod connect;
mod idempotency;
pub mod info;
mod nodes;
pub mod plan;
pub mod pool;
mod ratelimit;
pub mod reply;
pub mod scripts;
mod streams;
pub mod topology;

pub use idempotency::{Once, Seen};
pub use ratelimit::Bucket;
pub use streams::Group;

use crate::config::{BreakerConfig, RedisConfig};
use crate::plugin::bindings::{Action, Plan};
use crate::telemetry::METRICS;
use breaker::Breaker;
use nodes::Nodes;
use plan::TtlBounds;
use pool::Pool;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use redis::{Pipeline, Value};
use scripts::Scripts;
use std::sync::Arc;
use std::time::Duration;

/// Why Redis did not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Down, refusing connections, or the connection broke: the client may retry.
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The breaker is open: the call failed fast without touching Redis.
    #[error("Redis is unavailable (circuit open); retry in {retry_after:?}")]
    CircuitOpen { retry_after: Duration },
    /// Redis answered with an error (e.g. WRONGTYPE): retrying will not help.
    #[error("Redis refused the command: {0}")]
    Command(String),
    /// Every connection this gateway may hold for blocking reads is taken: the
    /// gateway is busy, Redis is not at fault (the breaker does not count it).
    #[error("the gateway is busy: {0}")]
    Busy(String),
    /// A stream read or acknowledgement named a consumer group that does not exist.
    #[error(
        "no such consumer group on this stream; create it with POST /v1/streams/{{stream}}/groups/{{group}} ({0})"
    )]
    NoGroup(String),
}

impl StoreError {
    /// Whether this says Redis could not be reached (as opposed to refusing).
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, StoreError::Command(_) | StoreError::NoGroup(_))
    }

    /// How long a client should wait before retrying, for `Retry-After`.
    pub fn retry_after(&self) -> Duration {
        match self {
            StoreError::CircuitOpen { retry_after } => *retry_after,
            _ => Duration::from_secs(1),
        }
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if is_transport(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Command(e.to_string())
        }
    }
}

impl From<bb8::RunError<redis::RedisError>> for StoreError {
    fn from(e: bb8::RunError<redis::RedisError>) -> Self {
        match e {
            bb8::RunError::User(e) => StoreError::Unavailable(e.to_string()),
            bb8::RunError::TimedOut => {
                StoreError::Unavailable("no connection to Redis could be made in time".into())
            }
        }
    }
}

/// A failure of the connection itself, not an answer from Redis; on a
/// cluster also a node the client cannot reach or a slot without a
/// reachable primary (the client's own retries exhausted).
fn is_transport(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind as S};
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    S::TryAgain
                        | S::ClusterDown
                        | S::MasterDown
                        | S::Moved
                        | S::Ask
                        | S::BusyLoading
                )
        )
}

/// The gateway's one way to Redis.
#[derive(Clone)]
pub struct Store {
    pool: Arc<Pool>,
    /// Raised at shutdown: ends blocking reads.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// The breaker; on a cluster the gateway-wide state derived from
    /// `nodes`, deciding only calls that name no key.
    breaker: Arc<Breaker>,
    /// On a Redis Cluster: a breaker per primary, and the slot map.
    nodes: Option<Arc<Nodes>>,
    scripts: Arc<Scripts>,
    command_timeout: Duration,
    /// A Redis Cluster (`redis.cluster`): pipelines go one per hash slot.
    cluster: bool,
}

impl Store {
    /// Set up the pool. Connections are made lazily, so the gateway starts
    /// (and answers 503) while Redis is down; each new connection loads the
    /// registered scripts.
    pub fn new(
        config: &RedisConfig,
        breaker: BreakerConfig,
        scripts: Arc<Scripts>,
        on_invalidate: pool::Invalidator,
    ) -> Result<Store, connect::ClientError> {
        METRICS.pool_size.set(i64::from(config.pool_size));
        Ok(Store {
            pool: Arc::new(Pool::new(config, scripts.clone(), on_invalidate)?),
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
            nodes: config.cluster.then(|| Nodes::new(breaker.clone())),
            breaker: Breaker::new(breaker),
            scripts,
            command_timeout: config.command_timeout(),
            cluster: config.cluster,
        })
    }

    /// On a cluster, hear every primary's changes to keys under `prefixes`
    /// (for the near cache) from a background task.
    pub fn follow_changes(&self, prefixes: Vec<String>) {
        let Some(nodes) = self.nodes.clone() else {
            return;
        };
        tokio::spawn(
            self.pool
                .clone()
                .follow_changes(prefixes, move || nodes.primaries()),
        );
    }

    /// Start the breaker's task (it probes Redis while open); on a cluster
    /// the task that keeps a breaker per primary.
    pub fn spawn_breaker(&self) {
        let pool = self.pool.clone();
        let timeout = self.command_timeout;
        let Some(nodes) = &self.nodes else {
            tokio::spawn(self.breaker.clone().run(move || {
                let pool = pool.clone();
                async move { probe(&pool, timeout).await }
            }));
            return;
        };
        let read = {
            let pool = pool.clone();
            move || {
                let pool = pool.clone();
                async move {
                    tokio::time::timeout(timeout, pool.slot_map())
                        .await
                        .unwrap_or(Err(StoreError::Timeout(timeout)))
                }
            }
        };
        let probe = move |addr: String| {
            let pool = pool.clone();
            async move {
                tokio::time::timeout(timeout, pool.ping(&addr))
                    .await
                    .is_ok_and(|up| up)
            }
        };
        tokio::spawn(nodes.clone().run(self.breaker.clone(), read, probe));
    }

    pub fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    pub fn set_breaker_config(&self, config: BreakerConfig) {
        if let Some(nodes) = &self.nodes {
            nodes.set_config(config.clone());
        }
        self.breaker.set_config(config);
    }

    /// The breaker's state, its last transitions (newest first) and, on a
    /// cluster, each primary's breaker.
    pub fn breaker_status(&self) -> breaker::Status {
        breaker::Status {
            state: self.breaker.state(),
            transitions: self.breaker.transitions(),
            nodes: self.nodes.as_ref().map(|n| n.states()).unwrap_or_default(),
        }
    }

    /// Run a pipeline (one round trip; two when NOSCRIPT must be recovered)
    /// through the breaker and within the command timeout. Every command's
    /// reply comes back, error replies included, in order. `key`, one of
    /// the pipeline's keys, picks the breaker on a cluster.
    async fn query(&self, pipe: &Pipeline, key: Option<&str>) -> Result<Vec<Value>, StoreError> {
        let slot = key
            .filter(|_| self.cluster)
            .map(|k| topology::slot(k.as_bytes()));
        self.query_on(pipe, false, slot).await
    }

    /// The breaker that admits a call: on a cluster the one of the primary
    /// serving `slot`.
    fn gate(&self, slot: Option<u16>) -> Gate<'_> {
        match (&self.nodes, slot) {
            (None, _) => Gate::Whole(&self.breaker),
            (Some(nodes), Some(s)) => nodes
                .breaker(s)
                .map_or(Gate::Any(&self.breaker), Gate::Node),
            (Some(_), None) => Gate::Any(&self.breaker),
        }
    }

    /// [`Store::query`], its reads on replicas when `replicas` (on a
    /// cluster), through the breaker of `slot`'s primary.
    async fn query_on(
        &self,
        pipe: &Pipeline,
        replicas: bool,
        slot: Option<u16>,
    ) -> Result<Vec<Value>, StoreError> {
        let gate = self.gate(slot);
        let ticket = gate.admit(false)?;
        let result = tokio::time::timeout(self.command_timeout, self.round_trip(pipe, replicas))
            .await
            .unwrap_or(Err(StoreError::Timeout(self.command_timeout)));
        settle(ticket, &result);
        result
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
        let slot = self.cluster.then(|| topology::slot(key.as_bytes()));
        let gate = self.gate(slot);
        let ticket = gate.admit(true)?;
        tokio::select! {
            result = self.exclusive_round_trip(pipe, key, holds_for) => {
                settle(ticket, &result);
                result
            }
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

    async fn exclusive_round_trip(
        &self,
        pipe: &Pipeline,
        key: &str,
        holds_for: Duration,
    ) -> Result<Vec<Value>, StoreError> {
        let result = self.exclusive_once(pipe, key, holds_for).await;
        if let (Err(e), Some(nodes)) = (&result, &self.nodes)
            && e.is_unavailable()
        {
            nodes.moved();
        }
        result
    }

    async fn exclusive_once(
        &self,
        pipe: &Pipeline,
        key: &str,
        holds_for: Duration,
    ) -> Result<Vec<Value>, StoreError> {
        let node = match &self.nodes {
            Some(nodes) => Some(nodes.addr(topology::slot(key.as_bytes()))?),
            None => None,
        };
        let mut conn =
            tokio::time::timeout(self.command_timeout, self.pool.exclusive(node.as_deref()))
                .await
                .unwrap_or(Err(StoreError::Timeout(self.command_timeout)))?;
        METRICS.round_trips.inc();
        METRICS.pipeline_commands.observe(pipe.len() as f64);
        let limit = self.command_timeout + holds_for;
        let unfinished = conn.unfinished();
        let result = tokio::time::timeout(limit, pipe.query_async::<Vec<Value>>(conn.conn())).await;
        unfinished.finished();
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if is_transport(&e) {
                    conn.mark_broken();
                }
                Err(e.into())
            }
            // A reply may still come on this connection: nobody may reuse it.
            Err(_) => {
                conn.mark_broken();
                Err(StoreError::Timeout(limit))
            }
        }
    }

    async fn round_trip(&self, pipe: &Pipeline, replicas: bool) -> Result<Vec<Value>, StoreError> {
        let mut replies = self.send(pipe, replicas).await?;
        // NOSCRIPT: the scripts vanished (SCRIPT FLUSH, restart, failover).
        // Load them and re-run just the calls that failed, once.
        let failed: Vec<usize> = replies
            .iter()
            .enumerate()
            .filter(|(_, v)| is_noscript(v))
            .map(|(i, _)| i)
            .collect();
        if failed.is_empty() {
            return Ok(replies);
        }
        let cmds: Vec<&redis::Cmd> = pipe.cmd_iter().collect();
        let mut retry = self.scripts.load_all_pipeline();
        METRICS
            .script_loads
            .inc_by(self.scripts.all().count() as u64);
        for &i in &failed {
            if let Some(cmd) = cmds.get(i) {
                retry.add_command((*cmd).clone());
            }
        }
        let again = self.send(&retry, replicas).await?;
        METRICS.noscript_recoveries.inc_by(failed.len() as u64);
        for (i, v) in failed.into_iter().zip(again) {
            replies[i] = v;
        }
        Ok(replies)
    }

    async fn send(&self, pipe: &Pipeline, replicas: bool) -> Result<Vec<Value>, StoreError> {
        let shared = match replicas {
            true => self.pool.shared_replicas().await?,
            false => self.pool.shared().await?,
        };
        METRICS.round_trips.inc();
        METRICS.pipeline_commands.observe(pipe.len() as f64);
        let mut conn = shared.mux.clone();
        match pipe.query_async::<Vec<Value>>(&mut conn).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if is_transport(&e) {
                    shared.mark_broken();
                }
                Err(e.into())
            }
        }
    }

    /// `EVALSHA` of a registered script as its own round trip; the reply or
    /// the error Redis gave.
    async fn eval(
        &self,
        name: &str,
        keys: &[String],
        args: &[String],
    ) -> Result<Value, StoreError> {
        let script = self
            .scripts
            .get(name)
            .ok_or_else(|| StoreError::Command(format!("no registered script named {name:?}")))?;
        METRICS
            .script_calls
            .with_label_values(&[&script.name])
            .inc();
        let mut pipe = pipeline();
        pipe.add_command(scripts::evalsha(script, keys, args));
        one(self.query(&pipe, keys.first().map(String::as_str)).await?)
    }

    /// Ready when Redis runs a script (EVALSHA), not merely answers PING: a
    /// gateway whose scripts fail is not ready.
    ///
    /// On a Redis Cluster: the breakers know the slot map, and every
    /// primary serving slots (`CLUSTER NODES`) is not flagged failing and
    /// answers `PING` at its address.
    pub async fn ready(&self) -> Result<(), StoreError> {
        let Some(nodes) = &self.nodes else {
            return self.eval(scripts::READY, &[], &[]).await.map(drop);
        };
        if nodes.primaries().is_none() {
            return Err(StoreError::Unavailable(
                "the cluster's slot map is not read yet".into(),
            ));
        }
        let pool::Link::Cluster(mut conn) = self.pool.shared().await?.mux else {
            return Err(StoreError::Unavailable("no cluster connection".into()));
        };
        let check = async {
            let nodes: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query_async(&mut conn)
                .await?;
            let primaries = topology::primaries(&nodes);
            if primaries.is_empty() {
                return Err(StoreError::Unavailable(
                    "the cluster has no primary serving slots".into(),
                ));
            }
            for p in &primaries {
                if p.failing {
                    return Err(StoreError::Unavailable(format!(
                        "primary {} is failing in the cluster's eyes",
                        p.addr
                    )));
                }
                if !self.pool.ping(&p.addr).await {
                    return Err(StoreError::Unavailable(format!(
                        "primary {} does not answer PING",
                        p.addr
                    )));
                }
            }
            Ok(())
        };
        tokio::time::timeout(self.command_timeout, check)
            .await
            .unwrap_or(Err(StoreError::Timeout(self.command_timeout)))
    }

    /// `INFO memory stats clients` of the one Redis (node `""`), or of every
    /// primary of a cluster (by address).
    pub async fn info(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("memory").arg("stats").arg("clients");
        if !self.cluster {
            let mut pipe = pipeline();
            pipe.add_command(cmd);
            return match self.query(&pipe, None).await?.pop() {
                Some(v) => Ok(vec![(String::new(), reply::text(v)?)]),
                None => Err(StoreError::Command("no reply to INFO".into())),
            };
        }
        let pool::Link::Cluster(mut conn) = self.pool.shared().await?.mux else {
            return Err(StoreError::Unavailable("no cluster connection".into()));
        };
        let every_primary = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        let replies =
            tokio::time::timeout(self.command_timeout, conn.route_command(cmd, every_primary))
                .await
                .unwrap_or_else(|_| {
                    Err(redis::RedisError::from(std::io::Error::from(
                        std::io::ErrorKind::TimedOut,
                    )))
                })?;
        match replies {
            Value::Map(pairs) => pairs
                .into_iter()
                .map(|(node, v)| Ok((reply::text(node)?, reply::text(v)?)))
                .collect(),
            other => Ok(vec![(String::new(), reply::text(other)?)]),
        }
    }

    /// Connections open, and of those idle (not held by a lane or a caller).
    pub fn pool_state(&self) -> (u32, u32) {
        self.pool.state()
    }

    /// Run plans — one call's or a whole batch's — as one pipeline: one round
    /// trip whatever their number. Each job gets its own replies (one per
    /// action) or error; a job whose commands cannot be built fails alone.
    /// A `track`ed job's read is tracked by Redis (client tracking: this
    /// gateway hears when the key changes) and reports the key's remaining life.
    pub async fn run(&self, jobs: &[Job<'_>]) -> Vec<Result<Done, StoreError>> {
        if self.cluster {
            return self.run_by_slot(jobs).await;
        }
        self.run_one(jobs, false, None).await
    }

    /// On a Redis Cluster a pipeline cannot span slots: the jobs go in one
    /// pipeline per hash slot (a plan's keys share one, see
    /// [`plan::PlanLimits::one_slot`]), all sent at once, each to its slot's
    /// primary.
    async fn run_by_slot(&self, jobs: &[Job<'_>]) -> Vec<Result<Done, StoreError>> {
        // (slot, reads on replicas) → the jobs' indexes; a map, as a batch
        // may span as many slots as it has keys.
        let mut slots: std::collections::HashMap<(Option<u16>, bool), Vec<usize>> =
            std::collections::HashMap::new();
        for (i, job) in jobs.iter().enumerate() {
            let slot = plan::first_key(job.plan).map(|k| topology::slot(k.as_bytes()));
            slots.entry((slot, job.replica)).or_default().push(i);
        }
        let rounds = slots.iter().map(|((slot, replicas), members)| {
            let group: Vec<Job> = members.iter().map(|&i| jobs[i]).collect();
            async move { self.run_one(&group, *replicas, *slot).await }
        });
        let mut out: Vec<Option<Result<Done, StoreError>>> = jobs.iter().map(|_| None).collect();
        for ((_, members), results) in slots
            .iter()
            .zip(futures_util::future::join_all(rounds).await)
        {
            for (&i, result) in members.iter().zip(results) {
                out[i] = Some(result);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or(Err(StoreError::Command("no reply".into()))))
            .collect()
    }

    async fn run_one(
        &self,
        jobs: &[Job<'_>],
        replicas: bool,
        slot: Option<u16>,
    ) -> Vec<Result<Done, StoreError>> {
        let mut pipe = pipeline();
        let mut gets = Vec::new();
        let mut placed: Vec<Result<Placed, StoreError>> = jobs
            .iter()
            .map(|job| place(&mut pipe, job, &self.scripts, &mut gets, !self.cluster))
            .collect();
        merge_gets(&mut pipe, gets, &mut placed);
        let mut replies = if pipe.is_empty() {
            Ok(Vec::new())
        } else {
            self.query_on(&pipe, replicas, slot).await
        };
        placed
            .into_iter()
            .map(|placed| {
                let placed = placed?;
                let replies = replies.as_mut().map_err(|e| e.clone())?;
                placed.take(replies)
            })
            .collect()
    }
}

/// Which breaker admits a call.
enum Gate<'s> {
    /// The single Redis's.
    Whole(&'s Breaker),
    /// On a cluster, the primary's that serves the call's slot.
    Node(Arc<Breaker>),
    /// On a cluster, a call that names no key (or before the slot map is
    /// known): refused only while the gateway-wide state is open, and its
    /// outcome counts nowhere.
    Any(&'s Breaker),
}

impl Gate<'_> {
    /// Admit a call; `blocking`: one that holds its connection (never a
    /// half-open trial).
    fn admit(&self, blocking: bool) -> Result<breaker::Ticket<'_>, StoreError> {
        let admitted = match (self, blocking) {
            (Gate::Whole(b), false) => b.admit(),
            (Gate::Node(b), false) => b.admit(),
            (Gate::Whole(b), true) => b.admit_blocking(),
            (Gate::Node(b), true) => b.admit_blocking(),
            (Gate::Any(b), _) => b.admit_any(),
        };
        admitted.inspect_err(|_| METRICS.breaker_rejected.inc())
    }
}

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
}

/// What a plan came to.
#[derive(Debug)]
pub struct Done {
    /// One reply per action, in order.
    pub replies: Vec<Value>,
    /// For a tracked read: how long the key lives on in Redis (`None`: no
    /// expiry, or not tracked).
    pub expires_in: Option<Duration>,
}

/// Where a job's replies will be in the pipeline's replies.
struct Placed {
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
fn place<'a>(
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

/// The key of a `GET key` command.
/// Send the batch's plain reads as one `MGET` at the end of the pipeline
/// (one alone as its `GET`: the same reply, error replies included) and
/// point each at its place in the reply. A key of another type reads as
/// absent in an `MGET` where a `GET` answers WRONGTYPE.
fn merge_gets(pipe: &mut Pipeline, gets: Vec<&str>, placed: &mut [Result<Placed, StoreError>]) {
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
    /// This plan's replies out of the pipeline's; the first error reply among
    /// its commands fails the plan (its other commands may have run: plans
    /// that need all-or-nothing ask for atomicity).
    fn take(self, replies: &mut [Value]) -> Result<Done, StoreError> {
        let span = replies
            .get(self.span.clone())
            .ok_or_else(|| StoreError::Command("fewer replies than commands".into()))?;
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
        let expires_in = match self.pttl.and_then(|i| replies.get(i)) {
            Some(Value::Int(ms)) if *ms >= 0 => Some(Duration::from_millis(*ms as u64)),
            _ => None,
        };
        Ok(Done {
            replies: out,
            expires_in,
        })
    }
}

/// Count what Redis did: a transport failure or timeout is a failure, any
/// answer (error replies included) a success; the gateway being busy is
/// neither, and a call cancelled half-way never gets here (its ticket is
/// dropped unreported).
fn settle(ticket: breaker::Ticket<'_>, result: &Result<Vec<Value>, StoreError>) {
    match result {
        Err(StoreError::Busy(_)) => drop(ticket),
        Err(StoreError::Unavailable(_) | StoreError::Timeout(_)) => ticket.report(false),
        _ => ticket.report(true),
    }
}

/// The only reply of a one-command pipeline, an error reply as an error.
fn one(replies: Vec<Value>) -> Result<Value, StoreError> {
    let reply = replies.into_iter().next().unwrap_or(Value::Nil);
    reply_error(&reply).map_or(Ok(reply), Err)
}

/// A new pipeline for [`Store::query`]: error replies come back in place
/// (`ignore_errors`), so one failing command does not hide the others.
fn pipeline() -> Pipeline {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    pipe
}

/// An error reply as a [`StoreError`].
fn reply_error(v: &Value) -> Option<StoreError> {
    match v {
        Value::ServerError(e) => Some(StoreError::Command(format!(
            "{} {}",
            e.code(),
            e.details().unwrap_or("")
        ))),
        _ => None,
    }
}

fn is_noscript(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.code() == "NOSCRIPT")
}

/// Does Redis answer? A connection found dead is replaced and asked again.
async fn probe(pool: &Pool, timeout: Duration) -> bool {
    for _ in 0..2 {
        let attempt = async {
            let shared = pool.shared().await.ok()?;
            let mut conn = shared.mux.clone();
            match redis::cmd("PING").query_async::<()>(&mut conn).await {
                Ok(()) => Some(true),
                Err(e) => {
                    if is_transport(&e) {
                        shared.mark_broken();
                    }
                    Some(false)
                }
            }
        };
        if let Ok(Some(true)) = tokio::time::timeout(timeout, attempt).await {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::{Action, StringGet, StringSet};

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

    fn error(code: &str) -> Value {
        redis::parse_redis_value(format!("-{code} details\r\n").as_bytes()).unwrap()
    }

    #[test]
    fn plans_in_one_pipeline_each_get_their_own_replies() {
        let scripts = Scripts::load(None).unwrap();
        let (a, b) = (
            plan(vec![get("d:a")], false),
            plan(vec![set("d:b"), get("d:b")], true),
        );
        let mut pipe = pipeline();
        let jobs = [
            Job {
                plan: &a,
                ttl: &TTL,
                track: true,
                record: None,
                replica: false,
            },
            Job {
                plan: &b,
                ttl: &TTL,
                track: false,
                record: None,
                replica: false,
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
        let first = placed.next().unwrap().take(&mut replies).unwrap();
        assert_eq!(first.replies, [Value::BulkString(b"x".to_vec())]);
        assert_eq!(first.expires_in, Some(Duration::from_millis(1500)));
        let second = placed.next().unwrap().take(&mut replies).unwrap();
        assert_eq!(
            second.replies,
            [Value::Okay, Value::BulkString(b"y".to_vec())]
        );
        assert_eq!(second.expires_in, None);
    }

    fn untracked(p: &Plan) -> Job<'_> {
        Job {
            plan: p,
            ttl: &TTL,
            track: false,
            record: None,
            replica: false,
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
        let a = placed.next().unwrap().take(&mut replies).unwrap();
        assert_eq!(a.replies, [Value::BulkString(b"x".to_vec())]);
        let b = placed.next().unwrap().take(&mut replies).unwrap();
        assert_eq!(b.replies, [Value::Nil]);
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
        let mut replies = vec![error("WRONGTYPE"), Value::Nil, Value::Nil, Value::Nil];
        assert!(matches!(pa.take(&mut replies), Err(StoreError::Command(_))));
        assert_eq!(
            pb.take(&mut replies).unwrap().replies,
            [Value::Nil, Value::Nil]
        );
        // A missing reply is an error, not a panic.
        let pc = place(&mut pipe, &untracked(&a), &scripts, &mut gets, true).unwrap();
        assert!(pc.take(&mut replies).is_err());
    }

    #[test]
    fn only_transport_failures_count_as_unavailable() {
        assert!(StoreError::Unavailable("x".into()).is_unavailable());
        assert!(StoreError::Timeout(Duration::from_secs(1)).is_unavailable());
        assert!(!StoreError::Command("WRONGTYPE".into()).is_unavailable());
        assert!(!StoreError::NoGroup("x".into()).is_unavailable());
        assert!(is_noscript(&error("NOSCRIPT")));
        assert!(!is_noscript(&error("WRONGTYPE")));
    }
}
