//! `sluice plugin check FILE.wasm` and `sluice plugin new NAME`: a plugin
//! author's tools, before anything goes near a gateway.

use crate::config::{Config, DomainConfig};
use crate::generation::{contract_domain, namespaces, sandbox, ttl_bounds};
use crate::plugin::bindings::{AccessStats, Decision, Operation, Plan, Request};
use crate::plugin::{Plugin, PluginError, Runtime};
use crate::store::plan::{self, Ctx, PlanLimits};
use crate::store::scripts::Scripts;
use std::fmt::Write;
use std::path::{Path, PathBuf};

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
    /// The config's `plugins.cache_dir`, when a config was given.
    pub cache: Option<std::path::PathBuf>,
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
    let compiled = runtime
        .compile(name, path, s.cache.as_deref())
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} component, sha256 {}",
        path.display(),
        compiled.contract,
        compiled.sha256
    );
    let plugin = Plugin::new(
        compiled,
        sandbox(&s.config),
        contract_domain(s.domain, &s.config),
    )
    .map_err(|e| format!("{out}configure for domain {:?} failed: {e}", s.domain))?;
    let _ = writeln!(out, "configure for domain {:?}: ok", s.domain);
    let settings = serde_json::to_string(&s.config.settings).unwrap_or_default();
    let _ = writeln!(
        out,
        "  ttl_s {} (bounds {}..={}), settings {settings}",
        s.config.ttl_s, s.config.min_ttl_s, s.config.max_ttl_s
    );
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
        let limits = PlanLimits::default();
        let shown = |plan: &Plan| {
            plan::describe(plan, &ctx)
                .map_err(|e| e.to_string())
                .map(|cmds| cmds.iter().map(|c| format!("  {c}\n")).collect::<String>())
        };
        let mut planner = plugin.planner();
        let described = planner.plan(&req).map(|decision| match decision {
            Decision::Run(p) => {
                plan::validate(&p, &namespaces, &s.scripts, &limits).and_then(|()| shown(&p))
            }
            // The reads, and what the policy writes when each read misses.
            Decision::Read(read) => {
                plan::validate_read(&read, &namespaces, &s.scripts, &limits)?;
                let keys: Vec<&str> = read.actions.iter().flat_map(plan::action_keys).collect();
                let reads = shown(&read)?;
                let misses = vec![None; read.actions.len()];
                let mut write = planner
                    .after_read(&req, &misses)
                    .map_err(|e| e.to_string())?;
                plan::validate_after(&write, &read, &namespaces, &s.scripts, &limits)?;
                write.atomic = true;
                let writes = match write.actions.is_empty() {
                    true => "  (nothing)\n".to_owned(),
                    false => shown(&write)?,
                };
                Ok(format!(
                    "  WATCH {}\n{reads}  then, every read a miss, the policy writes:\n{writes}",
                    keys.join(" ")
                ))
            }
        });
        let lines = match described {
            Ok(Ok(lines)) => lines,
            Ok(Err(e)) => {
                failed = true;
                format!("  INVALID PLAN: {e}\n")
            }
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

/// What `--ttl-s` and `--settings` put over the domain's configuration.
#[derive(Debug, Default)]
pub struct Overrides {
    pub ttl_s: Option<u64>,
    /// A TOML snippet: the keys of the domain's `[settings]` table.
    pub settings: Option<String>,
}

impl Overrides {
    /// `dc` with these over it, held to the TTL bounds a config file is.
    fn apply(&self, mut dc: DomainConfig) -> Result<DomainConfig, String> {
        if let Some(ttl_s) = self.ttl_s {
            if !(dc.min_ttl_s..=dc.max_ttl_s).contains(&ttl_s) {
                return Err(format!(
                    "--ttl-s {ttl_s} is outside the domain's bounds {}..={} s",
                    dc.min_ttl_s, dc.max_ttl_s
                ));
            }
            dc.ttl_s = ttl_s;
        }
        if let Some(snippet) = &self.settings {
            let table: std::collections::BTreeMap<String, toml::Value> = toml::from_str(snippet)
                .map_err(|e| format!("--settings is not a TOML table's keys: {e}"))?;
            dc.settings.extend(table);
        }
        Ok(dc)
    }
}

/// The domain's configuration from a config file, or the defaults, with
/// `over` over it: a domain can be tried before it is configured.
pub fn domain_config(
    plugin: &str,
    domain: &str,
    config: Option<&Path>,
    over: &Overrides,
) -> Result<(DomainConfig, Scripts, Option<PathBuf>), String> {
    let Some(path) = config else {
        let dc = toml::from_str(&format!("plugin = {plugin:?}")).map_err(|e| e.to_string())?;
        let scripts = Scripts::load(None).map_err(|e| e.to_string())?;
        return Ok((over.apply(dc)?, scripts, None));
    };
    let c = Config::load(path).map_err(|e| e.to_string())?;
    let scripts = Scripts::load(c.scripts_dir().as_deref()).map_err(|e| e.to_string())?;
    let dc = (c.domains.iter())
        .find(|(k, _)| k.get_ref() == domain)
        .map(|(_, d)| d.clone())
        .ok_or_else(|| {
            format!(
                "{}: no domain {domain:?} (leave out --config and give --ttl-s and --settings to try one not configured yet)",
                path.display()
            )
        })?;
    Ok((over.apply(dc)?, scripts, c.plugin_cache_dir()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> DomainConfig {
        toml::from_str("plugin = \"p\"").unwrap()
    }

    #[test]
    fn a_domain_not_yet_configured_takes_its_ttl_and_settings_from_flags() {
        let over = Overrides {
            ttl_s: Some(5),
            settings: Some("maxlen = 10\nper_asset = true".into()),
        };
        let dc = over.apply(defaults()).unwrap();
        assert_eq!(dc.ttl_s, 5);
        assert_eq!(dc.settings["maxlen"], toml::Value::Integer(10));
        assert_eq!(dc.settings["per_asset"], toml::Value::Boolean(true));
        assert_eq!(Overrides::default().apply(defaults()).unwrap(), defaults());
    }

    #[test]
    fn flags_are_held_to_what_a_config_file_would_be() {
        let e = (Overrides {
            ttl_s: Some(0),
            ..Overrides::default()
        })
        .apply(defaults())
        .unwrap_err();
        assert_eq!(e, "--ttl-s 0 is outside the domain's bounds 1..=86400 s");
        let e = (Overrides {
            settings: Some("not toml".into()),
            ..Overrides::default()
        })
        .apply(defaults())
        .unwrap_err();
        assert!(
            e.starts_with("--settings is not a TOML table's keys"),
            "{e}"
        );
    }
}
