//! The host owns Redis: one pool within its budget, recovery after a Redis
//! restart, the script cache, pipelines, the rate limiter, metrics and
//! readiness — each against a real redis-server.

use sluice_test_support as support;

use redis::Commands;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{Gateway, Redis, assert_problem, config, metric};

const RATELIMIT: &str = r#"
[ratelimits.t]
capacity = 50
refill_per_s = 0.001
when_unavailable = "fail-closed"

[ratelimits.open]
capacity = 5
refill_per_s = 1
"#;

async fn put(client: &reqwest::Client, gw: &Gateway, key: &str, v: &Value) -> reqwest::Response {
    client
        .put(gw.url(&format!("/v1/cache/cache/{key}")))
        .header("content-type", "application/json")
        .body(v.to_string())
        .send()
        .await
        .expect("PUT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_clients_stay_within_the_pool_budget_under_mixed_load() {
    let redis = Redis::start();
    let gw = Arc::new(Gateway::start(&config(&redis, RATELIMIT)));
    let client = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let group = gw.url("/v1/streams/cache:events/groups/g");
    assert_eq!(client.post(&group).send().await.unwrap().status(), 201);
    let mut tasks = Vec::new();
    // Two consumers in blocking reads: each holds a connection of its own
    // while it waits, from the same budget of 4 (2 shared + 2 exclusive).
    for c in 0..2 {
        let (gw, client, stop, done) = (gw.clone(), client.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let url = gw.url(&format!(
                "/v1/streams/cache:events/groups/g/messages?consumer=c{c}&block_ms=50&count=100"
            ));
            while !stop.load(Ordering::Relaxed) {
                let resp = client.get(&url).send().await.unwrap();
                assert_eq!(resp.status(), 200, "stream read failed under load");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in 0..16u64 {
        let (gw, client, stop, done) = (gw.clone(), client.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("k{}", i % 50);
                let ok = match (t + i) % 4 {
                    0 => put(&client, &gw, &key, &json!(i))
                        .await
                        .status()
                        .is_success(),
                    1 => client
                        .get(gw.url(&format!("/v1/cache/cache/{key}")))
                        .send()
                        .await
                        .is_ok(),
                    2 => {
                        let items: serde_json::Map<String, Value> =
                            (0..20).map(|j| (format!("b{j}"), json!(j))).collect();
                        client
                            .post(gw.url("/v1/mset/cache"))
                            .json(&json!({ "items": items }))
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200)
                    }
                    _ => client
                        .post(gw.url(&format!("/v1/ratelimit/open/s{t}")))
                        .send()
                        .await
                        .is_ok(),
                };
                assert!(ok, "request failed under load");
                i += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Sample Redis's view while the load runs (the sampling connection is ours: -1).
    let mut max_clients = 0;
    let started = Instant::now();
    let mut sampler = redis.conn();
    while done.load(Ordering::Relaxed) < 4000 || started.elapsed() < Duration::from_secs(1) {
        // The sampling connection also feeds the stream.
        let _: String = redis::cmd("XADD")
            .arg("cache:events")
            .arg("*")
            .arg("e")
            .arg("1")
            .query(&mut sampler)
            .unwrap();
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query(&mut sampler)
            .unwrap();
        let clients: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        max_clients = max_clients.max(clients - 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "load did not finish"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "connected_clients max {max_clients} (pool_size 4) over {} requests in {:?}",
        done.load(Ordering::Relaxed),
        started.elapsed()
    );
    assert!(max_clients >= 1);
    assert!(
        max_clients <= 4,
        "Redis saw {max_clients} clients from a pool of 4"
    );
}

#[tokio::test]
async fn a_redis_restart_between_calls_costs_clients_no_error() {
    let mut redis = Redis::start();
    let gw = Gateway::start(&config(&redis, RATELIMIT));
    let client = reqwest::Client::new();
    assert_eq!(put(&client, &gw, "a", &json!(1)).await.status(), 204);
    let resp = client
        .post(gw.url("/v1/ratelimit/t/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    redis.restart();
    let back = Instant::now();
    // The gateway learnt of the closed connection when it closed: the next
    // calls reconnect, reload scripts and succeed.
    assert_eq!(put(&client, &gw, "a", &json!(2)).await.status(), 204);
    let resp = client
        .post(gw.url("/v1/ratelimit/t/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "rate limit after restart");
    println!(
        "first write after the restart answered in {:?}",
        back.elapsed()
    );

    // SCRIPT FLUSH behind the gateway's back: NOSCRIPT is recovered in place.
    let before = metric(&gw, "sluice_script_noscript_recoveries_total").await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut redis.conn())
        .unwrap();
    let resp = client
        .post(gw.url("/v1/ratelimit/t/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "rate limit after SCRIPT FLUSH");
    let after = metric(&gw, "sluice_script_noscript_recoveries_total").await;
    assert_eq!(after - before, 1.0);
    let resp = client.get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_100_key_mset_and_mget_each_cost_one_round_trip() {
    let redis = Redis::start();
    // No INFO poll may land between two scrapes.
    let gw = Gateway::start(&config(&redis, "[metrics]\ninfo_interval_ms = 600000\n"));
    let client = reqwest::Client::new();
    let items: serde_json::Map<String, Value> = (0..100)
        .map(|i| (format!("item{i:03}"), json!({"n": i})))
        .collect();

    let trips = metric(&gw, "sluice_redis_round_trips_total").await;
    let resp = client
        .post(gw.url("/v1/mset/cache"))
        .json(&json!({"items": items, "ttl_s": 120}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"stored": 100}));
    assert_eq!(
        metric(&gw, "sluice_redis_round_trips_total").await - trips,
        1.0
    );
    let pttl: i64 = redis.conn().pttl("cache:item042").unwrap();
    assert!((110_000..=120_000).contains(&pttl), "PTTL {pttl}");

    // A key of the wrong type, among 100 present and one absent.
    let _: () = redis.conn().hset("cache:wrong", "f", "v").unwrap();
    let mut keys: Vec<String> = (0..100).map(|i| format!("item{i:03}")).collect();
    keys.push("absent".into());
    keys.push("wrong".into());
    let trips = metric(&gw, "sluice_redis_round_trips_total").await;
    let resp = client
        .post(gw.url("/v1/mget/cache"))
        .json(&json!({ "keys": keys }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        metric(&gw, "sluice_redis_round_trips_total").await - trips,
        1.0
    );
    assert_eq!(body["values"]["item007"], json!({"n": 7}));
    assert_eq!(body["values"]["absent"], Value::Null);
    // The plain reads went as one MGET, where a key of another type reads
    // as absent (a GET of it alone is a 502 WRONGTYPE).
    assert_eq!(body["values"]["wrong"], Value::Null, "{body}");
    assert_eq!(body["values"].as_object().unwrap().len(), 102);
    let resp = client
        .get(gw.url("/v1/cache/cache/wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);

    // MessagePack in and out, too.
    let req = rmp_serde::to_vec_named(&json!({"keys": ["item001"]})).unwrap();
    let resp = client
        .post(gw.url("/v1/mget/cache"))
        .header("content-type", "application/msgpack")
        .header("accept", "application/msgpack")
        .body(req)
        .send()
        .await
        .unwrap();
    let body: Value = rmp_serde::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body, json!({"values": {"item001": {"n": 1}}}));

    // Batches are bounded and validated.
    let resp = client
        .post(gw.url("/v1/mget/cache"))
        .json(&json!({"keys": vec!["k"; 1001]}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
    let resp = client
        .post(gw.url("/v1/mget/cache"))
        .json(&json!({"kees": []}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_clients_hammering_a_bucket_are_admitted_exactly_its_capacity() {
    let redis = Redis::start();
    let gw = Arc::new(Gateway::start(&config(&redis, RATELIMIT)));
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (gw, client) = (gw.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let (mut allowed, mut limited) = (0, 0);
            for _ in 0..30 {
                let resp = client
                    .post(gw.url("/v1/ratelimit/t/alice"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.headers()["ratelimit-limit"], "50");
                assert!(resp.headers().contains_key("ratelimit-remaining"));
                assert!(resp.headers().contains_key("ratelimit-reset"));
                match resp.status().as_u16() {
                    200 => allowed += 1,
                    429 => {
                        assert!(resp.headers().contains_key("retry-after"));
                        limited += 1;
                    }
                    s => panic!("unexpected status {s}"),
                }
            }
            (allowed, limited)
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += t.await.unwrap().0;
    }
    assert_eq!(allowed, 50, "4 × 30 requests against a bucket of 50");
    // One hash per bucket, expiring when it would be full again.
    let pttl: i64 = redis.conn().pttl("ratelimit:t:alice").unwrap();
    assert!(pttl > 0);
    assert_eq!(
        metric(
            &gw,
            "sluice_ratelimit_total{policy=\"t\",result=\"allowed\"}"
        )
        .await,
        50.0
    );
    // A different subject has its own bucket; cost is bounded by capacity.
    let resp = client
        .post(gw.url("/v1/ratelimit/t/bob?cost=50"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The refusal is a problem document like any other, in the format the
    // client accepts.
    let resp = client
        .post(gw.url("/v1/ratelimit/t/bob"))
        .header("accept", "application/msgpack")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+msgpack"
    );
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = rmp_serde::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["type"], "urn:sluice:problem:rate-limited");
    assert!(body["retry_after_ms"].as_u64().unwrap() > 0);
    let resp = client
        .post(gw.url("/v1/ratelimit/t/bob?cost=51"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
    let resp = client
        .post(gw.url("/v1/ratelimit/nope/bob"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 404).await;
}

#[tokio::test]
async fn metrics_carry_redis_info_and_the_gateways_own_families() {
    let redis = Redis::start();
    // Redis's own limit, which the alerts divide by.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("64mb")
        .query(&mut redis.conn())
        .unwrap();
    let fast_info = format!("{RATELIMIT}\n[metrics]\ninfo_interval_ms = 200\n");
    let gw = Gateway::start(&config(&redis, &fast_info));
    let client = reqwest::Client::new();
    put(&client, &gw, "m", &json!("v")).await;
    client
        .get(gw.url("/v1/cache/cache/m"))
        .send()
        .await
        .unwrap();
    client
        .get(gw.url("/v1/cache/cache/missing"))
        .send()
        .await
        .unwrap();
    client
        .post(gw.url("/v1/ratelimit/t/m"))
        .send()
        .await
        .unwrap();
    // The INFO poller runs every 200 ms here.
    let mut used = 0.0;
    for _ in 0..500 {
        used = metric(&gw, "redis_memory_used_bytes").await;
        if used > 0.0 && metric(&gw, "redis_keyspace_misses_total").await >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(used > 100_000.0, "redis_memory_used_bytes {used}");
    assert_eq!(
        metric(&gw, "redis_maxmemory_bytes").await,
        64.0 * 1024.0 * 1024.0
    );
    let text = support::scrape(&gw).await;
    for family in [
        "redis_memory_used_bytes",
        "redis_memory_peak_bytes",
        "redis_maxmemory_bytes",
        "redis_memory_fragmentation_ratio",
        "redis_keyspace_hits_total",
        "redis_keyspace_misses_total",
        "redis_connected_clients",
        "redis_evicted_keys_total",
        "sluice_http_request_duration_seconds_bucket",
        "sluice_redis_pool_connections",
        "sluice_redis_pool_wait_seconds",
        "sluice_breaker_state",
        "sluice_script_loads_total",
        "sluice_redis_pipeline_commands",
        "sluice_ratelimit_total",
    ] {
        assert!(text.contains(family), "no {family} in /metrics:\n{text}");
    }
    assert!(metric(&gw, "redis_memory_peak_bytes").await >= used);
    assert!(metric(&gw, "redis_connected_clients").await >= 1.0);
    assert!(metric(&gw, "redis_keyspace_hits_total").await >= 1.0);
    assert_eq!(metric(&gw, "sluice_breaker_state").await, 0.0);
    assert!(metric(&gw, "sluice_script_loads_total").await >= 2.0);
    assert!(
        metric(&gw, "sluice_http_request_duration_seconds_count{domain=\"cache\",route=\"cache\",status=\"200\"}").await >= 1.0,
        "{text}"
    );
    assert!(
        metric(&gw, "sluice_http_request_duration_seconds_count{domain=\"cache\",route=\"cache\",status=\"404\"}").await >= 1.0
    );
    // No per-key labels, ever.
    assert!(!text.contains("missing"), "a key leaked into a label");
}

#[tokio::test]
async fn readiness_needs_redis_to_run_a_script() {
    let mut redis = Redis::start();
    let gw = Gateway::start(&config(&redis, ""));
    let resp = reqwest::get(gw.url("/readyz")).await.unwrap();
    assert_eq!(resp.status(), 200);
    redis.kill();
    let resp = reqwest::get(gw.url("/readyz")).await.unwrap();
    assert_problem(resp, 503).await;
    redis.restart();
    wait_until_ready(&gw).await;
}

async fn wait_until_ready(gw: &Gateway) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if reqwest::get(gw.url("/readyz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
