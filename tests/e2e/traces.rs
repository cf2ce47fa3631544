//! Traces: a real OTLP/HTTP receiver (a hyper server decoding the OTLP
//! protobuf messages, started here) takes the spans of a real gateway:
//! parent links to the caller and inside the request, attributes (and no
//! key or value), sampling by the caller's flag and by `sample_ratio`,
//! `traceresponse`, and the trace id in the log lines of a request.

use sluice_test_support as support;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use support::{Gateway, Redis, STARTUP, eventually, scrape};

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    kind: i32,
    attributes: BTreeMap<String, String>,
    status_code: i32,
}

impl Got {
    fn attr(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

/// An OTLP/HTTP receiver on a port of its own: `POST /v1/traces` with an
/// `ExportTraceServiceRequest` (protobuf), every span kept.
struct Receiver {
    endpoint: String,
    spans: Arc<Mutex<Vec<Got>>>,
    /// Requests that were not a decodable export to /v1/traces.
    refused: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let spans = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let (kept, bad) = (spans.clone(), refused.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (kept, bad) = (kept.clone(), bad.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (kept, bad) = (kept.clone(), bad.clone());
                        async move { receive(req, &kept, &bad).await }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Receiver {
            endpoint,
            spans,
            refused,
        }
    }

    fn spans(&self) -> Vec<Got> {
        assert!(
            self.refused.lock().unwrap().is_empty(),
            "{:?}",
            self.refused
        );
        self.spans.lock().unwrap().clone()
    }

    fn of_trace(&self, trace_id: &str) -> Vec<Got> {
        (self.spans().into_iter())
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }

    /// The spans of `trace_id` once its request span and `more` others are in.
    async fn wait_trace(&self, trace_id: &str, more: usize) -> Vec<Got> {
        eventually("the trace's spans", STARTUP, async || {
            let spans = self.of_trace(trace_id);
            spans.iter().any(|s| s.kind == SERVER) && spans.len() > more
        })
        .await;
        self.of_trace(trace_id)
    }
}

async fn receive(
    req: hyper::Request<hyper::body::Incoming>,
    kept: &Mutex<Vec<Got>>,
    bad: &Mutex<Vec<String>>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let protobuf = parts
        .headers
        .get("content-type")
        .is_some_and(|v| v == "application/x-protobuf");
    let decoded = ExportTraceServiceRequest::decode(body.as_ref());
    match decoded {
        Ok(export) if parts.uri.path() == "/v1/traces" && parts.method == "POST" && protobuf => {
            let mut kept = kept.lock().unwrap();
            for rs in export.resource_spans {
                let resource = rs.resource.map(|r| attributes(&r.attributes));
                let service = resource
                    .and_then(|r| r.get("service.name").cloned())
                    .unwrap_or_default();
                for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                    kept.push(Got {
                        service: service.clone(),
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent: hex(&span.parent_span_id),
                        name: span.name,
                        kind: span.kind,
                        attributes: attributes(&span.attributes),
                        status_code: span.status.map_or(0, |s| s.code),
                    });
                }
            }
        }
        other => bad.lock().unwrap().push(format!(
            "{} {} {:?}: {other:?}",
            parts.method,
            parts.uri,
            parts.headers.get("content-type")
        )),
    }
    let mut resp = hyper::Response::new(Full::new(Bytes::new()));
    resp.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-protobuf"),
    );
    Ok(resp)
}

/// OTLP's span kinds.
const INTERNAL: i32 = 1;
const SERVER: i32 = 2;
const CLIENT: i32 = 3;
/// OTLP's error status code.
const ERROR: i32 = 2;

/// A caller's trace (ids written by the test).
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

fn tracing_config(receiver: &Receiver, extra: &str) -> String {
    format!(
        "\n[tracing]\notlp_endpoint = \"{}\"\nexport_interval_ms = 20\nservice_name = \"sluice-e2e\"\n{extra}",
        receiver.endpoint
    )
}

/// `traceresponse`: (trace id, span id, flags).
fn traceresponse(resp: &reqwest::Response) -> (String, String, String) {
    let value = resp
        .headers()
        .get("traceresponse")
        .unwrap_or_else(|| panic!("no traceresponse: {:?}", resp.headers()))
        .to_str()
        .unwrap();
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!((parts.len(), parts[0]), (4, "00"), "{value}");
    (parts[1].into(), parts[2].into(), parts[3].into())
}

/// No span of `trace` was exported: a marker request traced after it is
/// in, and the exporter sends spans in the order they ended.
async fn nothing_of(
    receiver: &Receiver,
    gw: &Gateway,
    client: &reqwest::Client,
    trace: &str,
    marker: &str,
) {
    let resp = client
        .get(gw.url("/v1/cache/cache/marker"))
        .header("traceparent", format!("00-{marker}-{CALLER}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    receiver.wait_trace(marker, 0).await;
    assert!(receiver.of_trace(trace).is_empty(), "{trace} was exported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_continue_the_callers_trace_with_policy_and_redis_children() {
    let redis = Redis::start();
    let receiver = Receiver::start().await;
    let config = support::config(&redis, &tracing_config(&receiver, "sample_ratio = 1.0\n"));
    let gw = Gateway::start_with_env(
        &config,
        &[
            ("SLUICE_LOG_FORMAT", "json"),
            ("RUST_LOG", "info,sluice=debug"),
        ],
    );
    let client = reqwest::Client::new();

    // A write in the caller's sampled trace.
    let put = client
        .put(gw.url("/v1/cache/cache/secret-key-7f3a"))
        .header("traceparent", format!("00-{TRACE}-{CALLER}-01"))
        .header("tracestate", "vendor=opaque")
        .json(&serde_json::json!({"v": "secret-value-91c2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let (trace, gateway_span, flags) = traceresponse(&put);
    assert_eq!((trace.as_str(), flags.as_str()), (TRACE, "01"));
    assert_ne!(gateway_span, CALLER);

    let spans = receiver.wait_trace(TRACE, 2).await;
    let request: Vec<&Got> = spans.iter().filter(|s| s.kind == SERVER).collect();
    assert_eq!(request.len(), 1, "{spans:#?}");
    let request = request[0];
    assert_eq!(request.parent, CALLER, "the caller's span is the parent");
    assert_eq!(request.span_id, gateway_span, "traceresponse names it");
    assert_eq!(request.name, "PUT /v1/cache/{domain}/{key}");
    assert_eq!(request.service, "sluice-e2e");
    for (key, value) in [
        ("http.request.method", "PUT"),
        ("http.route", "/v1/cache/{domain}/{key}"),
        ("http.response.status_code", "204"),
        ("sluice.route", "cache"),
        ("sluice.domain", "cache"),
        ("sluice.client", "-"),
    ] {
        assert_eq!(request.attr(key), value, "{key}: {request:#?}");
    }
    let policy: Vec<&Got> = spans.iter().filter(|s| s.name == "policy").collect();
    assert_eq!(policy.len(), 1, "{spans:#?}");
    assert_eq!(policy[0].kind, INTERNAL);
    assert_eq!(policy[0].parent, request.span_id, "a child of the request");
    assert_eq!(policy[0].attr("sluice.plugin"), "fixed-ttl");
    assert_eq!(policy[0].attr("sluice.policy.outcome"), "ok");
    assert_eq!(policy[0].attr("sluice.policy.call"), "plan");
    let redis_spans: Vec<&Got> = spans.iter().filter(|s| s.name == "redis").collect();
    assert!(!redis_spans.is_empty(), "{spans:#?}");
    for span in &redis_spans {
        assert_eq!(span.kind, CLIENT);
        assert_eq!(span.parent, request.span_id, "a child of the request");
        assert_eq!(span.attr("db.system.name"), "redis");
        assert!(span.attr("db.operation.batch.size").parse::<u32>().unwrap() >= 1);
    }
    let names: Vec<&str> = redis_spans
        .iter()
        .map(|s| s.attr("db.operation.name"))
        .collect();
    assert!(names.iter().any(|n| n.contains("SET")), "{names:?}");

    // A read of it, in a new trace (no traceparent, ratio 1.0: recorded).
    let get = client
        .get(gw.url("/v1/cache/cache/secret-key-7f3a"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let (read_trace, read_span, flags) = traceresponse(&get);
    assert_ne!(read_trace, TRACE);
    assert_eq!(flags, "01");
    let spans = receiver.wait_trace(&read_trace, 2).await;
    let request = spans.iter().find(|s| s.kind == SERVER).unwrap();
    assert_eq!(
        (request.parent.as_str(), request.span_id.as_str()),
        ("", read_span.as_str())
    );
    assert_eq!(request.attr("http.response.status_code"), "200");
    let read = spans.iter().find(|s| s.name == "redis").unwrap();
    assert_eq!(read.parent, request.span_id);
    assert!(!read.attr("db.operation.name").is_empty());

    // Nothing a client sent is in any span: neither key nor value.
    for span in receiver.spans() {
        let all = format!("{span:?}");
        assert!(!all.contains("secret-key-7f3a"), "{all}");
        assert!(!all.contains("secret-value-91c2"), "{all}");
    }

    // A 404 is not an error; a refused request (400) names its route.
    let bad_ttl = client
        .put(gw.url("/v1/cache/cache/k?ttl_s=0"))
        .json(&1)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_ttl.status(), 400);
    let (bad_trace, _, _) = traceresponse(&bad_ttl);
    let spans = receiver.wait_trace(&bad_trace, 0).await;
    let request = spans.iter().find(|s| s.kind == SERVER).unwrap();
    assert_eq!(request.attr("http.response.status_code"), "400");
    assert_ne!(
        request.status_code, ERROR,
        "only a 5xx is the server's error"
    );

    // The caller's unsampled flag: answered, traced in the header, not exported.
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    let resp = client
        .get(gw.url("/v1/cache/cache/secret-key-7f3a"))
        .header("traceparent", format!("00-{unsampled}-{CALLER}-00"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (t, _, flags) = traceresponse(&resp);
    assert_eq!((t.as_str(), flags.as_str()), (unsampled, "00"));
    nothing_of(
        &receiver,
        &gw,
        &client,
        unsampled,
        "11111111111111111111111111111111",
    )
    .await;

    // A malformed traceparent is ignored: a new trace, never an error.
    let resp = client
        .get(gw.url("/v1/cache/cache/secret-key-7f3a"))
        .header("traceparent", "00-not-a-trace-01")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (fresh, _, _) = traceresponse(&resp);
    let spans = receiver.wait_trace(&fresh, 0).await;
    assert_eq!(spans.iter().find(|s| s.kind == SERVER).unwrap().parent, "");

    // The log lines of a request carry its trace id (JSON).
    eventually("a log line with the trace id", STARTUP, async || {
        gw.log().lines().any(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v["trace_id"] == TRACE && v["message"] == "request")
        })
    })
    .await;
    let scraped = scrape(&gw).await;
    assert!(
        scraped.contains("sluice_trace_spans_dropped_total{reason=\"queue_full\"} 0"),
        "{scraped}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_ratio_records_only_what_callers_sampled() {
    let redis = Redis::start();
    let receiver = Receiver::start().await;
    let config = support::config(&redis, &tracing_config(&receiver, "sample_ratio = 0.0\n"));
    // Text lines this time.
    let gw = Gateway::start_with_env(&config, &[("RUST_LOG", "info,sluice=debug")]);
    let client = reqwest::Client::new();

    let mut unrecorded = Vec::new();
    for i in 0..5 {
        let resp = client
            .get(gw.url(&format!("/v1/cache/cache/k{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        let (trace, _, flags) = traceresponse(&resp);
        assert_eq!(flags, "00", "not sampled");
        unrecorded.push(trace);
    }
    // A caller's sampled flag wins over the ratio.
    let marker = "22222222222222222222222222222222";
    for trace in &unrecorded {
        nothing_of(&receiver, &gw, &client, trace, marker).await;
    }
    let spans = receiver.of_trace(marker);
    assert!(spans.iter().any(|s| s.name == "redis"), "{spans:#?}");
    eventually("a text log line with the trace id", STARTUP, async || {
        gw.log()
            .lines()
            .any(|l| l.contains(" request ") && l.ends_with(&format!("trace_id={marker}")))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_traced() {
    let redis = Redis::start();
    let gw = Gateway::start(&support::config(&redis, ""));
    let resp = reqwest::Client::new()
        .get(gw.url("/v1/cache/cache/k"))
        .header("traceparent", format!("00-{TRACE}-{CALLER}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().get("traceresponse").is_none());
    assert!(!gw.log().contains("trace_id"), "{}", gw.log());
}
