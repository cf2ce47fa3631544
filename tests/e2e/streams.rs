//! Consumer groups over HTTP against a real Redis stream.

use sluice_test_support as support;

use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::{Gateway, Redis, assert_problem, config};

fn xadd(redis: &Redis, stream: &str, n: usize) -> Vec<String> {
    let mut conn = redis.conn();
    (0..n)
        .map(|i| {
            let payload = rmp_serde::to_vec_named(&json!({"n": i})).unwrap();
            redis::cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("event")
                .arg(payload)
                .query(&mut conn)
                .unwrap()
        })
        .collect()
}

/// `n` entries of `bytes` bytes each on `stream`.
fn xadd_sized(redis: &Redis, stream: &str, n: usize, bytes: usize) {
    let mut conn = redis.conn();
    let payload = rmp_serde::to_vec(&"x".repeat(bytes)).unwrap();
    for _ in 0..n {
        let _: String = redis::cmd("XADD")
            .arg(stream)
            .arg("*")
            .arg("event")
            .arg(&payload)
            .query(&mut conn)
            .unwrap();
    }
}

async fn read(client: &reqwest::Client, gw: &Gateway, consumer: &str, query: &str) -> Vec<Value> {
    let url = gw.url(&format!(
        "/v1/streams/cache:events/groups/g/messages?consumer={consumer}&{query}"
    ));
    let resp = client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn two_consumers_share_a_stream_without_duplicates_and_unacked_messages_are_reclaimed() {
    let redis = Redis::start();
    let gw = Gateway::start(&config(
        &redis,
        "[domains.price]\nplugin = \"price-hash\"\nttl_s = 5\n",
    ));
    let client = reqwest::Client::new();
    // A domain that holds no streams cannot have one made in its namespace:
    // its keys stay what its policy wrote.
    let squat = gw.url("/v1/streams/price:eth:usd/groups/g");
    let body = assert_problem(client.post(&squat).send().await.unwrap(), 400).await;
    assert!(
        body["detail"].as_str().unwrap().contains("streams = true"),
        "{body}"
    );
    let exists: bool = redis::Commands::exists(&mut redis.conn(), "price:eth:usd").unwrap();
    assert!(!exists);
    let group = gw.url("/v1/streams/cache:events/groups/g?start=0");
    assert_eq!(client.post(&group).send().await.unwrap().status(), 201);
    // A stream made by creating a group expires like any key of its domain.
    let pttl: i64 = redis::Commands::pttl(&mut redis.conn(), "cache:events").unwrap();
    assert!(pttl > 0, "a stream without expiry ({pttl})");
    let resp = client.post(&group).send().await.unwrap();
    assert_eq!(resp.status(), 200, "creating it again is not an error");
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"created": false})
    );

    let ids: HashSet<String> = xadd(&redis, "cache:events", 6).into_iter().collect();
    let a = read(&client, &gw, "c1", "count=4").await;
    let b = read(&client, &gw, "c2", "count=10").await;
    assert_eq!((a.len(), b.len()), (4, 2));
    let seen: HashSet<String> = a
        .iter()
        .chain(&b)
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, ids, "every message delivered exactly once");
    assert_eq!(
        a[0]["fields"]["event"],
        json!({"n": 0}),
        "MessagePack fields come out typed"
    );

    let ack = gw.url("/v1/streams/cache:events/groups/g/ack");
    let resp = client
        .post(&ack)
        .json(&json!({"ids": seen.iter().collect::<Vec<_>>()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"acked": 6}));
    // An id past 64 bits is the client's mistake (400), not Redis's (502);
    // schemathesis found it.
    for bad in ["1-18446744073709551616", "99999999999999999999"] {
        let resp = client
            .post(&ack)
            .json(&json!({"ids": [bad]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let create = gw.url(&format!("/v1/streams/cache:events/groups/h?start={bad}"));
        assert_eq!(client.post(&create).send().await.unwrap().status(), 400);
    }
    assert!(
        read(&client, &gw, "c1", "").await.is_empty(),
        "nothing left, nothing lost"
    );

    // A blocking read waits for the block time, on a connection of its own.
    let t = Instant::now();
    assert!(read(&client, &gw, "c1", "block_ms=300").await.is_empty());
    assert!(t.elapsed() >= Duration::from_millis(300));

    // c1 takes a message and dies without acking: c2 reclaims it.
    let lost = xadd(&redis, "cache:events", 1).remove(0);
    assert_eq!(read(&client, &gw, "c1", "").await[0]["id"], lost.as_str());
    let claim = gw.url("/v1/streams/cache:events/groups/g/claim?consumer=c2&min_idle_ms=0");
    let body: Value = client
        .post(&claim)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["messages"][0]["id"], lost.as_str());
    let resp = client
        .post(&ack)
        .json(&json!({"ids": [lost]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"acked": 1}));
    // An idle time past what Redis takes is the client's mistake (400, not
    // 502); schemathesis found it.
    let idle = "min_idle_ms=12557606206584391680";
    let too_idle = gw.url(&format!(
        "/v1/streams/cache:events/groups/g/claim?consumer=c2&{idle}"
    ));
    let resp = client.post(&too_idle).send().await.unwrap();
    assert_problem(resp, 400).await;

    // Streams live inside a domain; reads need a consumer; blocks are bounded.
    let resp = client
        .post(gw.url("/v1/streams/elsewhere/groups/g"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
    let resp = client
        .get(gw.url("/v1/streams/cache:events/groups/g/messages"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
    let url = gw.url("/v1/streams/cache:events/groups/g/messages?consumer=c&block_ms=999999");
    assert_problem(client.get(url).send().await.unwrap(), 400).await;
    let url = gw.url("/v1/streams/cache:events/groups/nogroup/messages?consumer=c");
    let body = assert_problem(client.get(url).send().await.unwrap(), 404).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("create it with POST"),
        "{body}"
    );
}

#[tokio::test]
async fn a_read_stops_gathering_at_the_response_limit_and_leaves_the_rest_for_the_next() {
    let redis = Redis::start();
    // Rounds of 2 × 300 000 / 65 536 (max_body_bytes) = 9 entries.
    let text =
        config(&redis, "").replacen("[server]\n", "[server]\nmax_response_bytes = 300000\n", 1);
    let gw = Gateway::start(&text);
    let client = reqwest::Client::new();
    let group = gw.url("/v1/streams/cache:events/groups/g?start=0");
    assert_eq!(client.post(&group).send().await.unwrap().status(), 201);
    // Small entries: a read of 20 takes three rounds and gets all 20.
    xadd_sized(&redis, "cache:events", 20, 10);
    assert_eq!(read(&client, &gw, "c", "count=20").await.len(), 20);
    // Entries of 60 KB: the first round (9, 540 KB) reaches the limit; the
    // other 11 stay unread, for the next reads.
    xadd_sized(&redis, "cache:events", 20, 60_000);
    assert_eq!(read(&client, &gw, "c", "count=20").await.len(), 9);
    assert_eq!(read(&client, &gw, "c", "count=20").await.len(), 9);
    assert_eq!(read(&client, &gw, "c", "count=20").await.len(), 2);
    assert!(read(&client, &gw, "c", "count=20").await.is_empty());
    // A claim gathers the same way.
    let claim =
        gw.url("/v1/streams/cache:events/groups/g/claim?consumer=c2&min_idle_ms=0&count=100");
    let resp = client.post(claim).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    // Rounds of 9: 9 small, 9 small, then 2 small and 7 large (420 KB):
    // the limit is reached and the other 13 stay pending.
    assert_eq!(body["messages"].as_array().unwrap().len(), 27);
}
