//! A Redis Cluster behind the store, through the redis crate's cluster
//! client ([`link`]): a link whose reads go to primaries and one whose reads
//! go to replicas (`read_from = "replica"` domains), a breaker per primary
//! picked by a call's hash slot ([`nodes`], which also keeps the slot map),
//! the trackers that keep the near cache coherent ([`trackers`]), plans
//! whose keys span slots cut into one per slot ([`cut`]), and the pure
//! parsing of what the cluster says about itself ([`topology`]).

pub mod cut;
pub(crate) mod link;
mod nodes;
pub mod topology;
mod trackers;

use super::breaker::{self, Breaker};
use super::chain::Gate;
use super::connect::ClientError;
use super::error::StoreError;
use super::pool::{Budget, Conn, Exclusive};
use super::scripts::Scripts;
use super::tracking::Tracking;
use crate::config::{BreakerConfig, ReadFrom, RedisConfig};
use crate::telemetry::METRICS;
use link::Link;
use nodes::Nodes;
use redis::AsyncConnectionConfig;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) struct Cluster {
    primaries: Arc<Link>,
    /// For domains that read from replicas (connects on first use).
    replicas: Link,
    nodes: Arc<Nodes>,
    /// The gateway-wide state, derived from the primaries' breakers: it
    /// decides only calls that name no key.
    whole: Arc<Breaker>,
    /// Connections of one's own to a node (blocking reads).
    budget: Budget,
    /// The near-cached prefixes (fixed at start) and where their changes go.
    tracking: Tracking,
}

impl Cluster {
    pub fn new(
        config: &RedisConfig,
        breaker: BreakerConfig,
        scripts: Arc<Scripts>,
        tracking: Tracking,
    ) -> Result<Cluster, ClientError> {
        Ok(Cluster {
            primaries: Arc::new(Link::new(config, ReadFrom::Primary, scripts.clone())?),
            replicas: Link::new(config, ReadFrom::Replica, scripts)?,
            nodes: Nodes::new(breaker.clone()),
            whole: Breaker::new(breaker),
            budget: Budget::new(config),
            tracking,
        })
    }

    /// The breaker of the primary serving `key`'s slot; a call that names
    /// no key (or one made before the slot map is known) goes by the
    /// gateway-wide state.
    pub fn gate(&self, key: Option<&str>) -> Gate<'_> {
        key.and_then(|k| self.nodes.breaker(topology::slot(k.as_bytes())))
            .map_or(Gate::Any(&self.whole), Gate::Node)
    }

    /// The link for a call, its reads on replicas when `replicas`.
    pub fn link(&self, replicas: bool) -> &Link {
        match replicas {
            true => &self.replicas,
            false => &self.primaries,
        }
    }

    /// A connection of its own to the primary serving `key`: a blocking
    /// command would hold up every call on the shared link.
    pub async fn exclusive(&self, key: &str, wait: bool) -> Result<Exclusive, StoreError> {
        let started = Instant::now();
        let permit = self.budget.take(wait).await?;
        let addr = self.nodes.addr(topology::slot(key.as_bytes()))?;
        let config = AsyncConnectionConfig::new().set_response_timeout(None);
        let conn = self.primaries.connect_node(&addr, config).await?;
        METRICS.pool_wait.observe(started.elapsed().as_secs_f64());
        Ok(Exclusive::own(Conn::own(conn), permit))
    }

    /// A call found a node gone: read the slot map again soon.
    pub fn moved(&self) {
        self.nodes.moved();
    }

    /// Ready when the breakers know the slot map, and every primary serving
    /// slots (`CLUSTER NODES`) is not flagged failing and answers `PING` at
    /// its address (a fan-out to "all primaries" would skip nodes the
    /// client has no connection to, so it cannot tell a dead primary).
    pub async fn ready(&self, deadline: Duration) -> Result<(), StoreError> {
        if self.nodes.primaries().is_none() {
            return Err(StoreError::Unavailable(
                "the cluster's slot map is not read yet".into(),
            ));
        }
        let check = async {
            let mut conn = self.primaries.shared().await?;
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
                if !self.primaries.ping(&p.addr).await {
                    return Err(StoreError::Unavailable(format!(
                        "primary {} does not answer PING",
                        p.addr
                    )));
                }
            }
            Ok(())
        };
        tokio::time::timeout(deadline, check)
            .await
            .unwrap_or(Err(StoreError::Timeout(deadline)))
    }

    /// `INFO memory stats clients` of every primary, by address.
    pub async fn info(&self, deadline: Duration) -> Result<Vec<(String, String)>, StoreError> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("memory").arg("stats").arg("clients");
        let mut conn = self.primaries.shared().await?;
        let every_primary = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        let replies = tokio::time::timeout(deadline, conn.route_command(cmd, every_primary))
            .await
            .map_err(|_| StoreError::Timeout(deadline))??;
        match replies {
            redis::Value::Map(pairs) => pairs
                .into_iter()
                .map(|(node, v)| Ok((super::reply::text(node)?, super::reply::text(v)?)))
                .collect(),
            other => Ok(vec![(String::new(), super::reply::text(other)?)]),
        }
    }

    /// The task that keeps a breaker per primary (it reads the slot map
    /// and probes each primary within `deadline`), and, when there are
    /// near-cached prefixes, the trackers that hear their changes.
    pub fn start(&self, deadline: Duration) {
        let link = self.primaries.clone();
        let read = {
            let link = link.clone();
            move || {
                let link = link.clone();
                async move {
                    tokio::time::timeout(deadline, link.slot_map())
                        .await
                        .unwrap_or(Err(StoreError::Timeout(deadline)))
                }
            }
        };
        let probe = {
            let link = link.clone();
            move |addr: String| {
                let link = link.clone();
                async move {
                    tokio::time::timeout(deadline, link.ping(&addr))
                        .await
                        .is_ok_and(|up| up)
                }
            }
        };
        tokio::spawn(self.nodes.clone().run(self.whole.clone(), read, probe));
        let (nodes, tracking) = (self.nodes.clone(), self.tracking.clone());
        tokio::spawn(async move {
            let primaries = move || nodes.primaries();
            trackers::follow(&link, tracking.prefixes, primaries, tracking.invalidate).await
        });
    }

    /// Only the prefixes near-cached at start are heard: a domain a reload
    /// adds or gives a near cache keeps no copy until a restart.
    pub fn hears(&self, prefixes: &[String]) -> bool {
        prefixes.iter().all(|p| self.tracking.prefixes.contains(p))
    }

    /// The gateway-wide state, its transitions, and each primary's breaker.
    pub fn status(&self) -> breaker::Status {
        breaker::Status {
            state: self.whole.state(),
            transitions: self.whole.transitions(),
            nodes: self.nodes.states(),
        }
    }

    pub fn set_breaker_config(&self, config: BreakerConfig) {
        self.nodes.set_config(config.clone());
        self.whole.set_config(config);
    }

    /// Connections of one's own open, none of them idle (the link's
    /// connections are the cluster client's own).
    pub fn pool_state(&self) -> (u32, u32) {
        (self.budget.in_use() as u32, 0)
    }
}
