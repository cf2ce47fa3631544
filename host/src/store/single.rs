//! A single Redis behind the store: the lanes of one connection budget
//! (`pool`), and one breaker for every call, whose task probes Redis with
//! `PING` while it is open.

use super::breaker::{self, Breaker};
use super::chain::Gate;
use super::connect::ClientError;
use super::error::StoreError;
use super::pool::{Exclusive, Pool};
use super::scripts::Scripts;
use super::tracking::Invalidator;
use crate::config::{BreakerConfig, RedisConfig};
use std::sync::Arc;
use std::time::Duration;

pub(super) struct Single {
    pool: Arc<Pool>,
    breaker: Arc<Breaker>,
}

impl Single {
    pub fn new(
        config: &RedisConfig,
        breaker: BreakerConfig,
        scripts: Arc<Scripts>,
        on_invalidate: Invalidator,
    ) -> Result<Single, ClientError> {
        Ok(Single {
            pool: Arc::new(Pool::new(config, scripts, on_invalidate)?),
            breaker: Breaker::new(breaker),
        })
    }

    /// Every call, whatever its keys, goes through the one breaker.
    pub fn gate(&self) -> Gate<'_> {
        Gate::Whole(&self.breaker)
    }

    /// What calls are sent on: a lane of this thread's.
    pub fn lanes(&self) -> &Pool {
        &self.pool
    }

    /// A connection of one's own, out of the same budget.
    pub async fn exclusive(&self, wait: bool) -> Result<Exclusive, StoreError> {
        self.pool.exclusive(wait).await
    }

    /// The breaker's task: while open it probes Redis within `deadline`.
    pub fn start(&self, deadline: Duration) {
        let pool = self.pool.clone();
        tokio::spawn(self.breaker.clone().run(move || {
            let pool = pool.clone();
            async move { pool.probe(deadline).await }
        }));
    }

    pub fn status(&self) -> breaker::Status {
        breaker::Status {
            state: self.breaker.state(),
            transitions: self.breaker.transitions(),
            nodes: Vec::new(),
        }
    }

    pub fn set_breaker_config(&self, config: BreakerConfig) {
        self.breaker.set_config(config);
    }

    pub fn pool_state(&self) -> (u32, u32) {
        self.pool.state()
    }
}
