//! The HTTP side: a hyper 1 server, one task per connection, graceful
//! shutdown, and the one place a request is routed, admitted ([`admit`]:
//! its client's API key, its route's methods, the key's scopes), measured,
//! and its error rendered.
//!
//! [`route`] parses the path once; each route family has its own module;
//! [`respond`] builds every response; [`codec`] negotiates and transcodes
//! bodies; [`openapi`] serves the API's own description; the admin status
//! page is [`status`] (its login [`login`], its layout [`html`]).

mod admin;
mod batch;
mod cache;
mod codec;
mod events;
mod html;
mod idempotency;
mod listener;
mod login;
mod openapi;
mod ops;
mod ratelimit;
mod respond;
mod route;
mod status;
mod streams;
mod throttle;

pub use respond::Body;

use crate::auth::Caller;
use crate::error::Error;
use crate::generation::Gateway;
use crate::reload::Live;
use crate::telemetry::METRICS;
use crate::tls::PeerNames;
use crate::traces;
use codec::Format;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use route::Route;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;

/// How long a client may take to send a request's headers (HTTP/1.1) or
/// to finish its TLS handshake.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// W3C Trace Context Level 2: the gateway's span in the caller's trace.
const TRACERESPONSE: hyper::header::HeaderName =
    hyper::header::HeaderName::from_static("traceresponse");

/// Listening sockets for `threads` HTTP threads on one address, each with
/// `SO_REUSEPORT` so the kernel spreads new connections over them (port 0:
/// the first socket's port for all), unless another process listens there
/// already ([`listener::vacant`]). Call inside a runtime.
pub fn bind(addr: SocketAddr, threads: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    listener::vacant(addr)?;
    let mut at = addr;
    let mut listeners = Vec::with_capacity(threads.max(1));
    for _ in 0..threads.max(1) {
        let socket = match at {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(at)?;
        let listener = socket.listen(1024)?;
        at = listener.local_addr()?;
        listeners.push(listener.into_std()?);
    }
    Ok(listeners)
}

/// What every HTTP thread shares.
struct Serving {
    live: Arc<Live>,
    connections: Arc<Semaphore>,
    in_flight: Arc<Semaphore>,
    max_connections: usize,
    drain: Duration,
    /// HTTPS: each connection's handshake uses the pair of the generation
    /// live when it was accepted. Decided at start.
    https: bool,
    /// HTTP/1.1 and HTTP/2 (by ALPN, or by the h2c preface with prior
    /// knowledge), each with its bounds. Read at start.
    http: auto::Builder<TokioExecutor>,
}

/// Serve HTTP on `listeners` (from [`bind`]), one thread each: this one
/// (which must run a current-thread runtime) serves the first, a thread of
/// its own with its own current-thread runtime each of the others. A
/// connection stays on the thread that accepted it and its requests use
/// that thread's Redis lanes, so a request wakes no other thread.
///
/// Until `shutdown` resolves; then every listener closes, long-polls end,
/// and open requests get `server.drain_ms`. At most `server.max_connections`
/// connections are open at once (one more is closed as soon as it is
/// accepted) and `server.max_in_flight` requests served (one more is shed
/// with 503 + `Retry-After`), over all threads; both are read at start.
pub async fn run(
    listeners: Vec<std::net::TcpListener>,
    live: Arc<Live>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = live.current().config().server.clone();
    respond::bound_buffered(limits.max_buffered_bytes);
    if live.admin_token.is_some() {
        status::start(listeners.first().and_then(|l| l.local_addr().ok()));
    }
    let serving = Arc::new(Serving {
        live: live.clone(),
        connections: Arc::new(Semaphore::new(limits.max_connections)),
        in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
        max_connections: limits.max_connections,
        drain: Duration::from_millis(limits.drain_ms),
        https: limits.tls.is_some(),
        http: http_builder(&limits.http2),
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let threads = listeners.len();
    let mut listeners = listeners.into_iter();
    let first = listeners.next();
    let mut others = Vec::new();
    for (i, listener) in (1..).zip(listeners) {
        let (serving, stopped) = (serving.clone(), stopped.clone());
        let thread = std::thread::Builder::new()
            .name(format!("sluice-http-{i}"))
            .spawn(move || {
                crate::store::pool::pin_lanes(i, threads);
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(accept(listener, serving, stopped)),
                    Err(e) => {
                        tracing::error!(thread = i, error = %e, "cannot start an HTTP thread")
                    }
                }
            });
        match thread {
            Ok(t) => others.push(t),
            Err(e) => tracing::error!(thread = i, error = %e, "cannot start an HTTP thread"),
        }
    }
    crate::store::pool::pin_lanes(0, threads);
    let here = first.map(|l| tokio::spawn(accept(l, serving.clone(), stopped)));
    shutdown.await;
    let _ = stop.send(true);
    // Long-polls end now; other requests in flight get `server.drain_ms`.
    live.current().close_blocking();
    tracing::info!(drain = ?serving.drain, "shutting down: draining open connections");
    if let Some(here) = here {
        let _ = here.await;
    }
    let _ =
        tokio::task::spawn_blocking(move || others.into_iter().for_each(|t| drop(t.join()))).await;
}

/// One HTTP thread: accept connections until told to stop, then close the
/// listener and let this thread's open connections finish within the drain.
async fn accept(
    listener: std::net::TcpListener,
    serving: Arc<Serving>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen on this thread");
            return;
        }
    };
    let graceful = GracefulShutdown::new();
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
            _ = stopped.changed() => break,
        };
        let Ok(open) = serving.connections.clone().try_acquire_owned() else {
            tracing::debug!(%peer, max = serving.max_connections, "connection shed: too many open");
            METRICS.shed.with_label_values(&["connection"]).inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (serving, watcher) = (serving.clone(), graceful.watcher());
        tokio::spawn(async move {
            if !serving.https {
                connection(&serving, watcher, stream, None, peer).await;
            } else if let Some((stream, names)) = handshake(&serving, stream, peer).await {
                connection(&serving, watcher, stream, names, peer).await;
            }
            drop(open);
        });
    }
    drop(listener);
    let drain = serving.drain;
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {drain:?}; closing them");
    }
}

/// The HTTP builder every connection of a thread is served with: HTTP/1.1
/// with its header timeout, HTTP/2 with the bounds of `[server.http2]`.
fn http_builder(h2: &crate::config::Http2Config) -> auto::Builder<TokioExecutor> {
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        // A client that trickles its headers does not hold a connection forever.
        .header_read_timeout(HEADER_READ_TIMEOUT);
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(h2.max_concurrent_streams)
        .max_header_list_size(h2.max_header_list_bytes)
        .max_frame_size(h2.max_frame_bytes)
        .initial_stream_window_size(h2.stream_window_bytes)
        .initial_connection_window_size(h2.connection_window_bytes)
        .max_pending_accept_reset_streams(h2.max_pending_resets)
        // Streams the gateway itself resets (a malformed request) are
        // bounded too (the "made you reset" flood).
        .max_local_error_reset_streams(h2.max_pending_resets.max(1) * 5)
        // A peer that no longer answers pings is gone.
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    http
}

/// The TLS handshake of a new connection, within [`HEADER_READ_TIMEOUT`],
/// with the pair of the generation live now; and the names of the client's
/// certificate, when it showed one the client CA signed.
async fn handshake(
    serving: &Serving,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) -> Option<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    Option<Arc<PeerNames>>,
)> {
    let gateway = serving.live.current();
    let door = gateway.config().server.tls.as_ref()?.door.clone()?;
    drop(gateway);
    let acceptor = tokio_rustls::TlsAcceptor::from(door.server.clone());
    let stream = match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            METRICS.tls_handshake_failures.inc();
            return None;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            METRICS.tls_handshake_failures.inc();
            return None;
        }
    };
    let names = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| Arc::new(PeerNames::of(leaf)));
    Some((stream, names))
}

/// Serve one connection, HTTP/1.1 or HTTP/2, until it ends or the drain
/// does; `names`: its client certificate's.
async fn connection<I>(
    serving: &Serving,
    watcher: Watcher,
    io: I,
    names: Option<Arc<PeerNames>>,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (live, in_flight) = (serving.live.clone(), serving.in_flight.clone());
    // Boxed: an HTTP/2 stream is a task, and spawning one moves its future
    // more than once; a box moves as a pointer.
    let service = service_fn(move |req| {
        Box::pin(serve(
            live.clone(),
            in_flight.clone(),
            (names.clone(), peer),
            req,
        ))
    });
    let conn = serving.http.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// One request: route, serve, render any error, measure.
async fn serve(
    live: Arc<Live>,
    in_flight: Arc<Semaphore>,
    (names, peer): (Option<Arc<PeerNames>>, SocketAddr),
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    // Traces off: `None`, and nothing more is paid for them below.
    let trace = traces::RequestSpan::start(req.method(), req.headers());
    // Held to the end of the request; none left: shed it at once.
    let permit = in_flight.try_acquire_owned();
    // This request works with the generation that is live now, to its end.
    let gateway = live.current();
    let method = req.method().clone();
    let route = Route::parse(req.uri().path());
    let admin_path = admin::is_admin_path(req.uri().path());
    let (label, name, template) = match &route {
        Ok(r) => (
            r.label(),
            r.subject().map_or("-", |s| gateway.label(s)),
            Some(r.template()),
        ),
        Err(_) => ("other", "-", None),
    };
    // Problems honour `Accept` too, falling back to JSON when it rules out both.
    let format = Format::for_response(req.headers()).unwrap_or(Format::Json);
    // A request refused before its body was read: the connection cannot be
    // reused (hyper drops an unread body by closing), so the answer says so.
    let has_body = req.headers().contains_key(hyper::header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    // The API client, once its key is known (`-`: anonymous or open).
    let mut client = "-";
    let result = match (route, &permit) {
        (_, Err(_)) => {
            METRICS.shed.with_label_values(&["request"]).inc();
            Err(Error::Overloaded("server.max_in_flight"))
        }
        (Ok(route), Ok(_)) => match admit(&gateway, &route, &req, names.as_deref(), &mut client) {
            Ok(()) => {
                let work = dispatch(&live, &gateway, route, req, (client, peer));
                traces::Traced::new(work, trace.as_ref().map(|t| t.context())).await
            }
            Err(e) => Err(e),
        },
        (Err(e), _) => Err(e),
    };
    drop(permit);
    // This request's log lines below carry its trace id too.
    let entered = trace.as_ref().map(traces::RequestSpan::enter);
    let mut response = result.unwrap_or_else(|e| {
        if e.status().is_server_error() {
            tracing::warn!(%method, route = label, status = e.status().as_u16(), error = %e, "request failed");
        }
        let mut resp = respond::problem(&e, format);
        if has_body {
            let close = hyper::header::HeaderValue::from_static("close");
            respond::set(&mut resp, hyper::header::CONNECTION, close);
        }
        resp
    });
    if admin_path {
        admin::harden(&mut response);
    }
    let status = response.status();
    let elapsed = started.elapsed();
    METRICS.answered(label, name, status.as_str(), client, elapsed.as_secs_f64());
    tracing::debug!(%method, route = label, status = status.as_u16(), elapsed_us = elapsed.as_micros() as u64, "request");
    drop(entered);
    if let Some(trace) = trace {
        if let Some(value) = trace.traceresponse() {
            respond::set(&mut response, TRACERESPONSE, value);
        }
        let answered = traces::Answered {
            template,
            route: label,
            domain: name,
            client,
            status: status.as_u16(),
        };
        trace.finish(&method, answered);
    }
    Ok(response)
}

/// The one place a request is checked before its handler runs, before any
/// body is read: who asks (401 without a key or a client certificate the
/// gateway knows; 403 for a certificate that names no client, or another
/// client than the key), whether
/// the route answers the method (405; an admin call checks its own token
/// first, and is audited), and whether the caller's scopes hold the right
/// the route needs on its domain or policy (403). `client` gets the
/// caller's name as soon as it is known, for the metrics.
fn admit<'g>(
    gateway: &'g Gateway,
    route: &Route,
    req: &Request<Incoming>,
    names: Option<&PeerNames>,
    client: &mut &'g str,
) -> Result<(), Error> {
    let need = route.needs(req.method());
    let caller = match need {
        Some(_) => gateway.clients().identify(req.headers(), names)?,
        None => Caller::Open,
    };
    *client = caller.label();
    if !matches!(route, Route::Admin(_)) {
        route.allows(req.method())?;
    }
    if let Some(need) = need {
        caller.may(need)?;
    }
    Ok(())
}

/// Call an admitted request's handler; `client` is who `admit` found it
/// came from (its idempotency keys are its own), `peer` the address it
/// came from (wrong admin tokens are throttled by address).
async fn dispatch(
    live: &Arc<Live>,
    gateway: &Gateway,
    route: Route,
    req: Request<Incoming>,
    (client, peer): (&str, SocketAddr),
) -> Result<Response<Body>, Error> {
    // Every route but the cache's (whose Redis part is boxed in the flow,
    // so a hot read stays small) is boxed: their futures are kilobytes, and
    // a request's future is moved whole when an HTTP/2 stream is spawned.
    match route {
        Route::Cache { domain, key } => cache::handle(gateway, req, (&domain, client), key).await,
        Route::Mget { domain } => Box::pin(batch::mget(gateway, req, &domain)).await,
        Route::Mset { domain } => Box::pin(batch::mset(gateway, req, &domain, client)).await,
        Route::Events { domain } => Box::pin(events::publish(gateway, req, &domain, client)).await,
        Route::Stream {
            stream,
            group,
            action,
        } => {
            Box::pin(streams::handle(
                gateway,
                req,
                (&stream, &group, action),
                client,
            ))
            .await
        }
        Route::RateLimit { policy, subject } => {
            Box::pin(ratelimit::handle(gateway, req, &policy, &subject)).await
        }
        Route::Healthz => Ok(ops::healthz()),
        Route::Readyz => Box::pin(ops::readyz(gateway)).await,
        Route::Metrics => Ok(ops::metrics(gateway)),
        Route::OpenApi => Ok(openapi::document()),
        Route::Admin(admin) => Box::pin(admin::call(live, gateway, admin, req, peer.ip())).await,
    }
}
