//! Sluice: a cache gateway in front of Redis.
//!
//! Services speak HTTP to the gateway; the gateway owns the connection pool,
//! MessagePack storage and pipelining, and asks a per-domain WebAssembly
//! policy what to do with each request.
//!
//! # Layout
//!
//! - [`access`]: per-key access statistics for adaptive policies.
//! - [`cli`]: `sluice serve` / `sluice check-config`; `main.rs` only calls it.
//! - [`config`]: the TOML file, its defaults and its checks.
//! - [`gateway`]: the assembled gateway and the request flow every route
//!   shares: policy → plan → validation → Redis → response body.
//! - [`near_cache`]: in-process copies of recent reads (stale fallback).
//! - [`reload`]: the live generation and hot reload (watcher, SIGHUP, admin).
//! - [`server`]: hyper 1 server, routing, one module per resource, content
//!   negotiation and problem+json rendering.
//! - [`plugin`]: the wasmtime component host: the one `bindgen!`, the
//!   sandbox, warm instances, plan validation.
//! - [`store`]: everything that talks to Redis: the pool, the circuit
//!   breaker, the script cache, plan execution, reply shaping, INFO metrics.
//! - [`error`]: every request error and its HTTP status, in one place.
//! - [`telemetry`]: logging set-up and the Prometheus metrics.

pub mod access;
pub mod cli;
pub mod config;
pub mod error;
pub mod gateway;
pub mod near_cache;
pub mod plugin;
pub mod reload;
pub mod server;
pub mod store;
pub mod telemetry;
