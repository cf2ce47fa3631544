//! Everything that talks to Redis: the one connection pool, plan execution
//! and the shaping of replies into response bodies.
//!
//! Routes and plugins never see a connection: they hand a [`Pipeline`] (or a
//! plan, via [`exec`]) to [`Store`], which owns timeouts and error
//! classification. A cluster client can later stand in behind `Store`
//! without touching either.

pub mod exec;
pub mod reply;

use crate::config::RedisConfig;
use bb8_redis::RedisConnectionManager;
use redis::aio::MultiplexedConnection;
use redis::{Pipeline, Value};
use std::time::Duration;

/// Why Redis did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Down, refusing connections, or the connection broke: the client may retry.
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis answered with an error (e.g. WRONGTYPE): retrying will not help.
    #[error("Redis refused the command: {0}")]
    Command(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
        {
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

/// The gateway's one way to Redis.
///
/// Connections are multiplexed: a request borrows one from the pool only long
/// enough to clone its handle, so many requests share one connection (several
/// times the throughput of one request per connection) and the pool's size
/// is the number of connections Redis sees.
#[derive(Clone)]
pub struct Store {
    pool: bb8::Pool<RedisConnectionManager>,
    command_timeout: Duration,
}

impl Store {
    /// Set up the pool. Connections are made lazily, so the gateway starts
    /// (and answers 503) while Redis is down.
    pub fn new(config: &RedisConfig) -> Result<Store, StoreError> {
        let manager = RedisConnectionManager::new(config.url.as_str())?;
        let pool = bb8::Pool::builder()
            .max_size(config.pool_size)
            .connection_timeout(config.connect_timeout())
            .test_on_check_out(false)
            .retry_connection(false)
            .build_unchecked(manager);
        Ok(Store {
            pool,
            command_timeout: config.command_timeout(),
        })
    }

    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        let pooled = self.pool.get().await?;
        Ok(pooled.clone())
    }

    /// Run a pipeline (one round trip) within the command timeout.
    pub async fn query(&self, pipe: &Pipeline) -> Result<Vec<Value>, StoreError> {
        let run = async {
            let mut conn = self.connection().await?;
            let replies: Vec<Value> = pipe.query_async(&mut conn).await?;
            Ok(replies)
        };
        tokio::time::timeout(self.command_timeout, run)
            .await
            .map_err(|_| StoreError::Timeout(self.command_timeout))?
    }
}
