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
//! Settings: `hot_reads_per_min` (default 60), `jitter_pct` (default 10, at
//! most 50). The domain needs `track_access = true` for the host to keep
//! statistics; without them every key reads as unread.

use sluice_sdk::prelude::*;

/// `[domains.NAME.settings]`, checked once in `configure`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The read rate (per minute) at which a key earns 1.5 × the base TTL.
    pub hot_reads_per_min: f64,
    /// ± this percentage of jitter on every TTL.
    pub jitter_pct: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            hot_reads_per_min: 60.0,
            jitter_pct: 10.0,
        }
    }
}

/// The policy, with its numbers worked out once.
pub struct AdaptiveTtl {
    domain: Domain,
    hot: f64,
    /// A fraction, `jitter_pct / 100`.
    jitter: f64,
}

impl Policy for AdaptiveTtl {
    type Settings = Settings;

    fn configure(domain: Domain, s: Settings) -> Result<Self, Error> {
        if !(s.hot_reads_per_min > 0.0 && s.hot_reads_per_min.is_finite()) {
            return Err(Error::bad_config(
                "hot_reads_per_min must be a positive number",
            ));
        }
        if !(0.0..=50.0).contains(&s.jitter_pct) {
            return Err(Error::bad_config("jitter_pct must be between 0 and 50"));
        }
        Ok(AdaptiveTtl {
            domain,
            hot: s.hot_reads_per_min,
            jitter: s.jitter_pct / 100.0,
        })
    }

    fn plan(&self, req: &Request) -> Result<Plan, Error> {
        let key = self.domain.key(&req.key);
        let rate = req.stats.read_rate;
        Ok(match req.operation {
            Operation::Get if rate >= self.hot => Plan::new()
                .respond_with(Get::new(&key))
                .then(Expire::new(key, self.ttl_ms(rate, req.entropy))),
            Operation::Get => Plan::new().respond_with(Get::new(key)),
            Operation::Put => {
                let ttl = req.ttl_ms.unwrap_or_else(|| self.ttl_ms(rate, req.entropy));
                Plan::new().then(Set::new(key, req.value()?).ttl_ms(ttl))
            }
            Operation::Delete => Plan::new().then(Delete::new(key)),
            Operation::Publish => return Err(Error::bad_request("this domain takes no events")),
        })
    }
}

impl AdaptiveTtl {
    /// The TTL for a key read `rate` times a minute, with `entropy` for jitter.
    fn ttl_ms(&self, rate: f64, entropy: u64) -> u64 {
        let (min, max) = (self.domain.min_ttl_ms as f64, self.domain.max_ttl_ms as f64);
        let ttl = (self.domain.ttl_ms as f64 * (0.5 + rate.max(0.0) / self.hot)).clamp(min, max);
        // entropy → a uniform number in [-1, 1).
        let unit = (entropy >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        (ttl * (1.0 + self.jitter * unit)).clamp(min, max) as u64
    }
}

sluice_sdk::export_policy!(AdaptiveTtl);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn policy() -> AdaptiveTtl {
        let domain = Domain::named("market_depth").with_ttl_s(10, 2, 60);
        AdaptiveTtl::configure(domain, Settings::default()).unwrap()
    }

    fn put_ttl(rate: f64, entropy: u64) -> u64 {
        let req = Request::put("btc", &())
            .with_read_rate(rate)
            .with_entropy(entropy);
        match policy().plan(&req).unwrap().actions() {
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
    fn a_clients_ttl_wins() {
        let req = Request::put("btc", &()).with_ttl_ms(3_000);
        assert!(
            matches!(policy().plan(&req).unwrap().actions(), [Action::Set(s)] if s.ttl_ms == Some(3_000))
        );
    }

    #[test]
    fn hot_reads_extend_the_key_and_cold_reads_do_not() {
        let hot = policy()
            .plan(&Request::get("btc").with_read_rate(120.0).with_entropy(MID))
            .unwrap();
        assert!(matches!(
            hot.actions(),
            [Action::Get(g), Action::Expire(e)] if g.key == "market_depth:btc" && e.ttl_ms == 25_000
        ));
        assert_eq!(hot.response(), hot.actions().first());
        let cold = policy()
            .plan(&Request::get("btc").with_read_rate(1.0))
            .unwrap();
        assert_eq!(cold.actions().len(), 1);
    }

    #[test]
    fn settings_default_and_bad_ones_are_refused_at_load() {
        let domain = || Domain::named("d");
        let p = AdaptiveTtl::from_settings(domain(), &BTreeMap::<String, f64>::new()).unwrap();
        assert_eq!((p.hot, p.jitter), (60.0, 0.1));
        let zero = BTreeMap::from([("hot_reads_per_min", 0)]);
        assert!(matches!(
            AdaptiveTtl::from_settings(domain(), &zero),
            Err(Error::BadConfig(_))
        ));
        let words = BTreeMap::from([("jitter_pct", "lots")]);
        assert_eq!(
            AdaptiveTtl::from_settings(domain(), &words).err(),
            Some(Error::bad_config(
                r#"setting `jitter_pct` in [domains.d.settings] must be a number, not a string ("lots")"#
            ))
        );
    }
}
