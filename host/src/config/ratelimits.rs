//! `[ratelimits.NAME]`: token-bucket policies, and what each does while
//! Redis cannot be asked.

use super::ConfigError;
use super::lines::Checker;
use crate::namespace::valid_name;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

/// What a rate-limit policy does while Redis cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenUnavailable {
    /// Admit (the protected service matters more than the limit).
    FailOpen,
    /// Refuse with 503 (the limit matters more).
    FailClosed,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Tokens the bucket holds: the largest burst.
    pub capacity: u64,
    /// Tokens added per second.
    pub refill_per_s: f64,
    #[serde(default = "default_when_unavailable")]
    pub when_unavailable: WhenUnavailable,
}

fn default_when_unavailable() -> WhenUnavailable {
    WhenUnavailable::FailOpen
}

/// Each policy, in name order. A name is a word without `:`, like a
/// domain's: buckets are `ratelimit:{policy}:{subject}`, so a policy
/// `global:vip` would be drained by subject `vip:…` of `global`.
pub(super) fn check(
    policies: &BTreeMap<Spanned<String>, RateLimitConfig>,
    at: &Checker,
) -> Result<(), ConfigError> {
    for (name, policy) in policies {
        let at = at.at(name.get_ref());
        if !valid_name(name.get_ref()) {
            return Err(at.refuse("rate-limit policy names are 1 to 64 of a-z, 0-9, '_' and '-'"));
        }
        if policy.capacity == 0 || !(policy.refill_per_s > 0.0 && policy.refill_per_s.is_finite()) {
            return Err(at.refuse("capacity must be at least 1 and refill_per_s a positive number"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{PATH, refusal};

    #[test]
    fn a_rate_limit_needs_capacity_and_a_positive_refill() {
        let msg = "capacity must be at least 1 and refill_per_s a positive number";
        let text = "[plugins]\ndir = \"p\"\n\n[ratelimits.ok]\ncapacity = 1\nrefill_per_s = 1\n\n[ratelimits.global]\ncapacity = 0\nrefill_per_s = 5\n";
        assert_eq!(refusal(text), format!("{PATH}:8: ratelimits.global: {msg}"));
        let text = "[plugins]\ndir = \"p\"\n[ratelimits.global]\ncapacity = 5\nrefill_per_s = 0\n";
        assert_eq!(refusal(text), format!("{PATH}:3: ratelimits.global: {msg}"));
    }

    #[test]
    fn an_inline_rate_limit_is_reported_on_its_own_line() {
        // The key starts its line: the line before it is not the answer.
        let text = "[plugins]\ndir = \"p\"\n[ratelimits]\nfine = { capacity = 1, refill_per_s = 1 }\nzero = { capacity = 0, refill_per_s = 1 }\n";
        assert_eq!(
            refusal(text),
            format!(
                "{PATH}:5: ratelimits.zero: capacity must be at least 1 and refill_per_s a positive number"
            )
        );
    }

    #[test]
    fn a_policy_name_is_a_word_without_a_colon() {
        // Else `global:vip`'s buckets are `global`'s with subject `vip:…`.
        let msg = "rate-limit policy names are 1 to 64 of a-z, 0-9, '_' and '-'";
        let text = "[plugins]\ndir = \"p\"\n[ratelimits.global]\ncapacity = 1\nrefill_per_s = 1\n\n[ratelimits.\"global:vip\"]\ncapacity = 1\nrefill_per_s = 1\n";
        assert_eq!(
            refusal(text),
            format!("{PATH}:7: ratelimits.global:vip: {msg}")
        );
        let text =
            "[plugins]\ndir = \"p\"\n[ratelimits]\nGlobal = { capacity = 1, refill_per_s = 1 }\n";
        assert_eq!(refusal(text), format!("{PATH}:4: ratelimits.Global: {msg}"));
    }
}
