//! Sluice: a cache gateway in front of Redis.
//!
//! Services speak HTTP to the gateway; the gateway owns the connection pool,
//! MessagePack storage and pipelining, and asks a per-domain WebAssembly
//! policy what to do with each request.
//!
//! # Layout
//!
//! A request goes `server` → `flow` → (`plugin`, `store`) → `server`:
//!
//! - [`server`]: hyper 1 accept loop; `route` parses a path once into a typed
//!   route (handler, metric labels, allowed methods, the API-key right it
//!   needs, checked in `dispatch`); one module per route family (`cache`,
//!   `batch`, `events`, `streams`, `ratelimit`, `ops`, `admin`); `codec`
//!   negotiates and transcodes bodies and queries; `respond` builds every
//!   response and problem, and holds large bodies to the memory budget;
//!   `idempotency` reads `Idempotency-Key` and replays first answers;
//!   `openapi` serves docs/openapi.json; `status` renders the admin status
//!   page (`login` its session cookie, `html` its escaped layout).
//! - [`flow`]: the request flow every data route shares: policy → plan →
//!   validation → near cache or Redis → answer.
//! - [`auth`]: API keys for the data API: the caller from its bearer token
//!   (SHA-256, constant-time), and whether its scopes hold what a route needs.
//! - [`generation`]: one immutable generation of the gateway (domains and their
//!   plugins, rate limits, API clients, limits), built from a config and
//!   diffed on reload.
//! - [`reload`]: the live generation and its triggers (watcher, SIGHUP, admin).
//! - [`plugin`]: the wasmtime component host: the one `bindgen!`, the sandbox,
//!   warm instances, the contract version, `plugin new`'s scaffold.
//! - [`store`]: every Redis command: the one client (`connect`: URL, ACL
//!   user, TLS), the pool, the breaker, scripts, plans (`store::plan`, one
//!   file per action kind), batches (plain reads merged into one `MGET`),
//!   stream groups, rate limits, idempotency records, readiness, INFO
//!   metrics, the start-up check of the Redis user's rights (`acl`); on a
//!   Redis Cluster the cluster client, batches per hash slot, the
//!   primaries' health (`topology`) and a breaker per primary (`nodes`,
//!   which also keeps the slot map).
//! - [`near_cache`]: in-process copies of reads, single flight, and which
//!   reads are tracked (the store sends the tracking commands).
//! - [`access`]: per-key access statistics for adaptive policies.
//! - [`namespace`]: valid names, the gateway's reserved key prefixes, and
//!   which domain a stream belongs to.
//! - [`config`]: the TOML file, one file per section with its struct,
//!   defaults and checks (each refusal on its key's line, from the parser's
//!   spans: `lines`); `[redis]`'s checked parts, which `store::connect`
//!   builds clients from.
//! - [`secret`]: the admin token and the Redis URL's password, which no
//!   `Debug`, `Display`, log line or answer ever shows.
//! - [`error`]: every request error and its HTTP status, in one place.
//! - [`telemetry`]: logging set-up (text or JSON lines) and the Prometheus
//!   metrics.
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
pub mod generation;
pub mod namespace;
pub mod near_cache;
pub mod plugin;
pub mod reload;
pub mod secret;
pub mod server;
pub mod store;
pub mod telemetry;

pub use generation::flow;

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// `a/{b,c}.rs` → `a/b.rs`, `a/c.rs`.
    fn expand(pattern: &str) -> Vec<String> {
        match (pattern.find('{'), pattern.find('}')) {
            (Some(open), Some(close)) if open < close => pattern[open + 1..close]
                .split(',')
                .map(|alt| format!("{}{alt}{}", &pattern[..open], &pattern[close + 1..]))
                .collect(),
            _ => vec![pattern.to_owned()],
        }
    }

    /// docs/architecture.md's "where things live" table names files that exist.
    #[test]
    fn the_architecture_table_matches_the_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
        let table = doc
            .split("## Where things live")
            .nth(1)
            .and_then(|t| t.split("\n\n").next())
            .expect("a 'Where things live' table");
        let mut checked = 0;
        for row in table.lines().skip(3) {
            let file_cell = row.split('|').nth(2).unwrap_or("");
            for path in file_cell.split('`').skip(1).step_by(2).flat_map(expand) {
                let found = [root.join("host/src").join(&path), root.join(&path)]
                    .iter()
                    .any(|p| p.exists());
                assert!(
                    found,
                    "docs/architecture.md names {path}, which does not exist"
                );
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} paths in the table");
    }
}
