//! Request traces: W3C Trace Context in (`traceparent`, `tracestate`),
//! OpenTelemetry spans out over OTLP/HTTP with protobuf, `traceresponse`
//! back to the caller.
//!
//! Off unless `[tracing] otlp_endpoint` is set, and then one load of a flag
//! ([`on`]) is all a request pays: no span, no context, no allocation.
//! On, a request gets a server span (continuing the caller's trace, or a
//! new one), its context is attached to the thread while the request's
//! future is polled ([`Traced`]), and the policy call and each Redis round
//! trip made inside it open children of it — only when the request is
//! sampled. Sampling is parent-based: a caller's sampled flag decides; a
//! request without a valid `traceparent` is sampled at `sample_ratio`.
//!
//! Finished spans go into a bounded queue ([`QUEUE_SPANS`]) that one thread
//! of its own (`sluice-otlp`) drains, sending a batch every
//! `export_interval_ms` or as soon as [`BATCH_SPANS`] wait; a span that
//! finds the queue full is dropped and counted, as is every span of a batch
//! the collector refused (`sluice_trace_spans_dropped_total{reason}`). At
//! shutdown what is queued is sent within [`FLUSH_DEADLINE`].
//!
//! Spans carry names and counts only: the route's template, the domain, the
//! client's configured name, the plugin, Redis command names — never a key,
//! a value or an error message Redis or a script wrote.

use crate::config::TracingConfig;
use arc_swap::ArcSwapOption;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    SpanContext, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracer, SdkTracerProvider, SpanData, SpanExporter, SpanProcessor,
};
use prometheus::IntCounterVec;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

/// Finished spans waiting for the exporter, at most.
pub const QUEUE_SPANS: usize = 2048;
/// Spans in one export request, at most.
pub const BATCH_SPANS: usize = 512;
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the spans still queued at shutdown may take to be sent.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(3);
/// Redis command names listed in one span, at most (a batch may send
/// hundreds of commands; their count is always there).
const MAX_COMMAND_NAMES: usize = 8;

static ON: AtomicBool = AtomicBool::new(false);
static TRACER: OnceLock<SdkTracer> = OnceLock::new();
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether traces are on: the one thing a request checks when they are off.
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Start exporting per `config`, if it names an endpoint: the exporter's
/// thread, the tracer every request uses. Once per process. `dropped`:
/// `sluice_trace_spans_dropped_total` (by `reason`).
pub fn start(config: &TracingConfig, dropped: IntCounterVec) -> anyhow::Result<()> {
    let Some(url) = config.traces_url() else {
        return Ok(());
    };
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name(config.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()?;
    exporter.set_resource(&resource);
    let queue = Queue::start(
        exporter,
        Duration::from_millis(config.export_interval_ms),
        url.clone(),
        dropped,
    )?;
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_span_processor(queue)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("sluice");
    if PROVIDER.set(provider).is_err() || TRACER.set(tracer).is_err() {
        anyhow::bail!("traces started twice");
    }
    ON.store(true, Ordering::Relaxed);
    tracing::info!(endpoint = %url, sample_ratio = config.sample_ratio, "exporting traces");
    Ok(())
}

/// Send what is queued, within [`FLUSH_DEADLINE`]; later spans are not kept.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        ON.store(false, Ordering::Relaxed);
        if let Err(e) = provider.shutdown_with_timeout(FLUSH_DEADLINE) {
            tracing::warn!(error = %e, "traces: not every queued span was sent before exit");
        }
    }
}

/// The trace id of the request being served on this thread, for its log
/// lines (`None`: none, or traces are off).
pub fn current_trace_id() -> Option<String> {
    if !on() {
        return None;
    }
    Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| sc.trace_id().to_string())
    })
}

/// One request's server span, in the context its work runs under.
pub struct RequestSpan {
    cx: Context,
}

/// `traceparent`/`tracestate` from a request's headers. A header sent more
/// than once is not read (the trace context is then invalid: a new trace).
struct Headers<'a>(&'a hyper::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let mut values = self.0.get_all(key).iter();
        let value = match (values.next(), values.next()) {
            (Some(one), None) => one.to_str().ok()?,
            _ => return None,
        };
        // The propagator is lenient (a 31-digit trace id passes, padded):
        // the shape is held to the letter here first.
        (key != "traceparent" || well_formed(value)).then_some(value)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Whether `traceparent` has W3C Trace Context's shape: `vv-` (not `ff`),
/// 32 and 16 lowercase hex digits, 2 of flags; version `00` exactly that
/// long, a later version perhaps followed by `-…`.
fn well_formed(traceparent: &str) -> bool {
    let b = traceparent.as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|d| d.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
    };
    let dash = |i: usize| b.get(i) == Some(&b'-');
    hex(0..2)
        && &b[..2] != b"ff"
        && dash(2)
        && hex(3..35)
        && dash(35)
        && hex(36..52)
        && dash(52)
        && hex(53..55)
        && match &b[..2] {
            b"00" => b.len() == 55,
            _ => b.len() == 55 || dash(55),
        }
}

/// The caller's trace context, if its headers carry a valid one.
fn remote_parent(headers: &hyper::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&Headers(headers))
}

impl RequestSpan {
    /// A span for a request that just arrived, when traces are on: a child
    /// of the caller's span when its `traceparent` is valid, else the root
    /// of a new trace; recorded or not as sampling decides.
    pub fn start(method: &hyper::Method, headers: &hyper::HeaderMap) -> Option<RequestSpan> {
        if !on() {
            return None;
        }
        let tracer = TRACER.get()?;
        let parent = remote_parent(headers);
        let span = tracer
            .span_builder(Cow::Owned(method.as_str().to_owned()))
            .with_kind(SpanKind::Server)
            .start_with_context(tracer, &parent);
        Some(RequestSpan {
            cx: parent.with_span(span),
        })
    }

    /// The context the request's work runs under.
    pub fn context(&self) -> Context {
        self.cx.clone()
    }

    /// Attach this request's context to the thread until the guard drops
    /// (a log line written outside its future).
    pub fn enter(&self) -> opentelemetry::ContextGuard {
        self.cx.clone().attach()
    }

    /// `traceresponse` (W3C Trace Context Level 2): this gateway's span in
    /// the trace, `00-{trace-id}-{span-id}-{flags}`.
    pub fn traceresponse(&self) -> Option<hyper::header::HeaderValue> {
        let span = self.cx.span();
        let sc = span.span_context();
        let value = traceparent(sc)?;
        hyper::header::HeaderValue::from_str(&value).ok()
    }

    /// The request was answered: name the span after its route, record
    /// what it was and end it.
    pub fn finish(self, method: &hyper::Method, answered: Answered<'_>) {
        let span = self.cx.span();
        if !span.is_recording() {
            return;
        }
        match answered.template {
            Some(template) => span.update_name(format!("{method} {template}")),
            None => span.update_name(method.as_str().to_owned()),
        }
        span.set_attributes([
            KeyValue::new("http.request.method", method.as_str().to_owned()),
            KeyValue::new("http.response.status_code", i64::from(answered.status)),
            KeyValue::new("sluice.route", answered.route),
            KeyValue::new("sluice.domain", bounded(answered.domain)),
            KeyValue::new("sluice.client", bounded(answered.client)),
        ]);
        if let Some(template) = answered.template {
            span.set_attribute(KeyValue::new("http.route", template));
        }
        if answered.status >= 500 {
            span.set_status(Status::error(format!("HTTP {}", answered.status)));
        }
        span.end();
    }
}

/// How a request was answered, for its span: labels only.
pub struct Answered<'a> {
    /// The route's path template (`None`: no route matched).
    pub template: Option<&'static str>,
    /// The metric label of the route (`cache`, `other`).
    pub route: &'static str,
    /// The configured domain or policy (`-`: none).
    pub domain: &'a str,
    /// The configured client (`-`: anonymous, unknown, or the API is open).
    pub client: &'a str,
    pub status: u16,
}

/// A label's value as an attribute: configured names are bounded already;
/// this holds them to 128 bytes all the same.
fn bounded(value: &str) -> String {
    let mut end = value.len().min(128);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// `00-{trace-id}-{span-id}-{flags}` of a valid span context.
fn traceparent(sc: &SpanContext) -> Option<String> {
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

pin_project_lite::pin_project! {
    /// A request's future with its trace context attached to the thread
    /// whenever it is polled, so work inside it (the policy, Redis) finds
    /// its parent span; without a context, the future as it is.
    pub struct Traced<F> {
        #[pin]
        inner: F,
        cx: Option<Context>,
    }
}

impl<F> Traced<F> {
    pub fn new(inner: F, cx: Option<Context>) -> Traced<F> {
        Traced { inner, cx }
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _attached = this.cx.as_ref().map(|cx| cx.clone().attach());
        this.inner.poll(task)
    }
}

/// A span inside a sampled request (boxed: a future that holds one across
/// an await stays a pointer larger, and nothing larger when traces are off).
pub struct Child(Box<opentelemetry_sdk::trace::Span>, bool);

/// A child of the span of the request being served on this thread, if it
/// is sampled (and traces are on).
fn child(name: &'static str, kind: SpanKind) -> Option<Child> {
    if !on() {
        return None;
    }
    let tracer = TRACER.get()?;
    Context::map_current(|cx| {
        cx.span().span_context().is_sampled().then(|| {
            let span = tracer
                .span_builder(name)
                .with_kind(kind)
                .start_with_context(tracer, cx);
            Child(Box::new(span), false)
        })
    })
}

/// The span of one policy call: `call` is `plan`, `after_read` or
/// `plan_batch`; `decisions` how many the call makes.
pub fn policy(plugin: &str, call: &'static str, decisions: u32) -> Option<Child> {
    use opentelemetry::trace::Span as _;
    let mut span = child("policy", SpanKind::Internal)?;
    span.0.set_attributes([
        KeyValue::new("sluice.plugin", bounded(plugin)),
        KeyValue::new("sluice.policy.call", call),
        KeyValue::new("sluice.policy.decisions", i64::from(decisions)),
    ]);
    Some(span)
}

/// The span of one Redis round trip: the names of the pipeline's commands
/// (never their arguments), how many, and on a cluster the primary that
/// serves their slot.
pub fn redis(pipe: &redis::Pipeline, node: Option<&str>) -> Option<Child> {
    use opentelemetry::trace::Span as _;
    let mut span = child("redis", SpanKind::Client)?;
    let names = command_names(pipe);
    let mut attributes = vec![
        KeyValue::new("db.system.name", "redis"),
        KeyValue::new("db.operation.batch.size", pipe.len() as i64),
        KeyValue::new("db.operation.name", names),
    ];
    if let Some(node) = node {
        attributes.push(KeyValue::new("sluice.redis.node", bounded(node)));
    }
    span.0.set_attributes(attributes);
    Some(span)
}

/// The distinct command names of a pipeline, in order, joined by `,`
/// (`HSET,PEXPIRE`); at most [`MAX_COMMAND_NAMES`], then `,…`. A name is
/// the command's first argument, kept only when it looks like one (ASCII
/// letters, at most 32): never a key or a value.
fn command_names(pipe: &redis::Pipeline) -> String {
    let mut names: Vec<&str> = Vec::new();
    let mut more = false;
    for cmd in pipe.cmd_iter() {
        let name = match cmd.args_iter().next() {
            Some(redis::Arg::Simple(bytes)) => std::str::from_utf8(bytes)
                .ok()
                .filter(|n| !n.is_empty() && n.len() <= 32)
                .filter(|n| n.bytes().all(|b| b.is_ascii_alphabetic())),
            _ => None,
        }
        .unwrap_or("?");
        if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        if names.len() == MAX_COMMAND_NAMES {
            more = true;
            break;
        }
        names.push(name);
    }
    let mut joined = names.join(",").to_ascii_uppercase();
    if more {
        joined.push_str(",…");
    }
    joined
}

impl Child {
    /// How the policy call ended (`ok`, `refused`, `failed`, `trap`,
    /// `timeout`, `no_memory`, `invalid_plan`); the first said counts.
    pub fn outcome(&mut self, outcome: &'static str) {
        use opentelemetry::trace::Span as _;
        if std::mem::replace(&mut self.1, true) {
            return;
        }
        self.0
            .set_attribute(KeyValue::new("sluice.policy.outcome", outcome));
        if outcome != "ok" && outcome != "refused" {
            self.0.set_status(Status::error(outcome));
        }
    }

    /// A failed round trip: its kind only (`timeout`, `unavailable`…).
    pub fn failed(&mut self, kind: &'static str) {
        use opentelemetry::trace::Span as _;
        self.0.set_status(Status::error(kind));
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        use opentelemetry::trace::Span as _;
        self.0.end();
    }
}

/// What goes to the exporter's thread. Not boxed: the queue's slots are
/// allocated once, a box would be one allocation per span.
#[allow(clippy::large_enum_variant)]
enum Message {
    Span(SpanData),
    /// Send what is queued, then say so.
    Flush(SyncSender<()>),
}

/// The span processor: finished spans into a bounded queue, without
/// waiting; the `sluice-otlp` thread sends them.
#[derive(Debug)]
struct Queue {
    /// `None` once shut down: the thread then sends what is left and ends.
    tx: ArcSwapOption<SyncSender<Message>>,
    /// Said by the thread when it ended.
    ended: Mutex<Option<Receiver<()>>>,
    dropped: IntCounterVec,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Message::Span(_) => "Span",
            Message::Flush(_) => "Flush",
        })
    }
}

impl Queue {
    fn start<E: SpanExporter + 'static>(
        exporter: E,
        interval: Duration,
        url: String,
        dropped: IntCounterVec,
    ) -> std::io::Result<Queue> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_SPANS);
        let (ended_tx, ended) = std::sync::mpsc::sync_channel(1);
        let failed = dropped.clone();
        // The exporter's HTTP client (hyper's) runs on a runtime of this
        // thread's own: it never competes with requests for an HTTP thread.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("sluice-otlp".into())
            .spawn(move || {
                Sender {
                    exporter,
                    rt,
                    url,
                    failing: false,
                    dropped: failed,
                }
                .run(rx, interval);
                let _ = ended_tx.send(());
            })?;
        Ok(Queue {
            tx: ArcSwapOption::from_pointee(tx),
            ended: Mutex::new(Some(ended)),
            dropped,
        })
    }
}

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let reason = match &*self.tx.load() {
            Some(tx) => match tx.try_send(Message::Span(span)) {
                Ok(()) => return,
                Err(TrySendError::Full(_)) => "queue_full",
                Err(TrySendError::Disconnected(_)) => "export_failed",
            },
            None => "queue_full",
        };
        self.dropped.with_label_values(&[reason]).inc();
    }

    fn force_flush(&self) -> OTelSdkResult {
        let Some(tx) = self.tx.load_full() else {
            return Err(OTelSdkError::AlreadyShutdown);
        };
        let (done, sent) = std::sync::mpsc::sync_channel(1);
        tx.send(Message::Flush(done))
            .map_err(|_| OTelSdkError::InternalFailure("the exporter's thread ended".into()))?;
        sent.recv_timeout(EXPORT_TIMEOUT)
            .map_err(|_| OTelSdkError::Timeout(EXPORT_TIMEOUT))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        // Dropping the sender lets the thread send what is queued and end.
        if self.tx.swap(None).is_none() {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let ended = self.ended.lock().unwrap_or_else(|p| p.into_inner()).take();
        match ended.map(|rx| rx.recv_timeout(timeout)) {
            Some(Ok(())) | Some(Err(RecvTimeoutError::Disconnected)) | None => Ok(()),
            Some(Err(RecvTimeoutError::Timeout)) => Err(OTelSdkError::Timeout(timeout)),
        }
    }
}

/// The exporter's thread.
struct Sender<E> {
    exporter: E,
    rt: tokio::runtime::Runtime,
    url: String,
    /// The last export failed (said once, and once more when one succeeds).
    failing: bool,
    dropped: IntCounterVec,
}

impl<E: SpanExporter> Sender<E> {
    fn run(mut self, rx: Receiver<Message>, interval: Duration) {
        let mut batch = Vec::with_capacity(BATCH_SPANS);
        let mut due = Instant::now() + interval;
        loop {
            match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(Message::Span(span)) => {
                    batch.push(span);
                    if batch.len() >= BATCH_SPANS {
                        self.export(&mut batch);
                    }
                }
                Ok(Message::Flush(done)) => {
                    self.export(&mut batch);
                    let _ = done.send(());
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.export(&mut batch);
                    due = Instant::now() + interval;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.export(&mut batch);
                    break;
                }
            }
        }
        let _ = self.exporter.shutdown();
    }

    fn export(&mut self, batch: &mut Vec<SpanData>) {
        if batch.is_empty() {
            return;
        }
        let spans = std::mem::replace(batch, Vec::with_capacity(BATCH_SPANS));
        let n = spans.len() as u64;
        let sent = self.rt.block_on(async {
            tokio::time::timeout(EXPORT_TIMEOUT, self.exporter.export(spans))
                .await
                .unwrap_or(Err(OTelSdkError::Timeout(EXPORT_TIMEOUT)))
        });
        match sent {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!(endpoint = %self.url, "traces: the collector takes spans again");
            }
            Ok(()) => {}
            Err(e) => {
                self.dropped.with_label_values(&["export_failed"]).inc_by(n);
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(endpoint = %self.url, error = %e, spans = n, "traces: cannot send spans to the collector (dropped and counted; said once until it works again)");
                }
            }
        }
    }
}

/// Shared for the tests of the server's header handling.
#[cfg(test)]
pub(crate) fn parent_of(headers: &hyper::HeaderMap) -> Option<(String, String, bool)> {
    let cx = remote_parent(headers);
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| {
        (
            sc.trace_id().to_string(),
            sc.span_id().to_string(),
            sc.is_sampled(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn a_valid_traceparent_is_the_parent_with_its_sampled_flag() {
        let tp = format!("00-{TRACE}-{SPAN}-01");
        let got = parent_of(&headers(&[("traceparent", &tp)]));
        assert_eq!(got, Some((TRACE.into(), SPAN.into(), true)));
        let tp = format!("00-{TRACE}-{SPAN}-00");
        let got = parent_of(&headers(&[("traceparent", &tp), ("tracestate", "a=1")]));
        assert_eq!(got, Some((TRACE.into(), SPAN.into(), false)));
    }

    #[test]
    fn a_malformed_traceparent_is_ignored() {
        for bad in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        ] {
            assert_eq!(
                parent_of(&headers(&[("traceparent", bad)])),
                None,
                "{bad:?}"
            );
        }
        // Sent twice: which one counts is not knowable.
        let tp = format!("00-{TRACE}-{SPAN}-01");
        let twice = headers(&[("traceparent", &tp), ("traceparent", &tp)]);
        assert_eq!(parent_of(&twice), None);
        assert_eq!(parent_of(&hyper::HeaderMap::new()), None);
    }

    #[test]
    fn traceparent_renders_level_2_traceresponse() {
        let sc = SpanContext::new(
            opentelemetry::trace::TraceId::from_hex(TRACE).unwrap(),
            opentelemetry::trace::SpanId::from_hex(SPAN).unwrap(),
            opentelemetry::trace::TraceFlags::SAMPLED,
            false,
            Default::default(),
        );
        assert_eq!(traceparent(&sc).unwrap(), format!("00-{TRACE}-{SPAN}-01"));
        assert_eq!(traceparent(&SpanContext::empty_context()), None);
    }

    #[test]
    fn command_names_are_names_only_distinct_and_bounded() {
        let mut pipe = redis::pipe();
        pipe.cmd("HSET").arg("price:secret-key").arg("f").arg("v");
        pipe.cmd("pexpire").arg("price:secret-key").arg(1000);
        pipe.cmd("HSET").arg("price:other").arg("f").arg("v");
        assert_eq!(command_names(&pipe), "HSET,PEXPIRE");
        let mut many = redis::pipe();
        for name in ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"] {
            many.cmd(name).arg("k");
        }
        assert_eq!(command_names(&many), "A,B,C,D,E,F,G,H,…");
        let mut odd = redis::pipe();
        odd.cmd("not a name").arg("k");
        assert_eq!(command_names(&odd), "?");
    }

    #[test]
    fn off_makes_no_span_and_no_context() {
        // Traces are never started in the unit tests.
        assert!(!on());
        let h = headers(&[("traceparent", &format!("00-{TRACE}-{SPAN}-01"))]);
        assert!(RequestSpan::start(&hyper::Method::GET, &h).is_none());
        assert!(policy("p", "plan", 1).is_none());
        assert!(redis(&redis::pipe(), None).is_none());
        assert_eq!(current_trace_id(), None);
        assert_eq!(bounded(&"é".repeat(100)).len(), 128);
    }
}
