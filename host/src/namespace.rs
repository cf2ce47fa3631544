//! The key space, in one place: which names an operator may give (domains,
//! rate-limit policies, clients), the prefixes the gateway keeps for its own
//! keys, and which domain a stream belongs to. Pure functions, no I/O: the
//! config checks, the routes, the generation and the store all ask here, so
//! no two of them can disagree about whose a key is.

/// Prefix of the rate limiter's buckets: `ratelimit:{policy}:{subject}`.
pub const RATELIMIT: &str = "ratelimit:";

/// Prefix of idempotency records: `idempotency:{domain}:{client}:{key}`.
pub const IDEMPOTENCY: &str = "idempotency:";

/// Every prefix the gateway keeps for its own keys: no domain and no
/// declared prefix may reach under one.
pub const RESERVED: [&str; 2] = [RATELIMIT, IDEMPOTENCY];

/// Whether `key` lies under one of the gateway's own prefixes.
pub fn is_reserved(key: &str) -> bool {
    RESERVED.iter().any(|r| key.starts_with(r))
}

/// `[a-z0-9_-]{1,64}`: domains, rate-limit policies and clients appear in
/// URLs, key prefixes and metric labels, and none of them holds a `:`, so
/// `global` and `global:vip` can never name the same keys.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The domain a stream belongs to: `{domain}:{rest}`, `rest` not empty and
/// `domain` a valid name. `None` for a stream in no domain's namespace.
pub fn stream_domain(stream: &str) -> Option<&str> {
    let (domain, rest) = stream.split_once(':')?;
    (!rest.is_empty() && valid_name(domain)).then_some(domain)
}

/// The Redis key of `policy`'s token bucket for `subject`.
pub fn ratelimit_key(policy: &str, subject: &str) -> String {
    format!("{RATELIMIT}{policy}:{subject}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lowercase_words() {
        for ok in ["cache", "market_depth", "a-1", "0", &"x".repeat(64)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Cache",
            "a b",
            "a:b",
            "a.b",
            "é",
            "a/b",
            &"x".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_stream_belongs_to_the_domain_before_its_first_colon() {
        assert_eq!(stream_domain("arb:opp:btc"), Some("arb"));
        assert_eq!(stream_domain("arb:x"), Some("arb"));
        for none in ["arb:", "arb", ":x", "", "Arb:x", "a b:x"] {
            assert_eq!(stream_domain(none), None, "{none:?}");
        }
    }

    #[test]
    fn the_gateways_own_keys_are_reserved() {
        assert!(is_reserved("ratelimit:global:u"));
        assert!(is_reserved("idempotency:cache:k"));
        assert!(!is_reserved("cache:ratelimit:x"));
        assert_eq!(ratelimit_key("global", "u:1"), "ratelimit:global:u:1");
    }
}
