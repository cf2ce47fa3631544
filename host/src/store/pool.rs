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
//!
//! The lanes serve a single Redis; [`Budget`] and [`Exclusive`] (connections
//! of one's own) serve a cluster's nodes as well.

use super::chain::{Connection, Held};
use super::connect::{self, ClientError};
use super::error::{StoreError, is_transport};
use super::scripts::Scripts;
use super::tracking::{Invalidation, Invalidator, invalidation};
use crate::config::RedisConfig;
use crate::telemetry::METRICS;
use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Pipeline, RedisError, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// bb8's view of a Redis connection: the multiplexed handle and a flag a
/// lane raises when it saw the connection fail.
pub struct Conn {
    pub mux: MultiplexedConnection,
    broken: Arc<AtomicBool>,
}

impl Conn {
    /// A connection bb8 does not manage (a cluster node's), closed when dropped.
    pub fn own(mux: MultiplexedConnection) -> Conn {
        Conn {
            mux,
            broken: Arc::new(AtomicBool::new(false)),
        }
    }
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

/// A lane's connection for one command or pipeline, with a way to report
/// that it failed.
struct Shared {
    mux: MultiplexedConnection,
    broken: Arc<AtomicBool>,
}

impl Shared {
    /// The connection failed at the transport level: stop handing it out.
    fn mark_broken(&self) {
        self.broken.store(true, Ordering::Relaxed);
    }
}

/// The pool: bb8 for the budget, lanes for the request path.
pub struct Pool {
    pool: bb8::Pool<Manager>,
    /// The same manager bb8 uses, for lanes that connect themselves.
    manager: Manager,
    /// Connections left for exclusive use: `pool_size` minus the lanes.
    budget: Budget,
    lanes: Vec<Lane>,
    next: AtomicUsize,
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
        Ok(Pool {
            pool,
            manager,
            budget: Budget::new(config),
            lanes: (0..config.shared_connections())
                .map(|_| Lane::default())
                .collect(),
            next: AtomicUsize::new(0),
        })
    }

    /// A shared connection for the request path: round-robin over this
    /// thread's lanes ([`pin_lanes`]), or over all of them.
    async fn shared(&self) -> Result<Shared, StoreError> {
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
                mux: h.0.clone(),
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
                mux: h.0.clone(),
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
            mux: handle.0.clone(),
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
    /// WATCH). `wait`: wait in line for the budget (a short read-then-write)
    /// rather than fail at once (a blocking read).
    pub async fn exclusive(&self, wait: bool) -> Result<Exclusive, StoreError> {
        let started = Instant::now();
        let permit = self.budget.take(wait).await?;
        let held = Origin::Pooled(self.pool.get_owned().await?);
        METRICS.pool_wait.observe(started.elapsed().as_secs_f64());
        Ok(Exclusive(held, permit))
    }

    /// Does Redis answer? A connection found dead is replaced and asked again.
    pub async fn probe(&self, deadline: std::time::Duration) -> bool {
        for _ in 0..2 {
            let attempt = async {
                let shared = self.shared().await.ok()?;
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
            if let Ok(Some(true)) = tokio::time::timeout(deadline, attempt).await {
                return true;
            }
        }
        false
    }

    /// Connections open and idle (not held by a lane or a caller).
    pub fn state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections)
    }
}

impl Connection for Pool {
    async fn send(&self, pipe: &Pipeline) -> Result<Vec<Value>, StoreError> {
        let shared = self.shared().await?;
        let mut conn = shared.mux.clone();
        pipe.query_async::<Vec<Value>>(&mut conn)
            .await
            .map_err(|e| {
                if is_transport(&e) {
                    shared.mark_broken();
                }
                e.into()
            })
    }
}

/// The connections a gateway may hold for callers alone (blocking reads):
/// `pool_size` minus the shared lanes, on a single Redis or a cluster alike,
/// so Redis never sees more than `pool_size` clients from one gateway.
pub struct Budget {
    permits: Arc<tokio::sync::Semaphore>,
    total: usize,
}

impl Budget {
    pub fn new(config: &RedisConfig) -> Budget {
        let total = (config.pool_size as usize).saturating_sub(config.shared_connections());
        let permits = Arc::new(tokio::sync::Semaphore::new(total));
        if total == 0 {
            permits.close();
        }
        Budget { permits, total }
    }

    /// One connection's worth. Without `wait`, `Busy` at once: a blocking
    /// read never waits in line behind others, which hold theirs for
    /// seconds. With it, in line (the caller bounds the wait).
    pub async fn take(&self, wait: bool) -> Result<tokio::sync::OwnedSemaphorePermit, StoreError> {
        let permits = self.permits.clone();
        let taken = match wait {
            true => permits.acquire_owned().await.map_err(|_| ()),
            false => permits.try_acquire_owned().map_err(|_| ()),
        };
        taken.map_err(|()| {
            StoreError::Busy(
                "every connection for blocking reads and read-then-writes is in use (raise redis.pool_size)".into(),
            )
        })
    }

    /// Connections of one's own held now.
    pub fn in_use(&self) -> usize {
        self.total.saturating_sub(self.permits.available_permits())
    }
}

/// A connection checked out for one caller alone (and its share of the budget).
pub struct Exclusive(
    Origin,
    #[allow(dead_code)] tokio::sync::OwnedSemaphorePermit,
);

/// From the pool (one Redis), or made for this caller on a cluster's node
/// (closed when dropped).
enum Origin {
    Pooled(Pooled),
    Own(Conn),
}

impl Exclusive {
    /// A connection made for this caller alone, counted by `permit`.
    pub fn own(conn: Conn, permit: tokio::sync::OwnedSemaphorePermit) -> Exclusive {
        Exclusive(Origin::Own(conn), permit)
    }

    fn conn(&mut self) -> &mut Conn {
        match &mut self.0 {
            Origin::Pooled(p) => p,
            Origin::Own(c) => c,
        }
    }
}

impl Held for Exclusive {
    async fn query(&mut self, pipe: &Pipeline) -> Result<Vec<Value>, RedisError> {
        pipe.query_async(&mut self.conn().mux).await
    }

    fn mark_broken(&mut self) {
        self.conn().broken.store(true, Ordering::Relaxed);
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
