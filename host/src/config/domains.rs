//! `[domains.NAME]`: a key namespace and the policy that serves it, with
//! the checks that keep every key in exactly one domain (names, declared
//! prefixes, the gateway's own keys) and its TTLs and sandbox sane.

use super::lines::Checker;
use super::{Config, ConfigError, ReadFrom, Topology};
use crate::namespace::{RESERVED, is_reserved, valid_name};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// The largest value a PUT or an mset item may store (MessagePack, as
    /// stored): one tenant's domain can hold smaller values than the
    /// server's body limit. Unset: `server.max_body_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value_bytes: Option<usize>,
    /// The largest event a publish may add (MessagePack). Unset:
    /// `server.max_body_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_event_bytes: Option<usize>,
    /// Settings only the plugin reads, handed to its `configure` whole (as
    /// MessagePack: arrays and nested tables intact).
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

/// Each domain, in name order, against the rest of the file: the other
/// domains' keys, `redis.cluster`, the plugins folder.
pub(super) fn check(config: &Config, at: &Checker) -> Result<(), ConfigError> {
    for (name, domain) in &config.domains {
        domain.check(name.get_ref(), config, &at.at(name.get_ref()))?;
    }
    Ok(())
}

impl DomainConfig {
    fn check(&self, name: &str, config: &Config, at: &Checker) -> Result<(), ConfigError> {
        if !valid_name(name) {
            return Err(at.refuse("domain names are 1 to 64 of a-z, 0-9, '_' and '-'"));
        }
        if is_reserved(&format!("{name}:")) {
            return Err(at.refuse(format!(
                "the keys under {} are the gateway's own: choose another domain name",
                RESERVED.join(" and ")
            )));
        }
        if self.read_from == ReadFrom::Replica && config.redis.topology != Topology::Cluster {
            return Err(at.invalid(
                "read_from",
                "reads from replicas need a Redis Cluster (redis.cluster = true)",
            ));
        }
        if self.min_ttl_s == 0 {
            return Err(at.invalid("min_ttl_s", "must be at least 1: every key expires"));
        }
        if self.min_ttl_s > self.max_ttl_s {
            return Err(at.invalid(
                "min_ttl_s",
                format!(
                    "{} is greater than max_ttl_s ({})",
                    self.min_ttl_s, self.max_ttl_s
                ),
            ));
        }
        if !(self.min_ttl_s..=self.max_ttl_s).contains(&self.ttl_s) {
            return Err(at.invalid(
                "ttl_s",
                format!(
                    "{} is outside min_ttl_s..=max_ttl_s ({}..={})",
                    self.ttl_s, self.min_ttl_s, self.max_ttl_s
                ),
            ));
        }
        for (key, value) in [
            ("plugin_timeout_ms", self.plugin_timeout_ms),
            ("plugin_memory_mib", self.plugin_memory_mib),
        ] {
            if value == 0 {
                return Err(at.invalid(key, "must be at least 1"));
            }
        }
        let body = config.server.max_body_bytes;
        for (key, value) in [
            ("max_value_bytes", self.max_value_bytes),
            ("max_event_bytes", self.max_event_bytes),
        ] {
            match value {
                Some(0) => return Err(at.invalid(key, "must be at least 1")),
                Some(n) if n > body => {
                    return Err(at.invalid(
                        key,
                        format!("{n} is more than server.max_body_bytes ({body}): no body that large is read"),
                    ));
                }
                _ => {}
            }
        }
        self.check_prefixes(name, config, at)?;
        let wasm = config.plugin_path(&self.plugin);
        if !wasm.is_file() {
            return Err(at.invalid("plugin", format!("no plugin file {}", wasm.display())));
        }
        Ok(())
    }

    /// Each declared prefix is a name and a `:`, outside the gateway's own
    /// keys, and reaches into no other domain's keys: a key would belong to
    /// both, and each plugin could undo the other's writes.
    fn check_prefixes(&self, name: &str, config: &Config, at: &Checker) -> Result<(), ConfigError> {
        let refuse = |message: String| Err(at.invalid("prefixes", message));
        if let Some(p) = self
            .prefixes
            .iter()
            .find(|p| p.len() < 2 || !p.ends_with(':'))
        {
            return refuse(format!("{p:?}: a prefix is a name followed by ':'"));
        }
        if let Some(p) = self.prefixes.iter().find(|p| is_reserved(p)) {
            return refuse(format!("{p:?}: keys under it are the gateway's own"));
        }
        let overlap = |a: &str, b: &str| a.starts_with(b) || b.starts_with(a);
        for p in &self.prefixes {
            for (other, theirs) in &config.domains {
                let other = other.get_ref();
                // A domain's own prefixes may nest; its namespace may not.
                let declared = theirs.prefixes.iter().filter(|_| other != name).cloned();
                let clash = std::iter::once(format!("{other}:"))
                    .chain(declared)
                    .find(|t| overlap(p, t));
                if let Some(t) = clash {
                    return refuse(format!(
                        "{p:?} overlaps {t:?} of domain {other:?}: a key would belong to both"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{PATH, folder, refusal, refusal_at};
    use super::*;

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
    fn value_and_event_limits_lie_within_the_body_limit() {
        let (_dir, path) = folder(&["x"]);
        let domain = |keys: &str| {
            format!(
                "[server]\nmax_body_bytes = 1000\n[plugins]\ndir = \"plugins\"\n[domains.cache]\nplugin = \"x\"\n{keys}"
            )
        };
        let c = Config::parse(
            &domain("max_value_bytes = 1000\nmax_event_bytes = 1\n"),
            &path,
        );
        let d = c.unwrap().domains.into_values().next().unwrap();
        assert_eq!(
            (d.max_value_bytes, d.max_event_bytes),
            (Some(1000), Some(1))
        );
        let unset = Config::parse(&domain(""), &path).unwrap();
        assert_eq!(unset.domains.values().next().unwrap().max_value_bytes, None);
        let refused =
            |keys: &str| refusal_at(&domain(keys), &path).replace(&*path.to_string_lossy(), PATH);
        assert_eq!(
            refused("max_value_bytes = 0\n"),
            format!("{PATH}:7: domains.cache.max_value_bytes: must be at least 1")
        );
        assert_eq!(
            refused("max_event_bytes = 1001\n"),
            format!(
                "{PATH}:7: domains.cache.max_event_bytes: 1001 is more than server.max_body_bytes (1000): no body that large is read"
            )
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
}
