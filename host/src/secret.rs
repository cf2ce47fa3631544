//! What must never be printed: the admin token and the password in the Redis
//! URL. They live only inside [`Secret`] and [`RedisUrl`], whose `Debug`,
//! `Display` and `Serialize` show `***` (or the URL without its password), so
//! `/admin/config`, logs, `{:?}` of any struct holding them and error
//! messages built from them cannot carry the secret. The raw value comes out
//! only through `expose`, at the two places that need it: building the Redis
//! client and comparing a bearer token; the admin token also keys the MAC
//! of the status page's session cookie ([`Secret::mac`]), which never
//! carries the token itself.
//!
//! Text made by others (a TOML parse error quoting the line it failed on)
//! goes through [`redact_urls`] before it is shown.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// A string whose value is never shown: `***` in `Debug`, `Display` and
/// serialized output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the code that must use it (never to print).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, in time that says nothing about how
    /// much of a guess was right: both sides are hashed first, so not even
    /// the length shows.
    pub fn matches(&self, given: &[u8]) -> bool {
        let (a, b) = (Sha256::digest(self.0.as_bytes()), Sha256::digest(given));
        a.as_slice().ct_eq(b.as_slice()).into()
    }

    /// HMAC-SHA256 of `message` keyed by this secret: a value only who knows
    /// the secret can make, and that says nothing about it.
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.0.as_bytes());
        let mut out = [0; 32];
        out.copy_from_slice(ring::hmac::sign(&key, message).as_ref());
        out
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A Redis URL as the config file gives it. It may carry a password
/// (`redis://user:password@host`, `redis+unix:///s.sock?pass=...`), so it
/// shows itself without one: `redis://user:***@host`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(Secret);

impl RedisUrl {
    pub fn new(url: impl Into<String>) -> RedisUrl {
        RedisUrl(Secret::new(url))
    }

    /// The URL with its password, for the one place that builds the client.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The scheme (`redis`, `rediss`, `redis+unix`, ...), empty when there is none.
    pub fn scheme(&self) -> &str {
        self.expose().split_once("://").map_or("", |(s, _)| s)
    }
}

impl From<String> for RedisUrl {
    fn from(url: String) -> RedisUrl {
        RedisUrl::new(url)
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.expose()))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(self.expose()), f)
    }
}

impl Serialize for RedisUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&redact_url(self.expose()))
    }
}

impl<'de> Deserialize<'de> for RedisUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RedisUrl, D::Error> {
        String::deserialize(d).map(RedisUrl::new)
    }
}

/// A Redis URL with its password replaced by `***`: the one in the authority
/// (`redis://user:***@host`, where the last `@` ends it, as URL parsers read
/// it; userinfo without a `:` is hidden whole, in case it is a password) and
/// a `pass=` query parameter (`redis+unix://`). A host followed by another
/// `@` further on (a password with an unencoded `/`, `?` or `#` in it, which
/// no parser reads as meant) shows nothing after the scheme.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if !authority.is_empty() && tail.contains('@') {
        return format!("{scheme}://***");
    }
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<_> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key @ ("pass" | "password"), _)) => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// `text` with the password of every URL in it hidden (a URL: a run of
/// characters other than whitespace and quotes that holds `://`). For
/// messages made by others that may quote the config file.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains("://") {
            out.push_str(&redact_url(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '"' | '\'' | '`') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_itself() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            token: Option<Secret>,
        }
        let shown = format!("{:?}", Holder { token: Some(s) });
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_secret_matches_only_itself() {
        let s = Secret::new("secret");
        assert!(s.matches(b"secret"));
        assert!(!s.matches(b"secreT"));
        assert!(!s.matches(b"secret2"));
        assert!(!s.matches(b""));
        assert!(!Secret::new("").matches(b"x"));
    }

    #[test]
    fn a_redis_url_shows_itself_without_its_password() {
        let url = RedisUrl::new("redis://app:s3cret@db.internal:6379/2");
        assert_eq!(url.to_string(), "redis://app:***@db.internal:6379/2");
        assert_eq!(format!("{url:?}"), "\"redis://app:***@db.internal:6379/2\"");
        assert_eq!(
            serde_json::to_string(&url).unwrap(),
            "\"redis://app:***@db.internal:6379/2\""
        );
        assert_eq!(url.expose(), "redis://app:s3cret@db.internal:6379/2");
        let parsed: RedisUrl = serde_json::from_str("\"rediss://h:1\"").unwrap();
        assert_eq!(
            (parsed.expose(), parsed.scheme()),
            ("rediss://h:1", "rediss")
        );
    }

    #[test]
    fn redact_url_hides_only_the_password() {
        assert_eq!(
            redact_url("redis://:s3cret@db:6379"),
            "redis://:***@db:6379"
        );
        assert_eq!(redact_url("redis://s3cret@db:6379"), "redis://***@db:6379");
        assert_eq!(
            redact_url("rediss://127.0.0.1:6380/0"),
            "rediss://127.0.0.1:6380/0"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn redact_url_hides_a_password_with_an_at_sign_or_in_the_query() {
        // URL parsers end the userinfo at the last '@': all of "p@ss" is secret.
        let info = redis::IntoConnectionInfo::into_connection_info("redis://u:p@ss@db:6379");
        assert_eq!(info.unwrap().redis_settings().password(), Some("p@ss"));
        let shown = redact_url("redis://u:p@ss@db:6379");
        assert_eq!(shown, "redis://u:***@db:6379");
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=s3cret&user=u"),
            "redis+unix:///run/redis.sock?db=1&pass=***&user=u"
        );
        // An '@' in a socket's path is not userinfo.
        assert_eq!(
            redact_url("redis+unix:///tmp/a@b.sock"),
            "redis+unix:///tmp/a@b.sock"
        );
        // A password with an unencoded '/' or '#': nothing is shown.
        assert_eq!(redact_url("redis://u:pa/ss@db:6379"), "redis://***");
        assert_eq!(redact_url("redis://u:pa#ss@db:6379"), "redis://***");
        assert_eq!(redact_url("redis://u:p@ss/x@h"), "redis://***");
    }

    #[test]
    fn urls_inside_a_message_lose_their_passwords() {
        let text = "TOML parse error at line 2\n  |\n2 | url = \"redis://u:pw@h:1\" x\n  |   ^\n";
        let shown = redact_urls(text);
        assert_eq!(
            shown,
            "TOML parse error at line 2\n  |\n2 | url = \"redis://u:***@h:1\" x\n  |   ^\n"
        );
        assert_eq!(redact_urls("url=[redis://:pw@h]"), "url=[redis://:***@h]");
        assert_eq!(redact_urls("no urls here"), "no urls here");
    }
}
