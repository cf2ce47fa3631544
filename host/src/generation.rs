//! A generation of the gateway: the domains with their loaded policies, the
//! rate-limit policies and the limits, built from one configuration. A reload
//! builds the next generation (sharing the store, the near cache and the
//! access statistics, and every domain whose plugin file and settings did not
//! change) and swaps it in atomically; a request keeps the generation it
//! started with. The request flow over a generation is `crate::flow`, which,
//! like the routes, goes through a generation's methods.

use crate::access::AccessTracker;
use crate::auth::Clients;
use crate::config::{Config, DomainConfig, RateLimitConfig, WhenUnavailable};
use crate::error::{Error, Limited};
use crate::near_cache::{self, NearCache};
use crate::plugin::{self, Compiled, Plugin, Runtime, SandboxLimits, bindings};
use crate::quota::{self, LongPoll, LongPolls, Quota};
use crate::store::plan::TtlBounds;
use crate::store::scripts::Scripts;
use crate::store::tracking::Tracking;
use crate::store::{Gather, Group, Store, StoreError};
use crate::telemetry::{Known, METRICS};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

/// A configured domain and the policy that serves it.
pub struct Domain {
    pub name: String,
    pub plugin: Arc<Plugin>,
    pub ttl: TtlBounds,
    /// How the domain's reads use the near cache.
    pub near: near_cache::Use,
    /// Whether the host keeps per-key access statistics for the policy.
    pub track_access: bool,
    /// Key prefixes the plugin may touch: `{domain}:` and declared ones.
    pub namespaces: Vec<String>,
    /// On a cluster, reads go to replicas (`read_from = "replica"`).
    pub replica_reads: bool,
    /// In near-cached domains: which Redis key a client key was read from.
    pub routes: Option<near_cache::Routes>,
    /// The configuration it was built from (a reload keeps an unchanged domain).
    config: DomainConfig,
}

/// What a write stores, for its domain's size limit ([`Gateway::fits`]).
#[derive(Debug, Clone, Copy)]
pub enum Payload {
    /// A PUT's value, or one of an mset's.
    Value,
    /// A published event.
    Event,
}

/// One domain's plugin, as `/admin/plugins` and the status page show it.
#[derive(Debug, serde::Serialize)]
pub struct PluginRow {
    pub domain: String,
    pub plugin: String,
    pub sha256: String,
    /// Seconds since the Unix epoch.
    pub loaded_at: u64,
    pub calls: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub last_error: Option<String>,
}

/// Everything a request needs: one immutable generation.
pub struct Gateway {
    domains: HashMap<String, Arc<Domain>>,
    ratelimits: HashMap<String, RateLimitConfig>,
    /// API keys and their scopes: built with the domains they name, so a
    /// reload that revokes a key applies to the next request.
    clients: Clients,
    /// Each configured client's quotas, defaults filled in.
    quotas: HashMap<String, Quota>,
    /// The long-polls each client holds, carried across generations.
    long_polls: Arc<LongPolls>,
    store: Store,
    near: Arc<NearCache>,
    access: Arc<AccessTracker>,
    /// Random bits for policies (TTL jitter), carried across generations.
    entropy: Arc<AtomicU64>,
    /// The configuration this generation was built from.
    config: Config,
}

/// Why the gateway could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Load(#[from] plugin::LoadError),
    #[error("domain `{domain}`: {source}")]
    Check {
        domain: String,
        source: plugin::PluginError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("redis.{field}: {0}", field = .0.field())]
    Redis(#[from] crate::store::connect::ClientError),
    #[error("cannot read the scripts folder: {0}")]
    Scripts(std::io::Error),
    #[error("cannot start the WebAssembly runtime: {0:#}")]
    Runtime(wasmtime::Error),
}

impl Gateway {
    /// The first generation: load the domains and scripts and set up the
    /// store (inside a tokio runtime: the pool runs a background task).
    pub fn new(config: Config, runtime: &Runtime) -> Result<Gateway, StartError> {
        let scripts =
            Scripts::load(config.scripts_dir().as_deref()).map_err(StartError::Scripts)?;
        let near = Arc::new(NearCache::new(config.near_cache.max_bytes));
        let sink = near.clone();
        let tracking = Tracking {
            invalidate: Arc::new(move |what| sink.invalidate(what)),
            prefixes: tracked_prefixes(&config),
        };
        let store = Store::new(
            &config.redis,
            config.breaker.clone(),
            Arc::new(scripts),
            tracking,
        )?;
        memory_budget(&config);
        seed_metrics(&config, store.scripts());
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(Gateway {
            domains: load_domains(&config, runtime, &HashMap::new(), &|p| store.hears(p))?,
            ratelimits: ratelimits(&config),
            clients: Clients::from_config(&config),
            quotas: quota::quotas(&config),
            long_polls: Arc::default(),
            store,
            near,
            access: Arc::new(AccessTracker::new(config.plugins.access_stats_keys)),
            entropy: Arc::new(AtomicU64::new(seed)),
            config,
        })
    }

    /// The next generation from a new configuration: domains, plugins, TTL
    /// bounds, rate limits and breaker thresholds change; the store, the near
    /// cache and access statistics carry over; an unchanged domain keeps its
    /// plugin's warm instances. Any failure leaves this generation as it is.
    pub fn next(&self, config: Config, runtime: &Runtime) -> Result<Gateway, StartError> {
        let hears = |p: &[String]| self.store.hears(p);
        memory_budget(&config);
        let domains = match load_domains(&config, runtime, &self.domains, &hears) {
            Ok(domains) => domains,
            Err(e) => {
                memory_budget(&self.config);
                return Err(e);
            }
        };
        self.store.set_breaker_config(config.breaker.clone());
        seed_metrics(&config, self.store.scripts());
        let clients = Clients::from_config(&config);
        if clients.is_open() && !self.clients.is_open() {
            tracing::warn!(
                "the config no longer has a [clients] table: the data API is open to anyone (an empty [clients] table keeps it closed)"
            );
        }
        Ok(Gateway {
            domains,
            ratelimits: ratelimits(&config),
            clients,
            quotas: quota::quotas(&config),
            long_polls: self.long_polls.clone(),
            store: self.store.clone(),
            near: self.near.clone(),
            access: self.access.clone(),
            entropy: self.entropy.clone(),
            config,
        })
    }

    /// Start the background tasks: the breaker's probe loop, the INFO poller,
    /// and the one-off check of what the Redis user may run — awaited up to
    /// 2 s, so that it is done before the first request when Redis is up
    /// (and goes on in the background when it is not).
    pub async fn start_background(&self) {
        self.store.start();
        let every = Duration::from_millis(self.config.metrics.info_interval_ms.max(100));
        tokio::spawn(crate::store::info::poll(self.store.clone(), every));
        let mut check = tokio::spawn(crate::store::acl::report(self.store.clone()));
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut check).await;
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn domain(&self, name: &str) -> Result<&Domain, Error> {
        self.domains
            .get(name)
            .map(Arc::as_ref)
            .ok_or_else(|| Error::UnknownDomain(name.to_owned()))
    }

    /// Every domain, by name.
    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        let mut all: Vec<&Domain> = self.domains.values().map(Arc::as_ref).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all.into_iter()
    }

    /// Every domain's plugin and its counters, by domain name.
    pub fn plugin_rows(&self) -> Vec<PluginRow> {
        let mut rows: Vec<PluginRow> = self
            .domains()
            .map(|d| {
                let c = d.plugin.compiled();
                let s = &d.plugin.stats;
                PluginRow {
                    domain: d.name.clone(),
                    plugin: c.name.to_string(),
                    sha256: c.sha256.clone(),
                    loaded_at: c
                        .loaded_at
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |t| t.as_secs()),
                    calls: s.calls.load(Ordering::Relaxed),
                    traps: s.traps.load(Ordering::Relaxed),
                    timeouts: s.timeouts.load(Ordering::Relaxed),
                    last_error: s
                        .last_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone(),
                }
            })
            .collect();
        rows.sort_by(|a, b| a.domain.cmp(&b.domain));
        rows
    }

    /// Who may use the data API, with which keys and scopes.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    pub fn ratelimit(&self, name: &str) -> Result<&RateLimitConfig, Error> {
        self.ratelimits
            .get(name)
            .ok_or_else(|| Error::UnknownPolicy(name.to_owned()))
    }

    /// The configured name `name` is, as a bounded metric label (`-` when
    /// it is neither a domain nor a rate-limit policy).
    pub fn label<'a>(&'a self, name: &str) -> &'a str {
        self.domains
            .get_key_value(name)
            .map(|(k, _)| k.as_str())
            .or_else(|| self.ratelimits.get_key_value(name).map(|(k, _)| k.as_str()))
            .unwrap_or("-")
    }

    /// Bodies larger than the first get 413; one not read in full within the
    /// second gets 408.
    pub fn body_limits(&self) -> (usize, Duration) {
        let server = &self.config.server;
        (
            server.max_body_bytes,
            Duration::from_millis(server.body_timeout_ms),
        )
    }

    /// Answers larger than this get 413.
    pub fn max_response_bytes(&self) -> usize {
        self.config.server.max_response_bytes
    }

    /// How an mget or a stream read gathers values: bounded by
    /// `server.max_response_bytes`, in rounds sized by `server.max_body_bytes`
    /// (the largest value a client can write).
    pub fn gather(&self, most: usize) -> Gather {
        let server = &self.config.server;
        Gather::new(server.max_response_bytes, server.max_body_bytes, most)
    }

    /// Keys (and stream names, rate-limit subjects) longer than this get 400.
    pub fn max_key_bytes(&self) -> usize {
        self.config.server.max_key_bytes
    }

    /// A consumer group of a stream that lives inside a configured domain's
    /// namespace (`{domain}:...`).
    pub fn group<'a>(&'a self, stream: &'a str, group: &'a str) -> Result<Group<'a>, Error> {
        let owner = crate::namespace::stream_domain(stream).and_then(|d| self.domains.get(d));
        let Some(owner) = owner.filter(|_| stream.len() <= self.max_key_bytes()) else {
            return Err(Error::BadRequest(format!(
                "stream {stream:?} is not inside a configured domain's namespace (`{{domain}}:...`)"
            )));
        };
        if !owner.config.streams {
            return Err(Error::BadRequest(format!(
                "domain {:?} holds no streams for clients (its config has no `streams = true`)",
                owner.name
            )));
        }
        Ok(Group {
            store: &self.store,
            stream,
            group,
            ttl_ms: owner.ttl.default_ms,
        })
    }

    /// Take `cost` tokens of `policy`'s bucket for `subject`; while Redis
    /// cannot answer, the policy's `when_unavailable` decides (`None`: admitted
    /// without asking).
    pub async fn take_tokens(
        &self,
        policy: &str,
        subject: &str,
        cost: u64,
    ) -> Result<Option<crate::store::Bucket>, Error> {
        let rl = self.ratelimit(policy)?;
        let taken = self
            .store
            .take_tokens(policy, subject, rl.capacity, rl.refill_per_s, cost)
            .await;
        match taken {
            Ok(bucket) => Ok(Some(bucket)),
            Err(e) if e.is_unavailable() && rl.when_unavailable == WhenUnavailable::FailOpen => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// 413 when a value or an event is larger than `domain` takes
    /// (`max_value_bytes`, `max_event_bytes`; unset: only the body limit
    /// applies, which reading the body held already).
    pub fn fits(&self, domain: &Domain, payload: Payload, bytes: usize) -> Result<(), Error> {
        let (what, key, limit) = match payload {
            Payload::Value => ("value", "max_value_bytes", domain.config.max_value_bytes),
            Payload::Event => ("event", "max_event_bytes", domain.config.max_event_bytes),
        };
        match limit {
            Some(limit) if bytes > limit => Err(Error::BodyTooLarge {
                what,
                limit,
                setting: format!("domains.{}.{key}", domain.name).into(),
            }),
            _ => Ok(()),
        }
    }

    /// Take `bytes` from `client`'s write budget before its write reaches
    /// Redis (a refused write writes nothing): 429 with the bucket's
    /// `RateLimit-*` when it has not that many left, 413 when more than the
    /// bucket ever holds. No budget (or the open API's `-`): only counted.
    /// While Redis cannot answer, the store's error (503 with the breaker's
    /// `Retry-After`): the write would meet the same.
    pub async fn charge_write(&self, client: &str, bytes: usize) -> Result<(), Error> {
        let budget = self.quotas.get(client).and_then(|q| q.write);
        if let Some(budget) = budget.filter(|_| bytes > 0) {
            let refused = |e: Error| {
                METRICS
                    .quota_refused
                    .with_label_values(&[client, "write_bytes"])
                    .inc();
                tracing::debug!(client, bytes, error = %e, "write refused by the client's write budget");
                Err(e)
            };
            let (cost, capacity) = (bytes as u64, budget.burst_bytes);
            if cost > capacity {
                return refused(Error::BodyTooLarge {
                    what: "write",
                    limit: capacity as usize,
                    setting: format!("clients.{client}.write_burst_bytes").into(),
                });
            }
            let rate = budget.bytes_per_s as f64;
            let said = (self.store)
                .take_tokens(quota::WRITE_BYTES, client, capacity, rate, cost)
                .await?;
            if !said.allowed {
                let client = client.to_owned();
                return refused(Error::limited(
                    Limited::WriteBytes { client },
                    capacity,
                    &said,
                ));
            }
        }
        METRICS
            .write_bytes
            .with_label_values(&[client])
            .inc_by(bytes as u64);
        Ok(())
    }

    /// Count one of `client`'s long-polls until the returned guard drops:
    /// 429 when it holds its `max_long_polls` already, so one client cannot
    /// take every connection kept for blocking reads. `None`: no quota
    /// (the open API).
    pub fn long_poll(&self, client: &str) -> Result<Option<LongPoll>, Error> {
        let Some(quota) = self.quotas.get(client) else {
            return Ok(None);
        };
        match self.long_polls.enter(client, quota.long_polls) {
            Some(poll) => Ok(Some(poll)),
            None => {
                METRICS
                    .quota_refused
                    .with_label_values(&[client, "long_polls"])
                    .inc();
                Err(Error::LongPolls {
                    client: client.to_owned(),
                    max: quota.long_polls,
                })
            }
        }
    }

    /// Redis runs a script: the gateway can serve.
    pub async fn ready(&self) -> Result<(), Error> {
        Ok(self.store.ready().await?)
    }

    /// The one way to Redis, shared by every generation.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// In-process copies of reads, shared by every generation.
    pub fn near(&self) -> &NearCache {
        &self.near
    }

    /// Per-key access statistics, shared by every generation.
    pub fn access(&self) -> &AccessTracker {
        &self.access
    }

    /// How long an `Idempotency-Key` is remembered.
    pub fn idempotency_window(&self) -> Duration {
        Duration::from_secs(self.config.server.idempotency_window_s)
    }

    /// Fresh random bits for a policy (splitmix64 over a shared counter):
    /// cheap and well spread, for TTL jitter.
    pub fn entropy(&self) -> u64 {
        const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut z = self
            .entropy
            .fetch_add(GOLDEN, Ordering::Relaxed)
            .wrapping_add(GOLDEN);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Shutting down: long-polls end now with nothing (an empty 200).
    pub fn close_blocking(&self) {
        self.store.close_blocking();
    }

    /// Connections to Redis open, and of those idle.
    pub fn pool_state(&self) -> (u32, u32) {
        self.store.pool_state()
    }

    /// The circuit breaker's state, its last transitions (newest first) and,
    /// on a cluster, each primary's.
    pub fn breaker(&self) -> crate::store::breaker::Status {
        self.store.breaker_status()
    }

    /// The near cache's copies and the bytes they weigh.
    pub fn near_cache_usage(&self) -> (u64, u64) {
        self.near.usage()
    }
}

/// Every series this configuration names, at zero ([`Metrics::seed`]).
fn seed_metrics(config: &Config, scripts: &Scripts) {
    let clients = match &config.clients {
        Some(table) => table.keys().map(|k| k.get_ref().as_str()).collect(),
        None => vec!["-"],
    };
    METRICS.seed(&Known {
        domains: (config.domains.iter())
            .map(|(name, d)| (name.get_ref().as_str(), d.streams))
            .collect(),
        clients,
        ratelimits: config
            .ratelimits
            .keys()
            .map(|k| k.get_ref().as_str())
            .collect(),
        scripts: scripts.names().collect(),
    });
}

fn ratelimits(config: &Config) -> HashMap<String, RateLimitConfig> {
    config
        .ratelimits
        .iter()
        .map(|(k, v)| (k.get_ref().clone(), v.clone()))
        .collect()
}

/// Everything `check-config` verifies beyond parsing: the scripts folder
/// reads, every plugin loads and accepts its domain's settings.
pub fn check(config: &Config) -> Result<(), StartError> {
    Scripts::load(config.scripts_dir().as_deref()).map_err(StartError::Scripts)?;
    let runtime = Runtime::new().map_err(StartError::Runtime)?;
    load_domains(config, &runtime, &HashMap::new(), &|_| true).map(drop)
}

/// The key prefixes of the domains that keep near-cache copies in `config`
/// (on a Redis Cluster, the ones whose changes are heard: read at start).
pub fn tracked_prefixes(config: &Config) -> Vec<String> {
    let mut prefixes: Vec<String> = config
        .domains
        .iter()
        .filter(|(_, dc)| dc.near_cache_ms > 0 || dc.max_stale_s > 0)
        .flat_map(|(name, dc)| namespaces(name.get_ref(), dc))
        .collect();
    prefixes.sort();
    prefixes.dedup();
    prefixes
}

/// Load every domain's plugin (each file once) and configure an instance of
/// it with the domain's settings. A domain whose plugin file (by SHA-256) and
/// configuration are those of a `previous` domain is that domain, warm
/// instances and statistics included. `hears`: whether the gateway hears
/// every change to keys under these prefixes (see `Store::hears`).
fn load_domains(
    config: &Config,
    runtime: &Runtime,
    previous: &HashMap<String, Arc<Domain>>,
    hears: &dyn Fn(&[String]) -> bool,
) -> Result<HashMap<String, Arc<Domain>>, StartError> {
    let mut compiled: HashMap<&str, Arc<Compiled>> = HashMap::new();
    let mut domains = HashMap::new();
    let cache = config.plugin_cache_dir();
    for (name, dc) in &config.domains {
        let name = name.get_ref();
        let component = match compiled.get(dc.plugin.as_str()) {
            Some(c) => c.clone(),
            None => {
                let path = config.plugin_path(&dc.plugin);
                let sha = plugin::file_sha256(&path);
                let same_file = previous
                    .values()
                    .map(|d| d.plugin.compiled())
                    .find(|c| *c.name == *dc.plugin && Some(&c.sha256) == sha.as_ref());
                let c = match same_file {
                    Some(c) => c.clone(),
                    None => runtime.compile(&dc.plugin, &path, cache.as_deref())?,
                };
                compiled.insert(&dc.plugin, c.clone());
                c
            }
        };
        if let Some(old) = previous.get(name)
            && Arc::ptr_eq(old.plugin.compiled(), &component)
            && old.config == *dc
        {
            domains.insert(name.clone(), old.clone());
            continue;
        }
        let plugin =
            Plugin::new(component, sandbox(dc), contract_domain(name, dc)).map_err(|source| {
                StartError::Check {
                    domain: name.clone(),
                    source,
                }
            })?;
        tracing::info!(domain = %name, plugin = %dc.plugin, "domain ready");
        domains.insert(
            name.clone(),
            Arc::new(Domain::new(name, Arc::new(plugin), dc, hears)),
        );
    }
    Ok(domains)
}

/// The plugin instances' memory budget of `config` (process-wide: the
/// generation being built and the one serving share it).
fn memory_budget(config: &Config) {
    let mb = config.plugins.max_instance_memory_mb as usize;
    plugin::BUDGET.set_limit(mb.saturating_mul(1 << 20));
}

/// The limits a domain's plugin runs under.
pub fn sandbox(dc: &DomainConfig) -> SandboxLimits {
    SandboxLimits {
        deadline: Duration::from_millis(dc.plugin_timeout_ms),
        memory_bytes: (dc.plugin_memory_mib as usize).saturating_mul(1 << 20),
    }
}

/// The domain as its policy's `configure` sees it: name, TTLs, and its
/// settings table whole, as MessagePack.
pub fn contract_domain(name: &str, dc: &DomainConfig) -> bindings::Domain {
    let ttl = ttl_bounds(dc);
    bindings::Domain {
        name: name.to_owned(),
        ttl_ms: ttl.default_ms,
        min_ttl_ms: ttl.min_ms,
        max_ttl_ms: ttl.max_ms,
        // A map of TOML values always encodes; an empty map stands in otherwise.
        settings: rmp_serde::to_vec_named(&dc.settings).unwrap_or_else(|_| vec![0x80]),
    }
}

/// A domain's TTLs in ms.
pub fn ttl_bounds(dc: &DomainConfig) -> TtlBounds {
    TtlBounds {
        default_ms: dc.ttl_s.saturating_mul(1000),
        min_ms: dc.min_ttl_s.saturating_mul(1000),
        max_ms: dc.max_ttl_s.saturating_mul(1000),
    }
}

/// The key prefixes a domain's plugin may touch: `{domain}:` and declared ones.
pub fn namespaces(name: &str, dc: &DomainConfig) -> Vec<String> {
    std::iter::once(format!("{name}:"))
        .chain(dc.prefixes.iter().cloned())
        .collect()
}

impl Domain {
    /// A domain whose changes the gateway does not hear (on a Redis
    /// Cluster, one a reload added or gave a near cache: see `Store::hears`)
    /// keeps no copy until a restart, as no one would tell it when one goes
    /// stale.
    fn new(
        name: &str,
        plugin: Arc<Plugin>,
        dc: &DomainConfig,
        hears: &dyn Fn(&[String]) -> bool,
    ) -> Domain {
        let heard = hears(&namespaces(name, dc));
        if !heard && (dc.near_cache_ms > 0 || dc.max_stale_s > 0) {
            tracing::warn!(
                domain = name,
                "a near cache added by a reload on a Redis Cluster takes effect at the next restart"
            );
        }
        let near = match heard {
            false => near_cache::Use {
                fresh_for: Duration::ZERO,
                max_stale: Duration::ZERO,
            },
            true => near_cache::Use {
                fresh_for: Duration::from_millis(dc.near_cache_ms),
                max_stale: Duration::from_secs(dc.max_stale_s),
            },
        };
        Domain {
            name: name.to_owned(),
            plugin,
            ttl: ttl_bounds(dc),
            near,
            track_access: dc.track_access,
            namespaces: namespaces(name, dc),
            replica_reads: dc.read_from == crate::config::ReadFrom::Replica,
            routes: (!near.fresh_for.is_zero())
                .then(|| near_cache::Routes::new(near_cache::ROUTES_MAX_BYTES)),
            config: dc.clone(),
        }
    }

    /// A client's `?ttl_s=`, refused (not clamped) outside the domain's bounds,
    /// so a client never believes a key lives longer than it does.
    pub fn ttl_override(&self, ttl_s: u64) -> Result<u64, Error> {
        self.ttl.client(ttl_s).ok_or_else(|| {
            Error::BadRequest(format!(
                "ttl_s={ttl_s} is outside this domain's bounds {}..={} s",
                self.ttl.min_ms / 1000,
                self.ttl.max_ms / 1000
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(text: &str) -> DomainConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_policy_is_configured_with_ttls_in_ms_and_its_settings_whole() {
        let dc = domain(
            "plugin = \"p\"\nttl_s = 7\nprefixes = [\"shared:\"]\n[settings]\nname = \"x\"\nlevels = [1, 2]\n[settings.nested]\non = true\n",
        );
        let d = contract_domain("d", &dc);
        assert_eq!(
            (d.name.as_str(), d.ttl_ms, d.min_ttl_ms, d.max_ttl_ms),
            ("d", 7_000, 1_000, 86_400_000)
        );
        let settings: serde_json::Value = rmp_serde::from_slice(&d.settings).unwrap();
        assert_eq!(
            settings,
            serde_json::json!({"name": "x", "levels": [1, 2], "nested": {"on": true}})
        );
        assert_eq!(namespaces("d", &dc), ["d:", "shared:"]);
        let none = contract_domain("d", &domain("plugin = \"p\"\n"));
        assert_eq!(none.settings, [0x80], "no table: an empty map");
    }
}
