//! The gateway's configuration file (`config/sluice.toml`): parsing, defaults
//! and the checks `sluice check-config` reports with line and field.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
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
    pub breaker: crate::store::breaker::BreakerConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub scripts: ScriptsConfig,
    #[serde(default)]
    pub near_cache: NearCacheConfig,
    /// Token-bucket policies for `/v1/ratelimit/{policy}/{subject}`.
    #[serde(default)]
    pub ratelimits: BTreeMap<Spanned<String>, RateLimitConfig>,
    /// Domain name → policy. A domain is the first path segment after
    /// `/v1/cache/` and the prefix `{domain}:` of every key it owns.
    #[serde(default)]
    pub domains: BTreeMap<Spanned<String>, DomainConfig>,
    /// The folder of the file; relative paths in it are relative to this.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where to accept HTTP; needs a restart to change.
    pub listen: SocketAddr,
    /// Larger bodies get 413 before the gateway reads them.
    pub max_body_bytes: usize,
    /// Longer keys get 400: Redis keys are copied on every command.
    pub max_key_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1 << 20,
            max_key_bytes: 512,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db` or `redis+unix:///path/to/socket`.
    pub url: String,
    /// Connections the gateway holds to Redis, all subsystems together.
    pub pool_size: u32,
    /// Of those, how many the request path shares (multiplexed); the rest
    /// serve commands that need a connection of their own.
    pub shared_connections: u32,
    /// How long to wait for a new connection to Redis.
    pub connect_timeout_ms: u64,
    /// How long any command or pipeline may take before the request gets 503.
    pub command_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            pool_size: 8,
            shared_connections: 2,
            connect_timeout_ms: 2_000,
            command_timeout_ms: 1_000,
        }
    }
}

impl RedisConfig {
    /// Shared lanes: at least one, never more than the budget.
    pub fn shared_connections(&self) -> usize {
        self.shared_connections.clamp(1, self.pool_size.max(1)) as usize
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// How often Redis's INFO is read into `redis_*` metrics.
    pub info_interval_ms: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            info_interval_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScriptsConfig {
    /// A folder of `NAME.lua` scripts plans may call by name (relative to
    /// this file); the built-in ones are always there.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NearCacheConfig {
    /// Bytes of values the gateway keeps in process for stale reads.
    pub max_bytes: u64,
}

impl Default for NearCacheConfig {
    fn default() -> Self {
        NearCacheConfig {
            max_bytes: 64 << 20,
        }
    }
}

/// What a rate-limit policy does while Redis cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenUnavailable {
    /// Admit (the protected service matters more than the limit).
    FailOpen,
    /// Refuse with 503 (the limit matters more).
    FailClosed,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Tokens the bucket holds: the largest burst.
    pub capacity: u64,
    /// Tokens added per second.
    pub refill_per_s: f64,
    #[serde(default = "default_when_unavailable")]
    pub when_unavailable: WhenUnavailable,
}

fn default_when_unavailable() -> WhenUnavailable {
    WhenUnavailable::FailOpen
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// The folder holding `NAME.wasm` files, relative to the config file.
    pub dir: PathBuf,
    /// Reload when a plugin file or the config file changes.
    #[serde(default = "yes")]
    pub watch: bool,
    /// Keys whose access statistics the host keeps (domains with
    /// `track_access`); the least recently used are forgotten.
    #[serde(default = "default_access_stats_keys")]
    pub access_stats_keys: u64,
}

fn yes() -> bool {
    true
}

fn default_access_stats_keys() -> u64 {
    100_000
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// The policy: `{plugins.dir}/{plugin}.wasm`.
    pub plugin: String,
    /// TTL of a write that names none ("always set TTLs").
    #[serde(default = "default_ttl_s")]
    pub ttl_s: u64,
    /// Lower bound for any TTL, from a client's `?ttl_s=` or a plugin's plan.
    #[serde(default = "default_min_ttl_s")]
    pub min_ttl_s: u64,
    /// Upper bound for any TTL.
    #[serde(default = "default_max_ttl_s")]
    pub max_ttl_s: u64,
    /// How stale a copy of a value read earlier may be served while Redis
    /// cannot answer; 0 never serves stale.
    #[serde(default)]
    pub max_stale_s: u64,
    /// Answer reads from the gateway's near cache for up to this long after
    /// reading Redis (0: always ask Redis). Redis's invalidations (client
    /// tracking) end a copy as soon as anyone changes the key.
    #[serde(default)]
    pub near_cache_ms: u64,
    /// Keep per-key access statistics (hits, misses, read rate) for the
    /// plugin, e.g. for adaptive TTLs.
    #[serde(default)]
    pub track_access: bool,
    /// Wall time one plugin call may take.
    #[serde(default = "default_plugin_timeout_ms")]
    pub plugin_timeout_ms: u64,
    /// Memory one plugin instance may grow to.
    #[serde(default = "default_plugin_memory_mib")]
    pub plugin_memory_mib: u64,
    /// Key prefixes besides `{domain}:` the plugin may touch (each ends in `:`).
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Settings only the plugin reads, handed to it as text.
    #[serde(default)]
    pub settings: BTreeMap<String, toml::Value>,
}

fn default_plugin_timeout_ms() -> u64 {
    5
}
fn default_plugin_memory_mib() -> u64 {
    16
}
fn default_ttl_s() -> u64 {
    60
}
fn default_min_ttl_s() -> u64 {
    1
}
fn default_max_ttl_s() -> u64 {
    86_400
}

impl DomainConfig {
    pub fn sandbox(&self) -> crate::plugin::SandboxLimits {
        crate::plugin::SandboxLimits {
            deadline: Duration::from_millis(self.plugin_timeout_ms),
            memory_bytes: (self.plugin_memory_mib as usize).saturating_mul(1 << 20),
        }
    }

    /// What the plugin sees as its settings: the TTL bounds and its own table.
    pub fn plugin_settings(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("ttl_s".to_owned(), self.ttl_s.to_string()),
            ("min_ttl_s".to_owned(), self.min_ttl_s.to_string()),
            ("max_ttl_s".to_owned(), self.max_ttl_s.to_string()),
        ];
        out.extend(self.settings.iter().map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        }));
        out
    }
}

/// What is wrong with a config file, said so a person can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
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

    /// Parse and check the text of a config file read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        config.base_dir = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        config.check(text, path)?;
        Ok(config)
    }

    /// The checks serde cannot express. Each names the line and the field.
    fn check(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let invalid = |line: usize, field: String, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            line,
            field,
            message,
        };
        let redis_line = line_of(text, 0, "[redis]");
        if redis::Client::open(self.redis.url.as_str()).is_err() {
            return Err(invalid(
                line_of(text, redis_line, "url"),
                "redis.url".into(),
                format!("{:?} is not a Redis URL", self.redis.url),
            ));
        }
        if self.redis.pool_size == 0 {
            return Err(invalid(
                line_of(text, redis_line, "pool_size"),
                "redis.pool_size".into(),
                "must be at least 1".into(),
            ));
        }
        let breaker_line = line_of(text, 0, "[breaker]");
        let b = &self.breaker;
        if b.failure_threshold == 0 || b.half_open_trials == 0 || b.probe_interval_ms == 0 {
            return Err(invalid(
                breaker_line,
                "breaker".into(),
                "failure_threshold, half_open_trials and probe_interval_ms must be at least 1"
                    .into(),
            ));
        }
        if !(0.0..=1.0).contains(&b.failure_rate) || b.failure_rate == 0.0 {
            return Err(invalid(
                line_of(text, breaker_line, "failure_rate"),
                "breaker.failure_rate".into(),
                "must be in (0, 1]".into(),
            ));
        }
        for (name, rl) in &self.ratelimits {
            let line = text[..name.span().start].lines().count().max(1);
            if rl.capacity == 0 || !(rl.refill_per_s > 0.0 && rl.refill_per_s.is_finite()) {
                return Err(invalid(
                    line,
                    format!("ratelimits.{}", name.get_ref()),
                    "capacity must be at least 1 and refill_per_s a positive number".into(),
                ));
            }
        }
        for (name, domain) in &self.domains {
            let line = text[..name.span().start].lines().count().max(1);
            let field = |f: &str| format!("domains.{}.{f}", name.get_ref());
            let at = |f: &str| line_of(text, line, f);
            if !valid_domain_name(name.get_ref()) {
                return Err(invalid(
                    line,
                    format!("domains.{}", name.get_ref()),
                    "domain names are 1 to 64 of a-z, 0-9, '_' and '-'".into(),
                ));
            }
            if domain.min_ttl_s == 0 {
                return Err(invalid(
                    at("min_ttl_s"),
                    field("min_ttl_s"),
                    "must be at least 1: every key expires".into(),
                ));
            }
            if domain.min_ttl_s > domain.max_ttl_s {
                return Err(invalid(
                    at("min_ttl_s"),
                    field("min_ttl_s"),
                    format!(
                        "{} is greater than max_ttl_s ({})",
                        domain.min_ttl_s, domain.max_ttl_s
                    ),
                ));
            }
            if !(domain.min_ttl_s..=domain.max_ttl_s).contains(&domain.ttl_s) {
                return Err(invalid(
                    at("ttl_s"),
                    field("ttl_s"),
                    format!(
                        "{} is outside min_ttl_s..=max_ttl_s ({}..={})",
                        domain.ttl_s, domain.min_ttl_s, domain.max_ttl_s
                    ),
                ));
            }
            if domain.plugin_timeout_ms == 0 || domain.plugin_memory_mib == 0 {
                return Err(invalid(
                    line,
                    format!("domains.{}", name.get_ref()),
                    "plugin_timeout_ms and plugin_memory_mib must be at least 1".into(),
                ));
            }
            if let Some(p) = domain
                .prefixes
                .iter()
                .find(|p| p.len() < 2 || !p.ends_with(':'))
            {
                return Err(invalid(
                    at("prefixes"),
                    field("prefixes"),
                    format!("{p:?}: a prefix is a name followed by ':'"),
                ));
            }
            let wasm = self.plugin_path(&domain.plugin);
            if !wasm.is_file() {
                return Err(invalid(
                    at("plugin"),
                    field("plugin"),
                    format!("no plugin file {}", wasm.display()),
                ));
            }
        }
        Ok(())
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
}

/// The 1-based line, at or after line `from`, that starts with `key`; `from`
/// when none does (good enough to point a person at the right table).
fn line_of(text: &str, from: usize, key: &str) -> usize {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| l.trim_start().starts_with(key))
        .map_or(from, |(i, _)| i + 1)
}

/// A Redis URL with its password replaced by `***`, for display.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

/// `[a-z0-9_-]{1,64}`: domains appear in URLs, key prefixes and metric labels.
pub fn valid_domain_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}
