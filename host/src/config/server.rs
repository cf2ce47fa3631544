//! `[server]`: where the gateway listens and the limits it holds clients to.

use super::ConfigError;
use super::lines::Checker;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where to accept HTTP; needs a restart to change.
    pub listen: SocketAddr,
    /// Larger bodies get 413 before the gateway reads them.
    pub max_body_bytes: usize,
    /// Longer keys get 400: Redis keys are copied on every command.
    pub max_key_bytes: usize,
    /// A body not read in full within this long gets 408 (a client that
    /// trickles its body does not hold a request open forever).
    pub body_timeout_ms: u64,
    /// An answer larger than this (an mget of large values) gets 413 naming
    /// the limit instead of a body the gateway would have to build in memory.
    pub max_response_bytes: usize,
    /// Response bodies of 64 KiB or more, summed over every request whose
    /// body is not yet sent (a client that reads slowly holds its own):
    /// past it a request is shed with 503 + Retry-After. At least
    /// `max_response_bytes`.
    pub max_buffered_bytes: usize,
    /// Requests served at once; past it a request is shed with 503 + Retry-After.
    pub max_in_flight: usize,
    /// Client connections open at once; past it a new connection is closed
    /// as soon as it is accepted.
    pub max_connections: usize,
    /// How long a write's `Idempotency-Key` is remembered: a retry within
    /// it is answered with the first response, never applied again.
    pub idempotency_window_s: u64,
    /// After SIGTERM: how long requests in flight may take to finish before
    /// the process exits anyway (long-polls end at once).
    pub drain_ms: u64,
    /// Threads serving HTTP, each its own event loop with its own listening
    /// socket and its own Redis lanes (0: one per CPU). Restart to change.
    pub threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1 << 20,
            max_key_bytes: 512,
            body_timeout_ms: 10_000,
            max_response_bytes: 16 << 20,
            max_buffered_bytes: 64 << 20,
            max_in_flight: 1_024,
            max_connections: 4_096,
            idempotency_window_s: 86_400,
            drain_ms: 15_000,
            threads: 0,
        }
    }
}

impl ServerConfig {
    pub(super) fn check(&self, at: &Checker) -> Result<(), ConfigError> {
        if self.max_buffered_bytes < self.max_response_bytes {
            return Err(at.invalid(
                "max_buffered_bytes",
                format!(
                    "must be at least server.max_response_bytes ({}): a response that size could never be sent",
                    self.max_response_bytes
                ),
            ));
        }
        if self.idempotency_window_s == 0 {
            return Err(at.invalid("idempotency_window_s", "must be at least 1"));
        }
        Ok(())
    }
}
