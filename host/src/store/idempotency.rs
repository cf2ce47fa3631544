//! Idempotency records under the reserved prefix `idempotency:`: a write
//! sent twice with one `Idempotency-Key` is applied once.
//!
//! A request first *claims* its key (`SET … NX` with a short life: a
//! duplicate arriving meanwhile is told it is in flight). Its writes then
//! run as one transaction that ends by writing the record, so a write and
//! its record land together or not at all: no crash or lost connection
//! between them can let a retry apply it again. A record holds the
//! request's fingerprint and, when known, the response to replay.

use super::cluster::{cut, topology};
use super::error::reply_error;
use super::pipeline::{one, pipeline};
use super::plan::{self, TtlBounds};
use super::{Store, StoreError};
use crate::namespace::IDEMPOTENCY;
use crate::plugin::bindings::Plan;
use redis::Value;
use std::time::Duration;

/// One idempotency key of one client in one domain, for one request.
#[derive(Debug, Clone)]
pub struct Record {
    /// `idempotency:{domain}:{client}:{key}` (on a cluster
    /// `idempotency:{TAG}:{domain}:{client}:{key}`): each client's keys are
    /// its own, so no client can block or probe another's.
    pub key: String,
    /// What the request was (method, path, client, body): a key reused for
    /// another request is refused, not answered with the first one's
    /// response.
    pub fingerprint: String,
    /// How long the record lasts: the window, or less when everything the
    /// write sets expires sooner ([`Store::record_for`]).
    pub window: Duration,
    /// How long a claim lasts when its request never finishes (the
    /// gateway died): a retry after it is served.
    pub claim_for: Duration,
}

/// What Redis holds for an idempotency key.
#[derive(Debug, PartialEq)]
pub enum Seen {
    /// Nothing: this request claimed it and goes ahead.
    Claimed,
    /// Another request with this key is being served.
    InFlight,
    /// Applied, with this response (status, MessagePack body or empty).
    Done { status: u16, body: Vec<u8> },
    /// Applied, its response not recorded (the gateway went away between
    /// the write and the record of what it answered).
    Applied,
    /// The key was used for a different request.
    Reused,
}

impl Record {
    /// The record of a finished request: `d|fingerprint|status|body`.
    pub fn done(&self, status: u16, body: &[u8]) -> redis::Cmd {
        let value = [format!("d|{}|{status}|", self.fingerprint).as_bytes(), body].concat();
        self.set(value)
    }

    /// The record of a request applied whose response is not known yet,
    /// with when (ms since the epoch): until `claim_for` after it, its
    /// request may still be recording the response.
    pub fn applied(&self, now_ms: u64) -> redis::Cmd {
        self.set(format!("a|{}|{now_ms}", self.fingerprint).into_bytes())
    }

    fn set(&self, value: Vec<u8>) -> redis::Cmd {
        let mut cmd = redis::cmd("SET");
        cmd.arg(&self.key)
            .arg(value)
            .arg("PX")
            .arg(self.window.as_millis().max(1) as u64);
        cmd
    }

    /// What a stored record says to a request with this fingerprint, at `now_ms`.
    fn read(&self, stored: &[u8], now_ms: u64) -> Seen {
        let mut parts = stored.splitn(4, |b| *b == b'|');
        let (state, fingerprint) = (parts.next(), parts.next());
        if fingerprint != Some(self.fingerprint.as_bytes()) {
            return Seen::Reused;
        }
        match state {
            Some(b"p") => Seen::InFlight,
            Some(b"a") => {
                let at = parts
                    .next()
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0);
                if now_ms.saturating_sub(at) < self.claim_for.as_millis() as u64 {
                    Seen::InFlight
                } else {
                    Seen::Applied
                }
            }
            Some(b"d") => {
                let status = parts
                    .next()
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| s.parse().ok());
                match status {
                    Some(status) => Seen::Done {
                        status,
                        body: parts.next().unwrap_or_default().to_vec(),
                    },
                    None => Seen::Applied,
                }
            }
            _ => Seen::Reused,
        }
    }
}

/// Why an idempotency record cannot share its write's hash slot (on a
/// cluster), where it must land in the write's own transaction.
#[derive(Debug, thiserror::Error)]
pub enum NoSlot {
    /// The write's first key is hashed whole and holds a `}`.
    #[error(
        "on a Redis Cluster an Idempotency-Key needs the write's key to take a hash tag; {0:?} holds a '}}' outside one"
    )]
    Untaggable(String),
    /// The write's keys span slots: no one transaction holds them all.
    #[error(
        "on a Redis Cluster an Idempotency-Key needs the write's keys in one hash slot, and {0:?} and {1:?} are not: give them a common hash tag, e.g. \"{{tag}}\" in both"
    )]
    Apart(String, String),
}

/// The Redis key of `client`'s idempotency `key` in `domain`, after the
/// hash tag that places it on a cluster, if any. Domain and client names
/// hold no `:`, so no two owners' keys can meet.
fn record_key(tag: Option<&str>, domain: &str, client: &str, key: &str) -> String {
    match tag {
        None => format!("{IDEMPOTENCY}{domain}:{client}:{key}"),
        Some(tag) => format!("{IDEMPOTENCY}{tag}:{domain}:{client}:{key}"),
    }
}

impl Store {
    /// The record of `key` (`client`'s `Idempotency-Key`) in `domain`, for
    /// a request with `fingerprint` whose writes are `plan`. It lasts the
    /// window, or as long as the longest TTL the plan's writes set when
    /// that is shorter: once all it wrote has expired, a retry writes it
    /// again rather than being told it was done
    /// ([`plan::written_ttl`]). A plan with a write that sets no TTL (a
    /// DELETE, a publish, a script) or whose writes are not known yet (a
    /// read-then-write) keeps the whole window: its effect may last, and a
    /// retry must not apply it twice. On a cluster it goes in the write's hash slot (the tag of
    /// the plan's first key), so that claim, write and record share a
    /// node; a write whose keys span slots cannot take one. A claim
    /// outlives any request (ten command timeouts, at least 10 s) and then
    /// expires, so a gateway that died mid-request does not block retries
    /// for long.
    pub fn record_for(
        &self,
        domain: &str,
        client: &str,
        key: &str,
        fingerprint: String,
        plan: &Plan,
        (window, ttl): (Duration, &TtlBounds),
    ) -> Result<Record, NoSlot> {
        if let Some((a, b)) = cut::apart(plan).filter(|_| self.one_slot()) {
            return Err(NoSlot::Apart(a.to_owned(), b.to_owned()));
        }
        let tag = match plan::first_key(plan).filter(|_| self.one_slot()) {
            None => None,
            Some(write) => {
                Some(topology::tag_of(write).ok_or_else(|| NoSlot::Untaggable(write.to_owned()))?)
            }
        };
        let written = plan::written_ttl(plan, ttl).map(Duration::from_millis);
        Ok(Record {
            key: record_key(tag.as_deref(), domain, client, key),
            fingerprint,
            window: written.map_or(window, |w| w.min(window)),
            claim_for: (self.deadline * 10).max(Duration::from_secs(10)),
        })
    }

    /// Claim `record`'s key, or learn what holds it: one round trip
    /// (`SET … NX PX`, then `GET`).
    pub async fn claim(&self, record: &Record, now_ms: u64) -> Result<Seen, StoreError> {
        let mut pipe = pipeline();
        pipe.cmd("SET")
            .arg(&record.key)
            .arg(format!("p|{}", record.fingerprint))
            .arg("NX")
            .arg("PX")
            .arg(record.claim_for.as_millis().max(1) as u64);
        pipe.cmd("GET").arg(&record.key);
        let replies = self.query(&pipe, Some(&record.key)).await?;
        if let Some(e) = replies.iter().find_map(reply_error) {
            return Err(e);
        }
        Ok(match &replies[..] {
            [Value::Okay, ..] => Seen::Claimed,
            [_, Value::BulkString(stored)] => record.read(stored, now_ms),
            // Claimed and gone again between the two commands: in flight.
            _ => Seen::InFlight,
        })
    }

    /// Record what a claimed request answered, once it is known.
    pub async fn answered(
        &self,
        record: &Record,
        status: u16,
        body: &[u8],
    ) -> Result<(), StoreError> {
        let mut pipe = pipeline();
        pipe.add_command(record.done(status, body));
        one(self.query(&pipe, Some(&record.key)).await?).map(drop)
    }

    /// Give a claim back: its request was refused before anything was sent
    /// to Redis, and a retry may go ahead at once.
    pub async fn release(&self, record: &Record) {
        let mut pipe = pipeline();
        pipe.cmd("DEL").arg(&record.key);
        if let Err(e) = self.query(&pipe, Some(&record.key)).await {
            tracing::debug!(key = %record.key, error = %e, "idempotency claim not released; it expires");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            key: "idempotency:cache:k".into(),
            fingerprint: "f1".into(),
            window: Duration::from_secs(86_400),
            claim_for: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_record_reads_back_as_what_it_recorded_for_the_same_request_only() {
        let o = record();
        let read = |stored: &[u8]| o.read(stored, 100_000);
        assert_eq!(read(b"p|f1"), Seen::InFlight);
        // Applied 5 s ago: its request may still be recording the answer;
        // 10 s or more: it never will.
        assert_eq!(read(b"a|f1|95000"), Seen::InFlight);
        assert_eq!(read(b"a|f1|90000"), Seen::Applied);
        assert_eq!(read(b"a|f1"), Seen::Applied);
        assert_eq!(
            read(b"d|f1|204|"),
            Seen::Done {
                status: 204,
                body: vec![]
            }
        );
        // The body is bytes, `|` and all.
        assert_eq!(
            read(b"d|f1|201|\x81|a"),
            Seen::Done {
                status: 201,
                body: b"\x81|a".to_vec()
            }
        );
        assert_eq!(read(b"d|f2|204|"), Seen::Reused, "another request");
        assert_eq!(read(b"p|f2"), Seen::Reused);
        assert_eq!(read(b"garbage"), Seen::Reused);
        assert_eq!(read(b"d|f1|x|"), Seen::Applied, "an unreadable status");
    }

    fn store(topology: crate::config::Topology) -> Store {
        let config = crate::config::RedisConfig {
            topology,
            ..crate::config::RedisConfig::default()
        };
        let scripts = std::sync::Arc::new(super::super::scripts::Scripts::load(None).unwrap());
        let breaker = crate::config::BreakerConfig::default();
        let tracking = super::super::tracking::Tracking::none();
        Store::new(&config, breaker, scripts, tracking).unwrap()
    }

    fn writes(key: &str) -> Plan {
        use crate::plugin::bindings::{Action, StringSet};
        Plan {
            actions: vec![Action::Set(StringSet {
                key: key.into(),
                value: vec![0xc0],
                ttl_ms: None,
            })],
            atomic: false,
            respond: None,
            ttl_ms: None,
            cache: None,
        }
    }

    const TTL: TtlBounds = TtlBounds {
        default_ms: 3_600_000,
        min_ms: 1_000,
        max_ms: 172_800_000,
    };
    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_record_key_names_its_domain_and_client() {
        assert_eq!(
            record_key(None, "cache", "a", "k1"),
            "idempotency:cache:a:k1"
        );
        assert_eq!(
            record_key(None, "cache", "-", "k1"),
            "idempotency:cache:-:k1"
        );
        assert_eq!(
            record_key(Some("{u}"), "cache", "b", "k1"),
            "idempotency:{u}:cache:b:k1"
        );
        assert_ne!(
            record_key(None, "cache", "a", "k1"),
            record_key(None, "cache", "b", "k1")
        );
    }

    #[tokio::test]
    async fn a_record_is_the_gateways_own_key_and_on_a_cluster_in_its_writes_slot() {
        use crate::config::Topology;
        let lasts = (DAY, &TTL);
        let single = store(Topology::Single);
        let record_for =
            |s: &Store, write: &Plan| s.record_for("cache", "a", "k1", "f".into(), write, lasts);
        let r = record_for(&single, &writes("cache:{u}:a")).unwrap();
        assert_eq!(r.key, "idempotency:cache:a:k1");
        assert!(crate::namespace::is_reserved(&r.key));
        assert_eq!(r.claim_for, Duration::from_secs(10), "at least 10 s");
        let cluster = store(Topology::Cluster);
        for (write, record) in [
            ("cache:{u}:a", "idempotency:{u}:cache:a:k1"),
            ("cache:a", "idempotency:{cache:a}:cache:a:k1"),
        ] {
            let r = record_for(&cluster, &writes(write)).unwrap();
            assert_eq!(r.key, record);
            assert_eq!(
                topology::slot(r.key.as_bytes()),
                topology::slot(write.as_bytes())
            );
        }
        let untaggable = record_for(&cluster, &writes("cache:}a"));
        assert!(untaggable.is_err());
        let anywhere = record_for(&single, &writes("cache:}a"));
        assert!(anywhere.is_ok(), "a single Redis needs no tag");
        // Keys in two slots: no one transaction on a cluster holds them.
        let mut two = writes("cache:a");
        two.actions.extend(writes("cache:b").actions);
        let apart = record_for(&cluster, &two);
        assert!(matches!(apart, Err(NoSlot::Apart(a, b)) if a == "cache:a" && b == "cache:b"));
        assert!(record_for(&single, &two).is_ok());
    }

    #[tokio::test]
    async fn a_record_lasts_no_longer_than_what_its_write_sets() {
        use crate::plugin::bindings::{Action, KeyDelete};
        let single = store(crate::config::Topology::Single);
        let window = |plan: &Plan| {
            let r = single.record_for("cache", "a", "k1", "f".into(), plan, (DAY, &TTL));
            r.unwrap().window
        };
        // The domain's default TTL (1 h), then a TTL of the plan's.
        let mut plan = writes("cache:a");
        assert_eq!(window(&plan), Duration::from_secs(3_600));
        plan.ttl_ms = Some(2_000);
        assert_eq!(window(&plan), Duration::from_secs(2));
        // Longer than the window: the window.
        plan.ttl_ms = Some(172_800_000);
        assert_eq!(window(&plan), DAY);
        // A delete sets no TTL: its record keeps the window.
        let mut delete = writes("cache:a");
        delete.actions = vec![Action::Delete(KeyDelete {
            key: "cache:a".into(),
        })];
        assert_eq!(window(&delete), DAY);
    }

    #[test]
    fn records_expire_with_the_window() {
        let o = record();
        let args: Vec<Vec<u8>> = o
            .done(204, b"")
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => b.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(args[0], b"SET");
        assert_eq!(args[2], b"d|f1|204|");
        assert_eq!(&args[3..], [b"PX".to_vec(), b"86400000".to_vec()]);
    }
}
