//! Writes applied exactly as acknowledged: an `Idempotency-Key` makes a
//! retried write or publish land once (the retry gets the first response),
//! and a write's expiry cannot be separated from it, even by a connection
//! cut between the two commands.

use sluice_test_support as support;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::{Gateway, Redis, assert_problem, config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DOMAINS: &str = "[domains.price]\nplugin = \"price-hash\"\nttl_s = 5\n\n\
[domains.arbitrage]\nplugin = \"stream-router\"\nttl_s = 60\n";

fn gateway(redis: &Redis) -> Gateway {
    let text =
        config(redis, DOMAINS).replacen("[server]\n", "[server]\nidempotency_window_s = 600\n", 1);
    Gateway::start(&text)
}

#[tokio::test]
async fn a_put_retried_with_its_key_is_applied_once_and_answered_as_the_first_time() {
    let redis = Redis::start();
    let gw = gateway(&redis);
    let client = reqwest::Client::new();
    let put = |body: Value, key: &'static str| {
        client
            .put(gw.url("/v1/cache/cache/greeting"))
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = put(json!("hello"), "k-1").await.unwrap();
    assert_eq!(first.status(), 204);
    assert!(first.headers().get("idempotent-replayed").is_none());
    // Someone else writes the key; the retry must not overwrite it again.
    let _: () = redis::Commands::set(&mut redis.conn(), "cache:greeting", "other").unwrap();
    let retry = put(json!("hello"), "k-1").await.unwrap();
    assert_eq!(retry.status(), 204);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let now: String = redis::Commands::get(&mut redis.conn(), "cache:greeting").unwrap();
    assert_eq!(now, "other", "the retry was applied again");
    // The record lives under the reserved prefix (`-`: the open API's
    // client) as long as the value it wrote (the domain's 60 s), within
    // the window (600 s).
    let pttl: i64 = redis::Commands::pttl(&mut redis.conn(), "idempotency:cache:-:k-1").unwrap();
    assert!((50_000..=60_000).contains(&pttl), "record PTTL {pttl}");
    // The same key for another request is refused.
    let body = assert_problem(put(json!("bye"), "k-1").await.unwrap(), 422).await;
    assert_eq!(body["type"], "urn:sluice:problem:idempotency-key-reused");
    // A malformed key is the client's mistake.
    let resp = client
        .put(gw.url("/v1/cache/cache/greeting"))
        .header("idempotency-key", "has space")
        .json(&json!(1))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
    // A DELETE with a key, retried: one 204, one replay.
    for replayed in [false, true] {
        let resp = client
            .delete(gw.url("/v1/cache/cache/greeting"))
            .header("idempotency-key", "k-2")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        assert_eq!(resp.headers().contains_key("idempotent-replayed"), replayed);
    }
}

/// The fingerprint the gateway gives a request (method, path, client, body)
/// on the open API (client `-`).
fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), b"-", body] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_and_concurrent_publishes_with_one_key_add_one_event() {
    let redis = Redis::start();
    let gw = gateway(&redis);
    let client = reqwest::Client::new();
    let event =
        serde_json::to_vec(&json!({"type": "spread", "asset": "btc", "spread": 0.4})).unwrap();
    let publish = |key: &'static str| {
        client
            .post(gw.url("/v1/events/arbitrage"))
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(event.clone())
            .send()
    };
    // Twenty at once, then twenty retries: every answer is the first one's
    // ids (fresh or replayed) or a 409 while it is in flight.
    let mut answers = Vec::new();
    let burst: Vec<_> = (0..20).map(|_| tokio::spawn(publish("e-1"))).collect();
    for b in burst {
        answers.push(b.await.unwrap().unwrap());
    }
    for _ in 0..20 {
        answers.push(publish("e-1").await.unwrap());
    }
    let (mut fresh, mut ids) = (0, Vec::new());
    for resp in answers {
        match resp.status().as_u16() {
            201 => {
                fresh += usize::from(!resp.headers().contains_key("idempotent-replayed"));
                ids.push(resp.json::<Value>().await.unwrap()["ids"].clone());
            }
            409 => {
                let body = assert_problem(resp, 409).await;
                assert_eq!(body["type"], "urn:sluice:problem:idempotency-in-flight");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(fresh, 1, "applied more than once");
    assert!(ids.len() >= 20, "the retries were answered");
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    // Each stream the policy routes to holds the event once.
    let streams = ids[0].as_object().unwrap();
    assert!(!streams.is_empty());
    for stream in streams.keys() {
        let len: usize = redis::Commands::xlen(&mut redis.conn(), stream).unwrap();
        assert_eq!(len, 1, "{stream}");
    }
    // A duplicate while the first is being served is told so (the claim of
    // a request in flight, as Redis holds it).
    let fp = fingerprint("POST", "/v1/events/arbitrage", &event);
    let _: () = redis::Commands::set(
        &mut redis.conn(),
        "idempotency:arbitrage:-:e-2",
        format!("p|{fp}"),
    )
    .unwrap();
    let body = assert_problem(publish("e-2").await.unwrap(), 409).await;
    assert_eq!(body["type"], "urn:sluice:problem:idempotency-in-flight");
    // A request cancelled half-way leaves its claim; once the claim's time
    // is over (here cut short), a retry is served.
    let _: () =
        redis::Commands::pexpire(&mut redis.conn(), "idempotency:arbitrage:-:e-2", 1).unwrap();
    support::eventually(
        "a retry served once the claim expired",
        std::time::Duration::from_secs(5),
        async || publish("e-2").await.unwrap().status() == 201,
    )
    .await;
    // Without a key, every publish is a new event.
    for _ in 0..2 {
        let resp = client
            .post(gw.url("/v1/events/arbitrage"))
            .header("content-type", "application/json")
            .body(event.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
    }
    let stream = streams.keys().next().unwrap();
    let len: usize = redis::Commands::xlen(&mut redis.conn(), stream).unwrap();
    assert_eq!(len, 4, "e-1 once, e-2 once, two without a key");
}

/// `[clients.NAME]` that may write the `cache` domain, with API key `key`.
fn writer(name: &str, key: &str) -> String {
    let hash = sluice::auth::hash_key(key.as_bytes());
    format!("\n[clients.{name}]\nkey_sha256 = \"{hash}\"\nwrite = [\"cache\"]\n")
}

#[tokio::test]
async fn each_client_has_its_own_keys_and_records_last_as_long_as_the_write() {
    const A: &str = "alice-key-0123456789abcdef";
    const B: &str = "bob-key-0123456789abcdef";
    let redis = Redis::start();
    let extra = [DOMAINS, &writer("alice", A), &writer("bob", B)].concat();
    let text =
        config(&redis, &extra).replacen("[server]\n", "[server]\nidempotency_window_s = 600\n", 1);
    let gw = Gateway::start(&text);
    let client = reqwest::Client::new();
    let put = |auth: String, path: &str, key: &'static str, body: Value| {
        client
            .put(gw.url(path))
            .header("authorization", auth)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let stored =
        |key: &str| -> Option<Vec<u8>> { redis::Commands::get(&mut redis.conn(), key).unwrap() };
    let fresh = |resp: &reqwest::Response| {
        resp.status() == 204 && !resp.headers().contains_key("idempotent-replayed")
    };
    // B takes the key A is about to use, for a request of its own: A's
    // write still goes ahead.
    let b = put(
        format!("Bearer {B}"),
        "/v1/cache/cache/b",
        "k-1",
        json!("b"),
    )
    .await
    .unwrap();
    assert!(fresh(&b), "{}", b.status());
    let a = put(
        format!("Bearer {A}"),
        "/v1/cache/cache/a",
        "k-1",
        json!("a"),
    )
    .await
    .unwrap();
    assert!(fresh(&a), "B's key blocked A's write: {}", a.status());
    let written = stored("cache:a").expect("A's write applied");
    // B sends A's very request with A's key: it is B's own first request,
    // applied, and learns nothing of A's (no replay, no 422).
    let _: () = redis::Commands::set(&mut redis.conn(), "cache:a", "other").unwrap();
    let b = put(
        format!("Bearer {B}"),
        "/v1/cache/cache/a",
        "k-2",
        json!("a"),
    )
    .await
    .unwrap();
    assert!(fresh(&b), "{}", b.status());
    let a = put(
        format!("Bearer {A}"),
        "/v1/cache/cache/a",
        "k-2",
        json!("a"),
    )
    .await
    .unwrap();
    assert!(fresh(&a), "B's use of k-2 reached A: {}", a.status());
    assert_eq!(stored("cache:a"), Some(written.clone()));
    // A's retry spelling its scheme in lower case is the same request: replayed.
    let _: () = redis::Commands::set(&mut redis.conn(), "cache:a", "other").unwrap();
    let retry = put(
        format!("bearer {A}"),
        "/v1/cache/cache/a",
        "k-2",
        json!("a"),
    )
    .await
    .unwrap();
    assert_eq!(retry.status(), 204);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(stored("cache:a"), Some(b"other".to_vec()), "applied twice");
    // Each client's record is its own.
    for owner in ["alice", "bob"] {
        let record = format!("idempotency:cache:{owner}:k-2");
        let kept: bool = redis::Commands::exists(&mut redis.conn(), &record).unwrap();
        assert!(kept, "{record}");
    }
    // A write that lives 2 s leaves a record that lives no longer.
    let short = put(
        format!("Bearer {A}"),
        "/v1/cache/cache/a?ttl_s=2",
        "k-3",
        json!("a"),
    );
    assert!(fresh(&short.await.unwrap()));
    let pttl: i64 =
        redis::Commands::pttl(&mut redis.conn(), "idempotency:cache:alice:k-3").unwrap();
    assert!((1..=2_000).contains(&pttl), "record PTTL {pttl}");
}

/// A unix-socket proxy in front of Redis that, once armed, cuts the first
/// connection whose traffic reaches `marker`: what came before it reaches
/// Redis, nothing after.
async fn cutting_proxy(
    to: std::path::PathBuf,
    at: &std::path::Path,
    marker: &'static [u8],
) -> Arc<AtomicBool> {
    let armed = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::UnixListener::bind(at).unwrap();
    let arm = armed.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let mut server = tokio::net::UnixStream::connect(&to).await.unwrap();
            let armed = arm.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = async {
                    let mut buf = vec![0; 64 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let chunk = &buf[..n];
                        let cut = chunk.windows(marker.len()).position(|w| w == marker);
                        if let Some(i) = cut.filter(|_| armed.swap(false, Ordering::SeqCst)) {
                            // Back to the start of the command (`*3\r\n$7\r\n`).
                            let start = chunk[..i].windows(1).rposition(|w| w == b"*").unwrap_or(i);
                            let _ = sw.write_all(&chunk[..start]).await;
                            return;
                        }
                        if sw.write_all(chunk).await.is_err() {
                            return;
                        }
                    }
                };
                let down = tokio::io::copy(&mut sr, &mut cw);
                tokio::select! {
                    () = up => {}
                    _ = down => {}
                }
            });
        }
    });
    armed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_between_a_write_and_its_expiry_leaves_no_key_without_one() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let proxy = dir.path().join("proxy.sock");
    // The command itself, as sent: `*3 $7 PEXPIRE $13 price:btc:usd …`.
    let marker = b"$7\r\nPEXPIRE\r\n$13\r\nprice:btc:usd\r\n";
    let armed = cutting_proxy(redis.socket(), &proxy, marker).await;
    let text =
        config(&redis, DOMAINS).replace(&redis.url(), &format!("redis+unix://{}", proxy.display()));
    let gw = Gateway::start(&text);
    let client = reqwest::Client::new();
    let put = |asset: &str| {
        client
            .put(gw.url(&format!("/v1/cache/price/{asset}:usd")))
            .json(&json!({"asset": asset, "price": 64000.5}))
            .send()
    };
    assert_eq!(put("eth").await.unwrap().status(), 204);
    // DEL + HSET reach Redis, the connection dies before PEXPIRE.
    armed.store(true, Ordering::SeqCst);
    let resp = put("btc").await.unwrap();
    assert!(
        !armed.load(Ordering::SeqCst),
        "the proxy never saw the PEXPIRE"
    );
    assert!(resp.status().is_server_error(), "{}", resp.status());
    let mut conn = redis.conn();
    let keys: Vec<String> = redis::Commands::keys(&mut conn, "price:*").unwrap();
    for key in &keys {
        let pttl: i64 = redis::Commands::pttl(&mut conn, key).unwrap();
        assert!(pttl > 0, "{key} has no expiry ({pttl})");
    }
    // The write that was cut did not happen at all; a retry does.
    assert!(!keys.contains(&"price:btc:usd".to_owned()), "{keys:?}");
    support::eventually(
        "a write through a new connection",
        std::time::Duration::from_secs(10),
        async || put("btc").await.unwrap().status() == 204,
    )
    .await;
}
