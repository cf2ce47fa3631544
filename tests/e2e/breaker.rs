//! The circuit breaker against a real Redis that is killed and restarted:
//! it opens, fails fast without touching Redis, serves stale copies where the
//! domain allows, probes in the background, half-opens and closes.

#[path = "../support/mod.rs"]
mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{Gateway, Redis, assert_problem, config, metric};

const STALE_DOMAIN: &str = r#"
[domains.stale]
plugin = "fixed-ttl"
max_stale_s = 60
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_opens_fails_fast_serves_stale_and_closes_when_redis_returns() {
    let mut redis = Redis::start();
    let gw = Gateway::start(&config(&redis, STALE_DOMAIN));
    let client = reqwest::Client::new();
    let url = |p: &str| gw.url(p);
    let value = json!({"price": 64000.5});
    let resp = client
        .put(url("/v1/cache/stale/btc"))
        .json(&value)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = client.get(url("/v1/cache/stale/btc")).send().await.unwrap();
    assert_eq!(resp.headers()["cache-status"], "sluice; hit");

    redis.kill();
    let down = Instant::now();

    // Failures until the breaker opens; none waits longer than the command timeout.
    let mut slowest = Duration::ZERO;
    let mut failures = 0;
    while metric(&gw, "sluice_breaker_state").await != 1.0 {
        let t = Instant::now();
        let resp = client.get(url("/v1/cache/cache/x")).send().await.unwrap();
        slowest = slowest.max(t.elapsed());
        assert_eq!(resp.status(), 503);
        failures += 1;
        assert!(failures < 100, "the breaker never opened");
    }
    assert!(
        slowest < Duration::from_millis(1000),
        "a request waited {slowest:?}"
    );

    // Open: fail fast, touch nothing.
    let trips = metric(&gw, "sluice_redis_round_trips_total").await;
    let mut fast = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let resp = client.get(url("/v1/cache/cache/x")).send().await.unwrap();
        fast.push(t.elapsed());
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=30).contains(&retry));
        let body = assert_problem(resp, 503).await;
        assert!(
            body["detail"].as_str().unwrap().contains("circuit open"),
            "{body}"
        );
    }
    fast.sort();
    assert_eq!(
        metric(&gw, "sluice_redis_round_trips_total").await,
        trips,
        "a command was sent while open"
    );
    assert!(metric(&gw, "sluice_breaker_rejected_total").await >= 50.0);

    // Stale reads where the domain allows them; writes are never acknowledged.
    let resp = client.get(url("/v1/cache/stale/btc")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-status"], "sluice; fwd=stale");
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap(), value);
    let resp = client
        .put(url("/v1/cache/stale/btc"))
        .json(&json!(1))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 503).await;
    let resp = client
        .get(url("/v1/cache/stale/never-read"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 503).await;

    // A 3 s outage, then Redis is back: writes succeed again about a second later.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(down.elapsed())).await;
    redis.restart();
    let back = Instant::now();
    loop {
        let resp = client
            .put(url("/v1/cache/cache/x"))
            .json(&json!(2))
            .send()
            .await
            .unwrap();
        if resp.status() == 204 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "writes never recovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = back.elapsed();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&gw, "sluice_breaker_state").await != 0.0 {
        assert!(Instant::now() < deadline, "the breaker never closed");
        client.get(url("/v1/cache/cache/x")).send().await.unwrap();
    }
    assert!(metric(&gw, "sluice_breaker_transitions_total{to=\"half-open\"}").await >= 1.0);
    assert!(metric(&gw, "sluice_breaker_transitions_total{to=\"closed\"}").await >= 1.0);
    // The value written while open was refused, so the old one is what Redis has.
    let resp = client.get(url("/v1/cache/stale/btc")).send().await.unwrap();
    assert_eq!(
        resp.status(),
        404,
        "Redis restarted empty; the refused write left nothing"
    );
    println!(
        "breaker: opened after {failures} failures (slowest {slowest:?}); fast-fail p50 {:?} max {:?}; \
         writes recovered {recovered:?} after Redis was back",
        fast[fast.len() / 2],
        fast[fast.len() - 1]
    );
    assert!(
        recovered < Duration::from_millis(2500),
        "recovered only after {recovered:?}"
    );
}
