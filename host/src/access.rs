//! Per-key access statistics for policies that adapt to use (adaptive TTL),
//! kept in bounded memory: the least recently used keys are forgotten, and a
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
    fn decay_to(&mut self, now_ms: u64) {
        let dt = now_ms.saturating_sub(self.updated_ms) as f64;
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

    /// The statistics of a key as of `now_ms` (zeros if unknown).
    pub fn stats(&self, id: &str, now_ms: u64) -> AccessStats {
        match self.keys.get(id) {
            Some(e) => {
                let mut e = e.lock().unwrap_or_else(|p| p.into_inner());
                e.decay_to(now_ms);
                e.snapshot()
            }
            None => Entry::default().snapshot(),
        }
    }

    pub fn record(&self, id: &str, event: Event, now_ms: u64) {
        let entry = self.keys.get_with_by_ref(id, || {
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
                e.last_read_ms = now_ms;
                e.decayed_reads += 1.0;
            }
            Event::Write => e.writes += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_rate_follows_recent_reads_and_forgets_old_ones() {
        let t = AccessTracker::new(100);
        // One read a second for ten minutes: about 60 a minute.
        for s in 0..600u64 {
            t.record("k", Event::Hit, s * 1000);
        }
        let rate = t.stats("k", 600_000).read_rate;
        assert!((55.0..=65.0).contains(&rate), "{rate}");
        // Ten minutes of silence: ten half-lives later it is nearly cold.
        assert!(t.stats("k", 1_200_000).read_rate < 0.1);
        let s = t.stats("k", 1_200_000);
        assert_eq!((s.hits, s.misses, s.last_read_ms), (600, 0, 599_000));
        assert_eq!(t.stats("unknown", 0).hits, 0);
    }
}
