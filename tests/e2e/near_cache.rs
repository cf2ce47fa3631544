//! The near cache: reads answered in process, kept coherent across gateways
//! by Redis's client tracking, single flight on misses, never beyond a key's
//! TTL in Redis.

use sluice_test_support as support;

use redis::Commands;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use support::{Gateway, Redis, config, config_in, eventually, own_plugins_dir};

/// `cache` and `l1` share the store; `l1` keeps copies for 10 s, so only
/// invalidations can explain a change seen sooner.
const L1: &str = r#"
[domains.l1]
plugin = "fixed-ttl"
near_cache_ms = 10000
"#;

fn gets(redis: &Redis) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis.conn())
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|v| v.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

async fn read(client: &reqwest::Client, gw: &Gateway, key: &str) -> (u16, String, Value) {
    read_in(client, gw, "l1", key).await
}

async fn read_in(
    client: &reqwest::Client,
    gw: &Gateway,
    domain: &str,
    key: &str,
) -> (u16, String, Value) {
    let resp = client
        .get(gw.url(&format!("/v1/cache/{domain}/{key}")))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("cache-status")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, cache, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_gateway_ends_the_other_gateways_copy_at_once() {
    let redis = Redis::start();
    let a = Gateway::start(&config(&redis, L1));
    let b = Gateway::start(&config(&redis, L1));
    let client = reqwest::Client::new();
    let url = a.url("/v1/cache/l1/k");
    assert_eq!(
        client
            .put(&url)
            .json(&json!("v1"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );

    // B reads Redis once, then answers from its near cache.
    assert_eq!(
        read(&client, &b, "k").await,
        (200, "sluice; hit".into(), json!("v1"))
    );
    let before = gets(&redis);
    for _ in 0..20 {
        assert_eq!(
            read(&client, &b, "k").await,
            (200, "sluice; hit; detail=near".into(), json!("v1"))
        );
    }
    assert_eq!(gets(&redis), before, "near-cache hits must not reach Redis");

    // A writes: B's copy ends when Redis says so, long before its 10 s.
    assert_eq!(
        client
            .put(&url)
            .json(&json!("v2"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let seen = eventually("B to see v2", Duration::from_secs(2), async || {
        read(&client, &b, "k").await.2 == json!("v2")
    })
    .await;
    println!("a write through gateway A reached gateway B's near cache after {seen:?}");

    // Any writer counts, not only gateways; deletes too.
    read(&client, &b, "k").await;
    let _: () = redis
        .conn()
        .set("l1:k", rmp_serde::to_vec(&json!("v3")).unwrap())
        .unwrap();
    eventually(
        "B to see a direct write",
        Duration::from_secs(2),
        async || read(&client, &b, "k").await.2 == json!("v3"),
    )
    .await;
    assert_eq!(client.delete(&url).send().await.unwrap().status(), 204);
    eventually("B to see the delete", Duration::from_secs(2), async || {
        read(&client, &b, "k").await.0 == 404
    })
    .await;
}

/// A hot read is answered before the policy runs: no plugin call while the
/// copy is fresh; once Redis ends the copy the policy is asked again, and
/// the read after that is served from memory again.
#[tokio::test]
async fn a_fresh_copy_answers_without_asking_the_policy() {
    let redis = Redis::start();
    let gw = Gateway::start(&config(&redis, L1));
    let client = reqwest::Client::new();
    let plans = async || {
        support::metric(
            &gw,
            r#"sluice_plugin_calls_total{plugin="fixed-ttl",result="ok"}"#,
        )
        .await
    };
    let url = gw.url("/v1/cache/l1/k");
    let put = client.put(&url).json(&json!("v1")).send().await.unwrap();
    assert_eq!(put.status(), 204);
    assert_eq!(read(&client, &gw, "k").await.1, "sluice; hit");
    let before = plans().await;
    for _ in 0..20 {
        assert_eq!(
            read(&client, &gw, "k").await,
            (200, "sluice; hit; detail=near".into(), json!("v1"))
        );
    }
    assert_eq!(plans().await, before, "hot reads must not call the policy");
    // Written behind the gateway's back: Redis ends the copy.
    let _: () = redis
        .conn()
        .set("l1:k", rmp_serde::to_vec(&"v2").unwrap())
        .unwrap();
    eventually("the copy ended", Duration::from_secs(5), async || {
        read(&client, &gw, "k").await == (200, "sluice; hit".into(), json!("v2"))
    })
    .await;
    assert!(
        plans().await > before,
        "a read past the copy asks the policy"
    );
    assert_eq!(read(&client, &gw, "k").await.1, "sluice; hit; detail=near");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_on_one_key_cost_one_redis_read() {
    let redis = Redis::start();
    let gw = Arc::new(Gateway::start(&config(&redis, L1)));
    let client = reqwest::Client::new();
    let resp = client
        .put(gw.url("/v1/cache/l1/hot"))
        .json(&json!({"n": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let before = gets(&redis);
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let (gw, client) = (gw.clone(), client.clone());
            tokio::spawn(async move { read(&client, &gw, "hot").await })
        })
        .collect();
    for r in readers {
        let (status, _, body) = r.await.unwrap();
        assert_eq!((status, body), (200, json!({"n": 1})));
    }
    assert_eq!(
        gets(&redis) - before,
        1,
        "50 concurrent reads of a cold key"
    );
}

#[tokio::test]
async fn a_copy_never_outlives_the_key_in_redis() {
    let redis = Redis::start();
    let gw = Gateway::start(&config(&redis, L1));
    let client = reqwest::Client::new();
    let resp = client
        .put(gw.url("/v1/cache/l1/brief?ttl_s=1"))
        .json(&json!(1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    read(&client, &gw, "brief").await;
    assert_eq!(
        read(&client, &gw, "brief").await.1,
        "sluice; hit; detail=near"
    );
    eventually(
        "the key to expire in Redis",
        Duration::from_secs(5),
        async || redis.conn().pttl::<_, i64>("l1:brief").unwrap() == -2,
    )
    .await;
    assert_eq!(
        read(&client, &gw, "brief").await.0,
        404,
        "served after it expired in Redis"
    );
}

/// A miss storm on one absent key costs one Redis read, not one per client:
/// the answer "absent" is kept like a value, and Redis's invalidation ends
/// it the moment anyone writes the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_storm_on_one_key_costs_one_read_per_change() {
    let redis = Redis::start();
    let gw = Arc::new(Gateway::start(&config(&redis, L1)));
    let client = reqwest::Client::new();
    let before = gets(&redis);
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let (gw, client) = (gw.clone(), client.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..10 {
                    statuses.push(read(&client, &gw, "absent").await.0);
                }
                statuses
            })
        })
        .collect();
    for r in readers {
        assert!(r.await.unwrap().iter().all(|s| *s == 404));
    }
    let reads = gets(&redis) - before;
    assert!(
        reads <= 3,
        "500 reads of an absent key cost {reads} Redis GETs"
    );
    // Someone writes it (not through this gateway): the miss ends at once.
    let _: () = redis
        .conn()
        .set("l1:absent", rmp_serde::to_vec(&"here").unwrap())
        .unwrap();
    eventually(
        "the written key is read",
        Duration::from_secs(2),
        async || read(&client, &gw, "absent").await.0 == 200,
    )
    .await;
    println!("miss storm: 500 reads of an absent key, {reads} Redis GET(s)");
}

/// Two reads of one Redis key that differ in a parameter are two reads: the
/// fixture's policy answers whether the client key is a member of one set
/// (`SISMEMBER {domain}:members KEY`), so every client key reads the same
/// Redis key. A copy kept for one member never answers for another, on the
/// policy's path or the hot path; the same read is still answered from
/// memory.
#[tokio::test]
async fn a_copy_answers_only_the_read_that_made_it() {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&["set-member"]);
    let extra = "[domains.members]\nplugin = \"set-member\"\nnear_cache_ms = 10000\n";
    let gw = Gateway::start(&config_in(&redis, plugins.path(), extra));
    let client = reqwest::Client::new();
    let url = gw.url("/v1/cache/members/x1");
    let put = client.put(url).json(&json!(true)).send().await.unwrap();
    assert_eq!(put.status(), 204);
    let member = async |key: &str| read_in(&client, &gw, "members", key).await;
    let (redis_hit, near_hit) = (
        "sluice; hit".to_owned(),
        "sluice; hit; detail=near".to_owned(),
    );

    assert_eq!(member("x1").await, (200, redis_hit.clone(), json!(true)));
    // Through the policy: x2 plans a read of the same Redis key.
    assert_eq!(
        member("x2").await,
        (200, redis_hit.clone(), json!(false)),
        "x1's answer given for x2"
    );
    // Through the hot path: x1's route leads to the key x2's copy now holds.
    assert_eq!(member("x1").await, (200, redis_hit.clone(), json!(true)));
    assert_eq!(member("x1").await, (200, near_hit.clone(), json!(true)));
    assert_eq!(member("x2").await, (200, redis_hit, json!(false)));
    assert_eq!(member("x2").await, (200, near_hit, json!(false)));
}
