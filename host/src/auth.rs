//! API keys for the data API: who a request comes from and whether its
//! scopes cover what the route touches.
//!
//! A client presents `Authorization: Bearer <key>`. The config holds only the
//! SHA-256 of each key (`[clients.NAME] key_sha256`): the presented key is
//! hashed and compared with every configured hash in constant time, so
//! neither the file nor the time an answer takes gives a key away. The table
//! is part of a generation: a reload that adds or revokes a client applies to
//! the next request.
//!
//! A client may instead show a TLS client certificate the gateway's client
//! CA signed, carrying the name its `cert_san` gives ([`PeerNames`]): it
//! needs no key then. A verified certificate that names no client, or a
//! key of another client than the certificate's, is refused (403): one
//! connection speaks for one client.
//!
//! This module is pure logic (no I/O) with its own error ([`AuthError`]):
//! `server::admit` asks [`Clients::identify`] for the caller and
//! [`Caller::may`] for the right the route needs
//! (`server::route::Route::needs`), before any body is read.

use crate::config::{ClientConfig, Config};
use crate::tls::PeerNames;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use subtle::ConstantTimeEq;

/// What a route asks of its client's scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Cache GET/HEAD, mget.
    Read,
    /// Cache PUT/DELETE, mset.
    Write,
    /// Publish events; create, read, acknowledge and claim stream groups.
    Events,
    /// Draw tokens from a rate-limit policy.
    RateLimits,
}

impl Right {
    /// The right as the config spells it (`clients.NAME.<right>`).
    pub fn name(self) -> &'static str {
        match self {
            Right::Read => "read",
            Right::Write => "write",
            Right::Events => "events",
            Right::RateLimits => "ratelimits",
        }
    }

    /// What the subject of this right is: a domain or a rate-limit policy.
    pub fn subject_kind(self) -> &'static str {
        match self {
            Right::RateLimits => "rate-limit policy",
            _ => "domain",
        }
    }
}

/// A right on a subject (a domain, or a rate-limit policy): what one
/// request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need<'a> {
    pub right: Right,
    pub subject: &'a str,
}

/// One configured client.
#[derive(Debug)]
pub struct Client {
    /// The config's name: the metric label and what a 403 names.
    pub name: String,
    key_sha256: Option<[u8; 32]>,
    /// `cert_san` as [`PeerNames`] spells it.
    cert_name: Option<String>,
    read: HashSet<String>,
    write: HashSet<String>,
    events: HashSet<String>,
    ratelimits: HashSet<String>,
}

/// The clients of one generation.
#[derive(Debug, Default)]
pub struct Clients {
    /// `None`: no `[clients]` table, the data API is open to anyone.
    clients: Option<Vec<Client>>,
}

/// Who a request comes from, once its key (if one was needed) is known.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// No `[clients]` table: anyone may do anything on the data API.
    Open,
    Client(&'a Client),
}

/// Why the data API refused a request: its own error, which `crate::error`
/// maps to 401 or 403 with everything else.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No key the gateway knows: a 401 with `WWW-Authenticate: Bearer`.
    #[error("{0}: send `Authorization: Bearer <key>` with the API key this client was given")]
    Unauthenticated(KeyProblem),
    /// A known client outside its scopes: a 403 naming the right to add.
    #[error(
        "client {client:?} may not do this: it has no `{right}` right on {kind} {subject:?} (clients.{client}.{right} in the gateway's config)",
        right = .right.name(),
        kind = .right.subject_kind()
    )]
    Forbidden {
        client: String,
        right: Right,
        subject: String,
    },
    /// A verified client certificate that names no client (403).
    #[error(
        "the client certificate ({names}) names no client of this gateway: give one of these names as cert_san in its [clients.NAME]"
    )]
    UnknownCertificate { names: String },
    /// A key and a certificate of two different clients on one request,
    /// or a certificate carrying two clients' names (403).
    #[error(
        "the request speaks for two clients, {key:?} and {cert:?} (by its API key and its client certificate, or by two names its certificate carries): one request speaks for one client"
    )]
    TwoClients { key: String, cert: String },
}

/// Why a request's credentials were refused (401): said so a person can
/// fix the client, never which part of a key matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    Missing,
    NotBearer,
    Unknown,
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyProblem::Missing => "no API key was sent",
            KeyProblem::NotBearer => "the Authorization header is not a bearer token",
            KeyProblem::Unknown => {
                "the API key is not one this gateway knows (mistyped or revoked)"
            }
        })
    }
}

impl Clients {
    /// The clients `config` names; `[clients]` absent: open.
    pub fn from_config(config: &Config) -> Clients {
        let clients = config.clients.as_ref().map(|table| {
            table
                .iter()
                .filter_map(|(name, c)| Client::new(name.get_ref(), c))
                .collect()
        });
        Clients { clients }
    }

    /// Whether the data API needs no key (no `[clients]` table).
    pub fn is_open(&self) -> bool {
        self.clients.is_none()
    }

    /// The caller of a request with these headers over a connection whose
    /// verified client certificate carries `names`: any caller when the API
    /// is open; else the client the certificate names (403 when it names
    /// none), and the client whose key the bearer token is (401 otherwise;
    /// 403 when it is not the certificate's).
    pub fn identify(
        &self,
        headers: &HeaderMap,
        names: Option<&PeerNames>,
    ) -> Result<Caller<'_>, AuthError> {
        let Some(clients) = &self.clients else {
            return Ok(Caller::Open);
        };
        let by_cert = match names {
            None => None,
            Some(names) => {
                let mut named = clients.iter().filter(|c| {
                    (c.cert_name.as_ref()).is_some_and(|n| names.0.iter().any(|m| m == n))
                });
                let first = named.next().ok_or_else(|| AuthError::UnknownCertificate {
                    names: names.0.join(", "),
                })?;
                if let Some(second) = named.next() {
                    return Err(AuthError::TwoClients {
                        key: second.name.clone(),
                        cert: first.name.clone(),
                    });
                }
                Some(first)
            }
        };
        let by_key = match (bearer(headers), by_cert) {
            (Err(KeyProblem::Missing), Some(client)) => return Ok(Caller::Client(client)),
            (token, _) => by_key(clients, token.map_err(AuthError::Unauthenticated)?)?,
        };
        match by_cert {
            Some(cert) if !std::ptr::eq(cert, by_key) => Err(AuthError::TwoClients {
                key: by_key.name.clone(),
                cert: cert.name.clone(),
            }),
            _ => Ok(Caller::Client(by_key)),
        }
    }
}

/// The client whose key `token` is (401 for none).
fn by_key<'c>(clients: &'c [Client], token: &str) -> Result<&'c Client, AuthError> {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    // Every hash is compared in full, with no early exit: the time taken
    // says nothing about how much of a guess matched any hash.
    let mut found = None;
    for client in clients {
        if let Some(hash) = &client.key_sha256
            && bool::from(hash.ct_eq(&digest))
        {
            found = Some(client);
        }
    }
    found.ok_or(AuthError::Unauthenticated(KeyProblem::Unknown))
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is
/// case-insensitive, RFC 9110 §11.1): the one parser for the data API's
/// keys and the admin token.
pub fn bearer(headers: &HeaderMap) -> Result<&str, KeyProblem> {
    let value = headers.get(AUTHORIZATION).ok_or(KeyProblem::Missing)?;
    let (scheme, token) = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .ok_or(KeyProblem::NotBearer)?;
    let token = token.trim_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(KeyProblem::NotBearer);
    }
    Ok(token)
}

impl Client {
    /// `None` for a malformed hash or name: `Config::check` refuses those first.
    fn new(name: &str, c: &ClientConfig) -> Option<Client> {
        let set = |v: &[String]| v.iter().cloned().collect::<HashSet<_>>();
        Some(Client {
            name: name.to_owned(),
            key_sha256: match &c.key_sha256 {
                Some(hash) => Some(parse_sha256(hash)?),
                None => None,
            },
            cert_name: match &c.cert_san {
                Some(san) => Some(crate::tls::cert_name(san)?),
                None => None,
            },
            read: set(&c.read),
            write: set(&c.write),
            events: set(&c.events),
            ratelimits: set(&c.ratelimits),
        })
    }

    fn scope(&self, right: Right) -> &HashSet<String> {
        match right {
            Right::Read => &self.read,
            Right::Write => &self.write,
            Right::Events => &self.events,
            Right::RateLimits => &self.ratelimits,
        }
    }
}

impl<'a> Caller<'a> {
    /// The metric label: the client's configured name, `-` when open.
    pub fn label(&self) -> &'a str {
        match self {
            Caller::Open => "-",
            Caller::Client(c) => &c.name,
        }
    }

    /// Whether the caller's scopes hold `need` (403 naming what is missing).
    pub fn may(&self, need: Need<'_>) -> Result<(), AuthError> {
        match self {
            Caller::Open => Ok(()),
            Caller::Client(c) if c.scope(need.right).contains(need.subject) => Ok(()),
            Caller::Client(c) => Err(AuthError::Forbidden {
                client: c.name.clone(),
                right: need.right,
                subject: need.subject.to_owned(),
            }),
        }
    }
}

/// The hex SHA-256 of a key, as `key_sha256` holds it (`sluice hash-key`).
pub fn hash_key(key: &[u8]) -> String {
    Sha256::digest(key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The key `sluice hash-key` read from stdin, less one trailing newline
/// (`\n` or `\r\n`, as `echo` and editors leave it). Refused when no
/// client could send it as a bearer token: empty, or not printable ASCII,
/// or with spaces at either end (a header's spaces are not part of it).
pub fn key_from_input(input: &[u8]) -> Result<&str, &'static str> {
    let key = input.strip_suffix(b"\n").unwrap_or(input);
    let key = key.strip_suffix(b"\r").unwrap_or(key);
    let key = std::str::from_utf8(key).map_err(|_| NOT_SENDABLE)?;
    if key.is_empty() {
        return Err("no key on stdin");
    }
    if !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        || key.starts_with(' ')
        || key.ends_with(' ')
    {
        return Err(NOT_SENDABLE);
    }
    Ok(key)
}

const NOT_SENDABLE: &str = "a key travels in an HTTP header: printable ASCII, no spaces at either end (e.g. `head -c 32 /dev/urandom | base64`)";

/// 64 hex digits (either case) → 32 bytes.
pub fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const KEY: &str = "s3cret-pricing-key";

    fn clients(table: &str) -> Clients {
        let text = format!(
            "[plugins]\ndir = \"p\"\n[domains.price]\nplugin = \"x\"\n[domains.market_depth]\nplugin = \"x\"\n[ratelimits.global]\ncapacity = 1\nrefill_per_s = 1\n{table}"
        );
        // Parsed, not checked: the checks are config.rs's (and need plugin files).
        Clients::from_config(&toml::from_str::<Config>(&text).unwrap())
    }

    fn pricing() -> Clients {
        clients(&format!(
            "[clients.pricing-svc]\nkey_sha256 = \"{}\"\nread = [\"price\", \"market_depth\"]\nwrite = [\"price\"]\nratelimits = [\"global\"]\n[clients.other]\nkey_sha256 = \"{}\"\n",
            hash_key(KEY.as_bytes()),
            hash_key(b"other-key").to_uppercase(),
        ))
    }

    fn headers(authorization: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = authorization {
            h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn problem(r: Result<Caller<'_>, AuthError>) -> KeyProblem {
        match r {
            Err(AuthError::Unauthenticated(p)) => p,
            other => panic!("not a 401: {other:?}"),
        }
    }

    #[test]
    fn the_hash_is_the_hex_sha256_of_the_key() {
        // `printf abc | sha256sum`
        assert_eq!(
            hash_key(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let parsed = parse_sha256(&hash_key(b"abc").to_uppercase()).unwrap();
        assert_eq!(parsed[..2], [0xba, 0x78]);
        for bad in ["", "ab", &"g".repeat(64), &"a".repeat(63), &"é".repeat(32)] {
            assert_eq!(parse_sha256(bad), None, "{bad}");
        }
    }

    #[test]
    fn hash_key_input_loses_one_trailing_newline_only() {
        assert_eq!(key_from_input(b"abc\n"), Ok("abc"));
        assert_eq!(key_from_input(b"abc\r\n"), Ok("abc"));
        assert_eq!(key_from_input(b"abc"), Ok("abc"));
        assert_eq!(key_from_input(b"a b+/="), Ok("a b+/="));
        assert_eq!(key_from_input(b""), Err("no key on stdin"));
        assert_eq!(key_from_input(b"\n"), Err("no key on stdin"));
        for bad in [
            &b"abc\n\n"[..],
            b"ab\tc",
            b" abc",
            b"abc \n",
            b"\xffab",
            "é".as_bytes(),
        ] {
            assert_eq!(key_from_input(bad), Err(NOT_SENDABLE), "{bad:?}");
        }
    }

    #[test]
    fn no_clients_table_leaves_the_api_open() {
        let open = clients("");
        assert!(open.is_open());
        let caller = open.identify(&headers(None), None).unwrap();
        assert_eq!(caller.label(), "-");
        let need = Need {
            right: Right::Write,
            subject: "price",
        };
        assert!(caller.may(need).is_ok());
    }

    #[test]
    fn a_client_certificate_names_its_client_and_a_key_must_agree_with_it() {
        let c = clients(&format!(
            "[clients.cert-only]\ncert_san = \"spiffe://prod/pricing\"\nread = [\"price\"]\n[clients.both]\nkey_sha256 = \"{}\"\ncert_san = \"dns:Both.Internal\"\n[clients.keyed]\nkey_sha256 = \"{}\"\n",
            hash_key(b"both-key"),
            hash_key(KEY.as_bytes()),
        ));
        let names = |n: &[&str]| PeerNames(n.iter().map(|s| s.to_string()).collect());
        let spiffe = names(&["uri:spiffe://prod/pricing", "cn:pricing"]);
        let caller = c.identify(&headers(None), Some(&spiffe)).unwrap();
        assert_eq!(caller.label(), "cert-only");
        // The same client by key and certificate; or the key alone.
        let both = names(&["dns:both.internal"]);
        let caller = c
            .identify(&headers(Some("Bearer both-key")), Some(&both))
            .unwrap();
        assert_eq!(caller.label(), "both");
        let caller = c
            .identify(&headers(Some(&format!("Bearer {KEY}"))), None)
            .unwrap();
        assert_eq!(caller.label(), "keyed");
        // Another client's key on a certificate's connection.
        let e = c
            .identify(&headers(Some(&format!("Bearer {KEY}"))), Some(&both))
            .unwrap_err();
        assert!(
            matches!(&e, AuthError::TwoClients { key, cert } if key == "keyed" && cert == "both"),
            "{e:?}"
        );
        // A certificate naming no client, with or without a good key.
        let stranger = names(&["dns:stranger", "cn:stranger"]);
        for auth in [None, Some(format!("Bearer {KEY}"))] {
            let e = c
                .identify(&headers(auth.as_deref()), Some(&stranger))
                .unwrap_err();
            assert_eq!(
                e.to_string(),
                "the client certificate (dns:stranger, cn:stranger) names no client of this gateway: give one of these names as cert_san in its [clients.NAME]"
            );
        }
        // A certificate carrying two clients' names speaks for neither.
        let two = names(&["dns:both.internal", "uri:spiffe://prod/pricing"]);
        let e = c.identify(&headers(None), Some(&two)).unwrap_err();
        assert!(matches!(e, AuthError::TwoClients { .. }), "{e:?}");
        // An unknown or malformed key is still a 401 on a certificate's connection.
        let e = c.identify(&headers(Some("Bearer nope")), Some(&both));
        assert_eq!(problem(e), KeyProblem::Unknown);
    }

    #[test]
    fn an_empty_clients_table_lets_no_one_in() {
        let closed = clients("[clients]\n");
        assert!(!closed.is_open());
        let key = format!("Bearer {KEY}");
        assert_eq!(
            problem(closed.identify(&headers(Some(&key)), None)),
            KeyProblem::Unknown
        );
    }

    #[test]
    fn a_known_key_names_its_client_whatever_the_case_of_its_hash() {
        let c = pricing();
        let caller = c
            .identify(&headers(Some(&format!("Bearer {KEY}"))), None)
            .unwrap();
        assert_eq!(caller.label(), "pricing-svc");
        let caller = c
            .identify(&headers(Some("bearer   other-key ")), None)
            .unwrap();
        assert_eq!(caller.label(), "other", "uppercase hash, lowercase scheme");
    }

    #[test]
    fn missing_malformed_and_unknown_keys_are_told_apart() {
        let c = pricing();
        assert_eq!(
            problem(c.identify(&headers(None), None)),
            KeyProblem::Missing
        );
        for not_bearer in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer    ",
            KEY,
            "Bearerx s3cret",
        ] {
            assert_eq!(
                problem(c.identify(&headers(Some(not_bearer)), None)),
                KeyProblem::NotBearer,
                "{not_bearer}"
            );
        }
        for unknown in [
            "Bearer s3cret-pricing-keY",
            "Bearer s3cret-pricing-key2",
            "Bearer x",
        ] {
            assert_eq!(
                problem(c.identify(&headers(Some(unknown)), None)),
                KeyProblem::Unknown,
                "{unknown}"
            );
        }
        let mut raw = HeaderMap::new();
        raw.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert_eq!(problem(c.identify(&raw, None)), KeyProblem::NotBearer);
    }

    #[test]
    fn scopes_grant_exactly_the_rights_they_list() {
        let c = pricing();
        let caller = c
            .identify(&headers(Some(&format!("Bearer {KEY}"))), None)
            .unwrap();
        let may = |right, subject| caller.may(Need { right, subject });
        assert!(may(Right::Read, "price").is_ok());
        assert!(may(Right::Read, "market_depth").is_ok());
        assert!(may(Right::Write, "price").is_ok());
        assert!(may(Right::RateLimits, "global").is_ok());
        for (right, subject) in [
            (Right::Write, "market_depth"),
            (Right::Events, "price"),
            (Right::Read, "cache"),
            (Right::RateLimits, "price"),
            (Right::Read, "global"),
        ] {
            match may(right, subject) {
                Err(e @ AuthError::Forbidden { .. }) => {
                    let shown = e.to_string();
                    assert!(shown.contains(right.name()), "{shown}");
                    assert!(shown.contains(&format!("{subject:?}")), "{shown}");
                    assert!(shown.contains("pricing-svc"), "{shown}");
                    assert_eq!(crate::error::Error::from(e).status(), 403);
                }
                other => panic!("{right:?} on {subject}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_refusal_message_says_what_to_send_not_the_admin_token() {
        let e = crate::error::Error::from(AuthError::Unauthenticated(KeyProblem::Missing));
        assert_eq!(e.status(), 401);
        let shown = e.to_string();
        assert!(shown.contains("Authorization: Bearer"), "{shown}");
        assert!(!shown.contains("ADMIN"), "{shown}");
    }
}
