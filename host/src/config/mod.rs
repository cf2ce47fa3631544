//! The gateway's configuration file (`config/sluice.toml`): the [`Config`]
//! that holds every section, reading and parsing it, and the order of the
//! checks `sluice check-config` reports with line and field. Each section's
//! struct, defaults and checks live in a file of their own; `lines` says
//! where in the file a key is written.

mod breaker;
mod clients;
mod domains;
mod lines;
mod metrics;
mod near_cache;
mod plugins;
mod ratelimits;
mod redis;
mod server;
#[cfg(test)]
pub(crate) mod testing;
mod tracing;

#[cfg(test)]
pub(crate) use self::redis::url_refusal;
pub use self::redis::{ClientError, ReadFrom, RedisConfig, TlsConfig, Topology};
pub use breaker::BreakerConfig;
pub use clients::ClientConfig;
pub use domains::DomainConfig;
pub use metrics::MetricsConfig;
pub use near_cache::NearCacheConfig;
pub use plugins::{PluginsConfig, ScriptsConfig};
pub use ratelimits::{RateLimitConfig, WhenUnavailable};
pub use server::{Http2Config, ServerConfig, ServerTls};
pub use tracing::TracingConfig;

use crate::secret::redact_urls;
use lines::{Checker, Lines};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The whole file. Unknown keys are errors, so a typo never passes silently.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub redis: RedisConfig,
    pub plugins: PluginsConfig,
    #[serde(default)]
    pub breaker: BreakerConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub scripts: ScriptsConfig,
    #[serde(default)]
    pub near_cache: NearCacheConfig,
    /// Request traces to an OpenTelemetry collector (off by default).
    #[serde(default)]
    pub tracing: TracingConfig,
    /// Token-bucket policies for `/v1/ratelimit/{policy}/{subject}`.
    #[serde(default)]
    pub ratelimits: BTreeMap<Spanned<String>, RateLimitConfig>,
    /// Domain name → policy. A domain is the first path segment after
    /// `/v1/cache/` and the prefix `{domain}:` of every key it owns.
    #[serde(default)]
    pub domains: BTreeMap<Spanned<String>, DomainConfig>,
    /// Client name → API key hash and scopes. `None` (no `[clients]` table)
    /// leaves the data API open; an empty table closes it to everyone, so
    /// revoking the last client never opens it by accident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<BTreeMap<Spanned<String>, ClientConfig>>,
    /// The folder of the file; relative paths in it are relative to this.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// What is wrong with a config file, said so a person can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The TOML parser's message, which quotes the line it stopped at:
    /// kept with any URL's password already hidden.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}:{line}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        field: String,
        message: String,
    },
}

impl Config {
    /// Read, parse and check a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parse and check the text of a config file read from `path`. The text
    /// is parsed once: the spanned document gives both the lines of its keys
    /// and, deserialized, the config.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let refused = |mut e: toml::de::Error| {
            e.set_input(Some(text));
            ConfigError::Parse {
                path: path.to_owned(),
                message: redact_urls(&e.to_string()),
            }
        };
        let document = toml::de::DeTable::parse(text).map_err(refused)?;
        let lines = Lines::new(text, document.get_ref());
        let mut config =
            Config::deserialize(toml::de::Deserializer::from(document)).map_err(refused)?;
        config.base_dir = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        if let Some(tls) = &mut config.redis.tls {
            tls.resolve(&config.base_dir);
        }
        let file = Checker::new(path, &lines);
        if let Some(tls) = &mut config.server.tls {
            tls.load(&config.base_dir, &file.at("server"))?;
        }
        config.check(&file)?;
        Ok(config)
    }

    /// The checks serde cannot express, section by section; the first
    /// refusal ends them. Domains come after the sections they lean on
    /// (`redis.cluster`, `plugins.dir`), clients after the domains and
    /// rate-limit policies their scopes name.
    fn check(&self, file: &Checker) -> Result<(), ConfigError> {
        self.redis.check(&file.at("redis"))?;
        self.server.check(&file.at("server"))?;
        self.breaker.check(&file.at("breaker"))?;
        self.tracing.check(&file.at("tracing"))?;
        if self.plugins.max_instance_memory_mb == 0 {
            return Err(file
                .at("plugins")
                .invalid("max_instance_memory_mb", "must be at least 1"));
        }
        ratelimits::check(&self.ratelimits, &file.at("ratelimits"))?;
        domains::check(self, &file.at("domains"))?;
        clients::check(self, &file.at("clients"))
    }

    /// The scripts folder, if any, resolved against the file's folder.
    pub fn scripts_dir(&self) -> Option<PathBuf> {
        self.scripts.dir.as_ref().map(|d| self.base_dir.join(d))
    }

    /// Where the `.wasm` of a plugin lives.
    pub fn plugin_path(&self, plugin: &str) -> PathBuf {
        self.base_dir
            .join(&self.plugins.dir)
            .join(format!("{plugin}.wasm"))
    }

    /// `plugins.cache_dir`, resolved against the config file's folder.
    pub fn plugin_cache_dir(&self) -> Option<PathBuf> {
        (self.plugins.cache_dir.as_ref()).map(|dir| self.base_dir.join(dir))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{PATH, folder};
    use super::*;
    use std::net::SocketAddr;
    use std::time::Duration;

    #[test]
    fn a_parse_error_quoting_the_url_line_hides_its_password() {
        let text =
            "[plugins]\ndir = \"p\"\n[redis]\nurl = \"redis://app:planted-pw@db:6379\" oops\n";
        let e = Config::parse(text, Path::new(PATH)).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(shown.contains("redis://app:***@db:6379"), "{shown}");
        assert!(!shown.contains("planted-pw"), "{shown}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        for text in [
            "[plugins]\ndir = \"p\"\n[redis]\nurll = \"redis://x\"\n",
            "[plugins]\ndir = \"p\"\n[servr]\nlisten = \"127.0.0.1:1\"\n",
            "[plugins]\ndir = \"p\"\n[breaker]\nthreshold = 3\n",
            "[plugins]\ndir = \"p\"\n[domains.cache]\nplugin = \"x\"\nttl = 5\n",
        ] {
            let e = Config::parse(text, Path::new(PATH)).unwrap_err();
            assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
            let shown = e.to_string();
            assert!(shown.starts_with(PATH), "{shown}");
            assert!(shown.contains("unknown field"), "{shown}");
            // Parsed once, the message still quotes the line it is about.
            assert!(shown.contains(" | "), "{shown}");
        }
    }

    #[test]
    fn defaults_fill_what_the_file_leaves_out() {
        let (dir, path) = folder(&["fixed-ttl"]);
        let text = "[plugins]\ndir = \"plugins\"\n[ratelimits.global]\ncapacity = 10\nrefill_per_s = 1.5\n[domains.cache]\nplugin = \"fixed-ttl\"\n";
        let c = Config::parse(text, &path).unwrap();
        assert_eq!(c.server.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(
            (c.server.max_body_bytes, c.server.max_key_bytes),
            (1 << 20, 512)
        );
        assert_eq!(c.redis.url.expose(), "redis://127.0.0.1:6379");
        assert_eq!(c.redis.tls, None);
        assert_eq!((c.redis.pool_size, c.redis.shared_connections()), (8, 2));
        assert_eq!(c.redis.command_timeout(), Duration::from_secs(1));
        assert_eq!(c.redis.connect_timeout(), Duration::from_secs(2));
        let b = &c.breaker;
        assert_eq!(
            (
                b.failure_threshold,
                b.failure_rate,
                b.window_ms,
                b.min_calls
            ),
            (5, 0.5, 10_000, 20)
        );
        assert_eq!(
            (
                b.probe_interval_ms,
                b.recovery_timeout_ms,
                b.half_open_trials
            ),
            (50, 30_000, 3)
        );
        assert_eq!(c.metrics.info_interval_ms, 5_000);
        assert_eq!(c.near_cache.max_bytes, 64 << 20);
        assert!(c.plugins.watch);
        assert_eq!(c.plugins.access_stats_keys, 100_000);
        assert_eq!(c.scripts_dir(), None);
        assert_eq!(c.base_dir, dir.path());
        let rl = &c.ratelimits.values().next().unwrap();
        assert_eq!(rl.when_unavailable, WhenUnavailable::FailOpen);
        let d = c.domains.values().next().unwrap();
        assert_eq!((d.ttl_s, d.min_ttl_s, d.max_ttl_s), (60, 1, 86_400));
        assert_eq!(
            (d.max_stale_s, d.near_cache_ms, d.track_access),
            (0, 0, false)
        );
        assert_eq!((d.plugin_timeout_ms, d.plugin_memory_mib), (5, 16));
        assert!(d.prefixes.is_empty() && d.settings.is_empty());
        assert_eq!(
            c.plugin_path("fixed-ttl"),
            dir.path().join("plugins/fixed-ttl.wasm")
        );
    }
}
