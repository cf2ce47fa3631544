//! The in-process copy of recently read values (L1), bounded in bytes.
//!
//! Today it serves one purpose: while Redis cannot answer, a read of a key
//! the gateway has seen recently is answered from here, marked stale, if the
//! domain allows it (`max_stale_s`). Writes and deletes through the gateway
//! drop the copy, so a value the gateway changed is never served stale.

use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Entry {
    /// Which `?fields=` the body answered; a read for other fields misses.
    fields: String,
    body: Bytes,
    stored: Instant,
    max_stale: Duration,
}

pub struct NearCache {
    cache: moka::sync::Cache<String, Arc<Entry>>,
}

impl NearCache {
    pub fn new(max_bytes: u64) -> NearCache {
        let cache = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, e: &Arc<Entry>| {
                (k.len() + e.fields.len() + e.body.len() + 64)
                    .try_into()
                    .unwrap_or(u32::MAX)
            })
            .build();
        NearCache { cache }
    }

    /// Keep a copy of what a read of `id` (`{domain}\0{key}`) returned.
    pub fn keep(&self, id: &str, fields: &[String], body: Bytes, max_stale: Duration) {
        let entry = Entry {
            fields: fields.join(","),
            body,
            stored: Instant::now(),
            max_stale,
        };
        self.cache.insert(id.to_owned(), Arc::new(entry));
    }

    /// A copy no older than its domain allows, and its age.
    pub fn stale(&self, id: &str, fields: &[String]) -> Option<(Bytes, Duration)> {
        let entry = self.cache.get(id)?;
        let age = entry.stored.elapsed();
        (age <= entry.max_stale && entry.fields == fields.join(","))
            .then(|| (entry.body.clone(), age))
    }

    /// The value changed: drop the copy.
    pub fn forget(&self, id: &str) {
        self.cache.invalidate(id);
    }
}
