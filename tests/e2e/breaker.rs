//! The circuit breaker against a real Redis that is killed and restarted:
//! it opens, fails fast without touching Redis, serves stale copies where the
//! domain allows, probes in the background, half-opens and closes.

use sluice_test_support as support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{Gateway, Redis, assert_problem, config, eventually, metric};

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

    // A 3 s outage, then Redis is back: writes succeed again within about one
    // probe interval (50 ms) plus the reconnect.
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
        tokio::time::sleep(Duration::from_millis(5)).await;
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

/// Long-polls holding every blocking-read connection make further reads a
/// `503 busy` of their own; Redis is fine, so the breaker counts none of it
/// and every other route keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_out_of_blocking_connections_is_busy_without_opening_the_breaker() {
    let redis = Redis::start();
    // pool_size 4, 2 shared lanes: 2 connections for blocking reads.
    let gw = Gateway::start(&config(&redis, "[breaker]\nfailure_threshold = 2\n"));
    let client = reqwest::Client::new();
    let group = gw.url("/v1/streams/cache:events/groups/g");
    assert_eq!(client.post(&group).send().await.unwrap().status(), 201);
    let long_poll = format!("{group}/messages?consumer=c&block_ms=5000");
    let polls: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client.get(&long_poll).send()))
        .collect();
    // Redis says when both long-polls are blocked on their connections.
    eventually(
        "both long-polls blocked",
        Duration::from_secs(4),
        async || redis.info("blocked_clients") == "2",
    )
    .await;
    // Now every further blocking read finds no connection left.
    let read = format!("{group}/messages?consumer=c&block_ms=1");
    for _ in 0..10 {
        let resp = client.get(&read).send().await.unwrap();
        let body = assert_problem(resp, 503).await;
        assert_eq!(body["type"], "urn:sluice:problem:busy");
    }
    assert_eq!(
        metric(&gw, "sluice_breaker_state").await,
        0.0,
        "still closed"
    );
    let resp = client
        .get(gw.url("/v1/cache/cache/x"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 404).await;
    for p in polls {
        assert_eq!(p.await.unwrap().unwrap().status(), 200);
    }
}
