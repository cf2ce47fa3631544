//! Idempotency records under the reserved prefix `idempotency:`: a write
//! sent twice with one `Idempotency-Key` is applied once.
//!
//! A request first *claims* its key (`SET … NX` with a short life: a
//! duplicate arriving meanwhile is told it is in flight). Its writes then
//! run as one transaction that ends by writing the record, so a write and
//! its record land together or not at all: no crash or lost connection
//! between them can let a retry apply it again. A record holds the
//! request's fingerprint and, when known, the response to replay.

use super::error::reply_error;
use super::pipeline::{one, pipeline};
use super::{Store, StoreError};
use redis::Value;
use std::time::Duration;

/// One idempotency key of one domain, for one request.
#[derive(Debug, Clone)]
pub struct Once {
    /// `idempotency:{domain}:{client's key}`.
    pub key: String,
    /// What the request was (method, path, body): a key reused for another
    /// request is refused, not answered with the first one's response.
    pub fingerprint: String,
    /// How long the record lasts.
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

impl Once {
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

impl Store {
    /// Claim `once`'s key, or learn what holds it: one round trip
    /// (`SET … NX PX`, then `GET`).
    pub async fn claim(&self, once: &Once, now_ms: u64) -> Result<Seen, StoreError> {
        let mut pipe = pipeline();
        pipe.cmd("SET")
            .arg(&once.key)
            .arg(format!("p|{}", once.fingerprint))
            .arg("NX")
            .arg("PX")
            .arg(once.claim_for.as_millis().max(1) as u64);
        pipe.cmd("GET").arg(&once.key);
        let replies = self.query(&pipe, Some(&once.key)).await?;
        if let Some(e) = replies.iter().find_map(reply_error) {
            return Err(e);
        }
        Ok(match &replies[..] {
            [Value::Okay, ..] => Seen::Claimed,
            [_, Value::BulkString(stored)] => once.read(stored, now_ms),
            // Claimed and gone again between the two commands: in flight.
            _ => Seen::InFlight,
        })
    }

    /// Record what a claimed request answered once it is known.
    pub async fn record(&self, once: &Once, record: redis::Cmd) -> Result<(), StoreError> {
        let mut pipe = pipeline();
        pipe.add_command(record);
        one(self.query(&pipe, Some(&once.key)).await?).map(drop)
    }

    /// Give a claim back: its request was refused before anything was sent
    /// to Redis, and a retry may go ahead at once.
    pub async fn release(&self, once: &Once) {
        let mut pipe = pipeline();
        pipe.cmd("DEL").arg(&once.key);
        if let Err(e) = self.query(&pipe, Some(&once.key)).await {
            tracing::debug!(key = %once.key, error = %e, "idempotency claim not released; it expires");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn once() -> Once {
        Once {
            key: "idempotency:cache:k".into(),
            fingerprint: "f1".into(),
            window: Duration::from_secs(86_400),
            claim_for: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_record_reads_back_as_what_it_recorded_for_the_same_request_only() {
        let o = once();
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

    #[test]
    fn records_expire_with_the_window() {
        let o = once();
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
