//! The gateway assembled from a config: domains with their loaded policies,
//! the store, and the one request flow every route shares —
//! policy → plan → validation → Redis → response body.

use crate::config::{Config, DomainConfig};
use crate::error::Error;
use crate::plugin::bindings::{AccessStats, Operation, Request};
use crate::plugin::{self, PlanLimits, Plugin, Runtime, SandboxLimits};
use crate::store::exec::{self, TtlBounds};
use crate::store::{Store, reply};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A configured domain and the policy that serves it.
pub struct Domain {
    pub name: String,
    pub plugin: Arc<Plugin>,
    /// The settings the plugin sees, computed once.
    pub settings: Vec<(String, String)>,
    pub ttl: TtlBounds,
}

/// Everything a request needs, shared by all connections.
pub struct Gateway {
    pub domains: HashMap<String, Domain>,
    pub store: Store,
    pub max_body_bytes: usize,
    pub max_key_bytes: usize,
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
    Store(#[from] crate::store::StoreError),
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

impl Gateway {
    /// Load the domains and set up the store (inside a tokio runtime: the
    /// pool runs a background task).
    pub fn new(config: &Config) -> Result<Gateway, StartError> {
        Ok(Gateway {
            domains: load_domains(config)?,
            store: Store::new(&config.redis)?,
            max_body_bytes: config.server.max_body_bytes,
            max_key_bytes: config.server.max_key_bytes,
            plan_limits: PlanLimits::default(),
            entropy: AtomicU64::new(now_ms()),
        })
    }

    pub fn domain(&self, name: &str) -> Result<&Domain, Error> {
        self.domains
            .get(name)
            .ok_or_else(|| Error::UnknownDomain(name.to_owned()))
    }

    /// Serve one call: ask the policy, check its plan, run it on Redis, and
    /// shape the reply it points at. `Ok(None)` is a miss or a write.
    pub async fn call(&self, domain: &Domain, call: Call) -> Result<Option<Vec<u8>>, Error> {
        if call.key.is_empty() || call.key.len() > self.max_key_bytes {
            return Err(Error::BadRequest(format!(
                "keys are 1 to {} bytes; this one has {}",
                self.max_key_bytes,
                call.key.len()
            )));
        }
        let ttl_ms = call.ttl_s.map(|s| domain.ttl_override(s)).transpose()?;
        let req = Request {
            domain: domain.name.clone(),
            key: call.key,
            operation: call.operation,
            value: call.value,
            fields: call.fields,
            config: domain.settings.clone(),
            ttl_ms,
            now_ms: now_ms(),
            entropy: self.next_entropy(),
            stats: AccessStats {
                hits: 0,
                misses: 0,
                writes: 0,
                last_read_ms: 0,
                read_rate: 0.0,
            },
        };
        let plan = domain.plugin.plan(&req)?;
        plugin::validate(&plan, &domain.name, &|_| false, &self.plan_limits)
            .map_err(|m| domain.plugin.invalid_plan(m))?;
        let replies = exec::run(&self.store, &plan, &domain.ttl).await?;
        let Some(i) = plan.respond else {
            return Ok(None);
        };
        let i = i as usize;
        match (plan.actions.get(i), replies.into_iter().nth(i)) {
            (Some(action), Some(value)) => Ok(reply::shape(action, value)),
            _ => Err(domain
                .plugin
                .invalid_plan("Redis answered fewer replies than actions".into())
                .into()),
        }
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

/// Load every domain's plugin (each file once) and run each plugin's check of
/// its domain's settings. This is all `check-config` needs beyond parsing.
pub fn load_domains(config: &Config) -> Result<HashMap<String, Domain>, StartError> {
    let runtime = Runtime::new().map_err(StartError::Runtime)?;
    let mut plugins: HashMap<&str, Arc<Plugin>> = HashMap::new();
    let mut domains = HashMap::new();
    for (name, dc) in &config.domains {
        let name = name.get_ref();
        let plugin = match plugins.get(dc.plugin.as_str()) {
            Some(p) => p.clone(),
            None => {
                let path = config.plugin_path(&dc.plugin);
                let p = Arc::new(runtime.load(&dc.plugin, &path, SandboxLimits::default())?);
                plugins.insert(&dc.plugin, p.clone());
                p
            }
        };
        let domain = Domain::new(name, plugin, dc);
        domain
            .plugin
            .check_config(name, &domain.settings)
            .map_err(|source| StartError::Check {
                domain: name.clone(),
                source,
            })?;
        tracing::info!(domain = %name, plugin = %dc.plugin, "domain ready");
        domains.insert(name.clone(), domain);
    }
    Ok(domains)
}

impl Domain {
    fn new(name: &str, plugin: Arc<Plugin>, dc: &DomainConfig) -> Domain {
        Domain {
            name: name.to_owned(),
            plugin,
            settings: dc.plugin_settings(),
            ttl: TtlBounds {
                default_ms: dc.ttl_s * 1000,
                min_ms: dc.min_ttl_s * 1000,
                max_ms: dc.max_ttl_s * 1000,
            },
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
