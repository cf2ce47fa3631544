//! The HTTP side: a hyper 1 server, one task per connection, graceful
//! shutdown, and the one place a request is routed, checked against its
//! route's methods, measured, and its error rendered.
//!
//! [`route`] parses the path once; each route family has its own module;
//! [`respond`] builds every response; [`codec`] negotiates and transcodes bodies.

mod admin;
mod batch;
mod cache;
mod codec;
mod events;
mod ops;
mod ratelimit;
mod respond;
mod route;
mod streams;

pub use respond::Body;

use crate::error::Error;
use crate::generation::Gateway;
use crate::reload::Live;
use crate::telemetry::METRICS;
use codec::Format;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use route::Route;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

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
        let service = service_fn(move |req| serve(live.clone(), req));
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

/// One request: route, serve, render any error, measure.
async fn serve(live: Arc<Live>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    // This request works with the generation that is live now, to its end.
    let gateway = live.current();
    let method = req.method().clone();
    let route = Route::parse(req.uri().path());
    let (label, name) = match &route {
        Ok(r) => (r.label(), r.subject().map_or("-", |s| gateway.label(s))),
        Err(_) => ("other", "-"),
    };
    // Problems honour `Accept` too, falling back to JSON when it rules out both.
    let format = Format::for_response(req.headers()).unwrap_or(Format::Json);
    let result = match route {
        Ok(route) => dispatch(&live, &gateway, route, req).await,
        Err(e) => Err(e),
    };
    let response = result.unwrap_or_else(|e| {
        if e.status().is_server_error() {
            tracing::warn!(%method, route = label, status = e.status().as_u16(), error = %e, "request failed");
        }
        respond::problem(&e, format)
    });
    let status = response.status();
    METRICS
        .requests
        .with_label_values(&[label, name, status.as_str()])
        .observe(started.elapsed().as_secs_f64());
    tracing::debug!(%method, route = label, status = status.as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    Ok(response)
}

async fn dispatch(
    live: &Arc<Live>,
    gateway: &Gateway,
    route: Route,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    if let Route::Admin(_) = route {
        admin::authorize(live, req.headers())?;
    }
    route.allows(req.method())?;
    match route {
        Route::Cache { domain, key } => cache::handle(gateway, req, &domain, key).await,
        Route::Mget { domain } => batch::mget(gateway, req, &domain).await,
        Route::Mset { domain } => batch::mset(gateway, req, &domain).await,
        Route::Events { domain } => events::publish(gateway, req, &domain).await,
        Route::Stream {
            stream,
            group,
            action,
        } => streams::handle(gateway, req, (&stream, &group, action)).await,
        Route::RateLimit { policy, subject } => {
            ratelimit::handle(gateway, req, &policy, &subject).await
        }
        Route::Healthz => Ok(ops::healthz()),
        Route::Readyz => ops::readyz(gateway).await,
        Route::Metrics => Ok(ops::metrics(gateway)),
        Route::Admin(admin) => Ok(admin::handle(live, gateway, admin).await),
    }
}
