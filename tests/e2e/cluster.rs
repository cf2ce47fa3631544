//! Sluice in front of a Redis Cluster (3 primaries, 3 replicas of Debian's
//! redis-server on loopback ports): the local cluster itself (slots spread
//! over the primaries, writes replicated, a killed primary's replica
//! promoted), then the gateway on it (`redis.cluster = true`).

use sluice_test_support as support;

use redis::Commands;
use redis::cluster_routing::Slot;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Cluster, Gateway, assert_problem, config_url, eventually};

/// Keys `k0`, `k1`, … until one lands on each of the cluster's primaries.
fn one_key_per_primary(cluster: &Cluster) -> Vec<(String, String)> {
    let primaries = cluster.primaries();
    let mut found: Vec<(String, String)> = Vec::new();
    for i in 0.. {
        let key = format!("k{i}");
        let node = cluster.node_for_key(&key);
        if !found.iter().any(|(_, n)| *n == node) {
            found.push((key, node));
        }
        if found.len() == primaries.len() {
            return found;
        }
        assert!(i < 10_000, "no key for every primary: {found:?}");
    }
    unreachable!()
}

#[test]
fn slots_spread_over_three_primaries_and_writes_reach_their_replica() {
    let cluster = Cluster::start();
    let primaries = cluster.primaries();
    let replicas = cluster.replicas();
    assert_eq!(primaries.len(), 3, "primaries: {primaries:?}");
    assert_eq!(replicas.len(), 3, "replicas: {replicas:?}");
    assert_eq!(cluster.seeds().len(), 6);
    // Every slot is served by exactly one primary.
    for slot in 0..16384u16 {
        let serving = primaries.iter().filter(|p| p.serves(slot)).count();
        assert_eq!(serving, 1, "slot {slot} served by {serving} primaries");
    }
    // One replica per primary, serving its slots.
    let of: BTreeSet<&str> = replicas
        .iter()
        .filter_map(|r| r.primary.as_deref())
        .collect();
    let all: BTreeSet<&str> = primaries.iter().map(|p| p.addr.as_str()).collect();
    assert_eq!(of, all, "each primary has a replica");
    for r in &replicas {
        let p = primaries
            .iter()
            .find(|p| Some(&p.addr) == r.primary.as_ref());
        assert_eq!(Some(&r.slots), p.map(|p| &p.slots));
    }

    // What a cluster client reads its topology from: every node lists all six.
    for node in primaries.iter().chain(&replicas) {
        let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut cluster.conn(&node.addr))
            .expect("CLUSTER SLOTS");
        let listed: usize = ranges.iter().map(|r| r.len() - 2).sum();
        assert_eq!(listed, 6, "{}'s CLUSTER SLOTS: {ranges:?}", node.addr);
    }

    let keys = one_key_per_primary(&cluster);
    for (key, addr) in &keys {
        let mut primary = cluster.conn(addr);
        let () = redis::cmd("SET")
            .arg(key)
            .arg(format!("on {addr}"))
            .query(&mut primary)
            .expect("SET on the key's primary");
        // Another primary redirects: the slot is not its.
        let other = keys
            .iter()
            .find(|(_, a)| a != addr)
            .map(|(_, a)| a)
            .unwrap();
        let err = redis::cmd("GET")
            .arg(key)
            .query::<Option<String>>(&mut cluster.conn(other))
            .expect_err("another primary answers for the key");
        assert_eq!(err.code(), Some("MOVED"), "{err}");
        // Replicated: WAIT counts the replica's acknowledgement, and the
        // replica (in READONLY mode) has the value.
        let acked: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(10_000)
            .query(&mut primary)
            .expect("WAIT");
        assert_eq!(acked, 1, "{key}: the replica acknowledged the write");
        let replica = replicas
            .iter()
            .find(|r| r.primary.as_deref() == Some(addr.as_str()))
            .expect("the primary's replica");
        let mut conn = cluster.conn(&replica.addr);
        let () = redis::cmd("READONLY").query(&mut conn).expect("READONLY");
        let got: Option<String> = redis::cmd("GET").arg(key).query(&mut conn).expect("GET");
        assert_eq!(got.as_deref(), Some(format!("on {addr}").as_str()));
    }
}

#[test]
fn a_killed_primarys_replica_is_promoted_with_its_data() {
    let mut cluster = Cluster::start();
    let keys = one_key_per_primary(&cluster);
    for (key, addr) in &keys {
        let mut c = cluster.conn(addr);
        let () = redis::cmd("SET")
            .arg(key)
            .arg("before")
            .query(&mut c)
            .unwrap();
        let acked: i64 = redis::cmd("WAIT").arg(1).arg(10_000).query(&mut c).unwrap();
        assert_eq!(acked, 1, "{key} replicated before the kill");
    }
    let (key, dead) = keys[0].clone();
    let replica = cluster
        .replicas()
        .into_iter()
        .find(|r| r.primary.as_deref() == Some(dead.as_str()))
        .expect("the primary's replica");
    let slots = cluster
        .primaries()
        .into_iter()
        .find(|p| p.addr == dead)
        .unwrap()
        .slots;

    cluster.kill(&dead);
    // The other primaries serve their keys while the dead one's slots wait.
    for (k, addr) in &keys[1..] {
        let got: Option<String> = redis::cmd("GET")
            .arg(k)
            .query(&mut cluster.conn(addr))
            .unwrap();
        assert_eq!(got.as_deref(), Some("before"));
    }
    let promoted = cluster.wait_promoted(&dead);

    assert_eq!(
        promoted, replica.addr,
        "the dead primary's replica took over"
    );
    let primaries = cluster.primaries();
    assert_eq!(primaries.len(), 3, "{primaries:?}");
    let new = primaries
        .iter()
        .find(|p| p.addr == promoted)
        .expect("promoted primary");
    assert_eq!(
        new.slots, slots,
        "the promoted primary serves the dead one's slots"
    );
    assert_eq!(cluster.node_for_key(&key), promoted);
    assert_eq!(cluster.seeds().len(), 5);
    let mut c = cluster.conn(&promoted);
    let got: Option<String> = redis::cmd("GET").arg(&key).query(&mut c).unwrap();
    assert_eq!(
        got.as_deref(),
        Some("before"),
        "the replicated write survived"
    );
    let () = redis::cmd("SET")
        .arg(&key)
        .arg("after")
        .query(&mut c)
        .expect("writes resume");
}

/// `GET` calls a node has run (`INFO commandstats`).
fn gets_on(cluster: &Cluster, addr: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut cluster.conn(addr))
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|v| v.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// A gateway on the cluster: `url` one node, `seeds` the others.
fn gateway_on(cluster: &Cluster, extra: &str) -> Gateway {
    Gateway::start(&config_on(cluster, extra))
}

fn config_on(cluster: &Cluster, extra: &str) -> String {
    let seeds = cluster.seeds();
    let others: Vec<String> = seeds[1..].iter().map(|s| format!("{s:?}")).collect();
    config_url(&seeds[0], extra).replacen(
        "[redis]\n",
        &format!("[redis]\ncluster = true\nseeds = [{}]\n", others.join(", ")),
        1,
    )
}

/// The routes that do not touch keys work on a cluster too: health, the
/// OpenAPI document, metrics (a breaker per primary), the admin API and a
/// reload, and the status page behind its login, with each primary's
/// breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_and_admin_routes_work_on_a_cluster() {
    const TOKEN: &str = "cluster-admin-token-0123456789";
    let cluster = Cluster::start();
    let gw = Gateway::start_with_env(&config_on(&cluster, ""), &[("SLUICE_ADMIN_TOKEN", TOKEN)]);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = async |path: &str| {
        let resp = http
            .get(gw.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    let (status, openapi) = get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(openapi.contains("/v1/mget/{domain}"));
    let primaries = cluster.primaries();
    let (_, metrics) = get("/metrics").await;
    for p in &primaries {
        let sample = format!("sluice_breaker_node_state{{node=\"{}\"}} 0", p.addr);
        assert!(metrics.contains(&sample), "{sample} in {metrics}");
    }
    assert!(metrics.contains("sluice_breaker_state 0"));
    let (status, plugins) = get("/admin/plugins").await;
    assert_eq!(status, 200);
    assert!(plugins.contains("fixed-ttl"), "{plugins}");
    let (status, config) = get("/admin/config").await;
    assert_eq!(status, 200);
    assert!(config.contains("cluster"), "{config}");

    // A reload keeps the cluster store; keys on every primary still served.
    let reload = http
        .post(gw.url("/admin/reload"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 200);
    for (key, _) in client_keys_per_primary(&cluster) {
        let url = gw.url(&format!("/v1/cache/cache/{key}"));
        assert_eq!(
            http.put(&url)
                .json(&json!(1))
                .send()
                .await
                .unwrap()
                .status(),
            204
        );
        assert_eq!(http.get(&url).send().await.unwrap().status(), 200);
    }

    // The status page (its login flow is admin.rs's): each primary's breaker.
    let (status, html) = get("/admin/").await;
    assert_eq!(status, 200);
    for p in &primaries {
        let row = format!("<tr><td>{}</td><td class=\"ok\">closed</td></tr>", p.addr);
        assert!(html.contains(&row), "{row} in {html}");
    }
    assert_eq!(get("/admin/login").await.0, 200);
    let post = async |path: &str| {
        let form = [("token", TOKEN)];
        http.post(gw.url(path))
            .form(&form)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(post("/admin/login").await, 303);
    assert_eq!(post("/admin/logout").await, 303);
}

/// Client keys whose Redis keys (`cache:KEY`) land on each primary.
fn client_keys_per_primary(cluster: &Cluster) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for i in 0..10_000 {
        let key = format!("k{i}");
        let node = cluster.node_for_key(&format!("cache:{key}"));
        if !found.iter().any(|(_, n)| *n == node) {
            found.push((key, node));
        }
        if found.len() == 3 {
            break;
        }
    }
    assert_eq!(found.len(), 3, "{found:?}");
    found
}

const EVENTS: &str = r#"
[domains.one]
plugin = "stream-router"
ttl_s = 600
[domains.one.settings]
per_asset = false

[domains.two]
plugin = "stream-router"
ttl_s = 600

[domains.replicated]
plugin = "fixed-ttl"
ttl_s = 600
read_from = "replica"

[domains.three]
plugin = "stream-router"
ttl_s = 600
streams = true
[domains.three.settings]
same_slot = true

[ratelimits.t]
capacity = 2
refill_per_s = 0.001

[metrics]
info_interval_ms = 100
"#;

/// Cache calls, batches spanning every primary, rate limits and events go
/// through the cluster client to the primary of each key's slot; a plan
/// whose keys span slots runs as one pipeline per slot (with an
/// Idempotency-Key it is refused, naming hash tags); a
/// killed primary fails only its own keys, and they take writes again once
/// its replica is promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_keys_on_every_primary_and_survives_a_failover() {
    let mut cluster = Cluster::start();
    let gw = gateway_on(&cluster, EVENTS);
    let http = reqwest::Client::new();
    let keys = client_keys_per_primary(&cluster);
    let url = |k: &str| gw.url(&format!("/v1/cache/cache/{k}"));
    for (i, (key, node)) in keys.iter().enumerate() {
        let put = http
            .put(url(key))
            .json(&json!({"n": i}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 204, "PUT {key}");
        // On the primary that serves its slot, with the domain's TTL.
        let ttl: i64 = cluster.conn(node).pttl(format!("cache:{key}")).unwrap();
        assert!((1..=60_000).contains(&ttl), "{key} on {node}: PTTL {ttl}");
        let get = http.get(url(key)).send().await.unwrap();
        assert_eq!(get.status(), 200);
        assert_eq!(get.json::<Value>().await.unwrap(), json!({"n": i}));
    }
    // Batches across every primary: each key from its own slot.
    let items: serde_json::Map<String, Value> =
        (0..30).map(|i| (format!("m{i}"), json!(i))).collect();
    let mset = http
        .post(gw.url("/v1/mset/cache"))
        .json(&json!({ "items": items }))
        .send()
        .await
        .unwrap();
    assert_eq!(mset.status(), 200);
    assert_eq!(mset.json::<Value>().await.unwrap(), json!({"stored": 30}));
    let mut wanted: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    wanted.push("absent".into());
    let mget = http
        .post(gw.url("/v1/mget/cache"))
        .json(&json!({ "keys": wanted }))
        .send()
        .await
        .unwrap();
    assert_eq!(mget.status(), 200);
    let values = mget.json::<Value>().await.unwrap()["values"].clone();
    for i in 0..30 {
        assert_eq!(values[format!("m{i}")], json!(i), "m{i}");
    }
    assert_eq!(values["absent"], Value::Null);
    let del = http.delete(url(&keys[0].0)).send().await.unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(
        http.get(url(&keys[0].0)).send().await.unwrap().status(),
        404
    );
    // Idempotent writes: the record lives in the write's slot (it is
    // written in the write's transaction); a retry is replayed.
    let put_once = |body: Value| {
        http.put(url("once"))
            .header("idempotency-key", "k-1")
            .json(&body)
            .send()
    };
    assert_eq!(put_once(json!(0)).await.unwrap().status(), 204);
    let retry = put_once(json!(0)).await.unwrap();
    assert_eq!(retry.status(), 204);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    // Same key, another body: another request, refused.
    assert_eq!(put_once(json!(1)).await.unwrap().status(), 422);
    let node = cluster.node_for_key("cache:once");
    let record = "idempotency:{cache:once}:cache:-:k-1";
    assert_eq!(cluster.node_for_key(record), node);
    let kept: bool = cluster.conn(&node).exists(record).unwrap();
    assert!(kept, "the record beside the write");
    // The rate limit's script runs on the bucket's primary.
    for expected in [200, 200, 429] {
        let resp = http.post(gw.url("/v1/ratelimit/t/c")).send().await.unwrap();
        assert_eq!(resp.status(), expected);
    }
    // One stream per event: published. Two (the type's and the asset's,
    // in different slots): published too, one pipeline per slot.
    let event = json!({"type": "opportunity", "asset": "BTC", "spread": 0.4});
    let one = http
        .post(gw.url("/v1/events/one"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 201);
    let node = cluster.node_for_key("one:opportunity");
    let len: usize = cluster.conn(&node).xlen("one:opportunity").unwrap();
    assert_eq!(len, 1);
    let two = http
        .post(gw.url("/v1/events/two"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), 201);
    let ids = two.json::<Value>().await.unwrap()["ids"].clone();
    assert_ne!(
        Slot::for_key("two:opportunity"),
        Slot::for_key("two:opportunity:btc")
    );
    for stream in ["two:opportunity", "two:opportunity:btc"] {
        let mut node = cluster.conn(&cluster.node_for_key(stream));
        let len: usize = node.xlen(stream).unwrap();
        let pttl: i64 = node.pttl(stream).unwrap();
        assert_eq!(len, 1, "{stream}");
        assert!(pttl > 0, "{stream} expires: {pttl}");
        assert!(ids[stream].is_string(), "{ids}");
    }
    // With an Idempotency-Key its record would need one transaction over
    // both slots: refused, naming hash tags.
    let once = http
        .post(gw.url("/v1/events/two"))
        .header("idempotency-key", "two-1")
        .json(&event)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(once, 400).await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("hash slot") && detail.contains("hash tag"),
        "{problem}"
    );
    // With the type as hash tag both streams share a slot; a consumer
    // group reads the asset's stream on its node.
    let three = http
        .post(gw.url("/v1/events/three"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(three.status(), 201);
    let node = cluster.node_for_key("three:{opportunity}");
    assert_eq!(node, cluster.node_for_key("three:{opportunity}:btc"));
    let len: usize = cluster.conn(&node).xlen("three:{opportunity}:btc").unwrap();
    assert_eq!(len, 1);
    // An idempotent publish: a retry is answered with the first ids.
    let publish_once = || {
        http.post(gw.url("/v1/events/three"))
            .header("idempotency-key", "e-1")
            .json(&event)
            .send()
    };
    let first = publish_once().await.unwrap().json::<Value>().await.unwrap();
    let again = publish_once().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(first, again);
    let len: usize = cluster.conn(&node).xlen("three:{opportunity}:btc").unwrap();
    assert_eq!(len, 2, "published once more, not twice");
    let stream = gw.url("/v1/streams/three:%7Bopportunity%7D:btc/groups/g");
    let group = http.post(format!("{stream}?start=0")).send().await.unwrap();
    assert_eq!(group.status(), 201);
    let read = http
        .get(format!("{stream}/messages?consumer=c"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let messages = read.json::<Value>().await.unwrap()["messages"].clone();
    assert_eq!(messages[0]["fields"]["spread"], json!(0.4), "{messages}");
    // Unacked: another consumer claims it on the stream's node.
    let claim = http
        .post(format!("{stream}/claim?consumer=c2&min_idle_ms=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(claim.status(), 200);
    let claimed = claim.json::<Value>().await.unwrap();
    assert_eq!(claimed["messages"][0]["id"], messages[0]["id"], "{claimed}");
    let ack = http
        .post(format!("{stream}/ack"))
        .json(&json!({"ids": [messages[0]["id"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.json::<Value>().await.unwrap(), json!({"acked": 1}));
    // A long-poll waits on a connection of its own to the stream's node;
    // the next event ends it.
    let poll = tokio::spawn(
        http.get(format!("{stream}/messages?consumer=c&block_ms=10000"))
            .send(),
    );
    eventually(
        "the long-poll blocked on the stream's node",
        Duration::from_secs(5),
        async || {
            let info: String = redis::cmd("INFO")
                .arg("clients")
                .query(&mut cluster.conn(&node))
                .unwrap();
            info.contains("blocked_clients:1")
        },
    )
    .await;
    let sent = std::time::Instant::now();
    let again = http
        .post(gw.url("/v1/events/three"))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    let polled = poll.await.unwrap().unwrap();
    assert_eq!(polled.status(), 200);
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "the long-poll ended with the event"
    );
    let polled = polled.json::<Value>().await.unwrap();
    assert_eq!(
        polled["messages"].as_array().map(Vec::len),
        Some(1),
        "{polled}"
    );
    assert_eq!(
        http.get(gw.url("/readyz")).send().await.unwrap().status(),
        200
    );

    // A domain that reads from replicas: its GETs run on the key's replica.
    let gets = |addr: &str| gets_on(&cluster, addr);
    let replicated = gw.url("/v1/cache/replicated/r");
    let put = http
        .put(&replicated)
        .json(&json!("copy"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let primary = cluster.node_for_key("replicated:r");
    let replica = cluster
        .replicas()
        .into_iter()
        .find(|r| r.primary.as_deref() == Some(primary.as_str()))
        .expect("a replica of the key's primary")
        .addr;
    eventually(
        "the replica has the write",
        Duration::from_secs(5),
        async || http.get(&replicated).send().await.unwrap().status() == 200,
    )
    .await;
    let (on_replica, on_primary) = (gets(&replica), gets(&primary));
    for _ in 0..20 {
        let resp = http.get(&replicated).send().await.unwrap();
        assert_eq!(resp.json::<Value>().await.unwrap(), json!("copy"));
    }
    assert!(
        gets(&replica) >= on_replica + 20,
        "reads went to the replica"
    );
    assert_eq!(gets(&primary), on_primary, "no read reached the primary");

    // INFO from every primary, by address, and their total.
    let used = |node: String| {
        let gw = &gw;
        async move {
            let sample = format!("redis_node_memory_used_bytes{{node=\"{node}\"}}");
            support::metric(gw, &sample).await
        }
    };
    eventually(
        "INFO from every primary",
        Duration::from_secs(10),
        async || {
            let mut sum = 0.0;
            for p in cluster.primaries() {
                let bytes = used(p.addr.clone()).await;
                if bytes <= 0.0 {
                    return false;
                }
                sum += bytes;
            }
            // Polls a moment apart: the total is each poll's sum, within 10 %.
            let total = support::metric(&gw, "redis_memory_used_bytes").await;
            (total - sum).abs() < total * 0.1
        },
    )
    .await;

    // A primary dies, its replica held back from taking over: keys on the
    // others are served on; its own fail, soon fast — its breaker opens,
    // the others' stay closed, the gateway-wide state is half-open.
    let (dead_key, dead_node) = keys[1].clone();
    let (live_key, live_node) = keys[2].clone();
    let breaker_of = |node: &str| format!("sluice_breaker_node_state{{node=\"{node}\"}}");
    cluster.hold_failover(&dead_node, true);
    cluster.kill(&dead_node);
    eventually(
        "the dead primary's breaker opens",
        Duration::from_secs(10),
        async || {
            let _ = http.put(url(&dead_key)).json(&json!("lost")).send().await;
            support::metric(&gw, &breaker_of(&dead_node)).await == 1.0
        },
    )
    .await;
    let rejected = support::metric(&gw, "sluice_breaker_rejected_total").await;
    let fast = http
        .put(url(&dead_key))
        .json(&json!("lost"))
        .send()
        .await
        .unwrap();
    assert_eq!(fast.status(), 503);
    assert!(fast.headers().contains_key("retry-after"));
    assert_eq!(
        support::metric(&gw, "sluice_breaker_rejected_total").await,
        rejected + 1.0,
        "failed fast, without touching Redis"
    );
    for _ in 0..10 {
        let live = http
            .put(url(&live_key))
            .json(&json!("on"))
            .send()
            .await
            .unwrap();
        assert_eq!(live.status(), 204, "a key on a live primary");
    }
    assert_eq!(support::metric(&gw, &breaker_of(&live_node)).await, 0.0);
    eventually(
        "the gateway-wide state is half-open",
        Duration::from_secs(5),
        async || support::metric(&gw, "sluice_breaker_state").await == 2.0,
    )
    .await;
    let live = http.get(url(&live_key)).send().await.unwrap();
    assert_eq!(live.status(), 200, "a key on a live primary");
    let ready = async || {
        http.get(gw.url("/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    };
    eventually(
        "not ready: a primary does not answer",
        Duration::from_secs(10),
        async || ready().await.is_ok_and(|s| s == 503),
    )
    .await;
    cluster.hold_failover(&dead_node, false);
    cluster.wait_promoted(&dead_node);
    eventually(
        "ready again after the promotion",
        Duration::from_secs(15),
        async || ready().await.is_ok_and(|s| s == 200),
    )
    .await;
    eventually(
        "writes to the dead primary's slots succeed again",
        Duration::from_secs(15),
        async || {
            http.put(url(&dead_key))
                .json(&json!("after"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 204)
        },
    )
    .await;
    let after = http.get(url(&dead_key)).send().await.unwrap();
    assert_eq!(after.json::<Value>().await.unwrap(), json!("after"));
    // The promoted replica has a closed breaker; the dead node none.
    eventually(
        "the gateway-wide breaker closed again",
        Duration::from_secs(5),
        async || support::metric(&gw, "sluice_breaker_state").await == 0.0,
    )
    .await;
    let metrics = reqwest::get(gw.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains(&breaker_of(&dead_node)), "{metrics}");
    let promoted = cluster.node_for_key(&format!("cache:{dead_key}"));
    assert!(metrics.contains(&format!("{} 0", breaker_of(&promoted))));
}

const SHARED_LIMIT: &str = r#"
[ratelimits.g]
capacity = 60
refill_per_s = 0.001
"#;

/// Three gateways on one cluster. A global rate limit admits exactly its
/// capacity over all of them. Then a primary is killed under a write load:
/// until its replica is promoted only keys in its slots fail, each with
/// 503 + Retry-After; writes to them succeed again soon after the
/// promotion; no write acknowledged by another primary is lost. Prints
/// the figures (errors by status, time to writes resumed, writes lost to
/// the dead primary's asynchronous replication).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_share_exact_limits_and_lose_no_acknowledged_write_in_a_failover() {
    let mut cluster = Cluster::start();
    let gws: Vec<Gateway> = (0..3).map(|_| gateway_on(&cluster, SHARED_LIMIT)).collect();
    let bases: Vec<String> = gws.iter().map(|g| g.url("")).collect();

    // 3 gateways × 4 clients × 10 acquires of one bucket of 60.
    let mut clients = Vec::new();
    for base in &bases {
        for _ in 0..4 {
            let url = format!("{base}/v1/ratelimit/g/shared");
            clients.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut admitted = 0;
                for _ in 0..10 {
                    let resp = http.post(&url).send().await.unwrap();
                    assert!(
                        matches!(resp.status().as_u16(), 200 | 429),
                        "{}",
                        resp.status()
                    );
                    admitted += usize::from(resp.status() == 200);
                }
                admitted
            }));
        }
    }
    let mut admitted = 0;
    for c in clients {
        admitted += c.await.unwrap();
    }
    assert_eq!(admitted, 60, "exactly the capacity over 3 gateways");

    // Writers: two per gateway, each its own keys, until told to stop;
    // every answer logged (key, status, Retry-After, when sent).
    let primaries = cluster.primaries();
    let dead = primaries[1].clone();
    let dead_slots: std::collections::HashSet<Slot> = (0..16384u16)
        .filter(|s| dead.serves(*s))
        .filter_map(Slot::new)
        .collect();
    let in_dead_slots = |key: &str| dead_slots.contains(&Slot::for_key(format!("cache:{key}")));
    /// Key, status, Retry-After given, when sent, when answered.
    type Log = Vec<(String, u16, bool, Duration, Duration)>;
    let log: Arc<Mutex<Log>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let started = std::time::Instant::now();
    let mut writers = Vec::new();
    for (g, base) in bases.iter().enumerate() {
        for w in 0..2 {
            let (base, stop, log) = (base.clone(), stop.clone(), log.clone());
            writers.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{g}-{w}-{n}");
                    let sent = started.elapsed();
                    let resp = http
                        .put(format!("{base}/v1/cache/cache/{key}"))
                        .json(&json!(n))
                        .send()
                        .await
                        .unwrap();
                    let retry_after = resp.headers().contains_key("retry-after");
                    let entry = (
                        key,
                        resp.status().as_u16(),
                        retry_after,
                        sent,
                        started.elapsed(),
                    );
                    log.lock().unwrap().push(entry);
                    n += 1;
                }
            }));
        }
    }
    let acked_since = |since: Duration, dead_only: bool| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|(k, status, _, sent, _)| {
                *status == 204 && *sent >= since && (!dead_only || in_dead_slots(k))
            })
            .count()
    };
    eventually(
        "300 writes acknowledged",
        Duration::from_secs(20),
        async || acked_since(Duration::ZERO, false) >= 300,
    )
    .await;
    const OPENED: &str = "sluice_breaker_transitions_total{to=\"open\"}";
    let mut opened = Vec::new();
    for gw in &gws {
        opened.push(support::metric(gw, OPENED).await);
    }
    let killed_at = started.elapsed();
    cluster.kill(&dead.addr);
    let promoted = tokio::task::block_in_place(|| cluster.wait_promoted(&dead.addr));
    let promoted_at = started.elapsed();
    eventually(
        "100 writes to the dead primary's slots acknowledged after the promotion",
        Duration::from_secs(20),
        async || acked_since(promoted_at, true) >= 100,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let log = std::mem::take(&mut *log.lock().unwrap());

    let mut by_status = std::collections::BTreeMap::new();
    let mut resumed: Option<Duration> = None;
    for (key, status, retry_after, sent, answered) in &log {
        *by_status.entry(*status).or_insert(0usize) += 1;
        if *status == 204 {
            if *sent > promoted_at && resumed.is_none() && in_dead_slots(key) {
                resumed = Some(*sent - promoted_at);
            }
            continue;
        }
        // A write sent just before the kill may meet it on the way.
        assert!(*answered >= killed_at, "{key}: {status} before the kill");
        assert!(
            in_dead_slots(key),
            "{key} on a live primary failed with {status}"
        );
        assert_eq!(*status, 503, "{key}");
        assert!(retry_after, "{key}: 503 without Retry-After");
    }
    let resumed = resumed.expect("no write to the dead primary's slots succeeded after promotion");
    // One primary's outage never opened the gateway-wide breaker.
    let mut rejected = 0.0;
    for (gw, before) in gws.iter().zip(opened) {
        assert_eq!(
            support::metric(gw, OPENED).await,
            before,
            "gateway-wide open"
        );
        rejected += support::metric(gw, "sluice_breaker_rejected_total").await;
    }
    // Every acknowledged write is there, except those the dead primary
    // took but had not yet replicated.
    let mut lost_dead = 0;
    for (key, status, ..) in log.iter().filter(|l| l.1 == 204) {
        let node = cluster.node_for_key(&format!("cache:{key}"));
        let there: bool = cluster.conn(&node).exists(format!("cache:{key}")).unwrap();
        if !there {
            assert!(
                in_dead_slots(key),
                "{key} acknowledged ({status}) on a live primary, lost"
            );
            lost_dead += 1;
        }
    }
    println!(
        "failover: {} writes, by status {by_status:?} ({rejected} failed fast by the dead primary's breaker); promoted {:?} after the kill ({promoted}); writes to its slots resumed {resumed:?} after; acknowledged writes lost: 0 on live primaries, {lost_dead} on the dead one",
        log.len(),
        promoted_at - killed_at,
    );
    assert!(
        resumed <= Duration::from_secs(1),
        "writes resumed {resumed:?} after the promotion"
    );
}

const NEAR: &str = r#"
[domains.l1]
plugin = "fixed-ttl"
ttl_s = 600
near_cache_ms = 10000
"#;

/// The near cache on a cluster: each gateway hears every primary's changes
/// to its near-cached domains (`CLIENT TRACKING … BCAST` per primary), so
/// a write through one gateway ends the other's copy long before its
/// `near_cache_ms`, whichever node holds the key; while a copy is fresh,
/// reads do not reach Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_gateway_ends_the_others_copy_on_any_node() {
    let mut cluster = Cluster::start();
    let (a, b) = (gateway_on(&cluster, NEAR), gateway_on(&cluster, NEAR));
    let http = reqwest::Client::new();
    let gets = |addr: &str| gets_on(&cluster, addr);
    let read = async |gw: &Gateway, key: &str| {
        let resp = http
            .get(gw.url(&format!("/v1/cache/l1/{key}")))
            .send()
            .await
            .unwrap();
        let near = resp
            .headers()
            .get("cache-status")
            .is_some_and(|v| v.to_str().unwrap_or("").contains("detail=near"));
        (resp.json::<Value>().await.unwrap_or(Value::Null), near)
    };
    // One key on each primary.
    let mut keys: Vec<(String, String)> = Vec::new();
    for i in 0..10_000 {
        let key = format!("n{i}");
        let node = cluster.node_for_key(&format!("l1:{key}"));
        if !keys.iter().any(|(_, n)| *n == node) {
            keys.push((key, node));
        }
        if keys.len() == 3 {
            break;
        }
    }
    for (key, node) in &keys {
        let put = |v: Value| {
            http.put(a.url(&format!("/v1/cache/l1/{key}")))
                .json(&v)
                .send()
        };
        assert_eq!(put(json!("v1")).await.unwrap().status(), 204);
        // B keeps a copy once every primary is heard (a moment after start).
        eventually(
            "B answers from its copy",
            Duration::from_secs(10),
            async || read(&b, key).await == (json!("v1"), true),
        )
        .await;
        let before = gets(node);
        for _ in 0..10 {
            assert_eq!(read(&b, key).await, (json!("v1"), true));
        }
        assert_eq!(gets(node), before, "copies answered without Redis");
        // A writes: B's copy ends when the key's primary says so.
        assert_eq!(put(json!("v2")).await.unwrap().status(), 204);
        let written = std::time::Instant::now();
        eventually("B sees the write", Duration::from_secs(2), async || {
            read(&b, key).await.0 == json!("v2")
        })
        .await;
        println!(
            "near cache on a cluster: {key} on {node}, B saw the write {:?} after it was acknowledged",
            written.elapsed()
        );
        assert!(
            written.elapsed() < Duration::from_secs(1),
            "not before the copy's 10 s ran out"
        );
    }
    // A primary dies: its tracking connection with it, so no copy is fresh
    // (changes may go unheard); once its replica is promoted and tracked,
    // copies are kept again.
    let (live_key, _) = keys[1].clone();
    assert_eq!(read(&b, &live_key).await, (json!("v2"), true));
    cluster.kill(&keys[0].1);
    eventually(
        "copies not fresh while a primary is unheard",
        Duration::from_secs(5),
        async || read(&b, &live_key).await == (json!("v2"), false),
    )
    .await;
    cluster.wait_promoted(&keys[0].1);
    eventually(
        "copies again once every primary is heard",
        Duration::from_secs(15),
        async || read(&b, &live_key).await == (json!("v2"), true),
    )
    .await;
}

/// Read-then-write on a cluster: the owner index stays exact (its keys
/// share the domain's hash tag, so the reads and the transaction are on
/// one node), and clients adding at once lose no update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_then_write_plans_run_on_the_node_of_their_keys() {
    let cluster = Cluster::start();
    let plugins = support::own_plugins_dir(&["cookbook-owner-index", "read-modify-write"]);
    let extra = "[domains.docs]\nplugin = \"cookbook-owner-index\"\n[domains.tally]\nplugin = \"read-modify-write\"\n";
    let shipped = format!("dir = \"{}\"", support::plugins_dir().display());
    let own = format!("dir = \"{}\"", plugins.path().display());
    let gw = Gateway::start(&config_on(&cluster, extra).replace(&shipped, &own));
    let client = reqwest::Client::new();

    let put = async |id: &str, owner: &str| {
        let resp = (client.put(gw.url(&format!("/v1/cache/docs/{id}"))))
            .json(&json!({"owner": owner}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    };
    let ids = async |owner: &str| -> Value {
        let resp = (client.get(gw.url(&format!("/v1/cache/docs/owner:{owner}"))))
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            404 => json!([]),
            _ => resp.json().await.unwrap(),
        }
    };
    put("1", "ann").await;
    put("2", "ann").await;
    put("2", "bob").await;
    assert_eq!(ids("ann").await, json!(["1"]));
    assert_eq!(ids("bob").await, json!(["2"]));
    let resp = client
        .delete(gw.url("/v1/cache/docs/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(ids("ann").await, json!([]));
    let node = cluster.node_for_key("docs:{docs}:owner:bob");
    let members: Vec<String> = cluster
        .conn(&node)
        .smembers("docs:{docs}:owner:bob")
        .unwrap();
    assert_eq!(members, ["2"]);

    let url = gw.url("/v1/cache/tally/n");
    let puts = (0..12).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let resp = client.put(&url).json(&1).send().await.unwrap();
            resp.status().as_u16()
        })
    });
    let mut applied = 0;
    for status in futures_util::future::join_all(puts).await {
        match status.unwrap() {
            204 => applied += 1,
            409 => {}
            s => panic!("{s}"),
        }
    }
    let n: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(n, json!(applied), "no update lost");
}
