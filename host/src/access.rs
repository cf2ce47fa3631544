//! Per-key access statistics for policies that adapt to use (adaptive TTL),
//! kept in bounded memory: beyond the limit the least used keys are forgotten
//! (moka's TinyLFU weighs how often and how recently a key was used), and a
//! forgotten key reads as never seen.

use crate::plugin::bindings::AccessStats;
use std::sync::{Arc, Mutex};

/// How fast the read rate forgets: a read counts half after this long.
const HALF_LIFE_MS: f64 = 60_000.0;

#[derive(Default)]
struct Entry {
    hits: u64,
    misses: u64,
    writes: u64,
    last_read_ms: u64,
    /// Reads, each decayed by its age (half-life `HALF_LIFE_MS`).
    decayed_reads: f64,
    updated_ms: u64,
}

impl Entry {
    /// Decay to `now_ms`; a time before the last update (a clock stepping
    /// back, or a request that read the clock earlier) changes nothing, so
    /// the same interval is never decayed twice.
    fn decay_to(&mut self, now_ms: u64) {
        if now_ms <= self.updated_ms {
            return;
        }
        let dt = (now_ms - self.updated_ms) as f64;
        self.decayed_reads *= (-dt * std::f64::consts::LN_2 / HALF_LIFE_MS).exp();
        self.updated_ms = now_ms;
    }

    fn snapshot(&self) -> AccessStats {
        AccessStats {
            hits: self.hits,
            misses: self.misses,
            writes: self.writes,
            last_read_ms: self.last_read_ms,
            // The steady state of a decayed count under r reads/ms is
            // r × half-life / ln 2: invert that, per minute.
            read_rate: self.decayed_reads * std::f64::consts::LN_2 / HALF_LIFE_MS * 60_000.0,
        }
    }
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Hit,
    Miss,
    Write,
}

pub struct AccessTracker {
    keys: moka::sync::Cache<String, Arc<Mutex<Entry>>>,
}

impl AccessTracker {
    pub fn new(max_keys: u64) -> AccessTracker {
        AccessTracker {
            keys: moka::sync::Cache::new(max_keys),
        }
    }

    /// The statistics of a key never seen.
    pub fn unknown() -> AccessStats {
        Entry::default().snapshot()
    }

    /// The statistics of a domain's key as of `now_ms` (zeros if unknown).
    pub fn stats(&self, domain: &str, key: &str, now_ms: u64) -> AccessStats {
        match self.keys.get(&id(domain, key)) {
            Some(e) => {
                let mut e = e.lock().unwrap_or_else(|p| p.into_inner());
                e.decay_to(now_ms);
                e.snapshot()
            }
            None => Entry::default().snapshot(),
        }
    }

    pub fn record(&self, domain: &str, key: &str, event: Event, now_ms: u64) {
        let entry = self.keys.get_with(id(domain, key), || {
            Arc::new(Mutex::new(Entry {
                updated_ms: now_ms,
                ..Entry::default()
            }))
        });
        let mut e = entry.lock().unwrap_or_else(|p| p.into_inner());
        e.decay_to(now_ms);
        match event {
            Event::Hit | Event::Miss => {
                if event == Event::Hit {
                    e.hits += 1;
                } else {
                    e.misses += 1;
                }
                e.last_read_ms = e.last_read_ms.max(now_ms);
                e.decayed_reads += 1.0;
            }
            Event::Write => e.writes += 1,
        }
    }
}

/// One key across domains: `{domain}\0{key}` (NUL cannot be in a domain name).
fn id(domain: &str, key: &str) -> String {
    [domain, key].join("\0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_rate_follows_recent_reads_and_forgets_old_ones() {
        let t = AccessTracker::new(100);
        // One read a second for ten minutes: about 60 a minute.
        for s in 0..600u64 {
            t.record("d", "k", Event::Hit, s * 1000);
        }
        let rate = t.stats("d", "k", 600_000).read_rate;
        assert!((55.0..=65.0).contains(&rate), "{rate}");
        // Ten minutes of silence: ten half-lives later it is nearly cold.
        assert!(t.stats("d", "k", 1_200_000).read_rate < 0.1);
        let s = t.stats("d", "k", 1_200_000);
        assert_eq!((s.hits, s.misses, s.last_read_ms), (600, 0, 599_000));
        assert_eq!(t.stats("d", "unknown", 0).hits, 0);
    }

    /// (hits, misses, writes, last_read_ms) of a key.
    fn counts(t: &AccessTracker, id: &str, now_ms: u64) -> (u64, u64, u64, u64) {
        let s = t.stats("d", id, now_ms);
        (s.hits, s.misses, s.writes, s.last_read_ms)
    }

    #[test]
    fn hits_misses_and_writes_are_counted_apart() {
        let t = AccessTracker::new(100);
        t.record("d", "k", Event::Miss, 1_000);
        t.record("d", "k", Event::Write, 1_500);
        t.record("d", "k", Event::Hit, 2_000);
        t.record("d", "k", Event::Hit, 3_000);
        t.record("d", "k", Event::Write, 4_000);
        assert_eq!(counts(&t, "k", 5_000), (2, 1, 2, 3_000));
        // Reading the statistics is not an access.
        assert_eq!(counts(&t, "k", 5_000), (2, 1, 2, 3_000));
        // Other keys are their own.
        t.record("d", "other", Event::Hit, 6_000);
        assert_eq!(counts(&t, "other", 6_000), (1, 0, 0, 6_000));
        assert_eq!(counts(&t, "k", 6_000).0, 2);
    }

    #[test]
    fn a_miss_is_a_read_and_a_write_is_not() {
        let t = AccessTracker::new(100);
        t.record("d", "w", Event::Write, 1_000);
        let s = t.stats("d", "w", 1_000);
        assert_eq!((s.last_read_ms, s.read_rate), (0, 0.0));
        t.record("d", "m", Event::Miss, 2_000);
        let s = t.stats("d", "m", 2_000);
        assert_eq!(s.last_read_ms, 2_000);
        assert!(s.read_rate > 0.0);
    }

    #[test]
    fn unknown_keys_read_as_zeros() {
        let zeros = |s: AccessStats| (s.hits, s.misses, s.writes, s.last_read_ms, s.read_rate);
        let t = AccessTracker::new(100);
        t.record("d", "seen", Event::Hit, 1_000);
        assert_eq!(zeros(t.stats("d", "never", 1_000)), (0, 0, 0, 0, 0.0));
        assert_eq!(zeros(AccessTracker::unknown()), (0, 0, 0, 0, 0.0));
        // Asking about a key does not start tracking it.
        t.keys.run_pending_tasks();
        assert_eq!(t.keys.entry_count(), 1);
    }

    #[test]
    fn the_read_rate_halves_every_half_life() {
        let t = AccessTracker::new(100);
        t.record("d", "k", Event::Hit, 10_000);
        let at = |ms: u64| t.stats("d", "k", ms).read_rate;
        let now = at(10_000);
        assert!((now - std::f64::consts::LN_2).abs() < 1e-9, "{now}");
        assert!((at(70_000) / now - 0.5).abs() < 1e-9);
        assert!((at(130_000) / now - 0.25).abs() < 1e-9);
        // A clock that steps back changes nothing, and the interval already
        // decayed is not decayed again when it steps forward.
        assert!((at(0) / now - 0.25).abs() < 1e-9);
        assert!((at(130_000) / now - 0.25).abs() < 1e-9);
        t.record("d", "k", Event::Hit, 70_000);
        assert!((at(130_000) / now - 1.25).abs() < 1e-9);
        t.record("d", "k", Event::Miss, 50_000);
        assert_eq!(
            t.stats("d", "k", 130_000).last_read_ms,
            70_000,
            "the latest read"
        );
    }

    #[test]
    fn the_number_of_keys_is_bounded_and_forgotten_keys_read_as_zeros() {
        let t = AccessTracker::new(10);
        // A hot key read between every few one-off keys.
        for i in 0..1_000u64 {
            if i % 5 == 0 {
                t.record("d", "hot", Event::Hit, i);
            }
            t.record("d", &format!("cold{i}"), Event::Miss, i);
        }
        t.keys.run_pending_tasks();
        assert!(t.keys.entry_count() <= 10, "{}", t.keys.entry_count());
        let remembered = (0..1_000)
            .filter(|i| t.stats("d", &format!("cold{i}"), 1_000).misses > 0)
            .count();
        assert!(remembered < 10, "{remembered} one-off keys kept");
        assert_eq!(t.stats("d", "hot", 1_000).hits, 200, "the hot key is kept");
    }
}
