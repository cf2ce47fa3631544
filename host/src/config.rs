//! The gateway's configuration file (`config/sluice.toml`): parsing, defaults
//! and the checks `sluice check-config` reports with line and field.

use crate::secret::{RedisUrl, redact_urls};
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
    pub breaker: BreakerConfig,
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
    /// Client name → API key hash and scopes. `None` (no `[clients]` table)
    /// leaves the data API open; an empty table closes it to everyone, so
    /// revoking the last client never opens it by accident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<BTreeMap<Spanned<String>, ClientConfig>>,
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
    /// A body not read in full within this long gets 408 (a client that
    /// trickles its body does not hold a request open forever).
    pub body_timeout_ms: u64,
    /// An answer larger than this (an mget of large values) gets 413 naming
    /// the limit instead of a body the gateway would have to build in memory.
    pub max_response_bytes: usize,
    /// Response bodies of 64 KiB or more, summed over every request whose
    /// body is not yet sent (a client that reads slowly holds its own):
    /// past it a request is shed with 503 + Retry-After. At least
    /// `max_response_bytes`.
    pub max_buffered_bytes: usize,
    /// Requests served at once; past it a request is shed with 503 + Retry-After.
    pub max_in_flight: usize,
    /// Client connections open at once; past it a new connection is closed
    /// as soon as it is accepted.
    pub max_connections: usize,
    /// How long a write's `Idempotency-Key` is remembered: a retry within
    /// it is answered with the first response, never applied again.
    pub idempotency_window_s: u64,
    /// After SIGTERM: how long requests in flight may take to finish before
    /// the process exits anyway (long-polls end at once).
    pub drain_ms: u64,
    /// Threads serving HTTP, each its own event loop with its own listening
    /// socket and its own Redis lanes (0: one per CPU). Restart to change.
    pub threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1 << 20,
            max_key_bytes: 512,
            body_timeout_ms: 10_000,
            max_response_bytes: 16 << 20,
            max_buffered_bytes: 64 << 20,
            max_in_flight: 1_024,
            max_connections: 4_096,
            idempotency_window_s: 86_400,
            drain_ms: 15_000,
            threads: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db`, `rediss://...` (TLS) or
    /// `redis+unix:///path/to/socket`. Shown everywhere without its password.
    pub url: RedisUrl,
    /// For a `rediss://` URL: the CA that signed Redis's certificate and,
    /// when Redis asks for one, the gateway's own certificate.
    pub tls: Option<TlsConfig>,
    /// Connections the gateway holds to Redis, all subsystems together.
    pub pool_size: u32,
    /// Of those, how many the request path shares (multiplexed); the rest
    /// serve commands that need a connection of their own.
    pub shared_connections: u32,
    /// How long to wait for a new connection to Redis.
    pub connect_timeout_ms: u64,
    /// How long any command or pipeline may take before the request gets 503.
    pub command_timeout_ms: u64,
    /// Talk to a Redis Cluster: `url` names any node, `seeds` may name more.
    pub cluster: bool,
    /// More nodes of the cluster to learn its topology from, like `url`.
    pub seeds: Vec<RedisUrl>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: RedisUrl::new("redis://127.0.0.1:6379"),
            tls: None,
            pool_size: 8,
            shared_connections: 2,
            connect_timeout_ms: 2_000,
            command_timeout_ms: 1_000,
            cluster: false,
            seeds: Vec::new(),
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

/// `[redis.tls]`: whom to trust, and what to show when Redis checks clients
/// (`tls-auth-clients yes`). Paths are relative to the config file; their
/// contents are read when the gateway starts, never shown.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate(s) of the CA that signed Redis's certificate: the
    /// only ones trusted (not the system's store).
    pub ca_file: PathBuf,
    /// The gateway's PEM certificate (chain), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Its PEM private key, with `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// Thresholds, from `[breaker]` in the config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// Failure rate over `window_ms` that opens it, given `min_calls` calls.
    pub failure_rate: f64,
    pub window_ms: u64,
    pub min_calls: u32,
    /// First probe after opening, and the pace of the first few probes.
    pub probe_interval_ms: u64,
    /// The longest wait between probes while Redis stays down.
    pub recovery_timeout_ms: u64,
    /// Successful trial requests in half-open that close the breaker.
    pub half_open_trials: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            failure_rate: 0.5,
            window_ms: 10_000,
            min_calls: 20,
            probe_interval_ms: 50,
            recovery_timeout_ms: 30_000,
            half_open_trials: 3,
        }
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
    /// `track_access`); the least used are forgotten.
    #[serde(default = "default_access_stats_keys")]
    pub access_stats_keys: u64,
}

fn yes() -> bool {
    true
}

fn default_access_stats_keys() -> u64 {
    100_000
}

/// Which nodes of a Redis Cluster serve a domain's reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    #[default]
    Primary,
    Replica,
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
    /// Whether clients may create and read consumer groups of streams under
    /// this domain's namespace (`/v1/streams/{domain}:...`). Off by default:
    /// a client could otherwise turn any key of the domain into a stream.
    #[serde(default)]
    pub streams: bool,
    /// Wall time one plugin call may take.
    #[serde(default = "default_plugin_timeout_ms")]
    pub plugin_timeout_ms: u64,
    /// Memory one plugin instance may grow to.
    #[serde(default = "default_plugin_memory_mib")]
    pub plugin_memory_mib: u64,
    /// Key prefixes besides `{domain}:` the plugin may touch (each ends in `:`).
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// On a Redis Cluster: where reads go. `replica` spreads them over the
    /// replicas (they may lag the primary by the replication delay);
    /// writes always go to primaries.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Settings only the plugin reads, handed to its `configure` whole (as
    /// MessagePack: arrays and nested tables intact).
    #[serde(default)]
    pub settings: BTreeMap<String, toml::Value>,
}

/// One client of the data API: who it is (the SHA-256 of its key) and what
/// it may touch. The file holds no key, so a leaked config grants nothing.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Hex SHA-256 of the key the client sends as `Authorization: Bearer`
    /// (`sluice hash-key` prints it).
    pub key_sha256: String,
    /// Domains it may read (cache GET/HEAD, mget).
    #[serde(default)]
    pub read: Vec<String>,
    /// Domains it may write (cache PUT/DELETE, mset).
    #[serde(default)]
    pub write: Vec<String>,
    /// Domains whose events it may publish and whose streams it may consume.
    #[serde(default)]
    pub events: Vec<String>,
    /// Rate-limit policies it may draw tokens from.
    #[serde(default)]
    pub ratelimits: Vec<String>,
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

    /// Parse and check the text of a config file read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: redact_urls(&e.to_string()),
        })?;
        config.base_dir = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        if let Some(tls) = &mut config.redis.tls {
            let base = &config.base_dir;
            tls.ca_file = base.join(&tls.ca_file);
            for file in [&mut tls.cert_file, &mut tls.key_file]
                .into_iter()
                .flatten()
            {
                *file = base.join(&*file);
            }
        }
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
        let redis_line = table_line(text, "redis");
        // What the gateway will connect with: the URL, and `[redis.tls]`'s
        // files read and parsed, as the store will.
        if let Err(e) = crate::store::connect::client(&self.redis) {
            let line = match e.field().split_once('.') {
                Some(("tls", key)) => line_of(text, table_line(text, "redis.tls"), key),
                _ if e.field() == "tls" => table_line(text, "redis.tls").max(redis_line),
                _ => line_of(text, redis_line, e.field()),
            };
            return Err(invalid(line, format!("redis.{}", e.field()), e.to_string()));
        }
        if self.redis.cluster
            && let Err(e) = crate::store::connect::cluster_client(&self.redis, ReadFrom::Primary)
        {
            let line = line_of(text, redis_line, e.field());
            return Err(invalid(line, format!("redis.{}", e.field()), e.to_string()));
        }
        for (name, domain) in &self.domains {
            if domain.read_from == ReadFrom::Replica && !self.redis.cluster {
                let table = table_line(text, &format!("domains.{name}"));
                return Err(invalid(
                    line_of(text, table, "read_from"),
                    format!("domains.{name}.read_from"),
                    "reads from replicas need a Redis Cluster (redis.cluster = true)".into(),
                ));
            }
        }
        if self.redis.pool_size == 0 {
            return Err(invalid(
                line_of(text, redis_line, "pool_size"),
                "redis.pool_size".into(),
                "must be at least 1".into(),
            ));
        }
        let server = &self.server;
        if server.max_buffered_bytes < server.max_response_bytes {
            return Err(invalid(
                line_of(text, table_line(text, "server"), "max_buffered_bytes"),
                "server.max_buffered_bytes".into(),
                format!(
                    "must be at least server.max_response_bytes ({}): a response that size could never be sent",
                    server.max_response_bytes
                ),
            ));
        }
        if server.idempotency_window_s == 0 {
            return Err(invalid(
                line_of(text, table_line(text, "server"), "idempotency_window_s"),
                "server.idempotency_window_s".into(),
                "must be at least 1".into(),
            ));
        }
        let breaker_line = table_line(text, "breaker");
        let b = &self.breaker;
        // Zero in any of these breaks the breaker: min_calls 0 trips it with
        // no failure at all, a zero window or interval spins its task.
        let at_least_one = [
            ("failure_threshold", u64::from(b.failure_threshold)),
            ("window_ms", b.window_ms),
            ("min_calls", u64::from(b.min_calls)),
            ("probe_interval_ms", b.probe_interval_ms),
            ("half_open_trials", u64::from(b.half_open_trials)),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(
                line_of(text, breaker_line, key),
                format!("breaker.{key}"),
                "must be at least 1".into(),
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
            let line = line_at(text, name.span().start);
            if rl.capacity == 0 || !(rl.refill_per_s > 0.0 && rl.refill_per_s.is_finite()) {
                return Err(invalid(
                    line,
                    format!("ratelimits.{}", name.get_ref()),
                    "capacity must be at least 1 and refill_per_s a positive number".into(),
                ));
            }
        }
        for (name, domain) in &self.domains {
            let line = line_at(text, name.span().start);
            let field = |f: &str| format!("domains.{}.{f}", name.get_ref());
            let at = |f: &str| line_of(text, line, f);
            if !valid_domain_name(name.get_ref()) {
                return Err(invalid(
                    line,
                    format!("domains.{}", name.get_ref()),
                    "domain names are 1 to 64 of a-z, 0-9, '_' and '-'".into(),
                ));
            }
            let reserved = |key: &str| RESERVED_PREFIXES.iter().any(|r| key.starts_with(r));
            if reserved(&format!("{}:", name.get_ref())) {
                return Err(invalid(
                    line,
                    format!("domains.{}", name.get_ref()),
                    format!(
                        "the keys under {} are the gateway's own: choose another domain name",
                        RESERVED_PREFIXES.join(" and ")
                    ),
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
            for (key, value) in [
                ("plugin_timeout_ms", domain.plugin_timeout_ms),
                ("plugin_memory_mib", domain.plugin_memory_mib),
            ] {
                if value == 0 {
                    return Err(invalid(at(key), field(key), "must be at least 1".into()));
                }
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
            if let Some(p) = domain.prefixes.iter().find(|p| reserved(p)) {
                return Err(invalid(
                    at("prefixes"),
                    field("prefixes"),
                    format!("{p:?}: keys under it are the gateway's own"),
                ));
            }
            // A declared prefix may not reach into another domain's keys.
            let overlap = |a: &str, b: &str| a.starts_with(b) || b.starts_with(a);
            for p in &domain.prefixes {
                let clash = self.domains.iter().find_map(|(other, od)| {
                    let theirs =
                        std::iter::once(format!("{}:", other.get_ref())).chain(if other == name {
                            Vec::new()
                        } else {
                            od.prefixes.clone()
                        });
                    theirs
                        .filter(|t| overlap(p, t))
                        .map(|t| (other.get_ref().clone(), t))
                        .next()
                });
                if let Some((other, theirs)) = clash {
                    return Err(invalid(
                        at("prefixes"),
                        field("prefixes"),
                        format!(
                            "{p:?} overlaps {theirs:?} of domain {other:?}: a key would belong to both"
                        ),
                    ));
                }
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
        self.check_clients(text, path)
    }

    /// `[clients.NAME]`: a well-formed hash no other client has, and scopes
    /// naming only configured domains and rate-limit policies (a typo would
    /// otherwise deny silently at request time).
    fn check_clients(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let Some(clients) = &self.clients else {
            return Ok(());
        };
        let invalid = |line: usize, field: String, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            line,
            field,
            message,
        };
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for (name, client) in clients {
            let line = line_at(text, name.span().start);
            let field = |f: &str| format!("clients.{}.{f}", name.get_ref());
            let at = |f: &str| line_of(text, line, f);
            if !valid_domain_name(name.get_ref()) || name.get_ref() == "-" {
                return Err(invalid(
                    line,
                    format!("clients.{}", name.get_ref()),
                    "client names are 1 to 64 of a-z, 0-9, '_' and '-' (not \"-\" alone: that is the metric label of anonymous requests)".into(),
                ));
            }
            let hash = &client.key_sha256;
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    at("key_sha256"),
                    field("key_sha256"),
                    "must be 64 hex digits, the SHA-256 of the key (`sluice hash-key` prints it)"
                        .into(),
                ));
            }
            if let Some(other) = seen.insert(hash.to_ascii_lowercase(), name.get_ref()) {
                return Err(invalid(
                    at("key_sha256"),
                    field("key_sha256"),
                    format!("the same key as client {other:?}: each client needs a key of its own"),
                ));
            }
            let has_domain = |d: &str| self.domains.keys().any(|k| k.get_ref() == d);
            let has_policy = |p: &str| self.ratelimits.keys().any(|k| k.get_ref() == p);
            for (right, names) in [
                ("read", &client.read),
                ("write", &client.write),
                ("events", &client.events),
            ] {
                if let Some(d) = names.iter().find(|d| !has_domain(d)) {
                    return Err(invalid(
                        at(right),
                        field(right),
                        format!("{d:?} is not a configured domain"),
                    ));
                }
            }
            if let Some(p) = client.ratelimits.iter().find(|p| !has_policy(p)) {
                return Err(invalid(
                    at("ratelimits"),
                    field("ratelimits"),
                    format!("{p:?} is not a configured rate-limit policy"),
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

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The name inside a table header line (`[name]  # comment`), if it is one.
fn header_name(line: &str) -> Option<&str> {
    let line = line.split('#').next()?.trim();
    line.strip_prefix('[')?.strip_suffix(']').map(str::trim)
}

fn is_header(line: &str) -> bool {
    header_name(line).is_some()
}

/// The 1-based line of the table header `[name]`; 0 when the file has none
/// (then its keys, if any, are top-level dotted keys).
fn table_line(text: &str, name: &str) -> usize {
    text.lines()
        .position(|l| header_name(l) == Some(name))
        .map_or(0, |i| i + 1)
}

/// The 1-based line after line `from` (a table's header) and before the next
/// table header that sets `key` (`key = ...`, not a longer key it begins);
/// `from` (at least 1) when the table leaves the key out, since then the
/// table itself is the place to look.
fn line_of(text: &str, from: usize, key: &str) -> usize {
    text.lines()
        .enumerate()
        .skip(from)
        .take_while(|(_, l)| !is_header(l))
        .find(|(_, l)| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(from.max(1), |(i, _)| i + 1)
}

/// Key prefixes the gateway keeps for itself (rate-limit buckets, idempotency
/// records): no domain or declared prefix may reach them.
pub const RESERVED_PREFIXES: [&str; 2] = ["ratelimit:", "idempotency:"];

/// `[a-z0-9_-]{1,64}`: domains appear in URLs, key prefixes and metric labels.
pub fn valid_domain_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "conf/sluice.toml";

    /// The rendered refusal of `text`, read from `conf/sluice.toml`.
    fn refusal(text: &str) -> String {
        refusal_at(text, Path::new(PATH))
    }

    fn refusal_at(text: &str, path: &Path) -> String {
        match Config::parse(text, path) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    /// A config folder with `plugins/NAME.wasm` (empty) for each name.
    fn folder(plugins: &[&str]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        for p in plugins {
            std::fs::write(dir.path().join("plugins").join(format!("{p}.wasm")), b"").unwrap();
        }
        let path = dir.path().join("sluice.toml");
        (dir, path)
    }

    #[test]
    fn an_invalid_redis_url_is_refused_on_its_line() {
        let text = "[plugins]\ndir = \"plugins\"\n\n[redis]\n# url = \"redis://x\"\npool_size = 4\nurl = \"http://x\"\n";
        assert_eq!(
            refusal(text),
            "conf/sluice.toml:7: redis.url: \"http://x\" is not a Redis URL: expected redis://, rediss:// (TLS) or redis+unix://"
        );
    }

    #[test]
    fn a_rediss_url_with_a_user_is_a_redis_url() {
        let text = "[plugins]\ndir = \"p\"\n[redis]\nurl = \"rediss://app:pw@db:6380/0\"\n";
        let c = Config::parse(text, Path::new(PATH)).unwrap();
        assert_eq!(c.redis.url.to_string(), "rediss://app:***@db:6380/0");
    }

    #[test]
    fn tls_files_are_read_relative_to_the_file_and_refused_on_their_lines() {
        let (dir, path) = folder(&[]);
        let ca = rcgen::generate_simple_self_signed(vec!["db".to_owned()]).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
        std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
        let head =
            "[plugins]\ndir = \"plugins\"\n[redis]\nurl = \"rediss://db:6380\"\n\n[redis.tls]\n";
        let c = Config::parse(&format!("{head}ca_file = \"ca.pem\"\n"), &path).unwrap();
        let tls = c.redis.tls.unwrap();
        assert_eq!(tls.ca_file, dir.path().join("ca.pem"));
        let shown = |key: &str, file: &str| {
            format!(
                "{}:7: redis.tls.{key}: {}",
                path.display(),
                dir.path().join(file).display()
            )
        };
        let e = refusal_at(&format!("{head}ca_file = \"absent.pem\"\n"), &path);
        assert!(
            e.starts_with(&format!(
                "{}: cannot read it",
                shown("ca_file", "absent.pem")
            )),
            "{e}"
        );
        let e = refusal_at(&format!("{head}ca_file = \"junk.pem\"\n"), &path);
        assert!(
            e.starts_with(&format!(
                "{}: holds no PEM certificate",
                shown("ca_file", "junk.pem")
            )),
            "{e}"
        );
        let e = refusal_at(
            &format!("{head}ca_file = \"ca.pem\"\ncert_file = \"ca.pem\"\n"),
            &path,
        );
        assert!(
            e.ends_with(":6: redis.tls: cert_file and key_file go together: give both or neither"),
            "{e}"
        );
        let e = refusal_at(
            &format!(
                "{head}cert_file = \"ca.pem\"\nkey_file = \"junk.pem\"\nca_file = \"ca.pem\"\n"
            ),
            &path,
        );
        assert!(
            e.contains(":8: redis.tls.key_file: ")
                && e.ends_with("holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"),
            "{e}"
        );
        let plain = head.replace("rediss://", "redis://") + "ca_file = \"ca.pem\"\n";
        assert!(
            refusal_at(&plain, &path).ends_with(
                ":4: redis.url: [redis.tls] is for rediss:// URLs; this one is redis://"
            )
        );
    }

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
    fn replica_reads_and_a_cluster_over_a_unix_socket_are_refused() {
        let domain =
            "[plugins]\ndir = \"p\"\n[domains.d]\nplugin = \"x\"\nread_from = \"replica\"\n";
        let single = format!("[redis]\nurl = \"redis://127.0.0.1\"\n{domain}");
        assert_eq!(
            refusal(&single),
            "conf/sluice.toml:7: domains.d.read_from: reads from replicas need a Redis Cluster (redis.cluster = true)"
        );
        let cluster = format!("[redis]\nurl = \"redis://127.0.0.1\"\ncluster = true\n{domain}");
        // On a cluster the line passes (what stops this file is its missing plugin).
        let on_cluster = refusal(&cluster);
        assert!(!on_cluster.contains("read_from"), "{on_cluster}");
        let unix =
            "[redis]\nurl = \"redis+unix:///tmp/r.sock\"\ncluster = true\n[plugins]\ndir = \"p\"\n";
        let e = refusal(unix);
        assert!(e.contains("redis.url") && e.contains("over TCP"), "{e}");
    }

    #[test]
    fn a_zero_pool_is_refused() {
        let text =
            "[redis]\nurl = \"redis://127.0.0.1\"\npool_size = 0\n\n[plugins]\ndir = \"p\"\n";
        assert_eq!(
            refusal(text),
            "conf/sluice.toml:3: redis.pool_size: must be at least 1"
        );
    }

    #[test]
    fn each_breaker_count_and_interval_must_be_at_least_one() {
        for key in [
            "failure_threshold",
            "window_ms",
            "min_calls",
            "probe_interval_ms",
            "half_open_trials",
        ] {
            let text = format!(
                "[plugins]\ndir = \"p\"\n[breaker]\nfailure_rate = 0.5\n{key} = 0\nrecovery_timeout_ms = 1\n"
            );
            assert_eq!(
                refusal(&text),
                format!("conf/sluice.toml:5: breaker.{key}: must be at least 1")
            );
        }
    }

    #[test]
    fn the_failure_rate_must_be_in_zero_one() {
        for rate in ["0.0", "-0.1", "1.5", "nan"] {
            let text = format!("[plugins]\ndir = \"p\"\n\n[breaker]\nfailure_rate = {rate}\n");
            assert_eq!(
                refusal(&text),
                "conf/sluice.toml:5: breaker.failure_rate: must be in (0, 1]",
                "{rate}"
            );
        }
        let text = "[plugins]\ndir = \"p\"\n[breaker]\nfailure_rate = 1.0\n";
        assert_eq!(
            Config::parse(text, Path::new(PATH))
                .unwrap()
                .breaker
                .failure_rate,
            1.0
        );
    }

    #[test]
    fn a_rate_limit_needs_capacity_and_a_positive_refill() {
        let msg = "capacity must be at least 1 and refill_per_s a positive number";
        let text = "[plugins]\ndir = \"p\"\n\n[ratelimits.ok]\ncapacity = 1\nrefill_per_s = 1\n\n[ratelimits.global]\ncapacity = 0\nrefill_per_s = 5\n";
        assert_eq!(refusal(text), format!("{PATH}:8: ratelimits.global: {msg}"));
        let text = "[plugins]\ndir = \"p\"\n[ratelimits.global]\ncapacity = 5\nrefill_per_s = 0\n";
        assert_eq!(refusal(text), format!("{PATH}:3: ratelimits.global: {msg}"));
    }

    #[test]
    fn an_inline_rate_limit_is_reported_on_its_own_line() {
        // The key starts its line: the line before it is not the answer.
        let text = "[plugins]\ndir = \"p\"\n[ratelimits]\nfine = { capacity = 1, refill_per_s = 1 }\nzero = { capacity = 0, refill_per_s = 1 }\n";
        assert_eq!(
            refusal(text),
            format!(
                "{PATH}:5: ratelimits.zero: capacity must be at least 1 and refill_per_s a positive number"
            )
        );
    }

    #[test]
    fn an_invalid_domain_name_is_refused() {
        let msg = "domain names are 1 to 64 of a-z, 0-9, '_' and '-'";
        let text = "[plugins]\ndir = \"p\"\n\n[domains.Cache]\nplugin = \"fixed-ttl\"\n";
        assert_eq!(refusal(text), format!("{PATH}:4: domains.Cache: {msg}"));
        let text = "[plugins]\ndir = \"p\"\n[domains.\"a b\"]\nplugin = \"fixed-ttl\"\n";
        assert_eq!(refusal(text), format!("{PATH}:3: domains.a b: {msg}"));
    }

    #[test]
    fn min_ttl_zero_is_refused() {
        let text = "[plugins]\ndir = \"p\"\n\n[domains.cache]\nplugin = \"x\"\nmin_ttl_s = 0\n";
        assert_eq!(
            refusal(text),
            format!("{PATH}:6: domains.cache.min_ttl_s: must be at least 1: every key expires")
        );
    }

    #[test]
    fn min_ttl_above_max_ttl_is_refused() {
        let text = "[plugins]\ndir = \"p\"\n[domains.cache]\nplugin = \"x\"\nmax_ttl_s = 10\nmin_ttl_s = 20\n";
        assert_eq!(
            refusal(text),
            format!("{PATH}:6: domains.cache.min_ttl_s: 20 is greater than max_ttl_s (10)")
        );
    }

    #[test]
    fn a_ttl_outside_its_bounds_is_refused() {
        let text =
            "[plugins]\ndir = \"p\"\n[domains.cache]\nplugin = \"x\"\nttl_s = 10\nmin_ttl_s = 50\n";
        assert_eq!(
            refusal(text),
            format!(
                "{PATH}:5: domains.cache.ttl_s: 10 is outside min_ttl_s..=max_ttl_s (50..=86400)"
            )
        );
    }

    #[test]
    fn a_default_ttl_outside_the_bounds_points_at_its_own_domain() {
        // `a` leaves ttl_s out (60 > 30); `b`'s ttl_s is not the culprit.
        let text = "[plugins]\ndir = \"p\"\n\n[domains.a]\nplugin = \"x\"\nmax_ttl_s = 30\n\n[domains.b]\nplugin = \"x\"\nttl_s = 5\n";
        assert_eq!(
            refusal(text),
            format!("{PATH}:4: domains.a.ttl_s: 60 is outside min_ttl_s..=max_ttl_s (1..=30)")
        );
    }

    #[test]
    fn plugin_limits_must_be_at_least_one() {
        let text =
            "[plugins]\ndir = \"p\"\n[domains.cache]\nplugin = \"x\"\nplugin_timeout_ms = 0\n";
        assert_eq!(
            refusal(text),
            format!("{PATH}:5: domains.cache.plugin_timeout_ms: must be at least 1")
        );
        let text =
            "[plugins]\ndir = \"p\"\n[domains.cache]\nplugin = \"x\"\nplugin_memory_mib = 0\n";
        assert_eq!(
            refusal(text),
            format!("{PATH}:5: domains.cache.plugin_memory_mib: must be at least 1")
        );
    }

    #[test]
    fn a_prefix_must_be_a_name_followed_by_a_colon() {
        for (prefix, shown) in [("\"orders\"", "\"orders\""), ("\":\"", "\":\"")] {
            let text = format!(
                "[plugins]\ndir = \"p\"\n[domains.cache]\nplugin = \"x\"\nprefixes = [\"ok:\", {prefix}]\n"
            );
            assert_eq!(
                refusal(&text),
                format!(
                    "{PATH}:5: domains.cache.prefixes: {shown}: a prefix is a name followed by ':'"
                )
            );
        }
    }

    #[test]
    fn the_gateways_own_keys_are_out_of_every_domains_reach() {
        let text = "[plugins]\ndir = \"p\"\n[domains.ratelimit]\nplugin = \"x\"\n";
        assert!(refusal(text).starts_with(&format!(
            "{PATH}:3: domains.ratelimit: the keys under ratelimit:"
        )));
        let text = "[plugins]\ndir = \"p\"\n[domains.cache]\nplugin = \"x\"\nprefixes = [\"idempotency:orders:\"]\n";
        assert_eq!(
            refusal(text),
            format!(
                "{PATH}:5: domains.cache.prefixes: \"idempotency:orders:\": keys under it are the gateway's own"
            )
        );
    }

    #[test]
    fn a_prefix_may_not_reach_into_another_domains_keys() {
        let text = "[plugins]\ndir = \"p\"\n[domains.cache]\nplugin = \"x\"\nprefixes = [\"price:eth:\"]\n[domains.price]\nplugin = \"x\"\n";
        assert_eq!(
            refusal(text),
            format!(
                "{PATH}:5: domains.cache.prefixes: \"price:eth:\" overlaps \"price:\" of domain \"price\": a key would belong to both"
            )
        );
        let text = "[plugins]\ndir = \"p\"\n[domains.a]\nplugin = \"x\"\nprefixes = [\"shared:\"]\n[domains.b]\nplugin = \"x\"\nprefixes = [\"shared:x:\"]\n";
        assert!(
            refusal(text).contains("overlaps \"shared:x:\" of domain \"b\""),
            "{}",
            refusal(text)
        );
    }

    #[test]
    fn a_missing_plugin_file_is_refused_on_the_plugin_line() {
        let (dir, path) = folder(&["present"]);
        // `plugin_timeout_ms` begins with "plugin" but is not the key.
        let text = "[plugins]\ndir = \"plugins\"\n\n[domains.ok]\nplugin = \"present\"\n\n[domains.cache]\nplugin_timeout_ms = 5\nplugin = \"absent\"\n";
        let wasm = dir.path().join("plugins").join("absent.wasm");
        assert_eq!(
            refusal_at(text, &path),
            format!(
                "{}:9: domains.cache.plugin: no plugin file {}",
                path.display(),
                wasm.display()
            )
        );
        std::fs::write(&wasm, b"").unwrap();
        assert!(Config::parse(text, &path).is_ok());
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

    const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    /// A file with domains `price`, `cache` and policy `global`, then `clients`.
    fn with_clients(clients: &str) -> String {
        format!(
            "[plugins]\ndir = \"plugins\"\n[domains.price]\nplugin = \"x\"\n[domains.cache]\nplugin = \"x\"\n[ratelimits.global]\ncapacity = 1\nrefill_per_s = 1\n{clients}"
        )
    }

    /// `text` parsed in a folder where plugin `x` exists: the client checks
    /// come after the domains'.
    fn parse_clients(text: &str) -> Result<Config, String> {
        let (_dir, path) = folder(&["x"]);
        Config::parse(text, &path)
            .map_err(|e| e.to_string().replace(&*path.to_string_lossy(), PATH))
    }

    fn client_refusal(text: &str) -> String {
        match parse_clients(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn clients_parse_with_their_scopes_and_none_means_open() {
        let text = with_clients(&format!(
            "[clients.pricing-svc]\nkey_sha256 = \"{HASH}\"\nread = [\"price\", \"cache\"]\nwrite = [\"price\"]\nevents = [\"cache\"]\nratelimits = [\"global\"]\n[clients.reader]\nkey_sha256 = \"{}\"\n",
            HASH.replace('b', "c").to_uppercase()
        ));
        let c = parse_clients(&text).unwrap();
        let clients = c.clients.as_ref().unwrap();
        let names: Vec<_> = clients.keys().map(|k| k.get_ref().as_str()).collect();
        assert_eq!(names, ["pricing-svc", "reader"]);
        let p = clients.values().next().unwrap();
        assert_eq!((p.read.len(), p.write.len(), p.events.len()), (2, 1, 1));
        assert_eq!(p.ratelimits, ["global"]);
        let r = clients.values().nth(1).unwrap();
        assert!(
            r.read.is_empty() && r.write.is_empty(),
            "scopes default empty"
        );
        let open = parse_clients(&with_clients("")).unwrap();
        assert!(open.clients.is_none());
        let closed = parse_clients(&with_clients("[clients]\n")).unwrap();
        assert_eq!(closed.clients.map(|c| c.len()), Some(0));
    }

    #[test]
    fn a_key_hash_must_be_64_hex_digits() {
        let msg = "must be 64 hex digits, the SHA-256 of the key (`sluice hash-key` prints it)";
        for bad in [
            "abc",
            &HASH[1..],
            &format!("{HASH}0"),
            &HASH.replace('b', "g"),
        ] {
            let text = with_clients(&format!(
                "\n[clients.svc]\nread = []\nkey_sha256 = \"{bad}\"\n"
            ));
            assert_eq!(
                client_refusal(&text),
                format!("{PATH}:13: clients.svc.key_sha256: {msg}"),
                "{bad}"
            );
        }
    }

    #[test]
    fn two_clients_may_not_share_a_key() {
        let text = with_clients(&format!(
            "[clients.a]\nkey_sha256 = \"{HASH}\"\n[clients.b]\nkey_sha256 = \"{}\"\n",
            HASH.to_uppercase()
        ));
        assert_eq!(
            client_refusal(&text),
            format!(
                "{PATH}:13: clients.b.key_sha256: the same key as client \"a\": each client needs a key of its own"
            )
        );
    }

    #[test]
    fn a_scope_may_name_only_configured_domains_and_policies() {
        for (right, name, what) in [
            ("read", "prices", "domain"),
            ("write", "global", "domain"),
            ("events", "arbitrage", "domain"),
            ("ratelimits", "price", "rate-limit policy"),
        ] {
            let text = with_clients(&format!(
                "[clients.svc]\nkey_sha256 = \"{HASH}\"\n{right} = [\"cache\", \"{name}\"]\n"
            ))
            .replace("\"cache\", \"price\"]", "\"global\", \"price\"]");
            assert_eq!(
                client_refusal(&text),
                format!("{PATH}:12: clients.svc.{right}: \"{name}\" is not a configured {what}"),
                "{right}"
            );
        }
    }

    #[test]
    fn client_names_are_bounded_words_and_fields_are_known() {
        let text = with_clients(&format!("[clients.\"a b\"]\nkey_sha256 = \"{HASH}\"\n"));
        assert!(
            client_refusal(&text).starts_with(&format!("{PATH}:10: clients.a b: client names are")),
            "{}",
            client_refusal(&text)
        );
        let text = with_clients(&format!("[clients.\"-\"]\nkey_sha256 = \"{HASH}\"\n"));
        assert!(
            client_refusal(&text).contains("anonymous"),
            "{}",
            client_refusal(&text)
        );
        let text = with_clients(&format!(
            "[clients.svc]\nkey_sha256 = \"{HASH}\"\nreads = [\"cache\"]\n"
        ));
        let e = client_refusal(&text);
        assert!(e.contains("unknown field `reads`"), "{e}");
        let text = with_clients("[clients.svc]\nread = [\"cache\"]\n");
        assert!(client_refusal(&text).contains("missing field `key_sha256`"));
    }

    #[test]
    fn shared_connections_stay_within_the_pool() {
        let redis = |pool_size, shared_connections| RedisConfig {
            pool_size,
            shared_connections,
            ..RedisConfig::default()
        };
        assert_eq!(redis(8, 0).shared_connections(), 1);
        assert_eq!(redis(4, 9).shared_connections(), 4);
        assert_eq!(redis(8, 3).shared_connections(), 3);
    }

    #[test]
    fn line_of_finds_the_exact_key_within_its_table() {
        let text = "[a]\nkey_long = 1\nkey = 2\n[b]\nkey = 3\n";
        assert_eq!(line_of(text, 1, "key"), 3);
        assert_eq!(line_of(text, 4, "key"), 5);
        assert_eq!(line_of(text, 1, "absent"), 1, "the table's own line");
        assert_eq!(line_of("[b]\nk = 1\n", 0, "k"), 1, "no line 0");
        assert_eq!(table_line(text, "b"), 4);
        assert_eq!(table_line("[ b ] # comment\n", "b"), 1);
        assert_eq!(table_line(text, "c"), 0);
    }

    #[test]
    fn domain_names_are_short_lowercase_words() {
        for ok in ["cache", "market_depth", "a-1", "0", &"x".repeat(64)] {
            assert!(valid_domain_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Cache",
            "a b",
            "a:b",
            "a.b",
            "é",
            "a/b",
            &"x".repeat(65),
        ] {
            assert!(!valid_domain_name(bad), "{bad}");
        }
    }
}
