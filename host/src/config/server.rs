//! `[server]`: where the gateway listens and the limits it holds clients to.

use super::ConfigError;
use super::lines::Checker;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// HTTPS (and HTTP/2 by ALPN) on `listen`; none: plain HTTP (HTTP/1.1,
    /// and HTTP/2 with prior knowledge). Turning it on or off needs a
    /// restart; its files are reloaded live.
    pub tls: Option<ServerTls>,
    /// HTTP/2's own bounds, per connection.
    pub http2: Http2Config,
}

/// `[server.tls]`: the gateway's certificate, its key, and the CA that
/// signs its clients' certificates. Paths are relative to the config file;
/// the files are read and checked when the config is (a certificate that
/// expired, a key of another certificate, an unreadable file: refused on
/// its line), and again by every reload, whose new pair the next
/// handshakes get.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// PEM: the gateway's certificate first, then its chain.
    pub cert_file: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM: the CA(s) whose client certificates are verified and name
    /// clients (`[clients.NAME] cert_san`). A client without a certificate
    /// still shows its bearer key.
    pub client_ca_file: Option<PathBuf>,
    /// The files, loaded (by [`super::Config::parse`]).
    #[serde(skip)]
    pub door: Option<Arc<crate::tls::Door>>,
}

impl ServerTls {
    pub fn files(&self) -> crate::tls::DoorFiles<'_> {
        crate::tls::DoorFiles {
            cert: &self.cert_file,
            key: &self.key_file,
            client_ca: self.client_ca_file.as_deref(),
        }
    }

    /// Resolve the paths against the config file's folder and load them.
    pub(super) fn load(&mut self, base: &Path, at: &Checker) -> Result<(), ConfigError> {
        for file in [&mut self.cert_file, &mut self.key_file]
            .into_iter()
            .chain(self.client_ca_file.as_mut())
        {
            *file = base.join(&*file);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let door = self
            .files()
            .load(now)
            .map_err(|e| at.invalid(e.field, e.to_string()))?;
        self.door = Some(Arc::new(door));
        Ok(())
    }
}

/// `[server.http2]`: bounds an HTTP/2 client cannot raise. Each stream is
/// a request and counts against `max_in_flight` like one over HTTP/1.1.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http2Config {
    /// Streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// Bytes of one request's headers, decoded (HPACK can expand a small
    /// block a lot); past it the stream is refused. It also bounds a
    /// HEADERS block continued over CONTINUATION frames.
    pub max_header_list_bytes: u32,
    /// The largest frame the gateway accepts (16 KiB to 16 MiB).
    pub max_frame_bytes: u32,
    /// How much request body one stream may send ahead of being read, and
    /// the whole connection: the memory one connection can make the
    /// gateway buffer.
    pub stream_window_bytes: u32,
    pub connection_window_bytes: u32,
    /// Streams a client may reset before the gateway has served them, at
    /// once: the rapid-reset flood (CVE-2023-44487) ends the connection
    /// with GOAWAY past it.
    pub max_pending_resets: usize,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            max_concurrent_streams: 100,
            max_header_list_bytes: 16 << 10,
            max_frame_bytes: 16 << 10,
            stream_window_bytes: 256 << 10,
            connection_window_bytes: 1 << 20,
            max_pending_resets: 20,
        }
    }
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
            tls: None,
            http2: Http2Config::default(),
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
        self.http2.check(&at.at("http2"))
    }
}

impl Http2Config {
    fn check(&self, at: &Checker) -> Result<(), ConfigError> {
        if !(1 << 14..=(1 << 24) - 1).contains(&self.max_frame_bytes) {
            return Err(at.invalid(
                "max_frame_bytes",
                "must be from 16384 to 16777215 (RFC 9113 §6.5.2)",
            ));
        }
        let window = 1u32 << 31;
        for (field, value) in [
            ("stream_window_bytes", self.stream_window_bytes),
            ("connection_window_bytes", self.connection_window_bytes),
        ] {
            if !(1 << 16..window).contains(&value) {
                return Err(at.invalid(field, "must be from 65536 to 2147483647"));
            }
        }
        if self.max_concurrent_streams == 0 || self.max_header_list_bytes < 1024 {
            return Err(at.invalid(
                if self.max_concurrent_streams == 0 {
                    "max_concurrent_streams"
                } else {
                    "max_header_list_bytes"
                },
                "is too small to serve a request (at least 1 stream, 1024 bytes of headers)",
            ));
        }
        Ok(())
    }
}
