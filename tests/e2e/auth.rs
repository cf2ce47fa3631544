//! API keys for the data API: the open API without `[clients]`, 401 for no
//! or unknown keys, 403 outside a key's scopes and 200 inside them on every
//! route family, open health routes, a key revoked by a reload while another
//! client's requests keep succeeding, and `sluice hash-key`.

use sluice_test_support as support;

use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::{Gateway, Redis, assert_problem, config, eventually};

const PRICING: &str = "pricing-key-0123456789abcdef";
const READER: &str = "reader-key-0123456789abcdef";
const ARB: &str = "arb-key-0123456789abcdef";
const LATE: &str = "late-key-0123456789abcdef";

/// The domains and policies every test here uses, besides support's `cache`.
const DOMAINS: &str = r#"
[domains.price]
plugin = "price-hash"
ttl_s = 5

[domains.arbitrage]
plugin = "stream-router"
streams = true

[ratelimits.global]
capacity = 100
refill_per_s = 100

[ratelimits.batch]
capacity = 100
refill_per_s = 100
"#;

/// `[clients.NAME]` for a key and its scopes (TOML arrays).
fn client(name: &str, key: &str, scopes: &str) -> String {
    format!(
        "\n[clients.{name}]\nkey_sha256 = \"{}\"\n{scopes}\n",
        sluice::auth::hash_key(key.as_bytes())
    )
}

fn clients() -> String {
    [
        client(
            "pricing",
            PRICING,
            "read = [\"price\"]\nwrite = [\"price\"]\nratelimits = [\"global\"]",
        ),
        client("reader", READER, "read = [\"cache\"]"),
        client("arb", ARB, "events = [\"arbitrage\"]"),
    ]
    .concat()
}

/// A 403 problem naming `right` and `subject`.
async fn forbidden(resp: reqwest::Response, right: &str, subject: &str) {
    let body = assert_problem(resp, 403).await;
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("`{right}`")) && detail.contains(&format!("{subject:?}")),
        "403 should name {right} on {subject}: {body}"
    );
    assert_eq!(body["type"], "urn:sluice:problem:forbidden");
}

/// A 401 problem with `WWW-Authenticate: Bearer`.
async fn unauthenticated(resp: reqwest::Response) -> String {
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    let body = assert_problem(resp, 401).await;
    let detail = body["detail"].as_str().unwrap_or_default().to_owned();
    assert!(!detail.contains("ADMIN"), "{detail}");
    assert!(detail.contains("Authorization: Bearer"), "{detail}");
    detail
}

#[tokio::test]
async fn without_clients_the_api_is_open_and_the_gateway_says_so_at_start() {
    let redis = Redis::start();
    let gw = Gateway::start(&config(&redis, DOMAINS));
    let http = reqwest::Client::new();
    let url = gw.url("/v1/cache/cache/open");
    let put = http.put(&url).json(&json!({"a": 1})).send().await.unwrap();
    assert_eq!(put.status(), 204);
    let get = http.get(&url).send().await.unwrap();
    assert_eq!(get.status(), 200);
    // A key is not needed, and one nobody configured is not refused either.
    let get = http.get(&url).bearer_auth("anything").send().await.unwrap();
    assert_eq!(get.status(), 200);
    let allowed = http
        .post(gw.url("/v1/ratelimit/global/u1"))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    eventually(
        "the start-up warning about the open API",
        Duration::from_secs(5),
        async || gw.log().contains("no [clients] table"),
    )
    .await;
    let warned = gw
        .log()
        .lines()
        .filter(|l| l.contains("no [clients] table"))
        .count();
    assert_eq!(warned, 1, "said once:\n{}", gw.log());
    let sample = "sluice_client_requests_total{client=\"-\",domain=\"cache\",route=\"cache\",status=\"200\"}";
    assert_eq!(support::metric(&gw, sample).await, 2.0);
}

#[tokio::test]
async fn keys_are_required_and_each_route_family_is_held_to_its_scope() {
    let redis = Redis::start();
    let gw = Gateway::start(&config(&redis, &format!("{DOMAINS}{}", clients())));
    let http = reqwest::Client::new();
    let price = gw.url("/v1/cache/price/btc:usd");
    let cache = gw.url("/v1/cache/cache/x");

    // No key, an unknown key, a key that is not a bearer token: 401.
    let missing = unauthenticated(http.get(&price).send().await.unwrap()).await;
    assert!(missing.contains("no API key"), "{missing}");
    let unknown =
        unauthenticated(http.get(&price).bearer_auth("guess").send().await.unwrap()).await;
    assert!(unknown.contains("not one this gateway knows"), "{unknown}");
    let basic = http
        .get(&price)
        .basic_auth("pricing", Some(PRICING))
        .send()
        .await
        .unwrap();
    unauthenticated(basic).await;
    // Before the body is read: an unknown key's body is never parsed.
    let resp = http
        .post(gw.url("/v1/mset/price"))
        .bearer_auth("guess")
        .body("not json")
        .send()
        .await
        .unwrap();
    unauthenticated(resp).await;

    // Health, readiness and metrics stay open.
    for open in ["/healthz", "/readyz", "/metrics"] {
        let resp = http.get(gw.url(open)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{open}");
    }

    // Cache: read and write on its own domain; nothing on another.
    let object = json!({"asset": "BTC", "fiat": "USD", "price": 64000.5});
    let put = http.put(&price).bearer_auth(PRICING).json(&object);
    assert_eq!(put.send().await.unwrap().status(), 204);
    let got = http.get(&price).bearer_auth(PRICING).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.json::<Value>().await.unwrap(), object);
    let head = http.head(&price).bearer_auth(PRICING).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let put = http.put(&cache).bearer_auth(PRICING).json(&1);
    forbidden(put.send().await.unwrap(), "write", "cache").await;
    let get = http.get(&cache).bearer_auth(PRICING).send().await.unwrap();
    forbidden(get, "read", "cache").await;
    // Read-only: reads (a miss is an answer), never writes or deletes.
    let get = http.get(&cache).bearer_auth(READER).send().await.unwrap();
    assert_eq!(get.status(), 404);
    let put = http.put(&cache).bearer_auth(READER).json(&1);
    forbidden(put.send().await.unwrap(), "write", "cache").await;
    let delete = http
        .delete(&cache)
        .bearer_auth(READER)
        .send()
        .await
        .unwrap();
    forbidden(delete, "write", "cache").await;
    let delete = http
        .delete(&price)
        .bearer_auth(READER)
        .send()
        .await
        .unwrap();
    forbidden(delete, "write", "price").await;

    // Batches: a key that reads price and not cache gets one and not the other.
    let keys = json!({"keys": ["btc:usd", "eth:usd"]});
    let mget = http
        .post(gw.url("/v1/mget/price"))
        .bearer_auth(PRICING)
        .json(&keys);
    let resp = mget.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["values"]["btc:usd"], object);
    assert_eq!(body["values"]["eth:usd"], Value::Null);
    let mget = http
        .post(gw.url("/v1/mget/cache"))
        .bearer_auth(PRICING)
        .json(&keys);
    forbidden(mget.send().await.unwrap(), "read", "cache").await;
    let mget = http
        .post(gw.url("/v1/mget/cache"))
        .bearer_auth(READER)
        .json(&keys);
    assert_eq!(mget.send().await.unwrap().status(), 200);
    let items = json!({"items": {"eth:usd": {"asset": "ETH", "fiat": "USD", "price": 3000}}});
    let mset = http
        .post(gw.url("/v1/mset/price"))
        .bearer_auth(PRICING)
        .json(&items);
    let resp = mset.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"stored": 1}));
    // Refused before the body is read: a body that would be a 400 is a 403.
    let mset = http
        .post(gw.url("/v1/mset/cache"))
        .bearer_auth(READER)
        .body("not json");
    forbidden(mset.send().await.unwrap(), "write", "cache").await;

    // Events: publish to the domain in scope only.
    let event = json!({"type": "opportunity", "asset": "BTC", "spread": 0.4});
    let publish = |key: &'static str| {
        http.post(gw.url("/v1/events/arbitrage"))
            .bearer_auth(key)
            .json(&event)
    };
    forbidden(
        publish(PRICING).send().await.unwrap(),
        "events",
        "arbitrage",
    )
    .await;

    // Streams: groups of the owning domain's streams, with `events` on it.
    let group = gw.url("/v1/streams/arbitrage:opportunity/groups/g?start=0");
    let create = http.post(&group).bearer_auth(ARB).send().await.unwrap();
    assert_eq!(create.status(), 201);
    assert_eq!(publish(ARB).send().await.unwrap().status(), 201);
    let read = gw.url("/v1/streams/arbitrage:opportunity/groups/g/messages?consumer=c&count=5");
    let resp = http.get(&read).bearer_auth(ARB).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{body}");
    let ack = http
        .post(gw.url("/v1/streams/arbitrage:opportunity/groups/g/ack"))
        .bearer_auth(ARB)
        .json(&json!({"ids": [messages[0]["id"]]}));
    assert_eq!(ack.send().await.unwrap().status(), 200);
    let other_group = gw.url("/v1/streams/arbitrage:opportunity/groups/h");
    let create = http.post(&other_group).bearer_auth(PRICING).send().await;
    forbidden(create.unwrap(), "events", "arbitrage").await;
    let resp = http.get(&read).bearer_auth(READER).send().await.unwrap();
    forbidden(resp, "events", "arbitrage").await;
    // The stream's domain decides, not the domains the key holds elsewhere.
    let squat = gw.url("/v1/streams/cache:x/groups/g");
    let resp = http.post(&squat).bearer_auth(ARB).send().await.unwrap();
    forbidden(resp, "events", "cache").await;

    // Rate limits: the policies in scope only.
    let take = |policy: &str, key: &'static str| {
        http.post(gw.url(&format!("/v1/ratelimit/{policy}/u1")))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(take("global", PRICING).await.unwrap().status(), 200);
    forbidden(take("batch", PRICING).await.unwrap(), "ratelimits", "batch").await;
    forbidden(take("global", ARB).await.unwrap(), "ratelimits", "global").await;

    // Requests are counted per client; an unknown key counts as `-`.
    let text = http
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |client: &str, route: &str, domain: &str, status: &str| {
        let sample = format!(
            "sluice_client_requests_total{{client=\"{client}\",domain=\"{domain}\",route=\"{route}\",status=\"{status}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&sample))
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
    };
    assert_eq!(count("pricing", "cache", "price", "204"), 1.0, "{text}");
    assert_eq!(count("pricing", "cache", "cache", "403"), 2.0, "{text}");
    assert_eq!(count("reader", "mset", "cache", "403"), 1.0, "{text}");
    assert_eq!(count("arb", "events", "arbitrage", "201"), 1.0, "{text}");
    assert_eq!(count("-", "cache", "price", "401"), 3.0, "{text}");
    let clients: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("sluice_client_requests_total{client=\""))
        .filter_map(|l| l.split('"').next())
        .collect();
    assert_eq!(
        clients.into_iter().collect::<Vec<_>>(),
        ["-", "arb", "pricing", "reader"],
        "labels are configured names only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_after_a_reload_while_another_client_keeps_going() {
    let redis = Redis::start();
    let both = format!(
        "{DOMAINS}{}{}",
        client("pricing", PRICING, "read = [\"price\", \"cache\"]"),
        client("reader", READER, "read = [\"cache\"]\nwrite = [\"cache\"]"),
    );
    let gw = Arc::new(Gateway::start(&config(&redis, &both)));
    let http = reqwest::Client::new();
    let url = gw.url("/v1/cache/cache/shared");
    let put = http.put(&url).bearer_auth(READER).json(&json!("v"));
    assert_eq!(put.send().await.unwrap().status(), 204);
    let get = |key: &'static str| http.get(&url).bearer_auth(key).send();
    assert_eq!(get(PRICING).await.unwrap().status(), 200);
    unauthenticated(get(LATE).await.unwrap()).await;

    // The other client reads in a loop through the reload.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let (http, url, stop, ok, failed) = (
                http.clone(),
                url.clone(),
                stop.clone(),
                ok.clone(),
                failed.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let resp = http.get(&url).bearer_auth(READER).send().await;
                    let good = resp.is_ok_and(|r| r.status() == 200);
                    if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    eventually(
        "the reader's loop to be under way",
        Duration::from_secs(10),
        async || ok.load(Ordering::Relaxed) > 20,
    )
    .await;

    // Revoke `pricing`, add `late`: one rewrite of the file, then SIGHUP
    // (the watcher may reload first; a second reload of the same text is a no-op).
    let revoked = format!(
        "{DOMAINS}{}{}",
        client("reader", READER, "read = [\"cache\"]\nwrite = [\"cache\"]"),
        client("late", LATE, "read = [\"cache\"]"),
    );
    let text = config(&redis, &revoked);
    std::fs::write(gw.config_path(), text).unwrap();
    gw.signal("HUP");
    let took = eventually(
        "the revoked key to be refused",
        Duration::from_secs(20),
        async || get(PRICING).await.unwrap().status() == 401,
    )
    .await;
    unauthenticated(get(PRICING).await.unwrap()).await;
    assert_eq!(
        get(LATE).await.unwrap().status(),
        200,
        "the added key works"
    );
    // Keep the loop going a little past the swap, counted, not slept.
    let at_swap = ok.load(Ordering::Relaxed);
    eventually(
        "more reads after the reload",
        Duration::from_secs(10),
        async || ok.load(Ordering::Relaxed) > at_swap + 20,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("revoked within {took:?}; the other client: {ok} reads ok, {failed} failed");
    assert_eq!(
        failed, 0,
        "the other client's requests failed during the reload"
    );
    assert!(gw.log().contains("reloaded"), "{}", gw.log());
}

#[test]
fn hash_key_prints_the_sha256_of_stdin_less_one_newline() {
    let run = |input: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("hash-key")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n";
    // `printf abc | sha256sum`; short keys are hashed, with a warning.
    let (ok, out, err) = run(b"abc\n");
    assert!(ok, "{err}");
    assert_eq!(out, abc);
    assert!(err.contains("can be guessed"), "{err}");
    assert_eq!(run(b"abc").1, abc);
    let key = "3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let (ok, out, err) = run(format!("{key}\n").as_bytes());
    assert!(ok && err.is_empty(), "{err}");
    assert_eq!(out.trim(), sluice::auth::hash_key(key.as_bytes()));
    // Nothing, or a second newline, is refused rather than hashed.
    let (ok, out, err) = run(b"");
    assert!(!ok && out.is_empty() && err.contains("no key"), "{err}");
    let (ok, _, err) = run(b"abc\n\n");
    assert!(!ok && err.contains("printable ASCII"), "{err}");
}
