//! `[clients.NAME]`: who may call the data API (the SHA-256 of each key)
//! and what each may touch.

use super::lines::Checker;
use super::{Config, ConfigError};
use crate::namespace::valid_name;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One client of the data API: who it is (the SHA-256 of its key) and what
/// it may touch. The file holds no key, so a leaked config grants nothing.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Hex SHA-256 of the key the client sends as `Authorization: Bearer`
    /// (`sluice hash-key` prints it).
    #[serde(default)]
    pub key_sha256: Option<String>,
    /// A name its TLS client certificate carries, signed by
    /// `server.tls.client_ca_file`: `spiffe://…` (or `uri:…`), `dns:…`, or
    /// the subject's common name as `cn:…`. Such a client needs no key; a
    /// key of another client on the same connection is refused (403).
    #[serde(default)]
    pub cert_san: Option<String>,
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
    /// Bytes a second it may write (keys and values, events; as stored),
    /// one budget shared by every gateway: one client cannot fill Redis
    /// and evict the other tenants' keys. Unset: no quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_bytes_per_s: Option<u64>,
    /// The most it may write at once after writing nothing for a while
    /// (the bucket's capacity). Unset: `write_bytes_per_s` or
    /// `server.max_body_bytes`, whichever is larger, so any body the
    /// server takes can pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_burst_bytes: Option<u64>,
    /// Blocking reads (long-polls) it may hold at once on one gateway.
    /// Unset: a fair share of the connections kept for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_long_polls: Option<usize>,
}

/// A well-formed hash no other client has, and scopes naming only
/// configured domains and rate-limit policies (a typo would otherwise deny
/// silently at request time).
pub(super) fn check(config: &Config, at: &Checker) -> Result<(), ConfigError> {
    let Some(clients) = &config.clients else {
        return Ok(());
    };
    let has_domain = |d: &str| config.domains.keys().any(|k| k.get_ref() == d);
    let has_policy = |p: &str| config.ratelimits.keys().any(|k| k.get_ref() == p);
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    let mut seen_names: BTreeMap<String, &str> = BTreeMap::new();
    let verifies = config
        .server
        .tls
        .as_ref()
        .is_some_and(|t| t.client_ca_file.is_some());
    for (name, client) in clients {
        let name = name.get_ref();
        let at = at.at(name);
        if !valid_name(name) || name == "-" {
            return Err(at.refuse("client names are 1 to 64 of a-z, 0-9, '_' and '-' (not \"-\" alone: that is the metric label of anonymous requests)"));
        }
        if client.key_sha256.is_none() && client.cert_san.is_none() {
            return Err(at.refuse(
                "needs key_sha256 (the SHA-256 of its API key) or cert_san (a name its client certificate carries)",
            ));
        }
        if let Some(hash) = &client.key_sha256 {
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(at.invalid(
                    "key_sha256",
                    "must be 64 hex digits, the SHA-256 of the key (`sluice hash-key` prints it)",
                ));
            }
            if let Some(other) = seen.insert(hash.to_ascii_lowercase(), name) {
                return Err(at.invalid(
                    "key_sha256",
                    format!("the same key as client {other:?}: each client needs a key of its own"),
                ));
            }
        }
        if let Some(san) = &client.cert_san {
            let Some(spelled) = crate::tls::cert_name(san) else {
                return Err(at.invalid(
                    "cert_san",
                    format!(
                        "{san:?} is not a certificate name: write spiffe://…, uri:…, dns:… or cn:…"
                    ),
                ));
            };
            if !verifies {
                return Err(at.invalid(
                    "cert_san",
                    "needs server.tls.client_ca_file: without it no client certificate is verified",
                ));
            }
            if let Some(other) = seen_names.insert(spelled, name) {
                return Err(at.invalid(
                    "cert_san",
                    format!(
                        "the same name as client {other:?}: a certificate must name one client"
                    ),
                ));
            }
        }
        for (right, names) in [
            ("read", &client.read),
            ("write", &client.write),
            ("events", &client.events),
        ] {
            if let Some(d) = names.iter().find(|d| !has_domain(d)) {
                return Err(at.invalid(right, format!("{d:?} is not a configured domain")));
            }
        }
        if let Some(p) = client.ratelimits.iter().find(|p| !has_policy(p)) {
            return Err(at.invalid(
                "ratelimits",
                format!("{p:?} is not a configured rate-limit policy"),
            ));
        }
        client.check_quota(&at)?;
    }
    Ok(())
}

impl ClientConfig {
    /// A write budget that can admit something: a rate of at least one byte
    /// (no writes at all is an empty `write` scope), and a burst only with a
    /// rate to refill it.
    fn check_quota(&self, at: &Checker) -> Result<(), ConfigError> {
        match (self.write_bytes_per_s, self.write_burst_bytes) {
            (Some(0), _) => Err(at.invalid(
                "write_bytes_per_s",
                "must be at least 1 (a client that may not write has no `write` scopes)",
            )),
            (_, Some(0)) => Err(at.invalid("write_burst_bytes", "must be at least 1")),
            (None, Some(_)) => Err(at.invalid(
                "write_burst_bytes",
                "needs write_bytes_per_s, the rate that refills it",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{PATH, folder};
    use super::*;

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
    fn a_write_quota_needs_a_rate_of_at_least_one_byte() {
        let quota = |keys: &str| {
            with_clients(&format!(
                "[clients.svc]\nkey_sha256 = \"{HASH}\"\nwrite = [\"cache\"]\n{keys}"
            ))
        };
        let c = parse_clients(&quota(
            "write_bytes_per_s = 1000\nwrite_burst_bytes = 5000\nmax_long_polls = 0\n",
        ))
        .unwrap();
        let svc = c.clients.as_ref().unwrap().values().next().unwrap();
        assert_eq!(
            (
                svc.write_bytes_per_s,
                svc.write_burst_bytes,
                svc.max_long_polls
            ),
            (Some(1000), Some(5000), Some(0))
        );
        for (keys, refused) in [
            (
                "write_bytes_per_s = 0\n",
                "13: clients.svc.write_bytes_per_s: must be at least 1 (a client that may not write has no `write` scopes)",
            ),
            (
                "write_bytes_per_s = 10\nwrite_burst_bytes = 0\n",
                "14: clients.svc.write_burst_bytes: must be at least 1",
            ),
            (
                "write_burst_bytes = 10\n",
                "13: clients.svc.write_burst_bytes: needs write_bytes_per_s, the rate that refills it",
            ),
        ] {
            assert_eq!(
                client_refusal(&quota(keys)),
                format!("{PATH}:{refused}"),
                "{keys}"
            );
        }
        let e = client_refusal(&quota("max_long_polls = -1\n"));
        assert!(e.contains("max_long_polls"), "{e}");
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
        assert_eq!(
            client_refusal(&text),
            format!(
                "{PATH}:10: clients.svc: needs key_sha256 (the SHA-256 of its API key) or cert_san (a name its client certificate carries)"
            )
        );
    }

    #[test]
    fn a_certificate_name_needs_a_client_ca_is_well_spelled_and_names_one_client() {
        let (dir, path) = folder(&["x"]);
        let ca = crate::tls::testing::Ca::new();
        let (cert, key) = ca.leaf(&[], "gw", 0, 4_000_000_000);
        for (name, text) in [("gw.pem", &cert), ("gw.key", &key), ("ca.pem", &ca.pem)] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let parse = |tls: &str, clients: &str| {
            Config::parse(&with_clients(&format!("{tls}{clients}")), &path)
                .map_err(|e| e.to_string().replace(&*path.to_string_lossy(), PATH))
        };
        let tls = "[server.tls]\ncert_file = \"gw.pem\"\nkey_file = \"gw.key\"\nclient_ca_file = \"ca.pem\"\n";
        let svc = "[clients.svc]\ncert_san = \"spiffe://prod/svc\"\nread = [\"cache\"]\n";
        let c = parse(tls, svc).unwrap();
        assert!(c.server.tls.unwrap().door.is_some(), "loaded with the file");
        let without_ca = tls.replace("client_ca_file = \"ca.pem\"\n", "");
        assert_eq!(
            parse(&without_ca, svc).unwrap_err(),
            format!(
                "{PATH}:14: clients.svc.cert_san: needs server.tls.client_ca_file: without it no client certificate is verified"
            )
        );
        let bad = svc.replace("spiffe://prod/svc", "svc.internal");
        assert!(
            parse(tls, &bad)
                .unwrap_err()
                .ends_with("clients.svc.cert_san: \"svc.internal\" is not a certificate name: write spiffe://…, uri:…, dns:… or cn:…")
        );
        let twice = format!("{svc}[clients.zz]\ncert_san = \"uri:spiffe://prod/svc\"\n");
        assert!(
            parse(tls, &twice)
                .unwrap_err()
                .ends_with("clients.zz.cert_san: the same name as client \"svc\": a certificate must name one client")
        );
    }
}
