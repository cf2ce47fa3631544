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
//!
//! The protocol, from the request flow's side: [`NearCache::consider`] a
//! planned read (is it keepable, under which key?); answer it from
//! [`NearCache::fresh`] if a copy is fresh; otherwise send it with tracking
//! on, then [`NearCache::keep`] the answer, or fall back to
//! [`NearCache::stale`] when Redis could not answer. Writes [`NearCache::forget`].

use crate::plugin::bindings::Plan;
use crate::store::plan::{cacheable_key, written_keys};
use crate::store::tracking::Invalidation;
use bytes::Bytes;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Invalidation counters (and single-flight turns), by key hash.
const SLOTS: usize = 1024;

/// A kept copy of a read.
#[derive(Debug)]
pub struct Entry {
    /// Which `?fields=` the body answered; a read for other fields misses.
    fields: String,
    /// The body as MessagePack (empty for an absent key).
    pub body: Bytes,
    /// The read found nothing: a miss storm on one key costs one Redis read
    /// per change of the key, not one per client.
    pub absent: bool,
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

/// How a domain uses the near cache.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Use {
    /// Answer reads from a copy for this long after reading Redis (0: never).
    pub fresh_for: Duration,
    /// Serve a copy this old while Redis cannot answer (0: never).
    pub max_stale: Duration,
}

/// A read on its way to Redis whose answer may be kept.
#[derive(Debug)]
pub struct Kept {
    /// The Redis key read.
    key: String,
    /// The key's invalidation count when the read was considered.
    seq: u64,
    fresh_for: Duration,
    max_stale: Duration,
}

pub struct NearCache {
    cache: moka::sync::Cache<String, Arc<Entry>>,
    seqs: Box<[AtomicU64]>,
    epoch: AtomicU64,
    /// Every change is heard (on a cluster: every primary has a tracking
    /// connection). While not, no copy is fresh and none is kept.
    heard: AtomicBool,
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
            heard: AtomicBool::new(true),
            turns: (0..SLOTS).map(|_| tokio::sync::Mutex::new(())).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Copies kept and the bytes they weigh (moka's counts, which lag
    /// behind writes by a moment): for the status page.
    pub fn usage(&self) -> (u64, u64) {
        (self.cache.entry_count(), self.cache.weighted_size())
    }

    fn slot(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SLOTS
    }

    fn seq(&self, key: &str) -> u64 {
        self.seqs[self.slot(key)].load(Ordering::Acquire)
    }

    /// Whether a read planned as `plan` may be answered from or kept in the
    /// near cache, and under which Redis key: the domain (or the plan's
    /// hint) keeps copies, and the plan is a plain read of one key that it
    /// responds with. The invalidation count is taken now, before the read.
    /// A plan's cache hint has the last word: `keep: false` keeps nothing,
    /// `keep: true` sets how stale a copy may be served.
    pub fn consider(&self, use_: Use, plan: &Plan) -> Option<Kept> {
        let max_stale = match plan.cache {
            Some(hint) if !hint.keep => return None,
            Some(hint) => Duration::from_millis(hint.max_stale_ms),
            None => use_.max_stale,
        };
        if use_.fresh_for.is_zero() && max_stale.is_zero() {
            return None;
        }
        let key = cacheable_key(plan)?;
        Some(Kept {
            key: key.to_owned(),
            seq: self.seq(key),
            fresh_for: use_.fresh_for,
            max_stale,
        })
    }

    /// Wait for the turn to read `key` of `domain` (single flight: the first
    /// reader fills the cache, the ones queued behind it are answered from it).
    pub async fn turn(&self, domain: &str, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        self.turns[(self.hasher.hash_one((domain, key)) as usize) % SLOTS]
            .lock()
            .await
    }

    /// Keep what a read returned, unless the key was invalidated since it was
    /// considered; never beyond `expires_in`, the key's life in Redis.
    /// `body` `None` keeps the fact that the key is absent (fresh only: an
    /// absent copy never stands in for Redis when it is down).
    pub fn keep(
        &self,
        kept: Kept,
        fields: &[String],
        body: Option<Bytes>,
        expires_in: Option<Duration>,
    ) {
        if !self.heard.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let epoch = self.epoch.load(Ordering::Acquire);
        let entry = Arc::new(Entry {
            epoch,
            fields: fields.join(","),
            absent: body.is_none(),
            body: body.unwrap_or_default(),
            json: std::sync::OnceLock::new(),
            stored: now,
            fresh_until: now + expires_in.map_or(kept.fresh_for, |t| t.min(kept.fresh_for)),
            dies_at: expires_in.map(|t| now + t),
        });
        if self.seq(&kept.key) == kept.seq {
            self.cache.insert(kept.key.clone(), entry);
            // An invalidation that landed during the insert wins.
            if self.seq(&kept.key) != kept.seq {
                self.cache.invalidate(&kept.key);
            }
        }
    }

    fn entry(&self, key: &str, fields: &[String]) -> Option<Arc<Entry>> {
        let e = self.cache.get(key)?;
        let alive = e.dies_at.is_none_or(|d| Instant::now() < d);
        (alive && same_fields(&e.fields, fields)).then_some(e)
    }

    /// A copy still fresh enough to answer without Redis.
    pub fn fresh(&self, kept: &Kept, fields: &[String]) -> Option<Arc<Entry>> {
        if kept.fresh_for.is_zero() {
            return None;
        }
        self.fresh_at(&kept.key, fields)
    }

    /// A fresh copy of the Redis key `key` (a route's, see [`Routes`]).
    pub fn fresh_at(&self, key: &str, fields: &[String]) -> Option<Arc<Entry>> {
        if !self.heard.load(Ordering::Acquire) {
            return None;
        }
        let e = self.entry(key, fields)?;
        let current = e.epoch == self.epoch.load(Ordering::Acquire);
        (current && Instant::now() < e.fresh_until).then_some(e)
    }

    /// A copy no older than the read's `max_stale`, and its age, for when
    /// Redis cannot answer.
    pub fn stale(&self, kept: &Kept, fields: &[String]) -> Option<(Bytes, Duration)> {
        let e = self.entry(&kept.key, fields).filter(|e| !e.absent)?;
        let age = e.stored.elapsed();
        (age <= kept.max_stale).then(|| (e.body.clone(), age))
    }

    /// The key changed: drop its copy, and keep no read that was in flight.
    pub fn forget(&self, key: &str) {
        self.seqs[self.slot(key)].fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate(key);
    }

    /// This gateway changed the keys `plan` writes: no copy of them may
    /// outlive the change.
    pub fn forget_written(&self, plan: &Plan) {
        written_keys(plan).for_each(|k| self.forget(k));
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

/// Which Redis key a domain's policy read for a client's key, learned from
/// its plans. A fresh copy under that key answers the next read of the same
/// client key before the policy runs: a hot read costs no plugin call. The
/// copy is as coherent as any (Redis's invalidations and this gateway's
/// writes end it, and it is fresh for `near_cache_ms` at most), so a policy
/// that would now read another key for that client key is asked again
/// within `near_cache_ms`. One per near-cached domain and plugin: a reload
/// that changes either starts empty. Bounded in bytes ([`ROUTES_MAX_BYTES`]).
pub struct Routes(moka::sync::Cache<String, Arc<str>>);

/// What one near-cached domain's routes may weigh.
pub const ROUTES_MAX_BYTES: u64 = 4 << 20;

impl Routes {
    pub fn new(max_bytes: u64) -> Routes {
        Routes(
            moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|k: &String, v: &Arc<str>| {
                    (k.len() + v.len() + 64).try_into().unwrap_or(u32::MAX)
                })
                .build(),
        )
    }

    /// The Redis key the policy last read for `key`.
    pub fn get(&self, key: &str) -> Option<Arc<str>> {
        self.0.get(key)
    }

    /// Remember that a read of `key` was planned as a kept read of `kept`.
    pub fn learn(&self, key: &str, kept: &Kept) {
        if self.0.get(key).as_deref() != Some(kept.key.as_str()) {
            self.0.insert(key.to_owned(), Arc::from(kept.key.as_str()));
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

impl NearCache {
    /// What Redis said changed (the store forwards client-tracking pushes here).
    pub fn invalidate(&self, what: Invalidation) {
        match what {
            Invalidation::All => {
                self.lost_track();
                self.cache.invalidate_all();
            }
            Invalidation::Lost => self.lost_track(),
            // Either way copies read before are not fresh: changes went
            // unheard, or may have until now.
            Invalidation::Tracking(heard) => {
                self.heard.store(heard, Ordering::Release);
                self.lost_track();
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::{Action, CacheHint, StringGet};

    fn read(key: &str) -> Plan {
        Plan {
            actions: vec![Action::Get(StringGet { key: key.into() })],
            atomic: false,
            respond: Some(0),
            ttl_ms: None,
            cache: None,
        }
    }

    const USE: Use = Use {
        fresh_for: Duration::from_secs(60),
        max_stale: Duration::from_secs(300),
    };

    fn kept(near: &NearCache, key: &str) -> Kept {
        near.consider(USE, &read(key)).expect("keepable")
    }

    #[test]
    fn a_kept_read_is_fresh_for_its_fields_only() {
        let near = NearCache::new(1 << 20);
        near.keep(
            kept(&near, "d:k"),
            &[],
            Some(Bytes::from_static(b"\x01")),
            None,
        );
        let copy = near.fresh(&kept(&near, "d:k"), &[]).expect("fresh");
        assert_eq!(&copy.body[..], b"\x01");
        assert!(near.fresh(&kept(&near, "d:k"), &["a".into()]).is_none());
        assert!(near.fresh(&kept(&near, "d:other"), &[]).is_none());
    }

    #[test]
    fn an_invalidation_during_the_read_keeps_nothing() {
        let near = NearCache::new(1 << 20);
        let k = kept(&near, "d:k");
        near.invalidate(Invalidation::Keys(vec![b"d:k".to_vec()]));
        near.keep(k, &[], Some(Bytes::from_static(b"\x01")), None);
        assert!(near.fresh(&kept(&near, "d:k"), &[]).is_none());
    }

    #[test]
    fn writes_and_invalidations_end_a_copy_and_a_lost_connection_ends_freshness() {
        let near = NearCache::new(1 << 20);
        for key in ["d:a", "d:b"] {
            near.keep(
                kept(&near, key),
                &[],
                Some(Bytes::from_static(b"\x01")),
                None,
            );
        }
        near.forget("d:a");
        assert!(near.fresh(&kept(&near, "d:a"), &[]).is_none());
        near.invalidate(Invalidation::Lost);
        let b = kept(&near, "d:b");
        assert!(
            near.fresh(&b, &[]).is_none(),
            "changes may have gone unheard"
        );
        assert!(
            near.stale(&b, &[]).is_some(),
            "but the copy still stands in for Redis"
        );
        near.invalidate(Invalidation::All);
        assert!(near.stale(&kept(&near, "d:b"), &[]).is_none());
    }

    #[test]
    fn a_copy_never_outlives_the_key_in_redis() {
        let near = NearCache::new(1 << 20);
        near.keep(
            kept(&near, "d:k"),
            &[],
            Some(Bytes::from_static(b"\x01")),
            Some(Duration::ZERO),
        );
        assert!(near.fresh(&kept(&near, "d:k"), &[]).is_none());
        assert!(near.stale(&kept(&near, "d:k"), &[]).is_none());
    }

    #[test]
    fn the_plans_hint_decides_and_only_plain_reads_are_kept() {
        let near = NearCache::new(1 << 20);
        let mut plan = read("d:k");
        plan.cache = Some(CacheHint {
            keep: false,
            max_stale_ms: 0,
        });
        assert!(
            near.consider(USE, &plan).is_none(),
            "keep: false keeps nothing"
        );
        plan.cache = Some(CacheHint {
            keep: true,
            max_stale_ms: 5,
        });
        assert!(
            near.consider(USE, &plan)
                .is_some_and(|k| k.max_stale == Duration::from_millis(5))
        );
        let off = Use {
            fresh_for: Duration::ZERO,
            max_stale: Duration::ZERO,
        };
        assert!(near.consider(off, &read("d:k")).is_none());
        let mut write = read("d:k");
        write.respond = None;
        assert!(near.consider(USE, &write).is_none());
    }

    #[test]
    fn while_some_changes_go_unheard_no_copy_is_fresh_or_kept() {
        let near = NearCache::new(1 << 20);
        near.keep(
            kept(&near, "d:k"),
            &[],
            Some(Bytes::from_static(b"v")),
            None,
        );
        assert!(near.fresh(&kept(&near, "d:k"), &[]).is_some());
        near.invalidate(Invalidation::Tracking(false));
        assert!(near.fresh(&kept(&near, "d:k"), &[]).is_none());
        near.keep(
            kept(&near, "d:x"),
            &[],
            Some(Bytes::from_static(b"v")),
            None,
        );
        near.invalidate(Invalidation::Tracking(true));
        assert!(
            near.fresh(&kept(&near, "d:x"), &[]).is_none(),
            "kept while unheard"
        );
        assert!(
            near.fresh(&kept(&near, "d:k"), &[]).is_none(),
            "read before the gap"
        );
        near.keep(
            kept(&near, "d:k"),
            &[],
            Some(Bytes::from_static(b"v2")),
            None,
        );
        assert!(near.fresh(&kept(&near, "d:k"), &[]).is_some());
    }

    #[test]
    fn an_absent_key_is_kept_fresh_but_never_stands_in_for_redis() {
        let near = NearCache::new(1 << 20);
        near.keep(kept(&near, "d:gone"), &[], None, None);
        let copy = near
            .fresh(&kept(&near, "d:gone"), &[])
            .expect("a fresh miss");
        assert!(copy.absent && copy.body.is_empty());
        assert!(near.stale(&kept(&near, "d:gone"), &[]).is_none());
        // A write ends it like any copy.
        near.invalidate(Invalidation::Keys(vec![b"d:gone".to_vec()]));
        assert!(near.fresh(&kept(&near, "d:gone"), &[]).is_none());
    }
}
