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

    /// `text` (a message made by others about this URL) without any of
    /// the URL's parts that may be its password: what follows the first
    /// `:` of the userinfo, and a `pass=` value. A message may quote them
    /// without the rest of the URL around them.
    pub fn scrub(&self, text: &str) -> String {
        let url = self.expose();
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let userinfo = rest.rsplit_once('@').map(|(u, _)| u);
        let password = userinfo.and_then(|u| u.split_once(':').map(|(_, p)| p).or(Some(u)));
        let query = url.split_once("pass=").map(|(_, p)| p);
        let mut out = text.to_owned();
        for secret in [password, query].into_iter().flatten() {
            if secret.len() >= 3 {
                out = out.replace(secret, "***");
            }
        }
        out
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
/// a `pass=` query parameter (`redis+unix://`, everything after it). An `@`
/// after the authority (a password with an unencoded `/`, `?` or `#`, an
/// empty authority: `redis:///:pw@host`, or a socket path, where a
/// misplaced password cannot be told from an `@` in a file name) shows
/// nothing after the scheme. Text before the scheme (`url=[redis://…`)
/// stays as it is. Text that is not `scheme://…`
/// but holds an `@`, a `:` or `pass` (`redis:/:pw@host`, `redis:pw`,
/// `redis//:pw@host`, `user:pw@host`) is hidden whole: a mistyped URL is
/// where a password is most likely to be echoed.
fn redact_url(url: &str) -> String {
    let split = url.split_once("://").map(|(before, rest)| {
        let at = before
            .rfind(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c)))
            .map_or(0, |i| i + 1);
        (&before[..at], &before[at..], rest)
    });
    let Some((lead, scheme, rest)) = split.filter(|(_, s, _)| is_scheme(s)) else {
        return match url.contains(['@', ':']) || url.contains("pass") {
            true => "***".to_owned(),
            false => url.to_owned(),
        };
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if tail.contains('@') {
        return format!("{lead}{scheme}://***");
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
            let mut shown = Vec::new();
            for pair in query.split('&') {
                match pair.split_once('=') {
                    // The rest may be the password's own `&`s.
                    Some((key @ ("pass" | "password"), _)) => {
                        shown.push(format!("{key}=***"));
                        break;
                    }
                    _ => shown.push(pair.to_owned()),
                }
            }
            format!("{path}?{}", shown.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{lead}{scheme}://{authority}{tail}")
}

/// `[a-z][a-z0-9+.-]*`, as URL schemes are.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c))
}

/// Whether a word of a message may be a Redis URL, well-formed or not: it
/// holds `://`, or starts with a Redis scheme's name and a `:` or `/`
/// (`redis:/:pw@h`, `redis//:pw@h`), or holds an `@` (`user:pw@host`) or
/// a `pass=`.
fn url_like(word: &str) -> bool {
    const SCHEMES: [&str; 7] = [
        "redis+unix",
        "valkey+unix",
        "rediss",
        "redis",
        "valkeys",
        "valkey",
        "unix",
    ];
    word.contains("://")
        || word.contains('@')
        || word.contains("pass=")
        || word.contains("password=")
        || SCHEMES.iter().any(|s| {
            word.strip_prefix(s)
                .is_some_and(|rest| rest.starts_with([':', '/']))
        })
}

/// `text` with the password of every URL in it hidden (a URL: a run of
/// characters other than whitespace and quotes that [`url_like`] takes for
/// one). For messages made by others that may quote the config file. A
/// password with whitespace or quotes in it is not one word: this cannot
/// hide what it cannot tell apart.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if url_like(word) {
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
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        // An '@' in a socket's path cannot be told from a misplaced password.
        assert_eq!(redact_url("redis+unix:///tmp/a@b.sock"), "redis+unix://***");
        // Mistyped: hidden whole.
        for typo in ["redis:/:pw@h", "redis:pw", "redis//:pw@h", "u:pw@h"] {
            assert_eq!(redact_url(typo), "***", "{typo}");
        }
        assert_eq!(redact_url("redis:///:pw@h"), "redis://***");
        // A password with an unencoded '/' or '#': nothing is shown.
        assert_eq!(redact_url("redis://u:pa/ss@db:6379"), "redis://***");
        assert_eq!(redact_url("redis://u:pa#ss@db:6379"), "redis://***");
        assert_eq!(redact_url("redis://u:p@ss/x@h"), "redis://***");
    }

    proptest::proptest! {
        /// A password planted where a mistyped URL puts it never shows:
        /// not in the URL's own display, its debug form or JSON, not in a
        /// message quoting the URL (a TOML error's line), not in the
        /// refusal of the URL, whatever the typo around it.
        #[test]
        fn a_planted_password_shows_in_no_output(
            prefix in proptest::sample::select(vec![
                "redis://", "redis:///", "redis:/", "redis:", "redis//", "redis:\\\\",
                "rediss://", "redis+unix://", "redis+unix:///", "unix:", "valkey://", "",
                "http://", "redis:://",
            ]),
            user in "[a-z]{0,6}",
            // No `:`: in userinfo it ends the user, which is not secret.
            password in "[A-Za-z0-9!$%*~_^.@/#?-]{6,16}",
            host in "[a-z]{1,8}(:[0-9]{1,5})?",
            shape in 0..6usize,
        ) {
            let url = match shape {
                0 => format!("{prefix}{user}:{password}@{host}"),
                1 => format!("{prefix}:{password}@{host}/0"),
                2 => format!("{prefix}{host}?db=1&pass={password}"),
                3 => format!("{prefix}{user}:{password}@{host}@x"),
                4 => format!("{prefix}{password}@{host}"),
                _ => format!("{prefix}/{user}:{password}@{host}"),
            };
            let redis = RedisUrl::new(url.clone());
            let refusal = crate::config::url_refusal(&redis);
            for shown in [
                redis.to_string(),
                format!("{redis:?}"),
                serde_json::to_string(&redis).unwrap_or_default(),
                redact_urls(&format!("2 | url = \"{url}\"\n  |   ^ invalid")),
                redact_urls(&format!("cannot connect to {url}: refused")),
                refusal,
            ] {
                proptest::prop_assert!(!shown.contains(&password), "{url} shown as {shown}");
            }
        }
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
