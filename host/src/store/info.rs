//! Redis's own numbers as Prometheus metrics: `INFO memory stats clients`
//! polled on an interval through the same pool and breaker as everything else.

use super::{Store, pipeline};
use crate::telemetry::{METRICS, mirror};
use std::time::Duration;

/// Poll forever; a failed poll is counted and the next one tried on time.
pub async fn poll(store: Store, every: Duration) {
    let (mut hits, mut misses, mut evicted) = (0u64, 0u64, 0u64);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let mut pipe = pipeline();
        pipe.cmd("INFO").arg("memory").arg("stats").arg("clients");
        let text = match store.query(&pipe).await.map(|mut v| v.pop()) {
            Ok(Some(redis::Value::BulkString(b))) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Some(redis::Value::VerbatimString { text, .. })) => text,
            _ => {
                METRICS.redis_info_errors.inc();
                continue;
            }
        };
        for line in text.lines() {
            let Some((k, v)) = line.trim_end().split_once(':') else {
                continue;
            };
            let int = || v.parse::<i64>().ok();
            match k {
                "used_memory" => int().map(|n| METRICS.redis_memory_used.set(n)),
                "used_memory_peak" => int().map(|n| METRICS.redis_memory_peak.set(n)),
                "mem_fragmentation_ratio" => {
                    v.parse().ok().map(|r| METRICS.redis_fragmentation.set(r))
                }
                "connected_clients" => int().map(|n| METRICS.redis_connected_clients.set(n)),
                "keyspace_hits" => v
                    .parse()
                    .ok()
                    .map(|n| mirror(&METRICS.redis_keyspace_hits, &mut hits, n)),
                "keyspace_misses" => v
                    .parse()
                    .ok()
                    .map(|n| mirror(&METRICS.redis_keyspace_misses, &mut misses, n)),
                "evicted_keys" => v
                    .parse()
                    .ok()
                    .map(|n| mirror(&METRICS.redis_evicted_keys, &mut evicted, n)),
                _ => None,
            };
        }
    }
}
