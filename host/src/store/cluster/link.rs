//! The cluster client's one connection: made on first use, cloned by every
//! call; it holds a multiplexed connection per node, routes each command
//! or single-slot pipeline to the primary (or, for a replica link, a
//! replica) of its keys' slot, follows MOVED/ASK and reconnects nodes
//! itself. Beside it, connections of one's own to a node by address: for
//! blocking reads and the near cache's trackers.

use super::topology;
use crate::config::{ReadFrom, RedisConfig};
use crate::store::chain::Connection;
use crate::store::connect::{self, ClientError};
use crate::store::error::StoreError;
use crate::store::scripts::Scripts;
use crate::telemetry::METRICS;
use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{AsyncConnectionConfig, Pipeline, Value};
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct Link {
    client: ClusterClient,
    conn: ArcSwapOption<ClusterConnection>,
    connecting: tokio::sync::Mutex<()>,
    scripts: Arc<Scripts>,
    connect_timeout: Duration,
    /// The URL's credentials and TLS, for connections to one node.
    config: RedisConfig,
}

impl Link {
    /// A link whose reads go to `reads` (primaries, or replicas round-robin).
    pub fn new(
        config: &RedisConfig,
        reads: ReadFrom,
        scripts: Arc<Scripts>,
    ) -> Result<Link, ClientError> {
        Ok(Link {
            client: connect::cluster_client(config, reads)?,
            conn: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            scripts,
            connect_timeout: config.connect_timeout(),
            config: config.clone(),
        })
    }

    /// The shared connection, connecting (and loading the scripts on every
    /// node) on first use; one caller connects, the others wait for it.
    pub async fn shared(&self) -> Result<ClusterConnection, StoreError> {
        if let Some(c) = self.conn.load().as_deref() {
            return Ok(c.clone());
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.conn.load().as_deref() {
            return Ok(c.clone());
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
        self.conn.store(Some(Arc::new(conn.clone())));
        Ok(conn)
    }

    /// A connection of its own to the node at `addr`, with the URL's
    /// credentials and TLS, connecting within the connect timeout.
    pub async fn connect_node(
        &self,
        addr: &str,
        config: AsyncConnectionConfig,
    ) -> Result<MultiplexedConnection, StoreError> {
        let (host, port) = topology::host_port(addr)
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
    pub async fn slot_map(&self) -> Result<Vec<(u16, u16, String)>, StoreError> {
        let mut conn = self.shared().await?;
        let reply: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await?;
        Ok(topology::slot_ranges(reply))
    }

    /// Does the node at `addr` answer `PING`?
    pub async fn ping(&self, addr: &str) -> bool {
        let Some((host, port)) = topology::host_port(addr) else {
            return false;
        };
        let Ok(mut conn) = self.shared().await else {
            return false;
        };
        let at = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
        conn.route_command(redis::cmd("PING"), at).await.is_ok()
    }

    /// A connection to one node that hears, as RESP3 pushes, every change
    /// to keys under `prefixes` (`CLIENT TRACKING ON BCAST`): reads need
    /// not opt in, so the cluster connection's reads stay as they are.
    pub async fn tracker(
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
}

impl Connection for Link {
    /// The client replaces a failed node's connection itself: nothing to mark.
    async fn send(&self, pipe: &Pipeline) -> Result<Vec<Value>, StoreError> {
        let mut conn = self.shared().await?;
        Ok(pipe.query_async::<Vec<Value>>(&mut conn).await?)
    }
}
