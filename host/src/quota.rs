//! Per-client quotas (`[clients.NAME]`), so that one tenant cannot take
//! what the others need: a write budget in bytes — a token bucket in Redis
//! under `ratelimit:`, shared by every gateway (the store's rate-limit
//! script runs it; this module only says its size) — and the blocking reads
//! (long-polls) a client may hold at once on this gateway, counted here.

use crate::config::Config;
use crate::telemetry::METRICS;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The bucket of a client's write budget is `ratelimit:{WRITE_BYTES}:{client}`:
/// a `/` no policy name may hold, so no configured rate-limit policy's
/// buckets (`ratelimit:{policy}:{subject}`) can ever be this one.
pub const WRITE_BYTES: &str = "quota/write-bytes";

/// What one client may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Its write budget (`None`: no quota).
    pub write: Option<WriteBudget>,
    /// Long-polls it may hold at once on this gateway.
    pub long_polls: usize,
}

/// A token bucket of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBudget {
    pub bytes_per_s: u64,
    pub burst_bytes: u64,
}

/// Each configured client's quota, with the defaults filled in: the burst
/// at least the largest body (so any write the server reads can pass once
/// the bucket is full), and a fair share of the connections kept for
/// blocking reads (`redis.pool_size` less the shared ones) among the
/// clients with `events` rights, at least one each.
pub fn quotas(config: &Config) -> HashMap<String, Quota> {
    let Some(clients) = &config.clients else {
        return HashMap::new();
    };
    let kept = (config.redis.pool_size as usize).saturating_sub(config.redis.shared_connections());
    let consumers = clients.values().filter(|c| !c.events.is_empty()).count();
    let fair_share = (kept / consumers.max(1)).max(1);
    let max_body = config.server.max_body_bytes as u64;
    clients
        .iter()
        .map(|(name, c)| {
            let write = c.write_bytes_per_s.map(|rate| WriteBudget {
                bytes_per_s: rate,
                burst_bytes: c.write_burst_bytes.unwrap_or(rate.max(max_body)),
            });
            let long_polls = c.max_long_polls.unwrap_or(fair_share);
            (name.get_ref().clone(), Quota { write, long_polls })
        })
        .collect()
}

/// The long-polls each client holds now on this gateway, shared by every
/// generation (a reload neither forgets nor doubles what is held).
#[derive(Debug, Default)]
pub struct LongPolls(Mutex<HashMap<String, usize>>);

/// One long-poll counted against its client until dropped: when the read
/// ends, or when the request is dropped half-way (the client went away).
#[derive(Debug)]
pub struct LongPoll {
    polls: Arc<LongPolls>,
    client: String,
}

impl LongPolls {
    /// Count one more long-poll for `client`, unless it holds `max` already.
    pub fn enter(self: &Arc<Self>, client: &str, max: usize) -> Option<LongPoll> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(client.to_owned()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        METRICS
            .long_polls
            .with_label_values(&[client])
            .set(*n as i64);
        Some(LongPoll {
            polls: self.clone(),
            client: client.to_owned(),
        })
    }

    /// Long-polls `client` holds now.
    #[cfg(test)]
    fn held(&self, client: &str) -> usize {
        let held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.get(client).copied().unwrap_or(0)
    }
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        let mut held = self.polls.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            METRICS
                .long_polls
                .with_label_values(&[&self.client])
                .set(*n as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{PATH, folder};

    fn config(clients: &str) -> Config {
        let (_dir, path) = folder(&["x"]);
        let text = format!(
            "[server]\nmax_body_bytes = 4096\n[redis]\npool_size = 8\nshared_connections = 2\n[plugins]\ndir = \"plugins\"\n[domains.d]\nplugin = \"x\"\n{clients}"
        );
        Config::parse(&text, &path)
            .unwrap_or_else(|e| panic!("{}", e.to_string().replace(&*path.to_string_lossy(), PATH)))
    }

    fn client(name: &str, n: u8, keys: &str) -> String {
        format!(
            "[clients.{name}]\nkey_sha256 = \"{}\"\n{keys}\n",
            format!("{n:02x}").repeat(32)
        )
    }

    #[test]
    fn the_burst_defaults_to_the_larger_of_the_rate_and_the_body_limit() {
        let q = quotas(&config(
            &[
                client("slow", 1, "write_bytes_per_s = 100"),
                client("fast", 2, "write_bytes_per_s = 10000"),
                client("set", 3, "write_bytes_per_s = 100\nwrite_burst_bytes = 50"),
                client("free", 4, ""),
            ]
            .concat(),
        ));
        let write = |c: &str| q[c].write.map(|w| (w.bytes_per_s, w.burst_bytes));
        assert_eq!(write("slow"), Some((100, 4096)));
        assert_eq!(write("fast"), Some((10_000, 10_000)));
        assert_eq!(write("set"), Some((100, 50)));
        assert_eq!(write("free"), None, "unset: no quota");
        assert!(quotas(&config("")).is_empty(), "no clients: no quotas");
    }

    #[test]
    fn long_polls_default_to_a_fair_share_among_event_clients() {
        // 8 connections, 2 shared: 6 kept for blocking reads.
        let events = "events = [\"d\"]";
        let q = quotas(&config(
            &[
                client("a", 1, events),
                client("b", 2, events),
                client("c", 3, events),
                client("d", 4, "events = [\"d\"]\nmax_long_polls = 5"),
                client("reader", 5, "read = [\"d\"]"),
            ]
            .concat(),
        ));
        assert_eq!((q["a"].long_polls, q["d"].long_polls), (1, 5));
        assert_eq!(q["reader"].long_polls, 1, "at least one");
        let q = quotas(&config(
            &[client("a", 1, events), client("b", 2, events)].concat(),
        ));
        assert_eq!(q["a"].long_polls, 3);
    }

    #[test]
    fn a_client_holds_its_long_polls_up_to_its_cap_and_each_ends_on_drop() {
        let polls = Arc::new(LongPolls::default());
        let first = polls.enter("quota-test-a", 2);
        let second = polls.enter("quota-test-a", 2);
        assert!(first.is_some() && second.is_some());
        assert!(polls.enter("quota-test-a", 2).is_none(), "the third");
        assert!(
            polls.enter("quota-test-b", 2).is_some(),
            "another client's own"
        );
        assert!(polls.enter("quota-test-c", 0).is_none(), "0: none");
        drop(first);
        assert_eq!(polls.held("quota-test-a"), 1);
        let third = polls.enter("quota-test-a", 2);
        assert!(third.is_some());
        drop((second, third));
        assert_eq!(polls.held("quota-test-a"), 0);
    }

    #[test]
    fn the_write_budgets_bucket_is_no_policys() {
        assert!(!crate::namespace::valid_name(WRITE_BYTES));
        assert_eq!(
            crate::namespace::ratelimit_key(WRITE_BYTES, "svc"),
            "ratelimit:quota/write-bytes:svc"
        );
    }
}
