//! The HTTP side: a hyper 1 server, one task per connection, graceful
//! shutdown. Routing is in [`router`]; each resource has its own module.

mod admin;
mod batch;
mod cache;
mod codec;
mod events;
mod ops;
mod problem;
mod ratelimit;
mod router;
mod streams;

use crate::reload::Live;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The body type of every response: small, fully built bodies.
pub type Body = http_body_util::Full<bytes::Bytes>;

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connections may take to finish after shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// Accept connections until `shutdown` resolves, then let open requests finish.
pub async fn run(listener: TcpListener, live: Arc<Live>, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let live = live.clone();
        let service = service_fn(move |req| router::route(live.clone(), req));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            // A client that trickles its headers does not hold a connection forever.
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: draining open connections");
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}; closing them");
    }
}
