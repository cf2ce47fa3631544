//! `[breaker]`: when the circuit breaker in front of Redis opens, and how it
//! probes its way back.

use super::ConfigError;
use super::lines::Checker;
use serde::{Deserialize, Serialize};

/// Thresholds, from `[breaker]` in the config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// Failure rate over `window_ms` that opens it, given `min_calls` calls.
    pub failure_rate: f64,
    pub window_ms: u64,
    pub min_calls: u32,
    /// First probe after opening, and the pace of the first few probes.
    pub probe_interval_ms: u64,
    /// The longest wait between probes while Redis stays down.
    pub recovery_timeout_ms: u64,
    /// Successful trial requests in half-open that close the breaker.
    pub half_open_trials: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            failure_rate: 0.5,
            window_ms: 10_000,
            min_calls: 20,
            probe_interval_ms: 50,
            recovery_timeout_ms: 30_000,
            half_open_trials: 3,
        }
    }
}

impl BreakerConfig {
    /// Zero in any count or interval breaks the breaker: min_calls 0 trips
    /// it with no failure at all, a zero window or interval spins its task.
    pub(super) fn check(&self, at: &Checker) -> Result<(), ConfigError> {
        let at_least_one = [
            ("failure_threshold", u64::from(self.failure_threshold)),
            ("window_ms", self.window_ms),
            ("min_calls", u64::from(self.min_calls)),
            ("probe_interval_ms", self.probe_interval_ms),
            ("half_open_trials", u64::from(self.half_open_trials)),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return Err(at.invalid(key, "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.failure_rate) || self.failure_rate == 0.0 {
            return Err(at.invalid("failure_rate", "must be in (0, 1]"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::testing::{PATH, refusal};
    use std::path::Path;

    #[test]
    fn each_breaker_count_and_interval_must_be_at_least_one() {
        for key in [
            "failure_threshold",
            "window_ms",
            "min_calls",
            "probe_interval_ms",
            "half_open_trials",
        ] {
            let text = format!(
                "[plugins]\ndir = \"p\"\n[breaker]\nfailure_rate = 0.5\n{key} = 0\nrecovery_timeout_ms = 1\n"
            );
            assert_eq!(
                refusal(&text),
                format!("conf/sluice.toml:5: breaker.{key}: must be at least 1")
            );
        }
    }

    #[test]
    fn the_failure_rate_must_be_in_zero_one() {
        for rate in ["0.0", "-0.1", "1.5", "nan"] {
            let text = format!("[plugins]\ndir = \"p\"\n\n[breaker]\nfailure_rate = {rate}\n");
            assert_eq!(
                refusal(&text),
                "conf/sluice.toml:5: breaker.failure_rate: must be in (0, 1]",
                "{rate}"
            );
        }
        let text = "[plugins]\ndir = \"p\"\n[breaker]\nfailure_rate = 1.0\n";
        assert_eq!(
            Config::parse(text, Path::new(PATH))
                .unwrap()
                .breaker
                .failure_rate,
            1.0
        );
    }
}
