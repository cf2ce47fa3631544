//! The near cache (L1): in-process copies of recent reads, bounded in bytes,
//! keyed by the Redis key read.
//!
//! A copy serves two purposes. Within the domain's `near_cache_ms` it answers
//! reads without asking Redis. While Redis cannot answer, it answers reads
//! marked stale, within the domain's `max_stale_s`. Either way it never
//! outlives the key's TTL in Redis, and it ends as soon as the key changes:
//! writes through this gateway drop it, and Redis tells the gateway about
//! every other change (RESP3 client tracking; the store forwards each
//! invalidation here). A read that raced with an invalidation is not kept:
//! each key hashes to a counter that invalidations bump, and a copy is kept
//! only if its counter did not move while the read was in flight.

use bytes::Bytes;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Invalidation counters (and single-flight turns), by key hash.
const SLOTS: usize = 1024;

/// A kept copy of a read.
#[derive(Debug)]
pub struct Entry {
    /// Which `?fields=` the body answered; a read for other fields misses.
    fields: String,
    /// The body as MessagePack.
    pub body: Bytes,
    /// The body as JSON, rendered once, on the first JSON read.
    json: std::sync::OnceLock<Bytes>,
    stored: Instant,
    /// Served without asking Redis until then.
    fresh_until: Instant,
    /// Never served at all after this (the key's TTL in Redis).
    dies_at: Option<Instant>,
    /// The tracking epoch it was read in: only copies of the current one
    /// are fresh (after a lost connection, changes may have gone unheard).
    epoch: u64,
}

pub struct NearCache {
    cache: moka::sync::Cache<String, Arc<Entry>>,
    seqs: Box<[AtomicU64]>,
    epoch: AtomicU64,
    turns: Box<[tokio::sync::Mutex<()>]>,
    hasher: std::hash::RandomState,
}

impl NearCache {
    pub fn new(max_bytes: u64) -> NearCache {
        let cache = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, e: &Arc<Entry>| {
                (k.len() + e.fields.len() + e.body.len() + 96)
                    .try_into()
                    .unwrap_or(u32::MAX)
            })
            .build();
        NearCache {
            cache,
            seqs: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            epoch: AtomicU64::new(0),
            turns: (0..SLOTS).map(|_| tokio::sync::Mutex::new(())).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn slot(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SLOTS
    }

    /// The key's invalidation count now; pass it to [`NearCache::keep`].
    pub fn seq(&self, key: &str) -> u64 {
        self.seqs[self.slot(key)].load(Ordering::Acquire)
    }

    /// Wait for the turn to read `key` of `domain` (single flight: the first
    /// reader fills the cache, the ones queued behind it are answered from it).
    pub async fn turn(&self, domain: &str, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        self.turns[(self.hasher.hash_one((domain, key)) as usize) % SLOTS]
            .lock()
            .await
    }

    /// Keep what a read of `key` returned, unless the key was invalidated
    /// since `seq` was taken.
    #[allow(clippy::too_many_arguments)]
    pub fn keep(
        &self,
        key: &str,
        seq: u64,
        fields: &[String],
        body: Bytes,
        fresh_for: Duration,
        max_stale: Duration,
        redis_ttl: Option<Duration>,
    ) {
        if fresh_for.is_zero() && max_stale.is_zero() {
            return;
        }
        let now = Instant::now();
        let epoch = self.epoch.load(Ordering::Acquire);
        let entry = Arc::new(Entry {
            epoch,
            fields: fields.join(","),
            body,
            json: std::sync::OnceLock::new(),
            stored: now,
            fresh_until: now + redis_ttl.map_or(fresh_for, |t| t.min(fresh_for)),
            dies_at: redis_ttl.map(|t| now + t),
        });
        if self.seq(key) == seq {
            self.cache.insert(key.to_owned(), entry);
            // An invalidation that landed during the insert wins.
            if self.seq(key) != seq {
                self.cache.invalidate(key);
            }
        }
    }

    fn entry(&self, key: &str, fields: &[String]) -> Option<Arc<Entry>> {
        let e = self.cache.get(key)?;
        let alive = e.dies_at.is_none_or(|d| Instant::now() < d);
        (alive && same_fields(&e.fields, fields)).then_some(e)
    }

    /// A copy still fresh enough to answer without Redis.
    pub fn fresh(&self, key: &str, fields: &[String]) -> Option<Arc<Entry>> {
        let e = self.entry(key, fields)?;
        let current = e.epoch == self.epoch.load(Ordering::Acquire);
        (current && Instant::now() < e.fresh_until).then_some(e)
    }

    /// A copy no older than `max_stale`, and its age, for when Redis cannot answer.
    pub fn stale(
        &self,
        key: &str,
        fields: &[String],
        max_stale: Duration,
    ) -> Option<(Bytes, Duration)> {
        let e = self.entry(key, fields)?;
        let age = e.stored.elapsed();
        (age <= max_stale).then(|| (e.body.clone(), age))
    }

    /// The key changed: drop its copy, and keep no read that was in flight.
    pub fn forget(&self, key: &str) {
        self.seqs[self.slot(key)].fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate(key);
    }

    /// Changes may have gone unheard (a tracking connection closed): no copy
    /// is fresh any more, but copies stay for stale reads while Redis is down.
    pub fn lost_track(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for s in self.seqs.iter() {
            s.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Whether a copy kept for `stored` (the fields joined by commas; fields
/// never contain one) answers a read of `fields`, without allocating.
fn same_fields(stored: &str, fields: &[String]) -> bool {
    if fields.is_empty() {
        stored.is_empty()
    } else {
        stored.split(',').eq(fields.iter().map(String::as_str))
    }
}

impl Entry {
    /// The body as JSON: `render` runs on the first JSON read of this copy only.
    pub fn json<E>(&self, render: impl FnOnce(&Bytes) -> Result<Bytes, E>) -> Result<Bytes, E> {
        if let Some(j) = self.json.get() {
            return Ok(j.clone());
        }
        let j = render(&self.body)?;
        let _ = self.json.set(j.clone());
        Ok(j)
    }
}

/// What the store hears from Redis about keys this gateway read.
#[derive(Debug)]
pub enum Invalidation {
    /// These keys changed.
    Keys(Vec<Vec<u8>>),
    /// Everything changed (FLUSHALL, or Redis dropped its tracking table).
    All,
    /// A tracking connection closed: changes may go unheard until it is back.
    Lost,
}

impl NearCache {
    pub fn invalidate(&self, what: Invalidation) {
        match what {
            Invalidation::All => {
                self.lost_track();
                self.cache.invalidate_all();
            }
            Invalidation::Lost => self.lost_track(),
            Invalidation::Keys(keys) => {
                for k in keys {
                    if let Ok(k) = std::str::from_utf8(&k) {
                        self.forget(k);
                    }
                }
            }
        }
    }
}
