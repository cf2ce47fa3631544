//! The gateway assembled from a config: domains with their loaded policies,
//! the store, the near cache, rate-limit policies — and the one request flow
//! every route shares: policy → plan → validation → Redis → response body,
//! for one call or a batch in one round trip.

use crate::access::{AccessTracker, Event};
use crate::config::{Config, DomainConfig, RateLimitConfig};
use crate::error::Error;
use crate::near_cache::NearCache;
use crate::plugin::bindings::{Action, Operation, Plan, Request};
use crate::plugin::{self, Compiled, PlanLimits, Plugin, Runtime};
use crate::store::exec::{self, TtlBounds};
use crate::store::scripts::Scripts;
use crate::store::{Store, StoreError, reply};
use crate::telemetry::METRICS;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A configured domain and the policy that serves it.
pub struct Domain {
    pub name: String,
    pub plugin: Arc<Plugin>,
    pub ttl: TtlBounds,
    /// How stale a kept copy may be served while Redis cannot answer.
    pub max_stale: Duration,
    /// How long a read may be answered from the near cache without asking
    /// Redis (0: never); Redis's invalidations end it sooner.
    pub near_max_age: Duration,
    /// Whether the host keeps per-key access statistics for the policy.
    pub track_access: bool,
    /// Key prefixes the plugin may touch: `{domain}:` and declared ones.
    pub namespaces: Vec<String>,
    /// The configuration it was built from (a reload keeps an unchanged domain).
    pub config: DomainConfig,
}

/// Everything a request needs: one immutable *generation* of the gateway.
/// A reload builds the next generation (sharing the store, the near cache and
/// the access statistics, and every plugin whose file and settings did not
/// change) and swaps it in atomically; a request keeps the generation it
/// started with.
pub struct Gateway {
    pub domains: HashMap<String, Arc<Domain>>,
    pub ratelimits: HashMap<String, RateLimitConfig>,
    pub store: Store,
    pub near: Arc<NearCache>,
    pub access: Arc<AccessTracker>,
    /// The configuration this generation was built from.
    pub config: Config,
    pub max_body_bytes: usize,
    pub max_key_bytes: usize,
    info_interval: Duration,
    plan_limits: PlanLimits,
    entropy: AtomicU64,
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
    #[error("cannot read the scripts folder: {0}")]
    Scripts(std::io::Error),
    #[error("cannot start the WebAssembly runtime: {0:#}")]
    Runtime(wasmtime::Error),
}

/// One call into a domain: what the client asked for, before the policy.
pub struct Call {
    pub key: String,
    pub operation: Operation,
    pub value: Option<Vec<u8>>,
    pub fields: Vec<String>,
    pub ttl_s: Option<u64>,
}

impl Call {
    pub fn new(key: String, operation: Operation) -> Call {
        Call {
            key,
            operation,
            value: None,
            fields: Vec::new(),
            ttl_s: None,
        }
    }
}

/// What a call came to.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The body the plan pointed at (MessagePack), from Redis.
    Fresh(Bytes),
    /// The same, from the near cache: read within the domain's
    /// `near_cache_ms`, and not changed since as far as Redis told.
    Near(Arc<crate::near_cache::Entry>),
    /// Redis could not answer; this copy, read `age` ago, stands in.
    Stale { body: Bytes, age: Duration },
    /// A read that found nothing, or a write (no body).
    Nothing,
}

impl Gateway {
    /// The first generation: load the domains and scripts and set up the
    /// store (inside a tokio runtime: the pool runs a background task).
    pub fn new(config: Config, runtime: &Runtime) -> Result<Gateway, StartError> {
        let scripts =
            Scripts::load(config.scripts_dir().as_deref()).map_err(StartError::Scripts)?;
        let near = Arc::new(NearCache::new(config.near_cache.max_bytes));
        let sink = near.clone();
        let store = Store::new(
            &config.redis,
            config.breaker.clone(),
            Arc::new(scripts),
            Arc::new(move |what| sink.invalidate(what)),
        )?;
        Ok(Gateway {
            domains: load_domains(&config, runtime, &HashMap::new())?,
            ratelimits: ratelimits(&config),
            store,
            near,
            access: Arc::new(AccessTracker::new(config.plugins.access_stats_keys)),
            max_body_bytes: config.server.max_body_bytes,
            max_key_bytes: config.server.max_key_bytes,
            info_interval: Duration::from_millis(config.metrics.info_interval_ms.max(100)),
            plan_limits: PlanLimits::default(),
            entropy: AtomicU64::new(now_ms()),
            config,
        })
    }

    /// The next generation from a new configuration: domains, plugins, TTL
    /// bounds, rate limits and breaker thresholds change; the store, the near
    /// cache and access statistics carry over; an unchanged plugin keeps its
    /// warm instances. Any failure leaves this generation as it is.
    pub fn next(&self, config: Config, runtime: &Runtime) -> Result<Gateway, StartError> {
        let domains = load_domains(&config, runtime, &self.domains)?;
        self.store.set_breaker_config(config.breaker.clone());
        Ok(Gateway {
            domains,
            ratelimits: ratelimits(&config),
            store: self.store.clone(),
            near: self.near.clone(),
            access: self.access.clone(),
            max_body_bytes: config.server.max_body_bytes,
            max_key_bytes: config.server.max_key_bytes,
            info_interval: self.info_interval,
            plan_limits: self.plan_limits,
            entropy: AtomicU64::new(self.entropy.load(Ordering::Relaxed)),
            config,
        })
    }

    /// Start the background tasks: the breaker's probe loop and the INFO poller.
    pub fn spawn_background(&self) {
        self.store.spawn_breaker();
        tokio::spawn(crate::store::info::poll(
            self.store.clone(),
            self.info_interval,
        ));
    }

    pub fn domain(&self, name: &str) -> Result<&Domain, Error> {
        self.domains
            .get(name)
            .map(Arc::as_ref)
            .ok_or_else(|| Error::UnknownDomain(name.to_owned()))
    }

    /// Serve one call. Concurrent reads of one key in a near-cached domain
    /// take turns: the first asks Redis and fills the near cache, the others
    /// are answered from it (single flight). A turn is awaited only briefly:
    /// when Redis is slow, waiting in line would add a timeout per reader.
    pub async fn call(&self, domain: &Domain, call: Call) -> Result<Answer, Error> {
        let _turn = if call.operation == Operation::Get && !domain.near_max_age.is_zero() {
            tokio::time::timeout(TURN_WAIT, self.near.turn(&domain.name, &call.key))
                .await
                .ok()
        } else {
            None
        };
        self.call_many(domain, vec![call])
            .await
            .pop()
            .unwrap_or(Ok(Answer::Nothing))
    }

    /// Serve calls into one domain: each asks the policy; reads the near cache
    /// can answer are answered; every other valid plan goes into one pipeline
    /// — one round trip for the whole batch — and each call gets its own
    /// answer or error.
    pub async fn call_many(&self, domain: &Domain, calls: Vec<Call>) -> Vec<Result<Answer, Error>> {
        let mut pipe = crate::store::pipeline();
        let mut planned = Vec::with_capacity(calls.len());
        for call in calls {
            let id = key_id(&domain.name, &call.key);
            let fields = call.fields.clone();
            let operation = call.operation;
            let step = self.plan(domain, call).and_then(|plan| {
                let kept = self.keepable(domain, operation, &plan);
                if let Some(k) = &kept
                    && !domain.near_max_age.is_zero()
                    && let Some(copy) = self.near.fresh(&k.key, &fields)
                {
                    METRICS.l1.with_label_values(&["hit"]).inc();
                    return Ok(Step::Near(copy));
                }
                if kept.is_some() {
                    // Redis tells this gateway when the key changes (RESP3
                    // client tracking, opt-in: only the command that follows).
                    pipe.cmd("CLIENT").arg("CACHING").arg("YES");
                }
                let placed = exec::append(&mut pipe, &plan, &domain.ttl, self.store.scripts())?;
                let kept = kept.map(|k| {
                    pipe.cmd("PTTL").arg(&k.key);
                    (k, pipe.len() - 1)
                });
                Ok(Step::Redis { plan, placed, kept })
            });
            planned.push((id, fields, operation, step));
        }
        let any = planned
            .iter()
            .any(|p| matches!(p.3, Ok(Step::Redis { .. })));
        let mut replies = if any {
            self.store.query(&pipe).await
        } else {
            Ok(Vec::new())
        };
        planned
            .into_iter()
            .map(|(id, fields, operation, step)| {
                let (plan, placed, kept) = match step? {
                    Step::Near(copy) => return Ok(Answer::Near(copy)),
                    Step::Redis { plan, placed, kept } => (plan, placed, kept),
                };
                let result = match &mut replies {
                    Ok(replies) => exec::take(&placed, replies).map(|r| {
                        let pttl = kept.as_ref().and_then(|(_, i)| match replies.get(*i) {
                            Some(redis::Value::Int(ms)) => Some(*ms),
                            _ => None,
                        });
                        (r, pttl)
                    }),
                    Err(e) => Err(e.clone()),
                };
                let kept = kept.map(|(k, _)| k);
                self.answer(domain, &id, &fields, operation, &plan, kept, result)
            })
            .collect()
    }

    /// Whether a read's result may be kept in the near cache, under which
    /// Redis key: the domain keeps copies (fresh reads or stale fallback),
    /// the plan is a plain pipeline and its first action is the key read it
    /// responds with (client tracking follows the first command).
    fn keepable(&self, domain: &Domain, operation: Operation, plan: &Plan) -> Option<Kept> {
        let max_stale = plan.cache.map_or(domain.max_stale, |c| {
            if c.keep {
                Duration::from_millis(c.max_stale_ms)
            } else {
                Duration::ZERO
            }
        });
        if operation != Operation::Get
            || plan.atomic
            || plan.respond != Some(0)
            || (domain.near_max_age.is_zero() && max_stale.is_zero())
        {
            return None;
        }
        let key = match plan.actions.first()? {
            Action::Get(k) => k,
            Action::HashGet(h) => &h.key,
            Action::ZsetRange(z) => &z.key,
            Action::SetContains(s) => &s.key,
            _ => return None,
        };
        Some(Kept {
            key: key.clone(),
            seq: self.near.seq(key),
            max_stale,
        })
    }

    /// Ask the policy and check its plan.
    fn plan(&self, domain: &Domain, call: Call) -> Result<Plan, Error> {
        let keyless = call.operation == Operation::Publish;
        if (call.key.is_empty() && !keyless) || call.key.len() > self.max_key_bytes {
            return Err(Error::BadRequest(format!(
                "keys are 1 to {} bytes; this one has {}",
                self.max_key_bytes,
                call.key.len()
            )));
        }
        let ttl_ms = call.ttl_s.map(|s| domain.ttl_override(s)).transpose()?;
        let now_ms = now_ms();
        let stats = if domain.track_access && !keyless {
            self.access.stats(&key_id(&domain.name, &call.key), now_ms)
        } else {
            AccessTracker::unknown()
        };
        let req = Request {
            key: call.key,
            operation: call.operation,
            value: call.value,
            fields: call.fields,
            ttl_ms,
            now_ms,
            entropy: self.next_entropy(),
            stats,
        };
        let plan = domain.plugin.plan(&req)?;
        let scripts = |name: &str| self.store.scripts().get(name).is_some();
        plugin::validate(&plan, &domain.namespaces, &scripts, &self.plan_limits)
            .map_err(|m| domain.plugin.invalid_plan(m))?;
        Ok(plan)
    }

    /// Turn a plan's replies into the call's answer; keep or drop the near
    /// copy; fall back to it when Redis could not answer a read.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &self,
        domain: &Domain,
        id: &str,
        fields: &[String],
        operation: Operation,
        plan: &Plan,
        kept: Option<Kept>,
        replies: Result<(Vec<redis::Value>, Option<i64>), StoreError>,
    ) -> Result<Answer, Error> {
        let (replies, pttl) = match replies {
            Ok(r) => r,
            Err(e) if e.is_unavailable() => {
                let stale = kept
                    .as_ref()
                    .and_then(|k| self.near.stale(&k.key, fields, k.max_stale));
                return match stale {
                    Some((body, age)) => {
                        METRICS.l1.with_label_values(&["stale"]).inc();
                        Ok(Answer::Stale { body, age })
                    }
                    None => {
                        if kept.is_some() {
                            METRICS.l1.with_label_values(&["miss"]).inc();
                        }
                        Err(e.into())
                    }
                };
            }
            Err(e) => return Err(e.into()),
        };
        if operation != Operation::Get {
            // This gateway changed them: no copy of them may outlive the change.
            for key in written_keys(plan) {
                self.near.forget(key);
            }
        }
        if domain.track_access && operation == Operation::Put {
            self.access.record(id, Event::Write, now_ms());
        }
        if operation == Operation::Publish {
            return Ok(Answer::Fresh(Bytes::from(reply::stream_ids(
                &plan.actions,
                replies,
            ))));
        }
        let Some(i) = plan.respond else {
            return Ok(Answer::Nothing);
        };
        let i = i as usize;
        let (Some(action), Some(value)) = (plan.actions.get(i), replies.into_iter().nth(i)) else {
            return Err(domain
                .plugin
                .invalid_plan(format!("responds with action {i}, which has no reply"))
                .into());
        };
        let body = reply::shape(action, value).map(Bytes::from);
        if operation == Operation::Get {
            if domain.track_access {
                let event = if body.is_some() {
                    Event::Hit
                } else {
                    Event::Miss
                };
                self.access.record(id, event, now_ms());
            }
            if let (Some(body), Some(k)) = (&body, kept) {
                // Never beyond the key's own life in Redis (PTTL -1: no expiry).
                let ttl = match pttl {
                    Some(ms) if ms >= 0 => Some(Duration::from_millis(ms as u64)),
                    _ => None,
                };
                self.near.keep(
                    &k.key,
                    k.seq,
                    fields,
                    body.clone(),
                    domain.near_max_age,
                    k.max_stale,
                    ttl,
                );
            }
        }
        Ok(body.map_or(Answer::Nothing, Answer::Fresh))
    }

    /// splitmix64 over a counter: cheap, well-spread bits for TTL jitter.
    fn next_entropy(&self) -> u64 {
        let mut z = self
            .entropy
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
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
    load_domains(config, &runtime, &HashMap::new()).map(drop)
}

/// Load every domain's plugin (each file once) and run each plugin's check of
/// its domain's settings. A domain whose plugin file (by SHA-256) and
/// settings are those of a `previous` domain is that domain, warm instances
/// and statistics included.
pub fn load_domains(
    config: &Config,
    runtime: &Runtime,
    previous: &HashMap<String, Arc<Domain>>,
) -> Result<HashMap<String, Arc<Domain>>, StartError> {
    let mut compiled: HashMap<&str, Arc<Compiled>> = HashMap::new();
    let mut domains = HashMap::new();
    for (name, dc) in &config.domains {
        let name = name.get_ref();
        let component = match compiled.get(dc.plugin.as_str()) {
            Some(c) => c.clone(),
            None => {
                let path = config.plugin_path(&dc.plugin);
                let same_file = previous.values().map(|d| d.plugin.compiled()).find(|c| {
                    *c.name == *dc.plugin
                        && Some(&c.sha256) == crate::plugin::file_sha256(&path).as_ref()
                });
                let c = match same_file {
                    Some(c) => c.clone(),
                    None => runtime.compile(&dc.plugin, &path)?,
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
            Plugin::new(component, dc.sandbox(), name, dc.plugin_settings()).map_err(|source| {
                StartError::Check {
                    domain: name.clone(),
                    source,
                }
            })?;
        let domain = Domain::new(name, Arc::new(plugin), dc);
        tracing::info!(domain = %name, plugin = %dc.plugin, "domain ready");
        domains.insert(name.clone(), Arc::new(domain));
    }
    Ok(domains)
}

impl Domain {
    fn new(name: &str, plugin: Arc<Plugin>, dc: &DomainConfig) -> Domain {
        Domain {
            name: name.to_owned(),
            plugin,
            ttl: TtlBounds {
                default_ms: dc.ttl_s * 1000,
                min_ms: dc.min_ttl_s * 1000,
                max_ms: dc.max_ttl_s * 1000,
            },
            max_stale: Duration::from_secs(dc.max_stale_s),
            near_max_age: Duration::from_millis(dc.near_cache_ms),
            track_access: dc.track_access,
            namespaces: std::iter::once(format!("{name}:"))
                .chain(dc.prefixes.iter().cloned())
                .collect(),
            config: dc.clone(),
        }
    }

    /// A client's `?ttl_s=`, refused (not clamped) outside the domain's bounds,
    /// so a client never believes a key lives longer than it does.
    fn ttl_override(&self, ttl_s: u64) -> Result<u64, Error> {
        let ms = ttl_s.saturating_mul(1000);
        if (self.ttl.min_ms..=self.ttl.max_ms).contains(&ms) {
            Ok(ms)
        } else {
            Err(Error::BadRequest(format!(
                "ttl_s={ttl_s} is outside this domain's bounds {}..={} s",
                self.ttl.min_ms / 1000,
                self.ttl.max_ms / 1000
            )))
        }
    }
}

/// How long a read waits for another read of the same key to fill the near
/// cache before it asks Redis itself.
const TURN_WAIT: Duration = Duration::from_millis(100);

/// One call on its way: answered from the near cache, or planned for Redis.
enum Step {
    Near(Arc<crate::near_cache::Entry>),
    Redis {
        plan: Plan,
        placed: exec::Placed,
        /// The read's copy to keep, and where the key's PTTL reply will be.
        kept: Option<(Kept, usize)>,
    },
}

/// A read whose result the near cache keeps.
struct Kept {
    /// The Redis key read.
    key: String,
    /// The key's invalidation count when the read was sent.
    seq: u64,
    max_stale: Duration,
}

/// The Redis keys a plan writes.
fn written_keys(plan: &Plan) -> impl Iterator<Item = &str> {
    plan.actions.iter().filter_map(|a| match a {
        Action::Set(s) => Some(s.key.as_str()),
        Action::Delete(k) => Some(k.as_str()),
        Action::Expire(e) => Some(e.key.as_str()),
        Action::HashSet(h) => Some(h.key.as_str()),
        Action::ZsetAdd(z) => Some(z.key.as_str()),
        Action::SetAdd(s) => Some(s.key.as_str()),
        Action::Script(_) | Action::StreamAdd(_) => None,
        Action::Get(_) | Action::HashGet(_) | Action::ZsetRange(_) | Action::SetContains(_) => None,
    })
}

/// One key across domains: `{domain}\0{key}` (NUL cannot be in a domain name).
fn key_id(domain: &str, key: &str) -> String {
    let mut id = String::with_capacity(domain.len() + key.len() + 1);
    id.push_str(domain);
    id.push('\0');
    id.push_str(key);
    id
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
