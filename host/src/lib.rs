//! Sluice: a cache gateway in front of Redis.
//!
//! Services speak HTTP to the gateway; the gateway owns the connection pool,
//! MessagePack storage and pipelining, and asks a per-domain WebAssembly
//! policy what to do with each request.
//!
//! # Layout
//!
//! A request goes forward only: `server` (route, admit, handler) → `flow`
//! → `plugin` (the plan) → `store` (check, run, shape) → `server`; the
//! stops of one GET and one PUT are in docs/architecture.md.
//!
//! - [`server`]: hyper 1 accept loop; `route` parses a path once into a typed
//!   route (handler, metric labels, allowed methods, the API-key right it
//!   needs); `admit` is the one place route, caller and right are decided;
//!   one module per route family (`cache`, `batch`, `events`, `streams`,
//!   `ratelimit`, `ops`, `admin`); `codec` negotiates and transcodes bodies
//!   and queries; `respond` builds every response and problem, and holds
//!   large bodies to the memory budget; `idempotency` serves writes that
//!   send an `Idempotency-Key` and replays first answers; `openapi` serves
//!   docs/openapi.json; `status` renders the admin status page (`login` its
//!   session cookie, `html` its escaped layout).
//! - [`flow`]: the request flow every data route shares: a client's call →
//!   policy → the store's check → near cache or the store's run → answer.
//! - [`auth`]: API keys for the data API: the caller from its bearer token
//!   (SHA-256, constant-time), and whether its scopes hold what a route needs.
//! - [`generation`]: one immutable generation of the gateway (domains and their
//!   plugins, rate limits, API clients, limits), built from a config and
//!   diffed on reload.
//! - [`reload`]: the live generation and its triggers (watcher, SIGHUP, admin).
//! - [`plugin`]: the wasmtime component host: the one `bindgen!`, the sandbox,
//!   warm instances, the contract version, compiled components kept on disk,
//!   `plugin new`'s scaffold (Rust, Python, TypeScript).
//! - [`store`]: every Redis command, behind a short facade: the backend
//!   chosen once (`single`: lanes out of one `pool` and a breaker;
//!   `cluster`: the cluster client, replicas, a breaker per primary), the
//!   call chain every call takes (`chain`: admission, deadline, NOSCRIPT),
//!   pipeline assembly (`pipeline`), plans (`plan`, one file per action
//!   kind), stream groups, rate limits, idempotency records, readiness,
//!   INFO metrics, the start-up check of the Redis user's rights (`acl`).
//! - [`quota`]: per-client quotas: the size of each client's write budget
//!   (a token bucket in Redis, shared by every gateway) and the long-polls
//!   it may hold at once on this gateway.
//! - [`near_cache`]: in-process copies of reads, single flight, and which
//!   reads are tracked (the store sends the tracking commands).
//! - [`access`]: per-key access statistics for adaptive policies.
//! - [`namespace`]: valid names, the gateway's reserved key prefixes, and
//!   which domain a stream belongs to.
//! - [`config`]: the TOML file, one file per section with its struct,
//!   defaults and checks (each refusal on its key's line, from the parser's
//!   spans: `lines`); `[redis]`'s checked parts, which `store::connect`
//!   builds clients from.
//! - [`tls`]: TLS files read and checked (the gateway's own certificate,
//!   key and client CA as one `Door` a generation carries; the PEM readers
//!   `[redis.tls]` shares), and the names a client certificate carries.
//! - [`secret`]: the admin token and the Redis URL's password, which no
//!   `Debug`, `Display`, log line or answer ever shows.
//! - [`error`]: every request error and its HTTP status, in one place.
//! - [`telemetry`]: logging set-up (text or JSON lines; a line written
//!   inside a traced request carries its `trace_id`) and the Prometheus
//!   metrics.
//! - [`traces`]: W3C trace context in, OpenTelemetry spans out (OTLP/HTTP):
//!   the request's span, its policy call's and each Redis round trip's, a
//!   bounded queue and the exporter's thread; one flag when off.
//! - [`cli`]: `serve`, `check-config`, `hash-key`, `plugin check`, `plugin new`;
//!   `main.rs` only calls it.
// The request future nests deeply (hyper → routes → flow → store → the
// cluster client's connect); the compiler's default depth falls short.
#![recursion_limit = "256"]

pub mod access;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod flow;
pub mod generation;
pub mod namespace;
pub mod near_cache;
pub mod plugin;
pub mod quota;
pub mod reload;
pub mod secret;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod traces;

/// The layout held to the docs and to itself (tests only).
#[cfg(test)]
mod layout;
