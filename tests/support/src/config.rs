//! Gateway configs for the tests, and the plugins they load.

use crate::{Redis, repo_root};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// The repo's `build/plugins/`, where `make plugins` puts every policy.
pub fn plugins_dir() -> PathBuf {
    let dir = repo_root().join("build/plugins");
    assert!(
        dir.join("fixed-ttl.wasm").is_file(),
        "no plugins in {}: run `make plugins` (make test does)",
        dir.display()
    );
    dir.canonicalize().expect("plugins dir")
}

/// A config for `redis` with the `cache` domain on fixed-ttl; `extra` is
/// appended (more domains, overrides in new tables).
pub fn config(redis: &Redis, extra: &str) -> String {
    config_in(redis, &plugins_dir(), extra)
}

/// A plugins folder of this test's own: every shipped plugin plus the named
/// fixtures from `build/fixtures/`, so a test can replace files in it.
pub fn own_plugins_dir(fixtures: &[&str]) -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(plugins_dir()).expect("plugins dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    let built = repo_root().join("build/fixtures");
    for f in fixtures {
        let from = built.join(format!("{f}.wasm"));
        std::fs::copy(&from, dir.path().join(format!("{f}.wasm")))
            .unwrap_or_else(|e| panic!("{}: {e} (make plugins builds fixtures)", from.display()));
    }
    dir
}

/// [`config`] with another plugins folder.
pub fn config_in(redis: &Redis, plugins: &Path, extra: &str) -> String {
    config_at(&redis.url(), plugins, extra)
}

/// [`config`] for a Redis at `url` (a user, a password, TLS).
pub fn config_url(url: &str, extra: &str) -> String {
    config_at(url, &plugins_dir(), extra)
}

fn config_at(url: &str, plugins: &Path, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 65536
max_key_bytes = 128

[redis]
url = "{url}"
pool_size = 4
command_timeout_ms = 1000

[plugins]
dir = "{plugins}"
cache_dir = "{cache}"

[domains.cache]
plugin = "fixed-ttl"
ttl_s = 60
min_ttl_s = 1
max_ttl_s = 3600
streams = true
{extra}"#,
        plugins = plugins.display(),
        cache = plugin_cache_dir().display(),
    )
}

/// Compiled plugins, shared by every gateway of the suite: a Python or
/// TypeScript policy is compiled once (seconds), not per gateway.
pub fn plugin_cache_dir() -> PathBuf {
    repo_root().join("build/plugin-cache")
}

/// The example configuration's other domains and its rate limit (beside the
/// `cache` domain [`config`] has): `price`, `market_depth`, `arbitrage`
/// (streams) and `global`, as config/sluice.toml sets them.
pub const EXAMPLE_DOMAINS: &str = r#"
[ratelimits.global]
capacity = 100
refill_per_s = 50

[domains.price]
plugin = "price-hash"
ttl_s = 5
min_ttl_s = 1
max_ttl_s = 60
max_stale_s = 30
near_cache_ms = 250

[domains.market_depth]
plugin = "adaptive-ttl"
ttl_s = 10
min_ttl_s = 2
max_ttl_s = 120
track_access = true

[domains.market_depth.settings]
hot_reads_per_min = 60
jitter_pct = 10

[domains.arbitrage]
plugin = "stream-router"
ttl_s = 86400
streams = true

[domains.arbitrage.settings]
maxlen = 10000
per_asset = true
"#;
