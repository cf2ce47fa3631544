//! `adaptive-ttl`: how long a key lives follows how often it is read.
//!
//! The gateway keeps, per key and in bounded memory, how often it was read
//! lately (a decayed reads-per-minute rate). A write gets
//! `ttl_s × (0.5 + rate / hot_reads_per_min)`, kept within the domain's
//! `min_ttl_s..=max_ttl_s`: a key nobody reads lives half the base TTL, a
//! hot one up to the maximum. A read of a hot key extends its life the same
//! way. Every TTL gets ±`jitter_pct` % of jitter so keys written together do
//! not expire together (the host's random bits; plugins have none).
//!
//! Settings: `hot_reads_per_min` (default 60), `jitter_pct` (default 10).
//! The domain needs `track_access = true` for the host to keep statistics.

use sluice_sdk::{Config, Error, Operation, Plan, Policy, Request};

pub struct AdaptiveTtl;

struct Settings {
    base_ms: f64,
    min_ms: f64,
    max_ms: f64,
    hot: f64,
    jitter: f64,
}

impl Settings {
    fn read(config: &Config) -> Result<Settings, Error> {
        let secs = |name, default: u64| -> Result<f64, Error> {
            Ok(config.get::<u64>(name)?.unwrap_or(default) as f64 * 1000.0)
        };
        let hot = config.get::<f64>("hot_reads_per_min")?.unwrap_or(60.0);
        let jitter = config.get::<f64>("jitter_pct")?.unwrap_or(10.0);
        if !(hot > 0.0 && hot.is_finite()) {
            return Err(Error::bad_config(
                "hot_reads_per_min must be a positive number",
            ));
        }
        if !(0.0..=50.0).contains(&jitter) {
            return Err(Error::bad_config("jitter_pct must be between 0 and 50"));
        }
        Ok(Settings {
            base_ms: secs("ttl_s", 10)?,
            min_ms: secs("min_ttl_s", 1)?,
            max_ms: secs("max_ttl_s", 3600)?,
            hot,
            jitter: jitter / 100.0,
        })
    }

    /// The TTL for a key read `rate` times a minute, with `entropy` for jitter.
    fn ttl_ms(&self, rate: f64, entropy: u64) -> u64 {
        let ttl = (self.base_ms * (0.5 + rate.max(0.0) / self.hot)).clamp(self.min_ms, self.max_ms);
        // entropy → a uniform number in [-1, 1).
        let unit = (entropy >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        (ttl * (1.0 + self.jitter * unit)).clamp(self.min_ms, self.max_ms) as u64
    }
}

impl Policy for AdaptiveTtl {
    fn plan(req: Request) -> Result<Plan, Error> {
        let settings = Settings::read(&req.config)?;
        let ttl = settings.ttl_ms(req.stats.read_rate, req.entropy);
        let key = req.namespaced_key();
        Ok(match req.operation {
            Operation::Get => {
                let plan = Plan::new().get(key.clone()).respond_with_last();
                if req.stats.read_rate >= settings.hot {
                    plan.expire(key, ttl)
                } else {
                    plan
                }
            }
            Operation::Put => {
                let value = req.value_bytes()?.to_vec();
                Plan::new().set(key, value, Some(req.ttl_ms.unwrap_or(ttl)))
            }
            Operation::Delete => Plan::new().delete(key),
            Operation::Publish => return Err(Error::bad_request("this domain takes no events")),
        })
    }

    fn check_config(_domain: &str, config: &Config) -> Result<(), Error> {
        Settings::read(config).map(drop)
    }
}

sluice_sdk::export_policy!(AdaptiveTtl);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::Action;

    fn put_ttl(rate: f64, entropy: u64) -> u64 {
        let mut req = Request::new("market_depth", "btc", Operation::Put);
        req.config = Config::default()
            .with("ttl_s", 10)
            .with("min_ttl_s", 2)
            .with("max_ttl_s", 60);
        req.value = Some(vec![0xc0]);
        req.stats.read_rate = rate;
        req.entropy = entropy;
        match AdaptiveTtl::plan(req).unwrap().actions() {
            [Action::Set(s)] => s.ttl_ms.unwrap(),
            other => panic!("{other:?}"),
        }
    }

    const MID: u64 = 1 << 63; // no jitter

    #[test]
    fn often_read_keys_live_longer_up_to_the_max() {
        assert_eq!(put_ttl(0.0, MID), 5_000, "unread: half the base");
        assert_eq!(put_ttl(60.0, MID), 15_000);
        assert!(put_ttl(30.0, MID) < put_ttl(120.0, MID));
        assert_eq!(put_ttl(1e9, MID), 60_000, "capped at max_ttl_s");
    }

    #[test]
    fn jitter_spreads_expiries_within_ten_percent() {
        let ttls: Vec<u64> = (0..64u64)
            .map(|i| put_ttl(60.0, i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        assert!(
            ttls.iter().all(|t| (13_500..=16_500).contains(t)),
            "{ttls:?}"
        );
        let distinct: std::collections::HashSet<_> = ttls.iter().collect();
        assert!(
            distinct.len() > 32,
            "keys written together must not expire together"
        );
    }

    #[test]
    fn hot_reads_extend_the_key_and_cold_reads_do_not() {
        let mut req = Request::new("market_depth", "btc", Operation::Get);
        req.stats.read_rate = 120.0;
        let plan = AdaptiveTtl::plan(req.clone()).unwrap();
        assert!(matches!(
            plan.actions(),
            [Action::Get(_), Action::Expire(_)]
        ));
        assert_eq!(plan.respond(), Some(0));
        req.stats.read_rate = 1.0;
        assert_eq!(AdaptiveTtl::plan(req).unwrap().actions().len(), 1);
    }

    #[test]
    fn bad_settings_are_refused_at_load() {
        let config = Config::default().with("hot_reads_per_min", 0);
        assert!(matches!(
            AdaptiveTtl::check_config("d", &config),
            Err(Error::BadConfig(_))
        ));
        let config = Config::default().with("jitter_pct", "lots");
        assert!(AdaptiveTtl::check_config("d", &config).is_err());
    }
}
