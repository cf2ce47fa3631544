//! The domain policies end to end, each loaded from its `.wasm` against a
//! real Redis: the shipped price-hash, adaptive-ttl and stream-router, the
//! plugin guide's leaderboard and cookbook, read-then-write under
//! contention, and a component built for the previous contract.

use sluice_test_support as support;

use redis::Commands;
use serde_json::{Value, json};
use support::{Gateway, Redis, assert_problem, config, config_in, own_plugins_dir};

const DOMAINS: &str = r#"
[domains.price]
plugin = "price-hash"
ttl_s = 5
max_ttl_s = 60

[domains.price_py]
plugin = "price-hash-py"
ttl_s = 5
max_ttl_s = 60
plugin_memory_mib = 32

[domains.market_depth]
plugin = "adaptive-ttl"
ttl_s = 10
min_ttl_s = 2
max_ttl_s = 120
track_access = true
[domains.market_depth.settings]
hot_reads_per_min = 60
jitter_pct = 10

[domains.arbitrage]
plugin = "stream-router"
streams = true
[domains.arbitrage.settings]
maxlen = 50
"#;

fn setup() -> (Redis, Gateway, reqwest::Client) {
    let redis = Redis::start();
    let gw = Gateway::start(&config(&redis, DOMAINS));
    (redis, gw, reqwest::Client::new())
}

#[tokio::test]
async fn price_objects_are_hashes_read_whole_or_by_field_with_types_kept() {
    let (redis, gw, client) = setup();
    // The Rust policy, and its Python twin (plugins/price-hash-py).
    for d in ["price", "price_py"] {
        let url = gw.url(&format!("/v1/cache/{d}/btc:usd"));
        let price = json!({"asset": "BTC", "fiat": "USD", "price": 64000.5, "ts": 1_732_550_000_000u64, "venues": ["a", "b"]});
        assert_eq!(
            client.put(&url).json(&price).send().await.unwrap().status(),
            204
        );

        let mut c = redis.conn();
        let kind: String = redis::cmd("TYPE")
            .arg(format!("{d}:btc:usd"))
            .query(&mut c)
            .unwrap();
        assert_eq!(kind, "hash");
        let raw: Vec<u8> = c.hget(format!("{d}:btc:usd"), "price").unwrap();
        assert_eq!(rmp_serde::from_slice::<f64>(&raw).unwrap(), 64000.5);
        let pttl: i64 = c.pttl(format!("{d}:btc:usd")).unwrap();
        assert!((1..=5_000).contains(&pttl), "the seed's 5 s, got {pttl}");

        let got: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(got, price);
        let got: Value = client
            .get(format!("{url}?fields=price,ts,nope"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(got, json!({"price": 64000.5, "ts": 1_732_550_000_000u64}));
        // None of the fields asked for: a miss that names them.
        let resp = client
            .get(format!("{url}?fields=nope"))
            .send()
            .await
            .unwrap();
        let body = assert_problem(resp, 404).await;
        assert_eq!(
            body["detail"],
            "key \"btc:usd\" holds no field \"nope\" (or no value at all)"
        );

        // A new object replaces the old one: no field of the old survives.
        let newer = json!({"price": 64100.0});
        assert_eq!(
            client.put(&url).json(&newer).send().await.unwrap().status(),
            204
        );
        let got: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(got, newer);

        let resp = client.put(&url).json(&json!(42)).send().await.unwrap();
        let body = assert_problem(resp, 400).await;
        // The same words from either language's SDK.
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("price-hash")
                && detail.ends_with("the value must be a map (an object) for this domain, not 42"),
            "{body}"
        );
        let resp = client
            .get(gw.url(&format!("/v1/cache/{d}/eth:usd")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
    }
}

#[tokio::test]
async fn often_read_keys_get_longer_ttls_than_cold_ones() {
    let (redis, gw, client) = setup();
    let cold = gw.url("/v1/cache/market_depth/cold");
    let hot = gw.url("/v1/cache/market_depth/hot");
    let depth = json!({"bids": [[64000.5, 1.2]], "asks": [[64001.0, 0.7]]});
    for url in [&cold, &hot] {
        assert_eq!(
            client.put(url).json(&depth).send().await.unwrap().status(),
            204
        );
    }
    for _ in 0..150 {
        assert_eq!(client.get(&hot).send().await.unwrap().status(), 200);
    }
    // Written again after the reads: the TTL follows the read rate.
    for url in [&cold, &hot] {
        assert_eq!(
            client.put(url).json(&depth).send().await.unwrap().status(),
            204
        );
    }
    let mut c = redis.conn();
    let cold_ttl: i64 = c.pttl("market_depth:cold").unwrap();
    let hot_ttl: i64 = c.pttl("market_depth:hot").unwrap();
    println!("adaptive TTL: cold key {cold_ttl} ms, hot key {hot_ttl} ms");
    assert!(
        (4_000..=5_500).contains(&cold_ttl),
        "unread: half the 10 s base ±10 %, got {cold_ttl}"
    );
    assert!(
        hot_ttl > 12_000,
        "read 150 times: longer than the base, got {hot_ttl}"
    );
    assert!(hot_ttl <= 120_000);
}

#[tokio::test]
async fn events_are_routed_to_type_and_asset_streams_and_capped() {
    let (redis, gw, client) = setup();
    let url = gw.url("/v1/events/arbitrage");
    let event = json!({"type": "opportunity", "asset": "BTC", "spread": 0.42, "legs": 2});
    let resp = client.post(&url).json(&event).send().await.unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let ids = body["ids"].as_object().unwrap();
    assert_eq!(ids.len(), 2, "{body}");
    assert!(
        ids.contains_key("arbitrage:opportunity") && ids.contains_key("arbitrage:opportunity:btc")
    );

    // A consumer reads it back with its fields typed.
    let group = gw.url("/v1/streams/arbitrage:opportunity:btc/groups/g?start=0");
    assert_eq!(client.post(&group).send().await.unwrap().status(), 201);
    let read = gw.url("/v1/streams/arbitrage:opportunity:btc/groups/g/messages?consumer=c");
    let body: Value = client
        .get(&read)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["messages"][0]["fields"], event);

    // Capped at about maxlen (50): trimming is approximate, by whole nodes.
    for i in 0..300 {
        let e = json!({"type": "tick", "n": i});
        assert_eq!(
            client.post(&url).json(&e).send().await.unwrap().status(),
            201
        );
    }
    let len: u64 = redis.conn().xlen("arbitrage:tick").unwrap();
    assert!((50..300).contains(&len), "XLEN {len}");
    // Every stream expires: the domain's TTL after its last entry.
    let pttl: i64 = redis.conn().pttl("arbitrage:tick").unwrap();
    assert!(pttl > 0, "a stream without expiry ({pttl})");

    let resp = client
        .post(&url)
        .json(&json!({"asset": "BTC"}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
    let resp = client
        .get(gw.url("/v1/cache/arbitrage/x"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
}

/// The plugin guide's leaderboard (tests/fixtures/guide-leaderboard), end to end:
/// sorted-set writes that keep the best score and the top N, increments by
/// event, the top ten read highest first, an empty board a miss, and a
/// value of the wrong shape a 400 a person can act on.
#[tokio::test]
async fn a_leaderboard_keeps_best_scores_trims_and_reads_the_top_ten() {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&["guide-leaderboard"]);
    let extra = "[domains.leaderboard]\nplugin = \"guide-leaderboard\"\nttl_s = 600\n[domains.leaderboard.settings]\nkeep = 12\n";
    let gw = Gateway::start(&config_in(&redis, plugins.path(), extra));
    let client = reqwest::Client::new();
    let url = gw.url("/v1/cache/leaderboard/weekly");

    // Nobody has scored yet: a miss, as for an absent key.
    let resp = client.get(&url).send().await.unwrap();
    assert_problem(resp, 404).await;

    for i in 0..15 {
        let score = json!({"member": format!("p{i:02}"), "score": i * 10});
        let resp = client.put(&url).json(&score).send().await.unwrap();
        assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    }
    // A lower score does not replace a member's best (ZADD GT).
    let resp = client
        .put(&url)
        .json(&json!({"member": "p14", "score": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    // An event adds to a member's score (ZINCRBY).
    let resp = client
        .post(gw.url("/v1/events/leaderboard"))
        .json(&json!({"board": "weekly", "member": "p03", "by": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let top: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    let top = top.as_array().unwrap();
    assert_eq!(top.len(), 10, "the top ten: {top:?}");
    assert_eq!(top[0], json!({"member": "p03", "score": 1030.0}));
    assert_eq!(top[1], json!({"member": "p14", "score": 140.0}));
    assert_eq!(top[9], json!({"member": "p06", "score": 60.0}));
    // Only the best `keep` members stay, and the board expires.
    let mut c = redis.conn();
    let card: u64 = c.zcard("leaderboard:weekly").unwrap();
    assert_eq!(card, 12);
    let pttl: i64 = c.pttl("leaderboard:weekly").unwrap();
    assert!((1..=600_000).contains(&pttl), "{pttl}");

    // A value of the wrong shape says what was expected, in words.
    let resp = client.put(&url).json(&json!("test")).send().await.unwrap();
    let body = assert_problem(resp, 400).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("must be a map") && !detail.contains("marker"),
        "{detail}"
    );

    let resp = client.delete(&url).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_problem(client.get(&url).send().await.unwrap(), 404).await;
}

/// A read-then-write under contention: clients add to one number at once,
/// each PUT reading the number and writing the sum after
/// (tests/fixtures/read-modify-write). No update is lost: every PUT
/// answered 204 is counted in the number, and a PUT refused after its
/// rounds ran out is a 409 `conflict` that wrote nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_read_then_writes_lose_no_update() {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&["read-modify-write"]);
    let extra = "[domains.tally]\nplugin = \"read-modify-write\"\n";
    let gw = Gateway::start(&config_in(&redis, plugins.path(), extra));
    let client = reqwest::Client::new();
    let url = gw.url("/v1/cache/tally/n");

    let puts = (0..24).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let resp = client.put(&url).json(&1).send().await.expect("PUT");
            let status = resp.status().as_u16();
            let body = resp.text().await.expect("body");
            (status, body)
        })
    });
    let mut applied = 0;
    for put in futures_util::future::join_all(puts).await {
        let (status, body) = put.expect("task");
        match status {
            204 => applied += 1,
            409 => assert!(body.contains("conflict"), "{body}"),
            _ => panic!("{status}: {body}"),
        }
    }
    assert!(applied > 0, "some PUT went through");
    let n: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        n,
        json!(applied),
        "every acknowledged add is counted, no other"
    );
    // The sum expires like any write.
    let pttl: i64 = redis.conn().pttl("tally:n").unwrap();
    assert!(pttl > 0, "{pttl}");
}

/// A component built for the previous contract (tests/data: fixed-ttl as
/// built for sluice:policy@0.2.0) keeps serving, and the log says once
/// that it uses the older contract.
#[tokio::test]
async fn a_component_built_for_contract_0_2_still_serves() {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&[]);
    let old = support::repo_root().join("tests/data/fixed-ttl-contract-0.2.wasm");
    std::fs::copy(&old, plugins.path().join("fixed-ttl-0-2.wasm")).unwrap();
    let extra = "[domains.old]\nplugin = \"fixed-ttl-0-2\"\nttl_s = 30\n";
    let gw = Gateway::start(&config_in(&redis, plugins.path(), extra));
    let client = reqwest::Client::new();
    let url = gw.url("/v1/cache/old/k");

    let resp = client
        .put(&url)
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    let got: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(got, json!({"a": 1}));
    // A batch goes through it one plan at a time.
    let many: Value = client
        .post(gw.url("/v1/mget/old"))
        .json(&json!({"keys": ["k", "nope"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        many["values"],
        json!({"k": {"a": 1}, "nope": null}),
        "{many}"
    );
    let pttl: i64 = redis.conn().pttl("old:k").unwrap();
    assert!((1..=30_000).contains(&pttl), "{pttl}");
    let log = gw.log();
    assert_eq!(
        log.matches("built for sluice:policy@0.2.0").count(),
        1,
        "said once: {log}"
    );
}

/// The plugin guide's cookbook, each policy end to end from its fixture
/// (tests/fixtures/cookbook-*, the guide's code verbatim).
const COOKBOOK: &str = r#"
[domains.docs]
plugin = "cookbook-owner-index"
ttl_s = 600

[domains.recent]
plugin = "cookbook-recent-list"
[domains.recent.settings]
keep = 3

[domains.dedup]
plugin = "cookbook-dedup"
ttl_s = 30

[domains.quota]
plugin = "cookbook-capped-counter"
ttl_s = 60
[domains.quota.settings]
cap = 5
"#;

fn cookbook() -> (Redis, Gateway, reqwest::Client, tempfile::TempDir) {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&[
        "cookbook-owner-index",
        "cookbook-recent-list",
        "cookbook-dedup",
        "cookbook-capped-counter",
    ]);
    let gw = Gateway::start(&config_in(&redis, plugins.path(), COOKBOOK));
    (redis, gw, reqwest::Client::new(), plugins)
}

/// The owner index stays exact: a PUT that changes an object's owner moves
/// its id from the old owner's set to the new one's, and a DELETE takes it
/// out of the set the object named — which only a plan that reads the
/// object first can know.
#[tokio::test]
async fn cookbook_an_owner_index_stays_exact_through_moves_and_deletes() {
    let (redis, gw, client, _plugins) = cookbook();
    let ids = async |owner: &str| {
        let resp = client
            .get(gw.url(&format!("/v1/cache/docs/owner:{owner}")))
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            404 => json!([]),
            200 => resp.json::<Value>().await.unwrap(),
            s => panic!("{s}: {}", resp.text().await.unwrap()),
        }
    };
    let put = async |id: &str, owner: &str| {
        let url = gw.url(&format!("/v1/cache/docs/{id}"));
        let doc = json!({"owner": owner, "title": format!("doc {id}")});
        let resp = client.put(&url).json(&doc).send().await.unwrap();
        assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    };
    put("1", "ann").await;
    put("2", "ann").await;
    put("3", "bob").await;
    assert_eq!(ids("ann").await, json!(["1", "2"]));
    assert_eq!(ids("bob").await, json!(["3"]));

    // A move: out of ann's set, into bob's.
    put("2", "bob").await;
    assert_eq!(ids("ann").await, json!(["1"]));
    assert_eq!(ids("bob").await, json!(["2", "3"]));
    let doc: Value = (client.get(gw.url("/v1/cache/docs/2")).send().await.unwrap())
        .json()
        .await
        .unwrap();
    assert_eq!(doc, json!({"owner": "bob", "title": "doc 2"}));

    // A delete names no owner: the object does.
    let resp = client
        .delete(gw.url("/v1/cache/docs/3"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(ids("bob").await, json!(["2"]));
    let resp = client.get(gw.url("/v1/cache/docs/3")).send().await.unwrap();
    assert_problem(resp, 404).await;
    // Deleting what is not there changes nothing.
    let resp = client
        .delete(gw.url("/v1/cache/docs/9"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    // Everything the policy wrote expires, sets included.
    let mut c = redis.conn();
    for key in [
        "docs:{docs}:obj:1",
        "docs:{docs}:owner:ann",
        "docs:{docs}:owner:bob",
    ] {
        let pttl: i64 = c.pttl(key).unwrap();
        assert!((1..=600_000).contains(&pttl), "{key}: {pttl}");
    }
    // An owner set cannot be written through the object route.
    let resp = (client.put(gw.url("/v1/cache/docs/owner:ann")))
        .json(&json!({"owner": "x"}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
}

/// A capped recent-items list keeps the newest `keep`, newest first; a
/// set-if-absent mark answers whether this writer was the first.
#[tokio::test]
async fn cookbook_a_recent_list_keeps_the_newest_and_a_mark_is_set_once() {
    let (redis, gw, client, _plugins) = cookbook();
    let url = gw.url("/v1/cache/recent/feed");
    assert_problem(client.get(&url).send().await.unwrap(), 404).await;
    for i in 1..=5 {
        let resp = client
            .put(&url)
            .json(&json!({"n": i}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    }
    let recent: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(recent, json!([{"n": 5}, {"n": 4}, {"n": 3}]));
    let len: u64 = redis.conn().llen("recent:feed").unwrap();
    assert_eq!(len, 3, "trimmed in Redis too");

    let mark = gw.url("/v1/cache/dedup/order-7");
    let first = client
        .put(&mark)
        .json(&json!("worker-a"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.json::<Value>().await.unwrap(), json!(true));
    let second = client
        .put(&mark)
        .json(&json!("worker-b"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.json::<Value>().await.unwrap(), json!(false));
    let holder: Value = client
        .get(&mark)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(holder, json!("worker-a"), "the first writer holds the mark");
    let pttl: i64 = redis.conn().pttl("dedup:order-7").unwrap();
    assert!((1..=30_000).contains(&pttl), "{pttl}");
}

/// A capped counter adds until the cap, then refuses and says so; the
/// window starts with the first add.
#[tokio::test]
async fn cookbook_a_capped_counter_stops_at_its_cap() {
    let (redis, gw, client, _plugins) = cookbook();
    let url = gw.url("/v1/cache/quota/ann");
    // Nothing added yet: a miss, and the read creates no counter.
    assert_problem(client.get(&url).send().await.unwrap(), 404).await;
    let add = async |n: u32| -> Value {
        let resp = client.put(&url).json(&n).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    };
    assert_eq!(add(2).await, json!({"value": 2, "added": true}));
    assert_eq!(add(3).await, json!({"value": 5, "added": true}));
    assert_eq!(add(1).await, json!({"value": 5, "added": false}));
    let now: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(now, json!(5), "read as the number it is");
    let pttl: i64 = redis.conn().pttl("quota:ann").unwrap();
    assert!((1..=60_000).contains(&pttl), "{pttl}");
    let resp = client.delete(&url).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(add(1).await, json!({"value": 1, "added": true}));
}
