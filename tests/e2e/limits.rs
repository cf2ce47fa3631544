//! Bounds a hostile or unlucky client meets: every one a clear answer, the
//! gateway serving on. mget keys are read once and answers are capped in
//! bytes; field counts past what a plan may hold are the client's mistake;
//! a trickled body gets 408; past `max_in_flight` requests are shed with 503
//! and past `max_connections` new connections are closed.

use sluice_test_support as support;

use serde_json::{Value, json};
use support::{Gateway, Redis, assert_problem, config, metric, raw_http};

const PRICE: &str = "[domains.price]\nplugin = \"price-hash\"\nttl_s = 5\n";

/// A gateway whose `[server]` table also has `server_extra`.
fn gateway(redis: &Redis, server_extra: &str) -> Gateway {
    let text = config(redis, PRICE).replacen("[server]\n", &format!("[server]\n{server_extra}"), 1);
    Gateway::start(&text)
}

#[tokio::test]
async fn an_mget_reads_each_key_once_and_a_too_large_answer_is_413() {
    let redis = Redis::start();
    let gw = gateway(&redis, "max_response_bytes = 300000\n");
    let client = reqwest::Client::new();
    let big = "x".repeat(60_000);
    for k in ["a", "b", "c", "d", "e", "f"] {
        let resp = client
            .put(gw.url(&format!("/v1/cache/cache/{k}")))
            .json(&big)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
    }
    // The same key 1000 times: one read, one value in the answer.
    let trips = metric(&gw, "sluice_redis_round_trips_total").await;
    let resp = client
        .post(gw.url("/v1/mget/cache"))
        .json(&json!({"keys": vec!["a"; 1000]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["values"].as_object().unwrap().len(), 1);
    assert_eq!(
        metric(&gw, "sluice_redis_round_trips_total").await,
        trips + 1.0
    );
    // Six values of 60 KB are over 300 000 bytes: a 413 naming the limit.
    let resp = client
        .post(gw.url("/v1/mget/cache"))
        .json(&json!({"keys": ["a", "b", "c", "d", "e", "f"]}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(resp, 413).await;
    assert_eq!(problem["type"], "urn:sluice:problem:response-too-large");
    assert!(problem["detail"].as_str().unwrap().contains("300000"));
    // Four fit.
    let resp = client
        .post(gw.url("/v1/mget/cache"))
        .json(&json!({"keys": ["a", "b", "c", "d"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// PUT `n` values of `bytes` bytes under `{prefix}{i}` in the cache domain.
async fn put_values(gw: &Gateway, prefix: &str, n: usize, bytes: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let value = "x".repeat(bytes);
    let mut keys = Vec::new();
    for i in 0..n {
        let key = format!("{prefix}{i}");
        let url = gw.url(&format!("/v1/cache/cache/{key}"));
        let resp = client.put(url).json(&value).send().await.unwrap();
        let status = resp.status();
        assert_eq!(status, 204, "{}", resp.text().await.unwrap());
        keys.push(key);
    }
    keys
}

#[tokio::test]
async fn an_mget_reads_in_rounds_and_stops_at_the_first_past_the_limit() {
    let redis = Redis::start();
    // Rounds of 2 × 300 000 / 65 536 (max_body_bytes) = 9 keys.
    let gw = gateway(&redis, "max_response_bytes = 300000\n");
    let client = reqwest::Client::new();
    let large = put_values(&gw, "large", 40, 60_000).await;
    let small = put_values(&gw, "small", 20, 10).await;
    // 20 small values: three rounds (9, 9, 2), every value answered.
    let trips = metric(&gw, "sluice_redis_round_trips_total").await;
    let resp = client
        .post(gw.url("/v1/mget/cache"))
        .json(&json!({ "keys": small }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["values"].as_object().unwrap().len(), 20);
    assert!(
        body["values"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v.is_string())
    );
    assert_eq!(
        metric(&gw, "sluice_redis_round_trips_total").await,
        trips + 3.0
    );
    // 40 values of 60 KB: the first round (540 KB) passes the limit; the
    // other 31 are never read.
    let trips = metric(&gw, "sluice_redis_round_trips_total").await;
    let resp = client
        .post(gw.url("/v1/mget/cache"))
        .json(&json!({ "keys": large }))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(resp, 413).await;
    assert_eq!(problem["type"], "urn:sluice:problem:response-too-large");
    assert_eq!(
        metric(&gw, "sluice_redis_round_trips_total").await,
        trips + 1.0
    );
}

#[tokio::test]
async fn large_bodies_a_slow_client_has_not_read_are_bounded_in_sum() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = Redis::start();
    // (A debug build copies a 1 MB value into a plugin slowly: more time.)
    let text = config(&redis, PRICE)
        .replacen(
            "max_body_bytes = 65536\n",
            "max_body_bytes = 1048576\nmax_buffered_bytes = 41943040\n",
            1,
        )
        .replacen(
            "streams = true\n",
            "streams = true\nplugin_timeout_ms = 500\n",
            1,
        );
    let gw = Gateway::start(&text);
    let keys = put_values(&gw, "mb", 12, 1_000_000).await;
    let request = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
    let raw = [
        format!(
            "POST /v1/mget/cache HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            request.len()
        )
        .into_bytes(),
        request.clone(),
    ]
    .concat();
    // A client that asks for 12 MB and reads only the start: the kernel's
    // buffers take a few MB, the gateway holds the rest of the body.
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(&raw).await.unwrap();
    let mut start = vec![0; 16 * 1024];
    let n = slow.read(&mut start).await.unwrap();
    assert!(
        String::from_utf8_lossy(&start[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&start[..n.min(200)])
    );
    // Building a 12 MB JSON answer takes about three times that (values,
    // MessagePack, JSON); beside the 12 MB held, it does not fit in 40 MiB: shed.
    let client = reqwest::Client::new();
    let mget = || {
        client
            .post(gw.url("/v1/mget/cache"))
            .header("content-type", "application/json")
            .body(request.clone())
            .send()
    };
    let resp = mget().await.unwrap();
    assert_eq!(resp.headers()["retry-after"], "1");
    let problem = assert_problem(resp, 503).await;
    assert_eq!(problem["type"], "urn:sluice:problem:overloaded");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("max_buffered_bytes"),
        "{problem}"
    );
    assert!(metric(&gw, "sluice_shed_total{what=\"memory\"}").await >= 1.0);
    // Small answers are not held back meanwhile.
    let resp = client
        .get(gw.url("/v1/cache/cache/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // The slow client goes away: its share comes back.
    drop(slow);
    support::eventually(
        "the budget given back when the client went away",
        std::time::Duration::from_secs(10),
        async || mget().await.unwrap().status() == 200,
    )
    .await;
}

#[tokio::test]
async fn more_fields_than_a_plan_may_hold_are_the_clients_mistake() {
    let redis = Redis::start();
    let gw = gateway(&redis, "");
    let client = reqwest::Client::new();
    let fields: Vec<String> = (0..1025).map(|i| format!("f{i}")).collect();
    let url = gw.url(&format!("/v1/cache/price/btc?fields={}", fields.join(",")));
    assert_problem(client.get(&url).send().await.unwrap(), 400).await;
    let object: serde_json::Map<String, Value> =
        fields.iter().map(|f| (f.clone(), json!(1))).collect();
    let resp = client
        .put(gw.url("/v1/cache/price/btc"))
        .json(&object)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(resp, 400).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("1025 fields"),
        "{problem}"
    );
    // Not held against the plugin.
    let invalid = metric(
        &gw,
        "sluice_plugin_invalid_plans_total{plugin=\"price-hash\"}",
    )
    .await;
    assert_eq!(invalid, 0.0);
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408() {
    let redis = Redis::start();
    let gw = gateway(&redis, "body_timeout_ms = 200\n");
    let request = b"PUT /v1/cache/cache/k HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n1";
    let answer = raw_http(&gw.base, request).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("urn:sluice:problem:body-timeout"),
        "{answer}"
    );
    let resp = reqwest::get(gw.url("/healthz")).await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_in_flight_limit_are_shed_with_503() {
    let redis = Redis::start();
    let gw = gateway(&redis, "max_in_flight = 2\n");
    let client = reqwest::Client::new();
    let group = gw.url("/v1/streams/cache:events/groups/g");
    assert_eq!(client.post(&group).send().await.unwrap().status(), 201);
    let poll = format!("{group}/messages?consumer=c&block_ms=5000");
    let polls: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client.get(&poll).send()))
        .collect();
    // Redis says when both long-polls hold their in-flight slots.
    support::eventually(
        "both long-polls blocked",
        std::time::Duration::from_secs(4),
        async || redis.info("blocked_clients") == "2",
    )
    .await;
    let resp = client.get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.headers()["retry-after"], "1");
    let shed = assert_problem(resp, 503).await;
    assert_eq!(shed["type"], "urn:sluice:problem:overloaded");
    for p in polls {
        assert_eq!(p.await.unwrap().unwrap().status(), 200);
    }
    // Once they are done, requests are served again.
    assert_eq!(
        client
            .get(gw.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(metric(&gw, "sluice_shed_total{what=\"request\"}").await >= 1.0);
}

/// The limit holds over every HTTP thread: three threads, each with its
/// own listener, share one count of open connections.
#[tokio::test]
async fn connections_past_the_limit_are_closed_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = Redis::start();
    let gw = gateway(&redis, "max_connections = 2\nthreads = 3\n");
    let threads = || -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/task", gw.pid()))
            .map(|dir| {
                dir.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                    .map(|n| n.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    support::eventually(
        "two HTTP threads beside the main one",
        std::time::Duration::from_secs(5),
        async || {
            let names = threads();
            ["sluice-http-1", "sluice-http-2"]
                .iter()
                .all(|t| names.iter().any(|n| n == t))
        },
    )
    .await;
    let addr = gw.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s); // kept open (keep-alive)
    }
    let mut third = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = third
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 256];
    let n = third.read(&mut buf).await.unwrap_or(0);
    assert_eq!(
        n,
        0,
        "closed without an answer: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    drop(held);
    // Slots free again once the held connections close.
    let mut ok = false;
    for _ in 0..200 {
        if let Ok(resp) = reqwest::get(gw.url("/healthz")).await
            && resp.status() == 200
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(ok, "the gateway never accepted again");
}

/// SIGTERM: the listener closes, a long-poll ends at once with an empty 200
/// (not after its 30 s), and the process exits well within the drain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_long_polls_early_and_exits_within_the_drain() {
    let redis = Redis::start();
    let mut gw = gateway(&redis, "drain_ms = 5000\n");
    let client = reqwest::Client::new();
    let group = gw.url("/v1/streams/cache:events/groups/g");
    assert_eq!(client.post(&group).send().await.unwrap().status(), 201);
    let poll = tokio::spawn(
        client
            .get(format!("{group}/messages?consumer=c&block_ms=30000"))
            .send(),
    );
    support::eventually(
        "the long-poll blocked",
        std::time::Duration::from_secs(5),
        async || redis.info("blocked_clients") == "1",
    )
    .await;
    let sent = std::time::Instant::now();
    gw.signal("TERM");
    let resp = poll.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"messages": []}));
    let ended = sent.elapsed();
    assert!(
        gw.exited_within(std::time::Duration::from_secs(5)),
        "still running after SIGTERM"
    );
    println!("shutdown: long-poll answered {ended:?} after SIGTERM");
}

/// `[clients.NAME]` with `key`'s hash, the `cache` and `arbitrage` domains
/// in every scope, and `quota` (TOML lines).
fn quota_client(name: &str, key: &str, quota: &str) -> String {
    format!(
        "\n[clients.{name}]\nkey_sha256 = \"{}\"\nread = [\"cache\"]\nwrite = [\"cache\"]\nevents = [\"cache\", \"arbitrage\"]\n{quota}\n",
        sluice::auth::hash_key(key.as_bytes())
    )
}

const ARBITRAGE: &str = "[domains.arbitrage]\nplugin = \"stream-router\"\nstreams = true\nmax_event_bytes = 3000\n[domains.arbitrage.settings]\nper_asset = false\n";

/// What Redis holds for `keys` of the cache domain: the bytes of each value
/// as stored, and `MEMORY USAGE` summed (values, keys and Redis's overhead).
fn stored(redis: &Redis, keys: &[String]) -> (u64, u64) {
    let mut conn = redis.conn();
    let mut bytes = 0;
    let mut memory = 0;
    for key in keys {
        let key = format!("cache:{key}");
        bytes += redis::cmd("STRLEN")
            .arg(&key)
            .query::<u64>(&mut conn)
            .unwrap();
        let usage: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .query(&mut conn)
            .unwrap();
        memory += usage.unwrap_or(0);
    }
    (bytes, memory)
}

/// The attack review's case: one client writes large values as fast as it
/// can. What it gets into Redis is bounded by its budget — burst plus rate
/// times the time it spent, measured around the loop, so a slow machine
/// only loosens the bound — while another client's writes, interleaved,
/// all succeed.
#[tokio::test]
async fn one_client_cannot_fill_redis_past_its_write_budget_while_another_writes_on() {
    let redis = Redis::start();
    let (rate, burst) = (2_000u64, 40_000u64);
    let clients = [
        quota_client(
            "greedy",
            "greedy-key-0123456789",
            &format!("write_bytes_per_s = {rate}\nwrite_burst_bytes = {burst}"),
        ),
        quota_client(
            "steady",
            "steady-key-0123456789",
            "write_bytes_per_s = 10000000",
        ),
    ]
    .concat();
    let gw = Gateway::start(&config(&redis, &format!("{ARBITRAGE}{clients}")));
    let http = reqwest::Client::new();
    let value = "x".repeat(15_990);
    // As stored: a MessagePack str 16 (3 bytes of header) and the key.
    let cost = |key: &str| (key.len() + value.len() + 3) as u64;
    let put = |key: &str, bearer: &str| {
        http.put(gw.url(&format!("/v1/cache/cache/{key}")))
            .bearer_auth(bearer)
            .json(&value)
            .send()
    };
    let (mut accepted, mut refused, mut written) = (0u64, 0, Vec::new());
    let started = std::time::Instant::now();
    for i in 0..40 {
        let key = format!("greedy{i}");
        let resp = put(&key, "greedy-key-0123456789").await.unwrap();
        match resp.status().as_u16() {
            204 => {
                accepted += cost(&key);
                written.push(key);
            }
            429 => {
                let retry: u64 = resp.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(retry >= 1);
                assert_eq!(
                    resp.headers()["ratelimit-limit"],
                    burst.to_string().as_str()
                );
                let remaining: u64 = resp.headers()["ratelimit-remaining"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(remaining < cost(&key), "refused with room left");
                let problem = assert_problem(resp, 429).await;
                assert_eq!(problem["type"], "urn:sluice:problem:write-quota-exceeded");
                refused += 1;
            }
            other => panic!("greedy's write {i}: {other}"),
        }
        let key = format!("steady{i}");
        let resp = put(&key, "steady-key-0123456789").await.unwrap();
        assert_eq!(resp.status(), 204, "steady's write {i}");
    }
    let elapsed = started.elapsed();
    // Redis's clock counts whole ms: one more at most.
    let allowed = burst + rate * (elapsed.as_millis() as u64 + 1) / 1000;
    let (bytes, memory) = stored(&redis, &written);
    let keys: u64 = written.iter().map(|k| k.len() as u64).sum();
    println!(
        "greedy: {} accepted ({accepted} B), {refused} refused in {elapsed:?}; budget {allowed} B; Redis holds {bytes} B of values, MEMORY USAGE {memory} B",
        written.len()
    );
    assert!(
        accepted <= allowed,
        "{accepted} B accepted, {allowed} B allowed"
    );
    assert_eq!(
        bytes + keys,
        accepted,
        "what was accepted is what Redis holds"
    );
    // Redis's own overhead per key (its header, the key, the allocator's
    // rounding of a 16 KB value) is not the client's budget: 1 KiB each.
    assert!(
        memory <= allowed + 1024 * written.len() as u64,
        "{memory} B"
    );
    assert!(
        refused >= 30,
        "most of 40 writes of 16 KB are over 40 KB + 2 KB/s"
    );
    let steady = stored(
        &redis,
        &(0..40).map(|i| format!("steady{i}")).collect::<Vec<_>>(),
    );
    assert_eq!(steady.0, 40 * 15_993);
    assert_eq!(
        metric(
            &gw,
            "sluice_quota_refused_total{client=\"greedy\",quota=\"write_bytes\"}"
        )
        .await,
        refused as f64
    );
    assert_eq!(
        metric(&gw, "sluice_write_bytes_total{client=\"greedy\"}").await,
        accepted as f64
    );
}

/// Every write route draws from one budget: a PUT, an mset and a publish;
/// a refused write writes nothing; a write larger than the bucket ever
/// holds, or a value or event over its domain's limit, is a 413 naming it.
#[tokio::test]
async fn every_write_route_draws_from_the_budget_and_values_are_held_to_their_domain() {
    let redis = Redis::start();
    let text = config(
        &redis,
        &format!(
            "max_value_bytes = 2000\n{ARBITRAGE}{}",
            quota_client(
                "svc",
                "svc-key-0123456789",
                "write_bytes_per_s = 1\nwrite_burst_bytes = 2500"
            )
        ),
    );
    let gw = Gateway::start(&text);
    let http = reqwest::Client::new();
    let (small, big) = ("y".repeat(1_500), "z".repeat(2_100));
    let (put, post) = (reqwest::Method::PUT, reqwest::Method::POST);
    let event = |data: &str| json!({"type": "t", "data": data});
    for (method, path, body, status, names) in [
        // Over a domain's limit: 413 before any budget is taken.
        (
            put.clone(),
            "cache/cache/big",
            json!(big),
            413,
            "domains.cache.max_value_bytes",
        ),
        (
            post.clone(),
            "mset/cache",
            json!({"items": {"ok": 1, "big": big}}),
            413,
            "domains.cache.max_value_bytes",
        ),
        (
            post.clone(),
            "events/arbitrage",
            event(&"e".repeat(3_100)),
            413,
            "domains.arbitrage.max_event_bytes",
        ),
        // 1.5 KB of the 2.5 KB burst; the next 1.5 KB, by mset or by
        // publish, is over what is left.
        (put, "cache/cache/first", json!(small), 204, ""),
        (
            post.clone(),
            "mset/cache",
            json!({"items": {"second": small}}),
            429,
            "clients.svc.write_bytes_per_s",
        ),
        (
            post.clone(),
            "events/arbitrage",
            event(&small),
            429,
            "clients.svc.write_bytes_per_s",
        ),
        // More than the bucket ever holds: never a 429 to wait out, a 413.
        (
            post,
            "mset/cache",
            json!({"items": {"a": small, "b": small}}),
            413,
            "clients.svc.write_burst_bytes",
        ),
    ] {
        let resp = http
            .request(method, gw.url(&format!("/v1/{path}")))
            .bearer_auth("svc-key-0123456789")
            .json(&body)
            .send()
            .await
            .unwrap();
        if status == 204 {
            assert_eq!(resp.status(), 204, "{path}");
            continue;
        }
        if status == 429 {
            assert_eq!(resp.headers()["ratelimit-limit"], "2500", "{path}");
            assert!(resp.headers().contains_key("retry-after"), "{path}");
        }
        let problem = assert_problem(resp, status).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(names), "{path}: {detail}");
    }
    let mut conn = redis.conn();
    let exists: u64 = redis::cmd("EXISTS")
        .arg(&[
            "cache:second",
            "arbitrage:t",
            "cache:big",
            "cache:ok",
            "cache:a",
        ])
        .query(&mut conn)
        .unwrap();
    assert_eq!(exists, 0, "refused writes wrote nothing");
    // The bucket lives under the gateway's own prefix, beside no policy's.
    let bucket: u64 = redis::cmd("EXISTS")
        .arg("ratelimit:quota/write-bytes:svc")
        .query(&mut conn)
        .unwrap();
    assert_eq!(bucket, 1);
    assert_eq!(
        metric(
            &gw,
            "sluice_quota_refused_total{client=\"svc\",quota=\"write_bytes\"}"
        )
        .await,
        3.0
    );
}

/// A client holds at most `max_long_polls` blocking reads: its next one is
/// a 429 for it alone, while another client still gets a long-poll; one
/// dropped half-way gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_its_long_polls_gets_429_while_another_still_gets_one() {
    let redis = Redis::start();
    // pool_size 4, 2 shared lanes: 2 connections for blocking reads, so
    // one long-poll each by default (2 clients with `events`).
    let clients = [
        quota_client("a", "a-key-0123456789", ""),
        quota_client("b", "b-key-0123456789", ""),
    ]
    .concat();
    let gw = Gateway::start(&config(&redis, &format!("{ARBITRAGE}{clients}")));
    let http = reqwest::Client::new();
    let group = |g: &str| gw.url(&format!("/v1/streams/cache:events/groups/{g}"));
    for (g, key) in [("ga", "a-key-0123456789"), ("gb", "b-key-0123456789")] {
        let resp = http.post(group(g)).bearer_auth(key).send().await.unwrap();
        assert_eq!(resp.status(), 201);
    }
    let poll = |g: &str, key: &str, block_ms: u64| {
        http.get(format!(
            "{}/messages?consumer=c&block_ms={block_ms}",
            group(g)
        ))
        .bearer_auth(key)
        .send()
    };
    let first = tokio::spawn(poll("ga", "a-key-0123456789", 30_000));
    support::eventually("a's long-poll blocked", support::STARTUP, async || {
        redis.info("blocked_clients") == "1"
    })
    .await;
    let resp = poll("ga", "a-key-0123456789", 30_000).await.unwrap();
    assert_eq!(resp.headers()["retry-after"], "1");
    let problem = assert_problem(resp, 429).await;
    assert_eq!(
        problem["type"],
        "urn:sluice:problem:long-poll-quota-exceeded"
    );
    // A read that does not block is no long-poll.
    let resp = poll("ga", "a-key-0123456789", 0).await.unwrap();
    assert_eq!(resp.status(), 200);
    // b takes the other connection: a could not take both.
    let second = tokio::spawn(poll("gb", "b-key-0123456789", 30_000));
    support::eventually(
        "b's long-poll blocked beside a's",
        support::STARTUP,
        async || redis.info("blocked_clients") == "2",
    )
    .await;
    assert_eq!(metric(&gw, "sluice_long_polls{client=\"a\"}").await, 1.0);
    assert_eq!(
        metric(
            &gw,
            "sluice_quota_refused_total{client=\"a\",quota=\"long_polls\"}"
        )
        .await,
        1.0
    );
    // a's client goes away half-way: its place comes back.
    first.abort();
    support::eventually("a's long-poll given back", support::STARTUP, async || {
        metric(&gw, "sluice_long_polls{client=\"a\"}").await == 0.0
    })
    .await;
    let resp = poll("ga", "a-key-0123456789", 10).await.unwrap();
    assert_eq!(resp.status(), 200);
    // An event ends b's read with it.
    let _: String = redis::cmd("XADD")
        .arg("cache:events")
        .arg("*")
        .arg("n")
        .arg(1)
        .query(&mut redis.conn())
        .unwrap();
    let resp = second.await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(1));
}
