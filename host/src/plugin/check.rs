//! `sluice plugin check FILE.wasm`: load a component against the host's world,
//! run its self-check and a sample request of each kind, and say what it
//! would do — before it goes anywhere near a gateway.

use super::bindings::{Action, FieldValue, Operation, Request};
use super::{PlanLimits, Plugin, PluginError, Runtime, validate};
use crate::config::DomainConfig;
use std::fmt::Write;
use std::path::Path;

/// A sample object every shipped policy accepts (prices, events, values).
const SAMPLE: &str = r#"{"type":"sample","asset":"BTC","fiat":"USD","price":64000.5}"#;

/// The report, or why the plugin cannot go live. `domain` gives the
/// namespace and, with `settings`, what its self-check sees.
pub fn check(path: &Path, domain: &str, settings: &DomainConfig) -> Result<String, String> {
    let runtime = Runtime::new().map_err(|e| format!("runtime: {e:#}"))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin");
    let compiled = runtime.compile(name, path).map_err(|e| e.to_string())?;
    let config = settings.plugin_settings();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: sluice:policy@0.1.0 component, sha256 {}",
        path.display(),
        compiled.sha256
    );
    let plugin = Plugin::new(compiled.clone(), settings.sandbox(), domain, config)
        .map_err(|e| format!("self-check of domain {domain:?} failed: {e}"))?;
    let _ = writeln!(out, "self-check of domain {domain:?}: ok");
    let value = sample_value()?;
    let namespaces = [format!("{domain}:")];
    let mut failed = false;
    for (operation, key, value) in [
        (Operation::Get, "sample:1", None),
        (Operation::Put, "sample:1", Some(value.clone())),
        (Operation::Delete, "sample:1", None),
        (Operation::Publish, "", Some(value)),
    ] {
        let req = Request {
            key: key.to_owned(),
            operation,
            value,
            fields: Vec::new(),
            ttl_ms: None,
            now_ms: 0,
            entropy: 0,
            stats: crate::access::AccessTracker::unknown(),
        };
        let line = match plugin.plan(&req) {
            Ok(plan) => match validate(&plan, &namespaces, &|_| true, &PlanLimits::default()) {
                Ok(()) => {
                    let cmds: Vec<String> = plan.actions.iter().map(describe).collect();
                    let mode = if plan.atomic {
                        "MULTI/EXEC"
                    } else {
                        "pipeline"
                    };
                    format!("{mode} [{}]", cmds.join("; "))
                }
                Err(e) => {
                    failed = true;
                    format!("INVALID PLAN: {e}")
                }
            },
            Err(PluginError::Refused { message, .. }) => format!("refused (a 400): {message}"),
            Err(e) => {
                failed = true;
                format!("FAILED: {e}")
            }
        };
        let op = match operation {
            Operation::Get => "GET",
            Operation::Put => "PUT",
            Operation::Delete => "DELETE",
            Operation::Publish => "PUBLISH",
        };
        let _ = writeln!(out, "{op} {key:?}: {line}");
    }
    if failed { Err(out) } else { Ok(out) }
}

/// An action as the Redis command it becomes, values shown as JSON.
fn describe(action: &Action) -> String {
    let v = |b: &[u8]| {
        rmp_serde::from_slice::<serde_json::Value>(b)
            .map_or_else(|_| format!("<{} bytes>", b.len()), |j| j.to_string())
    };
    let ttl = |t: Option<u64>| t.map_or("the domain's TTL".to_owned(), |t| format!("{t} ms"));
    let fields = |f: &[FieldValue]| {
        f.iter()
            .map(|f| format!("{}={}", f.name, v(&f.value)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match action {
        Action::Get(k) => format!("GET {k}"),
        Action::Set(s) => format!("SET {} {} (expires: {})", s.key, v(&s.value), ttl(s.ttl_ms)),
        Action::Delete(k) => format!("DEL {k}"),
        Action::Expire(e) => format!("PEXPIRE {} {}", e.key, e.ttl_ms),
        Action::HashGet(h) if h.fields.is_empty() => format!("HGETALL {}", h.key),
        Action::HashGet(h) => format!("HMGET {} {}", h.key, h.fields.join(" ")),
        Action::HashSet(h) => format!(
            "HSET {} {} (expires: {})",
            h.key,
            fields(&h.fields),
            ttl(h.ttl_ms)
        ),
        Action::StreamAdd(x) => {
            let cap = x
                .max_len
                .map_or(String::new(), |n| format!(" MAXLEN ~ {n}"));
            format!("XADD {}{cap} * {}", x.stream, fields(&x.fields))
        }
        Action::ZsetAdd(z) => {
            let m: Vec<String> = z
                .members
                .iter()
                .map(|m| format!("{} {}", m.score, m.member))
                .collect();
            format!(
                "ZADD {} {} (expires: {})",
                z.key,
                m.join(" "),
                ttl(z.ttl_ms)
            )
        }
        Action::ZsetRange(z) => format!(
            "ZRANGE {} {:?} rev={} limit={:?}",
            z.key, z.bounds, z.reverse, z.limit
        ),
        Action::SetAdd(x) => format!(
            "SADD {} {} (expires: {})",
            x.key,
            x.members.join(" "),
            ttl(x.ttl_ms)
        ),
        Action::SetContains(x) => format!("SISMEMBER {} {}", x.key, x.member),
        Action::Script(x) => format!(
            "EVALSHA <{}> keys {:?}, {} args",
            x.name,
            x.keys,
            x.args.len()
        ),
    }
}

fn sample_value() -> Result<Vec<u8>, String> {
    let v: serde_json::Value = serde_json::from_str(SAMPLE).map_err(|e| e.to_string())?;
    rmp_serde::to_vec_named(&v).map_err(|e| e.to_string())
}

/// A domain with the defaults, for checking a plugin without a config.
pub fn default_domain(plugin: &str) -> Result<DomainConfig, String> {
    toml::from_str(&format!("plugin = {plugin:?}")).map_err(|e| e.to_string())
}
