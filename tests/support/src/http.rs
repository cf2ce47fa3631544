//! HTTP helpers: problem documents, raw requests, `/metrics` samples.

use crate::Gateway;

/// Assert a response is a problem+json with `status`; returns its body.
pub async fn assert_problem(resp: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    let body: serde_json::Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status, "problem status field: {body}");
    let detail = body["detail"].as_str().unwrap_or("");
    assert!(!detail.is_empty(), "problem without detail: {body}");
    body
}

/// Send raw bytes to the gateway and return what it answers first (for
/// requests a normal client will not make, such as chunked bodies).
pub async fn raw_http(base: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The gateway may answer and close before reading everything: ignore write errors.
    let _ = stream.write_all(request).await;
    let mut buf = vec![0; 4096];
    let n = stream.read(&mut buf).await.unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The value of one sample on `/metrics`, e.g.
/// `sluice_redis_round_trips_total` or `sluice_ratelimit_total{policy="t",result="allowed"}`;
/// 0 when absent.
pub async fn metric(gw: &Gateway, sample: &str) -> f64 {
    scrape(gw)
        .await
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.strip_prefix(sample)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

/// The text of the gateway's `/metrics`.
pub async fn scrape(gw: &Gateway) -> String {
    reqwest::get(gw.url("/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text")
}
