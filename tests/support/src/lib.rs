//! Real parts for Sluice's end-to-end tests (`tests/e2e/`): a redis-server
//! on a unix socket in a temp dir (and, when asked, on a loopback port, plain
//! or TLS with certificates made by the test), a local Redis Cluster, and the
//! `sluice` binary on port 0 with real plugins from `build/plugins/` (`make
//! test` builds them). Every process is killed on drop.
//!
//! The tests import it as `use sluice_test_support as support;`.

mod cluster;
mod config;
mod gateway;
mod http;
mod pki;
mod process;
mod redis_server;

pub use cluster::{CLUSTER_NODE_TIMEOUT_MS, Cluster, ClusterNode, FAILOVER};
pub use config::{
    EXAMPLE_DOMAINS, config, config_in, config_url, own_plugins_dir, plugin_cache_dir, plugins_dir,
};
pub use gateway::{Gateway, gateway_bin};
pub use http::{assert_problem, metric, raw_http, scrape};
pub use pki::Pki;
pub use process::{STARTUP, eventually, have, rss_kib_and_cpu_ticks, run_within, wait_until};
pub use redis_server::Redis;

use std::path::{Path, PathBuf};

/// The repository's root (where `build/`, `config/` and `docs/` are),
/// canonical.
pub fn repo_root() -> PathBuf {
    // This crate is tests/support/.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository's root")
}
