//! The near cache (L1): in-process copies of recent reads, bounded in bytes,
//! keyed by the Redis key read. A copy answers only the read that made it
//! (its [`Read`]: the action in full, not the key alone), so a membership
//! test of one member never answers for another, nor a top 10 for a top 100.
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
use crate::store::plan::{cacheable_read, identity, written_keys};
use crate::store::tracking::Invalidation;
use bytes::Bytes;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Invalidation counters (and single-flight turns), by key hash.
const SLOTS: usize = 1024;

/// What a copy answers: one read of one Redis key. Reads of one key that
/// differ in a parameter (`SISMEMBER` of another member, other `ZRANGE`
/// bounds, other `HMGET` fields, `GET` vs a counter's `GET`) answer
/// differently, so each is its own. Shared by the read in flight, its copy
/// and a client key's route: a hot read compares pointers, at worst the
/// identity's bytes, and allocates nothing.
#[derive(Debug, PartialEq)]
pub struct Read {
    /// The Redis key read.
    key: String,
    /// The action's kind and every parameter ([`identity`]).
    action: Box<str>,
}

impl Read {
    /// Bytes it holds, for the caches' weighers.
    fn weight(&self) -> usize {
        self.key.len() + self.action.len()
    }

    /// Whether a copy made by `self` answers `other`, the key being known
    /// to match (it is what the copy was looked up by).
    fn answers(self: &Arc<Read>, other: &Read) -> bool {
        std::ptr::eq(Arc::as_ptr(self), other) || self.action == other.action
    }
}

/// A kept copy of a read.
#[derive(Debug)]
pub struct Entry {
    /// The read it answers; another read of the same key misses.
    read: Arc<Read>,
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
    /// The Redis key read, and how.
    read: Arc<Read>,
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
                (k.len() + e.read.weight() + e.fields.len() + e.body.len() + 96)
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
    /// near cache, and as which [`Read`]: the domain (or the plan's hint)
    /// keeps copies, and the plan is a plain read of one key that it
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
        let (key, action) = cacheable_read(plan)?;
        Some(Kept {
            read: Arc::new(Read {
                key: key.to_owned(),
                action: identity(action).into(),
            }),
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
    /// considered; never beyond `expires_at`, the key's end in Redis (no
    /// later than Redis's own: see [`crate::store::Done`]). It
    /// replaces the copy of any other read of the key: one copy per key, so
    /// an invalidation of the key has one copy to drop.
    /// `body` `None` keeps the fact that the key is absent (fresh only: an
    /// absent copy never stands in for Redis when it is down).
    pub fn keep(
        &self,
        kept: Kept,
        fields: &[String],
        body: Option<Bytes>,
        expires_at: Option<Instant>,
    ) {
        if !self.heard.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let epoch = self.epoch.load(Ordering::Acquire);
        let key = &kept.read.key;
        let entry = Arc::new(Entry {
            read: kept.read.clone(),
            epoch,
            fields: fields.join(","),
            absent: body.is_none(),
            body: body.unwrap_or_default(),
            json: std::sync::OnceLock::new(),
            stored: now,
            fresh_until: expires_at.map_or(now + kept.fresh_for, |t| t.min(now + kept.fresh_for)),
            dies_at: expires_at,
        });
        if self.seq(key) == kept.seq {
            self.cache.insert(key.clone(), entry);
            // An invalidation that landed during the insert wins.
            if self.seq(key) != kept.seq {
                self.cache.invalidate(key);
            }
        }
    }

    fn entry(&self, read: &Read, fields: &[String]) -> Option<Arc<Entry>> {
        let e = self.cache.get(&read.key)?;
        let alive = e.dies_at.is_none_or(|d| Instant::now() < d);
        (alive && e.read.answers(read) && same_fields(&e.fields, fields)).then_some(e)
    }

    /// A copy still fresh enough to answer without Redis.
    pub fn fresh(&self, kept: &Kept, fields: &[String]) -> Option<Arc<Entry>> {
        if kept.fresh_for.is_zero() {
            return None;
        }
        self.fresh_at(&kept.read, fields)
    }

    /// A fresh copy made by `read` (a route's, see [`Routes`]).
    pub fn fresh_at(&self, read: &Read, fields: &[String]) -> Option<Arc<Entry>> {
        if !self.heard.load(Ordering::Acquire) {
            return None;
        }
        let e = self.entry(read, fields)?;
        let current = e.epoch == self.epoch.load(Ordering::Acquire);
        (current && Instant::now() < e.fresh_until).then_some(e)
    }

    /// A copy no older than the read's `max_stale`, and its age, for when
    /// Redis cannot answer.
    pub fn stale(&self, kept: &Kept, fields: &[String]) -> Option<(Bytes, Duration)> {
        let e = self.entry(&kept.read, fields).filter(|e| !e.absent)?;
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

/// Which read (Redis key and action) a domain's policy planned for a
/// client's key, learned from its plans. A fresh copy made by that read
/// answers the next read of the same client key before the policy runs: a
/// hot read costs no plugin call. The copy is as coherent as any (Redis's
/// invalidations and this gateway's writes end it, and it is fresh for
/// `near_cache_ms` at most), so a policy that would now plan another read
/// for that client key is asked again within `near_cache_ms`. One per
/// near-cached domain and plugin: a reload that changes either starts
/// empty. Bounded in bytes ([`ROUTES_MAX_BYTES`]).
pub struct Routes(moka::sync::Cache<String, Arc<Read>>);

/// What one near-cached domain's routes may weigh.
pub const ROUTES_MAX_BYTES: u64 = 4 << 20;

impl Routes {
    pub fn new(max_bytes: u64) -> Routes {
        Routes(
            moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|k: &String, v: &Arc<Read>| {
                    (k.len() + v.weight() + 64).try_into().unwrap_or(u32::MAX)
                })
                .build(),
        )
    }

    /// The read the policy last planned for `key`.
    pub fn get(&self, key: &str) -> Option<Arc<Read>> {
        self.0.get(key)
    }

    /// Remember that a read of `key` was planned as the kept read `kept`.
    pub fn learn(&self, key: &str, kept: &Kept) {
        if self.0.get(key).as_deref() != Some(&*kept.read) {
            self.0.insert(key.to_owned(), kept.read.clone());
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
    use crate::plugin::bindings::{Action, CacheHint, CounterGet, SetContains, StringGet};

    fn read(key: &str) -> Plan {
        reading(Action::Get(StringGet { key: key.into() }))
    }

    fn reading(action: Action) -> Plan {
        Plan {
            actions: vec![action],
            atomic: false,
            respond: Some(0),
            ttl_ms: None,
            cache: None,
        }
    }

    /// `SISMEMBER d:s member`, considered.
    fn contains(near: &NearCache, member: &str) -> Kept {
        let action = Action::SetContains(SetContains {
            key: "d:s".into(),
            member: member.into(),
        });
        near.consider(USE, &reading(action)).expect("keepable")
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
            Some(Instant::now()),
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

    #[test]
    fn reads_of_one_key_with_other_parameters_do_not_answer_each_other() {
        let near = NearCache::new(1 << 20);
        near.keep(
            contains(&near, "x1"),
            &[],
            Some(Bytes::from_static(b"\xc3")),
            None,
        );
        assert!(
            near.fresh(&contains(&near, "x1"), &[]).is_some(),
            "the same read"
        );
        let x2 = contains(&near, "x2");
        assert!(near.fresh(&x2, &[]).is_none(), "x1's answer is not x2's");
        assert!(near.stale(&x2, &[]).is_none(), "nor while Redis is down");
        // x2's answer replaces x1's: one copy per key.
        near.keep(x2, &[], Some(Bytes::from_static(b"\xc2")), None);
        assert!(near.fresh(&contains(&near, "x1"), &[]).is_none());
        let copy = near.fresh(&contains(&near, "x2"), &[]).expect("x2's");
        assert_eq!(&copy.body[..], b"\xc2");

        // The same bytes in two shapes: a value and a counter.
        near.keep(
            kept(&near, "d:n"),
            &[],
            Some(Bytes::from_static(b"\xa11")),
            None,
        );
        let counter = reading(Action::CounterGet(CounterGet { key: "d:n".into() }));
        let counter = near.consider(USE, &counter).expect("keepable");
        assert!(near.fresh(&counter, &[]).is_none());
        assert!(near.fresh(&kept(&near, "d:n"), &[]).is_some());
    }

    /// The hot path: a client key's route leads to its own read's copy only.
    #[test]
    fn a_route_finds_the_copy_of_its_own_read_only() {
        let near = NearCache::new(1 << 20);
        let routes = Routes::new(1 << 20);
        let x1 = contains(&near, "x1");
        routes.learn("x1", &x1);
        near.keep(x1, &[], Some(Bytes::from_static(b"\xc3")), None);
        let route = |key| routes.get(key).expect("learned");
        assert!(near.fresh_at(&route("x1"), &[]).is_some());
        let x2 = contains(&near, "x2");
        routes.learn("x2", &x2);
        assert!(
            near.fresh_at(&route("x2"), &[]).is_none(),
            "x2's route, x1's copy"
        );
        near.keep(x2, &[], Some(Bytes::from_static(b"\xc2")), None);
        assert!(near.fresh_at(&route("x1"), &[]).is_none());
        assert!(near.fresh_at(&route("x2"), &[]).is_some());
        // A copy made by the same read planned again (another `Read`, equal)
        // answers the route learned the first time.
        let again = contains(&near, "x1");
        routes.learn("x1", &again);
        near.keep(again, &[], Some(Bytes::from_static(b"\xc3")), None);
        let copy = near.fresh_at(&route("x1"), &[]).expect("x1's again");
        assert_eq!(&copy.body[..], b"\xc3");
    }
}
