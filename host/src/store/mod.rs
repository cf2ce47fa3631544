//! Everything that talks to Redis: the one pool, the circuit breaker, the
//! script cache, plan execution, reply shaping and the INFO poller.
//!
//! Routes and plugins never see a connection: they hand a pipeline to
//! [`Store`], which owns admission (breaker), timeouts, NOSCRIPT recovery,
//! error classification and round-trip metrics. A cluster client can later
//! stand in behind `Store` without touching either.

pub mod breaker;
pub mod exec;
pub mod info;
pub mod pool;
pub mod reply;
pub mod scripts;

use crate::config::RedisConfig;
use crate::telemetry::METRICS;
use breaker::{Breaker, BreakerConfig};
use pool::Pool;
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
}

impl StoreError {
    /// Whether this says Redis could not be reached (as opposed to refusing).
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, StoreError::Command(_))
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

/// A failure of the connection itself, not an answer from Redis.
fn is_transport(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() || e.is_timeout()
}

/// The gateway's one way to Redis.
#[derive(Clone)]
pub struct Store {
    pool: Arc<Pool>,
    breaker: Arc<Breaker>,
    scripts: Arc<Scripts>,
    command_timeout: Duration,
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
    ) -> Result<Store, StoreError> {
        METRICS.pool_size.set(i64::from(config.pool_size));
        Ok(Store {
            pool: Arc::new(Pool::new(config, scripts.clone(), on_invalidate)?),
            breaker: Breaker::new(breaker),
            scripts,
            command_timeout: config.command_timeout(),
        })
    }

    /// Start the breaker's task (it probes Redis while open).
    pub fn spawn_breaker(&self) {
        let pool = self.pool.clone();
        let timeout = self.command_timeout;
        tokio::spawn(self.breaker.clone().run(move || {
            let pool = pool.clone();
            async move { probe(&pool, timeout).await }
        }));
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    pub fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn set_breaker_config(&self, config: BreakerConfig) {
        self.breaker.set_config(config);
    }

    /// Run a pipeline (one round trip; two when NOSCRIPT must be recovered)
    /// through the breaker and within the command timeout. Every command's
    /// reply comes back, error replies included, in order.
    pub async fn query(&self, pipe: &Pipeline) -> Result<Vec<Value>, StoreError> {
        let ticket = match self.breaker.admit() {
            Ok(t) => t,
            Err(e) => {
                METRICS.breaker_rejected.inc();
                return Err(e);
            }
        };
        let result = tokio::time::timeout(self.command_timeout, self.round_trip(pipe))
            .await
            .unwrap_or(Err(StoreError::Timeout(self.command_timeout)));
        let transport_ok = !matches!(
            result,
            Err(StoreError::Unavailable(_) | StoreError::Timeout(_))
        );
        self.breaker.report(ticket, transport_ok);
        result
    }

    /// Run a command that holds its connection (a blocking stream read) on a
    /// connection of its own from the same budget, through the breaker,
    /// allowing it `holds_for` beyond the command timeout.
    pub async fn query_exclusive(
        &self,
        pipe: &Pipeline,
        holds_for: Duration,
    ) -> Result<Vec<Value>, StoreError> {
        let ticket = self
            .breaker
            .admit()
            .inspect_err(|_| METRICS.breaker_rejected.inc())?;
        let result = self.exclusive_round_trip(pipe, holds_for).await;
        let transport_ok = !matches!(
            result,
            Err(StoreError::Unavailable(_) | StoreError::Timeout(_))
        );
        self.breaker.report(ticket, transport_ok);
        result
    }

    async fn exclusive_round_trip(
        &self,
        pipe: &Pipeline,
        holds_for: Duration,
    ) -> Result<Vec<Value>, StoreError> {
        let mut conn = tokio::time::timeout(self.command_timeout, self.pool.exclusive())
            .await
            .unwrap_or(Err(StoreError::Timeout(self.command_timeout)))?;
        METRICS.round_trips.inc();
        METRICS.pipeline_commands.observe(pipe.len() as f64);
        let limit = self.command_timeout + holds_for;
        match tokio::time::timeout(limit, pipe.query_async::<Vec<Value>>(conn.conn())).await {
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

    async fn round_trip(&self, pipe: &Pipeline) -> Result<Vec<Value>, StoreError> {
        let mut replies = self.send(pipe).await?;
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
        let again = self.send(&retry).await?;
        METRICS.noscript_recoveries.inc_by(failed.len() as u64);
        for (i, v) in failed.into_iter().zip(again) {
            replies[i] = v;
        }
        Ok(replies)
    }

    async fn send(&self, pipe: &Pipeline) -> Result<Vec<Value>, StoreError> {
        let shared = self.pool.shared().await?;
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
    pub async fn eval(
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
        let reply = self
            .query(&pipe)
            .await?
            .into_iter()
            .next()
            .unwrap_or(Value::Nil);
        reply_error(&reply).map_or(Ok(reply), Err)
    }
}

/// A new pipeline for [`Store::query`]: error replies come back in place
/// (`ignore_errors`), so one failing command does not hide the others.
pub fn pipeline() -> Pipeline {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    pipe
}

/// An error reply as a [`StoreError`].
pub fn reply_error(v: &Value) -> Option<StoreError> {
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
