//! The one connection budget to Redis.
//!
//! bb8 owns the budget: at most `pool_size` connections exist, whoever holds
//! them. The request path does not check a connection out per request (that
//! measured at less than half the throughput): a few *lanes* each hold one
//! multiplexed connection out of the pool for good, and requests clone a
//! lane's handle — many requests in flight on one connection. Commands that
//! need a connection to themselves (blocking stream reads, WATCH) check one
//! out of what is left of the same budget, so Redis never sees more than
//! `pool_size` clients from this gateway.
//!
//! A multiplexed connection whose socket died keeps failing; redis-rs cannot
//! be asked whether it is alive. So a lane that sees a connection error marks
//! its connection broken (bb8 then discards it instead of reusing it) and the
//! next request makes a new one: the gateway serves again as soon as Redis
//! accepts connections.

use crate::config::{ReadFrom, RedisConfig};
use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{AsyncConnectionConfig, Client, RedisError, Value};

use super::connect::{self, ClientError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::StoreError;
use super::scripts::Scripts;
use crate::telemetry::METRICS;

/// bb8's view of a Redis connection: the multiplexed handle and a flag a
/// lane raises when it saw the connection fail.
pub struct Conn {
    pub mux: MultiplexedConnection,
    broken: Arc<AtomicBool>,
}

/// Makes connections for bb8. Not bb8-redis's manager: that one uses
/// redis-rs' default 500 ms response timeout (which would cut blocking stream
/// reads short; our own command timeout governs instead) and never reports a
/// connection broken.
#[derive(Clone)]
pub struct Manager {
    client: Client,
    connect_timeout: std::time::Duration,
    /// Loaded on every new connection: at start, and after Redis restarted.
    scripts: Arc<Scripts>,
    /// Told what Redis says changed (client tracking) and when a connection
    /// closes, for the near cache.
    on_invalidate: Invalidator,
}

/// What the store hears from Redis about keys this gateway read (RESP3
/// client tracking), for whoever keeps copies of them.
#[derive(Debug)]
pub enum Invalidation {
    /// These keys changed.
    Keys(Vec<Vec<u8>>),
    /// Everything changed (FLUSHALL, or Redis dropped its tracking table).
    All,
    /// A tracking connection closed: changes may go unheard until it is back.
    Lost,
    /// On a cluster: every primary's changes are heard (`true`), or some
    /// primary has no tracking connection (`false`: no copy is fresh or
    /// kept until it has).
    Tracking(bool),
}

/// Where invalidations go.
pub type Invalidator = Arc<dyn Fn(Invalidation) + Send + Sync>;

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = RedisError;

    async fn connect(&self) -> Result<Conn, RedisError> {
        // RESP3, so redis-rs reports the socket closing as a push message the
        // moment it happens: the connection is known dead before a request
        // finds out the hard way (a restart between two calls costs no error).
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<redis::PushInfo>();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(None)
            .set_push_sender(tx);
        let mux = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let broken = Arc::new(AtomicBool::new(false));
        let flag = broken.clone();
        let invalidate = self.on_invalidate.clone();
        tokio::spawn(async move {
            while let Some(push) = rx.recv().await {
                match push.kind {
                    redis::PushKind::Disconnection => {
                        flag.store(true, Ordering::Relaxed);
                        invalidate(Invalidation::Lost);
                        tracing::warn!("connection to Redis closed");
                        break;
                    }
                    redis::PushKind::Invalidate => invalidate(invalidation(push.data)),
                    _ => {}
                }
            }
        });
        let mut conn = mux.clone();
        let mut setup = self.scripts.load_all_pipeline();
        // Opt-in tracking: Redis remembers the keys read right after
        // `CLIENT CACHING YES` and pushes an invalidation when they change.
        setup
            .cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("OPTIN")
            .ignore();
        setup.query_async::<()>(&mut conn).await?;
        METRICS
            .script_loads
            .inc_by(self.scripts.all().count() as u64);
        Ok(Conn { mux, broken })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), RedisError> {
        redis::cmd("PING").query_async::<()>(&mut conn.mux).await
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken.load(Ordering::Relaxed)
    }
}

/// An `invalidate` push: the keys, or nil for "everything".
pub(super) fn invalidation(data: Vec<redis::Value>) -> Invalidation {
    match data.into_iter().next() {
        Some(redis::Value::Array(keys)) => Invalidation::Keys(
            keys.into_iter()
                .filter_map(|k| match k {
                    redis::Value::BulkString(b) => Some(b),
                    _ => None,
                })
                .collect(),
        ),
        _ => Invalidation::All,
    }
}

type Pooled = bb8::PooledConnection<'static, Manager>;

thread_local! {
    /// This HTTP thread's share of the lanes: (its index, of how many).
    static SHARE: std::cell::Cell<Option<(usize, usize)>> = const { std::cell::Cell::new(None) };
}

/// Make this thread's requests use lanes of their own: thread `thread` of
/// `threads` uses lanes `thread`, `thread + threads`, … A lane connects on
/// the first request that needs it, so its connection's task runs on the
/// thread that uses it and a reply wakes no other thread.
pub fn pin_lanes(thread: usize, threads: usize) {
    SHARE.set(Some((thread, threads.max(1))));
}

/// The lane for a thread's `turn`-th request. With fewer lanes than
/// threads, threads share them (`thread % lanes`).
fn lane_of(thread: usize, threads: usize, lanes: usize, turn: usize) -> usize {
    let lanes = lanes.max(1);
    if thread >= lanes {
        return thread % lanes;
    }
    // Lanes thread, thread + threads, … below `lanes`.
    let mine = (lanes - thread).div_ceil(threads);
    thread + threads * (turn % mine)
}

/// One lane: a connection held out of the pool and shared by requests.
#[derive(Default)]
struct Lane {
    /// What requests clone; `None` until connected or after a failure.
    handle: ArcSwapOption<(MultiplexedConnection, Arc<AtomicBool>)>,
    /// The checked-out connection itself; dropping it returns (or, when
    /// broken, discards) it.
    held: tokio::sync::Mutex<Option<Pooled>>,
}

/// A connection for one command or pipeline, with a way to report that it failed.
pub struct Shared {
    pub mux: Link,
    broken: Arc<AtomicBool>,
}

/// What the request path sends on: a lane's multiplexed connection to the
/// one Redis, or the cluster client (`redis.cluster`), which routes each
/// command or single-slot pipeline to the primary of its keys' slot,
/// follows MOVED/ASK and reconnects nodes itself.
#[derive(Clone)]
pub enum Link {
    Lane(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Link::Lane(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipe: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Lane(c) => c.req_packed_commands(pipe, offset, count),
            Link::Cluster(c) => c.req_packed_commands(pipe, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Lane(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }
}

/// One primary's tracking connection and what its push reader knows.
struct Tracker {
    /// Held so the connection stays open; dropped, it closes.
    _conn: MultiplexedConnection,
    alive: Arc<AtomicBool>,
    /// Closed on purpose (no longer a primary): its end is not a loss.
    retired: Arc<AtomicBool>,
}

impl Tracker {
    /// Forward a tracking connection's invalidations until it closes; a
    /// close not on purpose makes every copy unheard at once (before the
    /// tracker counts as dead, so the follower never re-hears too early).
    fn follow(
        conn: MultiplexedConnection,
        mut pushes: tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
        invalidate: Invalidator,
    ) -> Tracker {
        let alive = Arc::new(AtomicBool::new(true));
        let retired = Arc::new(AtomicBool::new(false));
        let (flag, gone) = (alive.clone(), retired.clone());
        tokio::spawn(async move {
            while let Some(push) = pushes.recv().await {
                match push.kind {
                    redis::PushKind::Invalidate => invalidate(invalidation(push.data)),
                    redis::PushKind::Disconnection => break,
                    _ => {}
                }
            }
            if !gone.load(Ordering::Acquire) {
                tracing::warn!("a tracking connection to a primary closed");
                invalidate(Invalidation::Tracking(false));
            }
            flag.store(false, Ordering::Release);
        });
        Tracker {
            _conn: conn,
            alive,
            retired,
        }
    }
}

/// The cluster client's one connection (`redis.cluster`): made on first
/// use, cloned by every request; it holds a multiplexed connection per node.
struct ClusterLink {
    client: ClusterClient,
    conn: ArcSwapOption<ClusterConnection>,
    connecting: tokio::sync::Mutex<()>,
    scripts: Arc<Scripts>,
    connect_timeout: std::time::Duration,
    /// For connections of one's own to a node (blocking reads).
    config: RedisConfig,
}

impl ClusterLink {
    /// A connection of its own to the node at `addr`: a blocking command
    /// would hold up every request on the shared one.
    async fn exclusive(&self, addr: &str) -> Result<Conn, StoreError> {
        let mux = self
            .connect_node(
                addr,
                AsyncConnectionConfig::new().set_response_timeout(None),
            )
            .await?;
        Ok(Conn {
            mux,
            broken: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A connection of its own to the node at `addr`, with the URL's
    /// credentials and TLS, connecting within the connect timeout.
    async fn connect_node(
        &self,
        addr: &str,
        config: AsyncConnectionConfig,
    ) -> Result<MultiplexedConnection, StoreError> {
        let (host, port) = super::topology::host_port(addr)
            .ok_or_else(|| StoreError::Unavailable(format!("a node at {addr:?}")))?;
        let client = connect::node_client(&self.config, &host, port)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let config = config.set_connection_timeout(Some(self.connect_timeout));
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to {addr}: {e}")))
    }

    /// Which primary serves which slots now (`CLUSTER SLOTS`).
    async fn slot_map(&self) -> Result<Vec<(u16, u16, String)>, StoreError> {
        let Link::Cluster(mut conn) = self.shared().await?.mux else {
            return Err(StoreError::Unavailable("no cluster connection".into()));
        };
        let reply: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await?;
        Ok(super::topology::slot_ranges(reply))
    }

    /// Does the node at `addr` answer `PING`?
    async fn ping(&self, addr: &str) -> bool {
        let Some((host, port)) = super::topology::host_port(addr) else {
            return false;
        };
        let Ok(Shared {
            mux: Link::Cluster(mut conn),
            ..
        }) = self.shared().await
        else {
            return false;
        };
        let at = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
        conn.route_command(redis::cmd("PING"), at).await.is_ok()
    }

    /// A connection to one node that hears, as RESP3 pushes, every change
    /// to keys under `prefixes` (`CLIENT TRACKING ON BCAST`): reads need
    /// not opt in, so the cluster connection's reads stay as they are.
    async fn tracker(
        &self,
        addr: &str,
        prefixes: &[String],
    ) -> Result<
        (
            MultiplexedConnection,
            tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
        ),
        StoreError,
    > {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut conn = self
            .connect_node(addr, AsyncConnectionConfig::new().set_push_sender(tx))
            .await?;
        let mut on = redis::cmd("CLIENT");
        on.arg("TRACKING").arg("ON").arg("BCAST");
        for p in prefixes {
            on.arg("PREFIX").arg(p);
        }
        on.query_async::<()>(&mut conn).await?;
        Ok((conn, rx))
    }

    async fn shared(&self) -> Result<Shared, StoreError> {
        let shared = |c: &ClusterConnection| Shared {
            mux: Link::Cluster(c.clone()),
            // The client replaces a failed node's connection itself.
            broken: Arc::new(AtomicBool::new(false)),
        };
        if let Some(c) = self.conn.load().as_ref() {
            return Ok(shared(c));
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.conn.load().as_ref() {
            return Ok(shared(c));
        }
        let connect = self.client.get_async_connection();
        let mut conn = tokio::time::timeout(self.connect_timeout, connect)
            .await
            .map_err(|_| StoreError::Unavailable("cannot connect to the cluster in time".into()))?
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to the cluster: {e}")))?;
        // SCRIPT LOAD goes to every node; a primary promoted later that
        // never saw it answers NOSCRIPT, recovered per call.
        for script in self.scripts.all() {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(&script.source)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| StoreError::Unavailable(format!("cannot load scripts: {e}")))?;
        }
        METRICS
            .script_loads
            .inc_by(self.scripts.all().count() as u64);
        tracing::info!("connected to the Redis Cluster");
        let out = shared(&conn);
        self.conn.store(Some(Arc::new(conn)));
        Ok(out)
    }
}

impl Shared {
    /// The connection failed at the transport level: stop handing it out.
    pub fn mark_broken(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }
}

/// The pool: bb8 for the budget, lanes for the request path.
pub struct Pool {
    pool: bb8::Pool<Manager>,
    /// The same manager bb8 uses, for lanes that connect themselves.
    manager: Manager,
    /// Connections left for exclusive use: `pool_size` minus the lanes.
    exclusive_permits: Arc<tokio::sync::Semaphore>,
    lanes: Vec<Lane>,
    next: AtomicUsize,
    /// In cluster mode, what the request path uses instead of lanes.
    cluster: Option<ClusterLink>,
    /// In cluster mode, for domains that read from replicas (connects on
    /// first use).
    replicas: Option<ClusterLink>,
}

impl Pool {
    pub fn new(
        config: &RedisConfig,
        scripts: Arc<Scripts>,
        on_invalidate: Invalidator,
    ) -> Result<Pool, ClientError> {
        let manager = Manager {
            client: connect::client(config)?,
            scripts,
            on_invalidate,
            connect_timeout: config.connect_timeout(),
        };
        let pool = bb8::Pool::builder()
            .max_size(config.pool_size)
            .connection_timeout(config.connect_timeout())
            .test_on_check_out(false)
            .retry_connection(false)
            .build_unchecked(manager.clone());
        let lanes = config.shared_connections();
        let exclusive = (config.pool_size as usize).saturating_sub(lanes);
        let permits = Arc::new(tokio::sync::Semaphore::new(exclusive));
        if exclusive == 0 {
            permits.close();
        }
        let link = |reads| -> Result<Option<ClusterLink>, ClientError> {
            if !config.cluster {
                return Ok(None);
            }
            Ok(Some(ClusterLink {
                client: connect::cluster_client(config, reads)?,
                conn: ArcSwapOption::empty(),
                connecting: tokio::sync::Mutex::new(()),
                scripts: manager.scripts.clone(),
                connect_timeout: config.connect_timeout(),
                config: config.clone(),
            }))
        };
        let (cluster, replicas) = (link(ReadFrom::Primary)?, link(ReadFrom::Replica)?);
        Ok(Pool {
            pool,
            manager,
            exclusive_permits: permits,
            lanes: (0..lanes).map(|_| Lane::default()).collect(),
            next: AtomicUsize::new(0),
            cluster,
            replicas,
        })
    }

    /// A shared connection for the request path: round-robin over this
    /// thread's lanes ([`pin_lanes`]), or over all of them.
    pub async fn shared(&self) -> Result<Shared, StoreError> {
        if let Some(cluster) = &self.cluster {
            return cluster.shared().await;
        }
        self.lane().await
    }

    /// A shared connection whose reads go to replicas (on a cluster; on a
    /// single Redis the same as [`Pool::shared`]).
    pub async fn shared_replicas(&self) -> Result<Shared, StoreError> {
        match &self.replicas {
            Some(replicas) => replicas.shared().await,
            None => self.shared().await,
        }
    }

    async fn lane(&self) -> Result<Shared, StoreError> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let i = match SHARE.get() {
            Some((thread, threads)) => lane_of(thread, threads, self.lanes.len(), turn),
            None => turn % self.lanes.len(),
        };
        let lane = &self.lanes[i];
        if let Some(h) = lane.handle.load().as_ref()
            && !h.1.load(Ordering::Relaxed)
        {
            return Ok(Shared {
                mux: Link::Lane(h.0.clone()),
                broken: h.1.clone(),
            });
        }
        self.reconnect(i).await
    }

    /// Slow path: (re)connect a lane. One request does it; the others wait
    /// on the lane's lock and then share the result.
    async fn reconnect(&self, i: usize) -> Result<Shared, StoreError> {
        let lane = &self.lanes[i];
        let mut held = lane.held.lock().await;
        if let Some(h) = lane.handle.load().as_ref()
            && !h.1.load(Ordering::Relaxed)
        {
            return Ok(Shared {
                mux: Link::Lane(h.0.clone()),
                broken: h.1.clone(),
            });
        }
        // Dropping a broken connection makes bb8 discard it.
        lane.handle.store(None);
        *held = None;
        let started = Instant::now();
        let conn = self.checkout_for_lane().await?;
        METRICS.pool_wait.observe(started.elapsed().as_secs_f64());
        let handle = (conn.mux.clone(), conn.broken.clone());
        let shared = Shared {
            mux: Link::Lane(handle.0.clone()),
            broken: handle.1.clone(),
        };
        lane.handle.store(Some(Arc::new(handle)));
        *held = Some(conn);
        tracing::info!(lane = i, "connected to Redis");
        Ok(shared)
    }

    /// A live connection for a lane, failing as fast as Redis refuses.
    ///
    /// bb8's `get` waits for its connection timeout when connecting fails
    /// (the error goes to its error sink, not to the waiter), so a lane
    /// connects itself, hands the connection to bb8 (which counts it) and
    /// checks it out. The budget cannot overflow: exclusive users are capped
    /// at the connections lanes do not use.
    async fn checkout_for_lane(&self) -> Result<Pooled, StoreError> {
        for _ in 0..3 {
            if self.pool.state().idle_connections == 0 {
                // Any failure to make a connection — refused, TLS, a wrong
                // password (WRONGPASS), a user without the rights to set it
                // up — leaves Redis unavailable to this gateway.
                let conn = bb8::ManageConnection::connect(&self.manager)
                    .await
                    .map_err(|e| StoreError::Unavailable(format!("cannot connect: {e}")))?;
                if self.pool.add(conn).is_err() {
                    tracing::warn!("connection budget full; waiting for a connection");
                }
            }
            let mut conn = self.pool.get_owned().await?;
            // An idle connection may have died while it waited.
            if !bb8::ManageConnection::has_broken(&self.manager, &mut conn) {
                return Ok(conn);
            }
        }
        Err(StoreError::Unavailable(
            "connections to Redis keep closing".into(),
        ))
    }

    /// A connection of one's own, from the same budget (blocking commands,
    /// WATCH); on a cluster to the node at `node`. Report failures with
    /// [`Exclusive::mark_broken`].
    pub async fn exclusive(&self, node: Option<&str>) -> Result<Exclusive, StoreError> {
        let started = Instant::now();
        let permit = self
            .exclusive_permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                StoreError::Busy(
                    "every connection for blocking reads is in use (raise redis.pool_size)".into(),
                )
            })?;
        let held = match (&self.cluster, node) {
            (Some(cluster), Some(addr)) => Held::Own(cluster.exclusive(addr).await?),
            _ => Held::Pooled(self.pool.get_owned().await?),
        };
        METRICS.pool_wait.observe(started.elapsed().as_secs_f64());
        Ok(Exclusive(held, permit))
    }

    /// On a cluster: hear every change to keys under `prefixes` on every
    /// primary, for the near cache, until the process ends. Every second
    /// the `primaries` (from the slot map the breakers keep) are looked at
    /// again: one without a live tracking connection gets one, one no
    /// longer primary loses its. Until every primary is heard (at start,
    /// after a connection dropped, while a promoted replica has none yet)
    /// no copy is fresh or kept.
    pub async fn follow_changes(
        self: Arc<Self>,
        prefixes: Vec<String>,
        primaries: impl Fn() -> Option<Vec<String>>,
    ) {
        let Some(cluster) = &self.cluster else { return };
        if prefixes.is_empty() {
            return;
        }
        let invalidate = self.manager.on_invalidate.clone();
        invalidate(Invalidation::Tracking(false));
        let mut heard = false;
        let mut trackers: std::collections::HashMap<String, Tracker> =
            std::collections::HashMap::new();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(primaries) = primaries() else {
                continue;
            };
            // A dropped connection already made copies unheard (its reader
            // said so before it marked itself dead).
            if trackers.values().any(|t| !t.alive.load(Ordering::Acquire)) {
                heard = false;
            }
            trackers.retain(|addr, t| {
                let keep = primaries.contains(addr) && t.alive.load(Ordering::Acquire);
                // No longer a primary: closed on purpose, not a loss.
                t.retired.store(!keep, Ordering::Release);
                keep
            });
            for addr in &primaries {
                if trackers.contains_key(addr) {
                    continue;
                }
                match cluster.tracker(addr, &prefixes).await {
                    Ok((conn, pushes)) => {
                        let tracker = Tracker::follow(conn, pushes, invalidate.clone());
                        trackers.insert(addr.clone(), tracker);
                    }
                    Err(e) => {
                        tracing::warn!(node = %addr, error = %e, "no tracking connection to a primary; near-cache copies are not used until there is")
                    }
                }
            }
            let all = primaries.iter().all(|a| trackers.contains_key(a));
            if all != heard {
                heard = all;
                invalidate(Invalidation::Tracking(all));
                tracing::info!(
                    primaries = primaries.len(),
                    heard,
                    "near-cache tracking on the cluster"
                );
            }
        }
    }

    /// On a cluster: which primary serves which slots (`CLUSTER SLOTS`).
    pub async fn slot_map(&self) -> Result<Vec<(u16, u16, String)>, StoreError> {
        match &self.cluster {
            Some(cluster) => cluster.slot_map().await,
            None => Err(StoreError::Command("not a cluster".into())),
        }
    }

    /// On a cluster: does the node at `addr` answer?
    pub async fn ping(&self, addr: &str) -> bool {
        match &self.cluster {
            Some(cluster) => cluster.ping(addr).await,
            None => false,
        }
    }

    /// Connections open and idle (not held by a lane or a caller).
    pub fn state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections)
    }
}

/// A connection checked out for one caller alone (and its share of the budget).
pub struct Exclusive(Held, #[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

/// From the pool (one Redis), or made for this caller on a cluster's node
/// (closed when dropped).
enum Held {
    Pooled(Pooled),
    Own(Conn),
}

impl Held {
    fn get(&mut self) -> &mut Conn {
        match self {
            Held::Pooled(p) => p,
            Held::Own(c) => c,
        }
    }
}

/// Marks a connection broken when dropped armed: a command whose future is
/// dropped half-way (its client went away, a shutdown) may still be running
/// on the connection, and its reply would reach the next user.
pub struct Unfinished(Arc<AtomicBool>, bool);

impl Unfinished {
    /// The command completed: the connection is fit for the next user.
    pub fn finished(mut self) {
        self.1 = false;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.1 {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

impl Exclusive {
    pub fn conn(&mut self) -> &mut MultiplexedConnection {
        &mut self.0.get().mux
    }

    /// A guard for a command about to run on this connection.
    pub fn unfinished(&mut self) -> Unfinished {
        Unfinished(self.0.get().broken.clone(), true)
    }

    pub fn mark_broken(&mut self) {
        self.0.get().broken.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::lane_of;

    /// Every lane a thread uses over its turns.
    fn lanes_used(thread: usize, threads: usize, lanes: usize) -> Vec<usize> {
        let mut used: Vec<usize> = (0..12)
            .map(|t| lane_of(thread, threads, lanes, t))
            .collect();
        used.sort();
        used.dedup();
        used
    }

    #[test]
    fn each_thread_has_lanes_of_its_own_and_every_lane_is_used() {
        assert_eq!(lanes_used(0, 2, 2), [0]);
        assert_eq!(lanes_used(1, 2, 2), [1]);
        assert_eq!(lanes_used(0, 2, 5), [0, 2, 4]);
        assert_eq!(lanes_used(1, 2, 5), [1, 3]);
        assert_eq!(lanes_used(2, 3, 4), [2]);
        // One thread: every lane.
        assert_eq!(lanes_used(0, 1, 3), [0, 1, 2]);
    }

    #[test]
    fn more_threads_than_lanes_share_them() {
        assert_eq!(lanes_used(0, 4, 2), [0]);
        assert_eq!(lanes_used(3, 4, 2), [1]);
        assert_eq!(lanes_used(2, 4, 1), [0]);
        assert_eq!(lanes_used(0, 4, 0), [0]);
    }
}
