//! What Redis tells this gateway about keys it read (RESP3 client tracking),
//! for whoever keeps copies of them (the near cache). A single Redis's lanes
//! opt in per read; a cluster's primaries each push to a tracking connection
//! of their own (`cluster::trackers`).

use std::sync::Arc;

/// What the store hears from Redis about keys this gateway read (RESP3
/// client tracking), for whoever keeps copies of them.
#[derive(Debug)]
pub enum Invalidation {
    /// These keys changed.
    Keys(Vec<Vec<u8>>),
    /// Everything changed (FLUSHALL, or Redis dropped its tracking table).
    All,
    /// A tracking connection closed: changes may go unheard until it is back.
    Lost,
    /// On a cluster: every primary's changes are heard (`true`), or some
    /// primary has no tracking connection (`false`: no copy is fresh or
    /// kept until it has).
    Tracking(bool),
}

/// Where invalidations go.
pub type Invalidator = Arc<dyn Fn(Invalidation) + Send + Sync>;

/// What the store needs to keep copies coherent: where invalidations go,
/// and the key prefixes whose copies the near cache keeps (read at start).
#[derive(Clone)]
pub struct Tracking {
    pub invalidate: Invalidator,
    pub prefixes: Vec<String>,
}

impl Tracking {
    /// Nobody keeps copies (a one-off store: `check-config`, benchmarks).
    pub fn none() -> Tracking {
        Tracking {
            invalidate: Arc::new(|_| {}),
            prefixes: Vec::new(),
        }
    }
}

/// An `invalidate` push: the keys, or nil for "everything".
pub(super) fn invalidation(data: Vec<redis::Value>) -> Invalidation {
    match data.into_iter().next() {
        Some(redis::Value::Array(keys)) => Invalidation::Keys(
            keys.into_iter()
                .filter_map(|k| match k {
                    redis::Value::BulkString(b) => Some(b),
                    _ => None,
                })
                .collect(),
        ),
        _ => Invalidation::All,
    }
}
