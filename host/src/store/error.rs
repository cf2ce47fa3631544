//! Why Redis did not do what was asked, and which failures are Redis's own:
//! the breaker counts only those, and a client may retry only those.

use redis::Value;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Down, refusing connections, or the connection broke: the client may retry.
    #[error("Redis is unavailable: {0}")]
    Unavailable(String),
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The breaker is open: the call failed fast without touching Redis.
    #[error("Redis is unavailable (circuit open); retry in {retry_after:?}")]
    CircuitOpen { retry_after: Duration },
    /// Redis answered with an error (e.g. WRONGTYPE): retrying will not help.
    #[error("Redis refused the command: {0}")]
    Command(String),
    /// Every connection this gateway may hold for blocking reads is taken: the
    /// gateway is busy, Redis is not at fault (the breaker does not count it).
    #[error("the gateway is busy: {0}")]
    Busy(String),
    /// A stream read or acknowledgement named a consumer group that does not exist.
    #[error(
        "no such consumer group on this stream; create it with POST /v1/streams/{{stream}}/groups/{{group}} ({0})"
    )]
    NoGroup(String),
    /// A read-then-write found a key it read changed by another writer
    /// before its write, every one of this many times: nothing was written.
    #[error(
        "another writer changed what this request read before it could write, {0} times in a row; nothing was written: retry"
    )]
    Contended(u32),
    /// The gateway broke its own rule (a reply it cannot place, a reply of
    /// a shape its own script never gives): neither Redis's fault nor the
    /// client's, and not counted by the breaker.
    #[error("internal error: {0}")]
    Internal(String),
}

impl StoreError {
    /// What kind of failure, in a word (a span's status: never the
    /// message, which may quote what Redis or a script wrote).
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Timeout(_) => "timeout",
            StoreError::CircuitOpen { .. } => "circuit_open",
            StoreError::Command(_) => "command",
            StoreError::Busy(_) => "busy",
            StoreError::NoGroup(_) => "no_group",
            StoreError::Contended(_) => "contended",
            StoreError::Internal(_) => "internal",
        }
    }

    /// Whether this says Redis could not be reached (as opposed to refusing).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Timeout(_)
                | StoreError::CircuitOpen { .. }
                | StoreError::Busy(_)
        )
    }

    /// How long a client should wait before retrying, for `Retry-After`.
    pub fn retry_after(&self) -> Duration {
        match self {
            StoreError::CircuitOpen { retry_after } => *retry_after,
            _ => Duration::from_secs(1),
        }
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if is_transport(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Command(e.to_string())
        }
    }
}

impl From<bb8::RunError<redis::RedisError>> for StoreError {
    fn from(e: bb8::RunError<redis::RedisError>) -> Self {
        match e {
            bb8::RunError::User(e) => StoreError::Unavailable(e.to_string()),
            bb8::RunError::TimedOut => {
                StoreError::Unavailable("no connection to Redis could be made in time".into())
            }
        }
    }
}

/// A failure of the connection itself, not an answer from Redis; on a
/// cluster also a node the client cannot reach or a slot without a
/// reachable primary (the client's own retries exhausted).
pub(super) fn is_transport(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind as S};
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    S::TryAgain
                        | S::ClusterDown
                        | S::MasterDown
                        | S::Moved
                        | S::Ask
                        | S::BusyLoading
                )
        )
}

/// An error reply as a [`StoreError`].
pub(super) fn reply_error(v: &Value) -> Option<StoreError> {
    match v {
        Value::ServerError(e) => Some(StoreError::Command(format!(
            "{} {}",
            e.code(),
            e.details().unwrap_or("")
        ))),
        _ => None,
    }
}

/// Redis no longer holds the script (SCRIPT FLUSH, a restart, a failover).
pub(super) fn is_noscript(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.code() == "NOSCRIPT")
}

#[cfg(test)]
pub(super) fn error_reply(code: &str) -> Value {
    redis::parse_redis_value(format!("-{code} details\r\n").as_bytes()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transport_failures_count_as_unavailable() {
        assert!(StoreError::Unavailable("x".into()).is_unavailable());
        assert!(StoreError::Timeout(Duration::from_secs(1)).is_unavailable());
        assert!(!StoreError::Command("WRONGTYPE".into()).is_unavailable());
        assert!(!StoreError::NoGroup("x".into()).is_unavailable());
        assert!(!StoreError::Internal("x".into()).is_unavailable());
        assert!(is_noscript(&error_reply("NOSCRIPT")));
        assert!(!is_noscript(&error_reply("WRONGTYPE")));
        assert!(matches!(
            reply_error(&error_reply("WRONGTYPE")),
            Some(StoreError::Command(m)) if m.starts_with("WRONGTYPE")
        ));
        assert!(reply_error(&Value::Okay).is_none());
    }
}
