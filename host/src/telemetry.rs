//! Logging set-up and the Prometheus metrics every module records into.
//!
//! Label values are bounded: routes are a fixed set, domains, rate-limit
//! policies and clients only the configured ones (`-` otherwise); never keys.

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::io::IsTerminal;
use std::sync::LazyLock;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One line a person reads: time, level, target, message, `key=value`s.
    #[default]
    Text,
    /// One JSON object a line, for log collectors: `timestamp`, `level`,
    /// `target`, `message` and the event's fields at the top level (the
    /// names docs/operations.md lists, e.g. `event`, `trigger`, `outcome`).
    Json,
}

/// Install the process's logger: `RUST_LOG` filters (default `info`), lines
/// go to stderr in `format`. rustls logs errors only unless `RUST_LOG`
/// names it: it warns once per handshake about what a client sent (an IP
/// address as SNI, as wrk and many clients do), which would let any client
/// write the log.
pub fn init(format: LogFormat) {
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let spec = if spec.contains("rustls") {
        spec
    } else {
        format!("{spec},rustls=error")
    };
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info,rustls=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => {
            let ansi = std::io::stderr().is_terminal();
            let lines = tracing_subscriber::fmt::format().with_ansi(ansi);
            builder
                .with_ansi(ansi)
                .event_format(WithTraceId(lines, false))
                .try_init()
        }
        // Fields at the top level, no span lists: a collector reads
        // `event` and `outcome` without knowing tracing's nesting.
        LogFormat::Json => {
            let lines = tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false);
            builder
                .json()
                .event_format(WithTraceId(lines, true))
                .try_init()
        }
    };
}

/// A line format that adds `trace_id` to the lines written while a traced
/// request is served on the thread (`.1`: the lines are JSON objects). A
/// line outside a request, or with traces off, is the format's own.
struct WithTraceId<F>(F, bool);

impl<S, N, F> FormatEvent<S, N> for WithTraceId<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some(trace_id) = crate::traces::current_trace_id() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&with_trace_id(&line, &trace_id, self.1))
    }
}

/// `line` (one formatted log line, its newline included) with `trace_id`:
/// a last field of a JSON object, or a last `trace_id=…` of a text line.
fn with_trace_id(line: &str, trace_id: &str, json: bool) -> String {
    let body = line.strip_suffix('\n').unwrap_or(line);
    match (json, body.strip_suffix('}')) {
        (true, Some(open)) => format!("{open},\"trace_id\":\"{trace_id}\"}}\n"),
        _ => format!("{body} trace_id={trace_id}\n"),
    }
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    pub requests: HistogramVec,
    pub client_requests: IntCounterVec,
    pub pool_connections: IntGaugeVec,
    pub pool_wait: Histogram,
    pub pool_size: IntGauge,
    pub round_trips: IntCounter,
    pub pipeline_commands: Histogram,
    pub breaker_state: IntGauge,
    pub breaker_node_state: IntGaugeVec,
    pub breaker_transitions: IntCounterVec,
    pub breaker_probes: IntCounter,
    pub breaker_rejected: IntCounter,
    pub script_calls: IntCounterVec,
    pub script_loads: IntCounter,
    pub noscript_recoveries: IntCounter,
    pub watch_conflicts: IntCounter,
    pub tls_handshake_failures: IntCounter,
    pub admin_throttled: IntCounter,
    pub tls_certificate_expiry: IntGauge,
    pub l1: IntCounterVec,
    pub shed: IntCounterVec,
    pub ratelimit: IntCounterVec,
    pub quota_refused: IntCounterVec,
    pub write_bytes: IntCounterVec,
    pub long_polls: IntGaugeVec,
    pub plugin_calls: IntCounterVec,
    pub plugin_invalid_plans: IntCounterVec,
    pub plugin_reloads: IntCounterVec,
    pub trace_spans_dropped: IntCounterVec,
    pub redis_memory_used: IntGauge,
    pub redis_memory_peak: IntGauge,
    pub redis_maxmemory: IntGauge,
    pub redis_fragmentation: Gauge,
    pub redis_connected_clients: IntGauge,
    pub redis_keyspace_hits: IntCounter,
    pub redis_keyspace_misses: IntCounter,
    pub redis_evicted_keys: IntCounter,
    pub redis_info_errors: IntCounter,
    /// On a Redis Cluster, per primary (`node` = its address: bounded by
    /// the cluster's size; a node gone is dropped at the next poll).
    pub redis_node_memory_used: IntGaugeVec,
    pub redis_node_connected_clients: IntGaugeVec,
    pub redis_node_keyspace_hits: IntCounterVec,
    pub redis_node_keyspace_misses: IntCounterVec,
    pub redis_node_evicted_keys: IntCounterVec,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The label values a configuration names, for [`Metrics::seed`].
#[derive(Debug, Default)]
pub struct Known<'a> {
    /// Each domain, and whether it has streams (the `streams` route).
    pub domains: Vec<(&'a str, bool)>,
    /// API clients by name; `-` when the API is open.
    pub clients: Vec<&'a str>,
    pub ratelimits: Vec<&'a str>,
    pub scripts: Vec<&'a str>,
}

fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    // Names are static and distinct: registration cannot collide.
    let _ = r.register(Box::new(c.clone()));
    c
}

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let buckets = vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5,
        ];
        let h = |name: &str, help: &str| HistogramOpts::new(name, help).buckets(buckets.clone());
        let c =
            |name: &str, help: &str| IntCounter::new(name, help).unwrap_or_else(|e| panic!("{e}"));
        let g =
            |name: &str, help: &str| IntGauge::new(name, help).unwrap_or_else(|e| panic!("{e}"));
        let cv = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("{e}"))
        };
        let gv = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["node"]).unwrap_or_else(|e| panic!("{e}"))
        };
        Metrics {
            requests: reg(
                &r,
                HistogramVec::new(
                    h(
                        "sluice_http_request_duration_seconds",
                        "HTTP requests by route, domain and status",
                    ),
                    &["route", "domain", "status"],
                )
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            client_requests: reg(
                &r,
                cv(
                    "sluice_client_requests_total",
                    "HTTP requests by API client (configured names; - when anonymous, unknown or the API is open), route, domain and status",
                    &["client", "route", "domain", "status"],
                ),
            ),
            pool_connections: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "sluice_redis_pool_connections",
                        "Connections to Redis by state (in_use, idle)",
                    ),
                    &["state"],
                )
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            pool_wait: reg(
                &r,
                Histogram::with_opts(h(
                    "sluice_redis_pool_wait_seconds",
                    "Time to get a connection from the pool",
                ))
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            pool_size: reg(
                &r,
                g("sluice_redis_pool_size", "The configured connection budget"),
            ),
            round_trips: reg(
                &r,
                c(
                    "sluice_redis_round_trips_total",
                    "Pipelines (round trips) sent to Redis",
                ),
            ),
            pipeline_commands: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new("sluice_redis_pipeline_commands", "Commands per round trip")
                        .buckets(vec![
                            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
                        ]),
                )
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            breaker_state: reg(
                &r,
                g(
                    "sluice_breaker_state",
                    "Circuit breaker: 0 closed, 1 open, 2 half-open (on a cluster: open when every primary's is, half-open when some are not closed)",
                ),
            ),
            breaker_node_state: reg(
                &r,
                gv(
                    "sluice_breaker_node_state",
                    "Redis Cluster: each primary's breaker, 0 closed, 1 open, 2 half-open",
                ),
            ),
            breaker_transitions: reg(
                &r,
                cv(
                    "sluice_breaker_transitions_total",
                    "Breaker transitions by new state",
                    &["to"],
                ),
            ),
            breaker_probes: reg(
                &r,
                c(
                    "sluice_breaker_probes_total",
                    "Background probes of Redis while open",
                ),
            ),
            breaker_rejected: reg(
                &r,
                c(
                    "sluice_breaker_rejected_total",
                    "Calls failed fast while open",
                ),
            ),
            script_calls: reg(
                &r,
                cv(
                    "sluice_script_calls_total",
                    "EVALSHA calls by script",
                    &["script"],
                ),
            ),
            script_loads: reg(
                &r,
                c("sluice_script_loads_total", "SCRIPT LOAD commands sent"),
            ),
            noscript_recoveries: reg(
                &r,
                c(
                    "sluice_script_noscript_recoveries_total",
                    "NOSCRIPT answers recovered by loading and retrying",
                ),
            ),
            watch_conflicts: reg(
                &r,
                c(
                    "sluice_watch_conflicts_total",
                    "Read-then-write rounds refused because another writer changed a key read (both rounds ran again)",
                ),
            ),
            tls_handshake_failures: reg(
                &r,
                c(
                    "sluice_tls_handshake_failures_total",
                    "TLS handshakes that failed or timed out (a client that trusts another CA, a client certificate the client CA did not sign, a scanner)",
                ),
            ),
            admin_throttled: reg(
                &r,
                c(
                    "sluice_admin_throttled_total",
                    "Wrong admin tokens after the first of a burst, and admin calls answered 429 while their address was shut out: counted here, not audited one by one",
                ),
            ),
            tls_certificate_expiry: reg(
                &r,
                g(
                    "sluice_tls_certificate_expiry_timestamp_seconds",
                    "When the certificate the gateway serves HTTPS with expires (seconds since the Unix epoch; 0 without [server.tls])",
                ),
            ),
            l1: reg(
                &r,
                cv(
                    "sluice_l1_total",
                    "Near-cache answers: hit (fresh, Redis not asked), stale (Redis unavailable), miss (unavailable, no copy)",
                    &["result"],
                ),
            ),
            shed: reg(
                &r,
                cv(
                    "sluice_shed_total",
                    "Load shed: connections closed past server.max_connections (what=connection), requests answered 503 past server.max_in_flight (request) or when large bodies not yet sent pass server.max_buffered_bytes (memory)",
                    &["what"],
                ),
            ),
            ratelimit: reg(
                &r,
                cv(
                    "sluice_ratelimit_total",
                    "Rate-limit decisions by policy and result",
                    &["policy", "result"],
                ),
            ),
            quota_refused: reg(
                &r,
                cv(
                    "sluice_quota_refused_total",
                    "Requests refused by their client's own quota (configured names): quota=write_bytes (429, the write budget), long_polls (429, blocking reads held at once)",
                    &["client", "quota"],
                ),
            ),
            write_bytes: reg(
                &r,
                cv(
                    "sluice_write_bytes_total",
                    "Bytes of accepted writes (keys and values, events; MessagePack) by API client (- when the API is open)",
                    &["client"],
                ),
            ),
            long_polls: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "sluice_long_polls",
                        "Blocking stream reads each API client holds now on this gateway",
                    ),
                    &["client"],
                )
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            plugin_calls: reg(
                &r,
                cv(
                    "sluice_plugin_calls_total",
                    "Plugin calls by plugin and result (ok, refused, failed, trap, timeout)",
                    &["plugin", "result"],
                ),
            ),
            plugin_invalid_plans: reg(
                &r,
                cv(
                    "sluice_plugin_invalid_plans_total",
                    "Plans refused by the host's validation",
                    &["plugin"],
                ),
            ),
            plugin_reloads: reg(
                &r,
                cv(
                    "sluice_reloads_total",
                    "Reloads of config and plugins by result (applied, refused)",
                    &["result"],
                ),
            ),
            trace_spans_dropped: reg(
                &r,
                cv(
                    "sluice_trace_spans_dropped_total",
                    "Finished spans not delivered to the OTLP collector: reason=queue_full (the export queue held its bound), export_failed (the collector refused or did not answer)",
                    &["reason"],
                ),
            ),
            redis_memory_used: reg(
                &r,
                g("redis_memory_used_bytes", "Redis memory used in bytes"),
            ),
            redis_memory_peak: reg(
                &r,
                g("redis_memory_peak_bytes", "Redis memory peak in bytes"),
            ),
            redis_maxmemory: reg(
                &r,
                g(
                    "redis_maxmemory_bytes",
                    "Redis maxmemory in bytes (on a cluster the primaries' sum); 0 when Redis has no limit",
                ),
            ),
            redis_fragmentation: reg(
                &r,
                Gauge::new(
                    "redis_memory_fragmentation_ratio",
                    "Redis memory fragmentation ratio",
                )
                .unwrap_or_else(|e| panic!("{e}")),
            ),
            redis_connected_clients: reg(
                &r,
                g("redis_connected_clients", "Number of connected clients"),
            ),
            redis_keyspace_hits: reg(
                &r,
                c("redis_keyspace_hits_total", "Total Redis keyspace hits"),
            ),
            redis_keyspace_misses: reg(
                &r,
                c("redis_keyspace_misses_total", "Total Redis keyspace misses"),
            ),
            redis_evicted_keys: reg(&r, c("redis_evicted_keys_total", "Total evicted keys")),
            redis_info_errors: reg(&r, c("sluice_redis_info_errors_total", "Failed INFO polls")),
            redis_node_memory_used: reg(
                &r,
                gv(
                    "redis_node_memory_used_bytes",
                    "Redis Cluster: memory used in bytes, by primary",
                ),
            ),
            redis_node_connected_clients: reg(
                &r,
                gv(
                    "redis_node_connected_clients",
                    "Redis Cluster: connected clients, by primary",
                ),
            ),
            redis_node_keyspace_hits: reg(
                &r,
                cv(
                    "redis_node_keyspace_hits_total",
                    "Redis Cluster: keyspace hits, by primary",
                    &["node"],
                ),
            ),
            redis_node_keyspace_misses: reg(
                &r,
                cv(
                    "redis_node_keyspace_misses_total",
                    "Redis Cluster: keyspace misses, by primary",
                    &["node"],
                ),
            ),
            redis_node_evicted_keys: reg(
                &r,
                cv(
                    "redis_node_evicted_keys_total",
                    "Redis Cluster: evicted keys, by primary",
                    &["node"],
                ),
            ),
            registry: r,
        }
    }

    /// Count one answered request: its latency by route, domain and
    /// status, and the request by API client too. A labelled lookup hashes
    /// every label and takes the family's lock, on every request; each
    /// thread keeps the handles it has used instead (bounded as the labels
    /// are, and the registry never drops these series).
    pub fn answered(&self, route: &str, name: &str, status: &str, client: &str, seconds: f64) {
        /// The labels joined (a reused buffer), and the handles by them.
        type Handles = (
            String,
            std::collections::HashMap<String, (Histogram, IntCounter)>,
        );
        thread_local! {
            static HANDLES: std::cell::RefCell<Handles> = Default::default();
        }
        HANDLES.with_borrow_mut(|(key, handles)| {
            key.clear();
            for part in [route, name, status, client] {
                key.push_str(part);
                key.push('\0');
            }
            let (latency, count) = match handles.get(key.as_str()) {
                Some(handle) => handle,
                None => handles.entry(key.clone()).or_insert_with(|| {
                    (
                        self.requests.with_label_values(&[route, name, status]),
                        self.client_requests
                            .with_label_values(&[client, route, name, status]),
                    )
                }),
            };
            latency.observe(seconds);
            count.inc();
        });
    }

    /// Export at zero every series whose labels the configuration names, so
    /// a fresh gateway's `/metrics` has what dashboards and alerts query (an
    /// absent series is no data, not 0: Prometheus's own guidance). Each
    /// generation calls it; the series of a name a reload dropped stay, as
    /// a counted series does.
    pub fn seed(&self, known: &Known) {
        for (family, values) in [
            (&self.l1, &["hit", "stale", "miss"][..]),
            (&self.shed, &["connection", "request", "memory"]),
            (&self.plugin_reloads, &["applied", "refused"]),
            (&self.breaker_transitions, &["closed", "open", "half-open"]),
            (&self.trace_spans_dropped, &["queue_full", "export_failed"]),
        ] {
            for value in values {
                family.with_label_values(&[value]);
            }
        }
        for policy in &known.ratelimits {
            for result in ["allowed", "limited", "fail_open", "fail_closed"] {
                self.ratelimit.with_label_values(&[policy, result]);
            }
        }
        for script in &known.scripts {
            self.script_calls.with_label_values(&[script]);
        }
        for (domain, streams) in &known.domains {
            let routes = ["cache", "mget", "mset", "events"];
            let routes = routes.iter().chain(streams.then_some(&"streams"));
            for route in routes {
                self.requests.with_label_values(&[route, domain, "200"]);
                for client in &known.clients {
                    (self.client_requests).with_label_values(&[client, route, domain, "200"]);
                }
            }
        }
        for client in &known.clients {
            self.write_bytes.with_label_values(&[client]);
            self.long_polls.with_label_values(&[client]);
            for quota in ["write_bytes", "long_polls"] {
                self.quota_refused.with_label_values(&[client, quota]);
            }
        }
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Advance a counter that mirrors a cumulative value read from Redis; a
/// value lower than last time (Redis restarted) counts from zero again.
pub fn mirror(counter: &IntCounter, last: &mut u64, now: u64) {
    let delta = if now >= *last { now - *last } else { now };
    counter.inc_by(delta);
    *last = now;
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_traced_line_ends_with_its_trace_id_in_either_format() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let json = "{\"level\":\"WARN\",\"message\":\"x\"}\n";
        let line = super::with_trace_id(json, id, true);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (v["trace_id"].as_str(), v["message"].as_str()),
            (Some(id), Some("x"))
        );
        assert!(line.ends_with("}\n"));
        let text = "2026-01-01T00:00:00Z  WARN sluice::server: request failed status=500\n";
        assert_eq!(
            super::with_trace_id(text, id, false),
            format!("{} trace_id={id}\n", text.trim_end())
        );
    }
}
