//! `sluice plugin check FILE.wasm` and `sluice plugin new NAME`: a plugin
//! author's tools, before anything goes near a gateway.

use crate::config::{Config, DomainConfig};
use crate::generation::{contract_domain, namespaces, sandbox, ttl_bounds};
use crate::plugin::bindings::{AccessStats, Operation, Request};
use crate::plugin::{Plugin, PluginError, Runtime, WORLD};
use crate::store::plan::{self, Ctx, PlanLimits};
use crate::store::scripts::Scripts;
use std::fmt::Write;
use std::path::Path;

/// A sample object every shipped policy accepts (prices, events, values).
pub const SAMPLE: &str = r#"{"type":"sample","asset":"BTC","fiat":"USD","price":64000.5}"#;

/// What to check a plugin as.
pub struct Sample<'a> {
    pub domain: &'a str,
    /// The domain's configuration (defaults when no config file was given).
    pub config: DomainConfig,
    /// The registered scripts plans may call.
    pub scripts: Scripts,
    pub key: &'a str,
    /// The value for put and publish, as JSON.
    pub value: &'a str,
}

/// Load a component as the gateway would, configure it for the domain, ask
/// it for a plan of each kind and print each plan as the Redis commands it
/// becomes — or say precisely why it cannot go live.
pub fn check(path: &Path, s: &Sample) -> Result<String, String> {
    let runtime = Runtime::new().map_err(|e| format!("runtime: {e:#}"))?;
    let name = path
        .file_stem()
        .and_then(|n| n.to_str())
        .unwrap_or("plugin");
    let compiled = runtime.compile(name, path).map_err(|e| e.to_string())?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {WORLD} component, sha256 {}",
        path.display(),
        compiled.sha256
    );
    let plugin = Plugin::new(
        compiled,
        sandbox(&s.config),
        contract_domain(s.domain, &s.config),
    )
    .map_err(|e| format!("{out}configure for domain {:?} failed: {e}", s.domain))?;
    let _ = writeln!(out, "configure for domain {:?}: ok", s.domain);
    let value = serde_json::from_str::<serde_json::Value>(s.value)
        .map_err(|e| format!("--value is not JSON: {e}"))
        .and_then(|v| rmp_serde::to_vec_named(&v).map_err(|e| e.to_string()))?;
    let (ttl, namespaces) = (ttl_bounds(&s.config), namespaces(s.domain, &s.config));
    let mut failed = false;
    for (op, key, value) in [
        (Operation::Get, s.key, None),
        (Operation::Put, s.key, Some(value.clone())),
        (Operation::Delete, s.key, None),
        (Operation::Publish, "", Some(value)),
    ] {
        let req = Request {
            key: key.to_owned(),
            operation: op,
            value,
            fields: Vec::new(),
            ttl_ms: None,
            now_ms: 0,
            entropy: 0,
            stats: AccessStats {
                hits: 0,
                misses: 0,
                writes: 0,
                last_read_ms: 0,
                read_rate: 0.0,
            },
        };
        let head = match op {
            Operation::Get => format!("GET {key:?}"),
            Operation::Put => format!("PUT {key:?} {}", s.value),
            Operation::Delete => format!("DELETE {key:?}"),
            Operation::Publish => format!("PUBLISH {}", s.value),
        };
        let ctx = Ctx {
            ttl: &ttl,
            plan_ttl: None,
            scripts: &s.scripts,
            with: None,
        };
        let lines = match plugin.plan(&req) {
            Ok(p) => plan::validate(&p, &namespaces, &s.scripts, &PlanLimits::default())
                .and_then(|()| plan::describe(&p, &ctx).map_err(|e| e.to_string()))
                .map(|cmds| cmds.iter().map(|c| format!("  {c}\n")).collect())
                .unwrap_or_else(|e| {
                    failed = true;
                    format!("  INVALID PLAN: {e}\n")
                }),
            Err(PluginError::Refused { message, .. }) => format!("  refused (a 400): {message}\n"),
            Err(e) => {
                failed = true;
                format!("  FAILED: {e}\n")
            }
        };
        let _ = write!(out, "{head}:\n{lines}");
    }
    if failed { Err(out) } else { Ok(out) }
}

/// The domain's configuration from a config file, or the defaults.
pub fn domain_config(
    plugin: &str,
    domain: &str,
    config: Option<&Path>,
) -> Result<(DomainConfig, Scripts), String> {
    let Some(path) = config else {
        let dc = toml::from_str(&format!("plugin = {plugin:?}")).map_err(|e| e.to_string())?;
        return Ok((dc, Scripts::load(None).map_err(|e| e.to_string())?));
    };
    let c = Config::load(path).map_err(|e| e.to_string())?;
    let scripts = Scripts::load(c.scripts_dir().as_deref()).map_err(|e| e.to_string())?;
    c.domains
        .iter()
        .find(|(k, _)| k.get_ref() == domain)
        .map(|(_, d)| (d.clone(), scripts))
        .ok_or_else(|| format!("{}: no domain {domain:?}", path.display()))
}
