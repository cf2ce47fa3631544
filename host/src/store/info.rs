//! Redis's own numbers as Prometheus metrics: `INFO memory stats clients`
//! polled on an interval through the same pool and breaker as everything
//! else. On a Redis Cluster every primary is asked: each one's numbers are
//! labelled by its address, and the unlabelled metrics are the totals
//! (the largest fragmentation ratio).

use super::Store;
use crate::telemetry::{METRICS, mirror};
use std::collections::HashMap;
use std::time::Duration;

/// What one INFO reply says (a field it lacks is `None`).
#[derive(Debug, Default, PartialEq)]
struct Info {
    used: Option<i64>,
    peak: Option<i64>,
    /// `maxmemory`: 0 when Redis has no limit.
    max: Option<i64>,
    fragmentation: Option<f64>,
    clients: Option<i64>,
    /// Cumulative: keyspace hits, misses, evicted keys.
    counts: [Option<u64>; 3],
}

fn parse(text: &str) -> Info {
    let mut info = Info::default();
    for line in text.lines() {
        let Some((k, v)) = line.trim_end().split_once(':') else {
            continue;
        };
        match k {
            "used_memory" => info.used = v.parse().ok(),
            "used_memory_peak" => info.peak = v.parse().ok(),
            "maxmemory" => info.max = v.parse().ok(),
            "mem_fragmentation_ratio" => info.fragmentation = v.parse().ok(),
            "connected_clients" => info.clients = v.parse().ok(),
            "keyspace_hits" => info.counts[0] = v.parse().ok(),
            "keyspace_misses" => info.counts[1] = v.parse().ok(),
            "evicted_keys" => info.counts[2] = v.parse().ok(),
            _ => {}
        }
    }
    info
}

/// Poll forever; a failed poll is counted and the next one tried on time.
pub async fn poll(store: Store, every: Duration) {
    // Per node (`""`: the one Redis), the counts last read.
    let mut last: HashMap<String, [u64; 3]> = HashMap::new();
    let now = tokio::time::Instant::now();
    let first = now.checked_add(every).unwrap_or(now);
    let mut ticker = tokio::time::interval_at(first, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Ok(replies) = store.info().await else {
            METRICS.redis_info_errors.inc();
            continue;
        };
        let nodes: Vec<(String, Info)> = replies
            .into_iter()
            .map(|(node, text)| (node, parse(&text)))
            .collect();
        record(&nodes, &mut last);
    }
}

/// The memory Redis may hold: the sum of every primary's `maxmemory`, or 0
/// (no limit) when one of them has none, as alerts read "of maxmemory".
fn max_memory(nodes: &[(String, Info)]) -> i64 {
    let limits: Option<Vec<i64>> = nodes
        .iter()
        .map(|(_, i)| i.max.filter(|&m| m > 0))
        .collect();
    limits.map_or(0, |l| l.iter().sum())
}

/// Set the metrics from one poll's replies.
fn record(nodes: &[(String, Info)], last: &mut HashMap<String, [u64; 3]>) {
    let sum = |f: fn(&Info) -> Option<i64>| nodes.iter().filter_map(|(_, i)| f(i)).sum::<i64>();
    METRICS.redis_memory_used.set(sum(|i| i.used));
    METRICS.redis_memory_peak.set(sum(|i| i.peak));
    METRICS.redis_maxmemory.set(max_memory(nodes));
    METRICS.redis_connected_clients.set(sum(|i| i.clients));
    let worst = nodes
        .iter()
        .filter_map(|(_, i)| i.fragmentation)
        .reduce(f64::max);
    if let Some(ratio) = worst {
        METRICS.redis_fragmentation.set(ratio);
    }
    let totals = [
        &METRICS.redis_keyspace_hits,
        &METRICS.redis_keyspace_misses,
        &METRICS.redis_evicted_keys,
    ];
    let per_node = [
        &METRICS.redis_node_keyspace_hits,
        &METRICS.redis_node_keyspace_misses,
        &METRICS.redis_node_evicted_keys,
    ];
    for (node, info) in nodes {
        let seen = last.entry(node.clone()).or_default();
        for (i, count) in info.counts.iter().enumerate() {
            let Some(now) = *count else { continue };
            let before = seen[i];
            mirror(totals[i], &mut seen[i], now);
            if !node.is_empty() {
                let mut mine = before;
                mirror(&per_node[i].with_label_values(&[node]), &mut mine, now);
            }
        }
        if !node.is_empty() {
            let labels = [node.as_str()];
            if let Some(used) = info.used {
                METRICS
                    .redis_node_memory_used
                    .with_label_values(&labels)
                    .set(used);
            }
            if let Some(clients) = info.clients {
                METRICS
                    .redis_node_connected_clients
                    .with_label_values(&labels)
                    .set(clients);
            }
        }
    }
    // Nodes gone (a failed primary, a resharded cluster) leave no series behind.
    let gone: Vec<String> = last
        .keys()
        .filter(|n| !nodes.iter().any(|(node, _)| node == *n))
        .cloned()
        .collect();
    for node in gone {
        last.remove(&node);
        let labels = [node.as_str()];
        let _ = METRICS.redis_node_memory_used.remove_label_values(&labels);
        let _ = METRICS
            .redis_node_connected_clients
            .remove_label_values(&labels);
        for family in per_node {
            let _ = family.remove_label_values(&labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_info_reply_is_read_field_by_field() {
        let text = "# Memory\r\nused_memory:1024\r\nused_memory_peak:2048\r\nmaxmemory:4096\r\nmem_fragmentation_ratio:1.25\r\n# Clients\r\nconnected_clients:7\r\n# Stats\r\nkeyspace_hits:10\r\nkeyspace_misses:3\r\nevicted_keys:0\r\nother:x\r\n";
        assert_eq!(
            parse(text),
            Info {
                used: Some(1024),
                peak: Some(2048),
                max: Some(4096),
                fragmentation: Some(1.25),
                clients: Some(7),
                counts: [Some(10), Some(3), Some(0)],
            }
        );
        assert_eq!(parse("garbage"), Info::default());
    }

    #[test]
    fn maxmemory_is_the_primaries_sum_or_none_when_one_has_no_limit() {
        let node = |max| {
            let info = Info {
                max: Some(max),
                ..Info::default()
            };
            (String::new(), info)
        };
        assert_eq!(max_memory(&[node(100), node(50)]), 150);
        assert_eq!(max_memory(&[node(100), node(0)]), 0, "one unbounded");
        assert_eq!(
            max_memory(&[node(100), (String::new(), Info::default())]),
            0
        );
        assert_eq!(max_memory(&[]), 0);
    }
}
