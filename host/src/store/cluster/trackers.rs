//! The near cache's ears on a cluster. Client tracking is per connection,
//! and the cluster client neither says which node a push came from nor
//! turns tracking on again after a reconnect, so the gateway holds its own
//! tracking connection per primary (`CLIENT TRACKING ON BCAST` on the
//! near-cached prefixes) and stops using copies while any primary is unheard.

use super::link::Link;
use crate::store::tracking::{Invalidation, Invalidator, invalidation};
use redis::aio::MultiplexedConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One primary's tracking connection and what its push reader knows.
struct Tracker {
    /// Held so the connection stays open; dropped, it closes.
    _conn: MultiplexedConnection,
    alive: Arc<AtomicBool>,
    /// Closed on purpose (no longer a primary): its end is not a loss.
    retired: Arc<AtomicBool>,
}

impl Tracker {
    /// Forward a tracking connection's invalidations until it closes; a
    /// close not on purpose makes every copy unheard at once (before the
    /// tracker counts as dead, so the follower never re-hears too early).
    fn follow(
        conn: MultiplexedConnection,
        mut pushes: tokio::sync::mpsc::UnboundedReceiver<redis::PushInfo>,
        invalidate: Invalidator,
    ) -> Tracker {
        let alive = Arc::new(AtomicBool::new(true));
        let retired = Arc::new(AtomicBool::new(false));
        let (flag, gone) = (alive.clone(), retired.clone());
        tokio::spawn(async move {
            while let Some(push) = pushes.recv().await {
                match push.kind {
                    redis::PushKind::Invalidate => invalidate(invalidation(push.data)),
                    redis::PushKind::Disconnection => break,
                    _ => {}
                }
            }
            if !gone.load(Ordering::Acquire) {
                tracing::warn!("a tracking connection to a primary closed");
                invalidate(Invalidation::Tracking(false));
            }
            flag.store(false, Ordering::Release);
        });
        Tracker {
            _conn: conn,
            alive,
            retired,
        }
    }
}

/// Hear every change to keys under `prefixes` on every
/// primary, for the near cache, until the process ends. Every second the
/// `primaries` (from the slot map the breakers keep) are looked at again:
/// one without a live tracking connection gets one, one no longer primary
/// loses its. Until every primary is heard (at start, after a connection
/// dropped, while a promoted replica has none yet) no copy is fresh or kept.
pub(super) async fn follow(
    link: &Link,
    prefixes: Vec<String>,
    primaries: impl Fn() -> Option<Vec<String>>,
    invalidate: Invalidator,
) {
    if prefixes.is_empty() {
        return;
    }
    invalidate(Invalidation::Tracking(false));
    let mut heard = false;
    let mut trackers: std::collections::HashMap<String, Tracker> = std::collections::HashMap::new();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(primaries) = primaries() else {
            continue;
        };
        // A dropped connection already made copies unheard (its reader
        // said so before it marked itself dead).
        if trackers.values().any(|t| !t.alive.load(Ordering::Acquire)) {
            heard = false;
        }
        trackers.retain(|addr, t| {
            let keep = primaries.contains(addr) && t.alive.load(Ordering::Acquire);
            // No longer a primary: closed on purpose, not a loss.
            t.retired.store(!keep, Ordering::Release);
            keep
        });
        for addr in &primaries {
            if trackers.contains_key(addr) {
                continue;
            }
            match link.tracker(addr, &prefixes).await {
                Ok((conn, pushes)) => {
                    let tracker = Tracker::follow(conn, pushes, invalidate.clone());
                    trackers.insert(addr.clone(), tracker);
                }
                Err(e) => {
                    tracing::warn!(node = %addr, error = %e, "no tracking connection to a primary; near-cache copies are not used until there is")
                }
            }
        }
        let all = primaries.iter().all(|a| trackers.contains_key(a));
        if all != heard {
            heard = all;
            invalidate(Invalidation::Tracking(all));
            tracing::info!(
                primaries = primaries.len(),
                heard,
                "near-cache tracking on the cluster"
            );
        }
    }
}
