//! `GET/PUT/DELETE /v1/cache/{domain}/{key}` end to end: a real redis-server,
//! the real `sluice` binary, the real fixed-ttl plugin — and its TypeScript
//! twin (plugins/fixed-ttl-ts), which must answer every request the same.

use sluice_test_support as support;

use redis::Commands;
use serde_json::{Value, json};
use support::{Gateway, Redis, assert_problem, config};

const MSGPACK: &str = "application/msgpack";

/// fixed-ttl in Rust, and in TypeScript with the same bounds.
const DOMAINS: [&str; 2] = ["cache", "cache_ts"];
const CACHE_TS: &str = "[domains.cache_ts]\nplugin = \"fixed-ttl-ts\"\nttl_s = 60\nmin_ttl_s = 1\nmax_ttl_s = 3600\nplugin_memory_mib = 32\n";

fn setup() -> (Redis, Gateway, reqwest::Client) {
    let redis = Redis::start();
    let gateway = Gateway::start(&config(&redis, CACHE_TS));
    (redis, gateway, reqwest::Client::new())
}

async fn put_json(client: &reqwest::Client, url: &str, value: &Value) -> reqwest::Response {
    client
        .put(url)
        .header("content-type", "application/json")
        .body(value.to_string())
        .send()
        .await
        .expect("PUT")
}

#[tokio::test]
async fn json_round_trip_is_stored_as_messagepack_under_the_domain() {
    let (redis, gw, client) = setup();
    for d in DOMAINS {
        let value = json!({"asset": "BTC", "price": 64123.5, "tags": ["spot", "usd"], "n": -3, "ok": true, "none": null});
        let resp = put_json(&client, &gw.url(&format!("/v1/cache/{d}/user:1")), &value).await;
        assert_eq!(resp.status(), 204);

        let resp = client
            .get(gw.url(&format!("/v1/cache/{d}/user:1")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.headers()["cache-status"], "sluice; hit");
        assert_eq!(resp.json::<Value>().await.unwrap(), value);

        // In Redis: MessagePack at {domain}:{key}.
        let raw: Vec<u8> = redis.conn().get(format!("{d}:user:1")).unwrap();
        assert_eq!(rmp_serde::from_slice::<Value>(&raw).unwrap(), value);
    }
}

#[tokio::test]
async fn messagepack_round_trip_returns_the_same_bytes() {
    let (_redis, gw, client) = setup();
    #[derive(serde::Serialize)]
    struct Price<'a> {
        asset: &'a str,
        price: f64,
        #[serde(with = "serde_bytes_compat")]
        blob: Vec<u8>,
    }
    mod serde_bytes_compat {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }
    for d in DOMAINS {
        let body = rmp_serde::to_vec_named(&Price {
            asset: "ETH",
            price: 3120.25,
            blob: vec![0, 255, 7],
        })
        .unwrap();
        let resp = client
            .put(gw.url(&format!("/v1/cache/{d}/eth")))
            .header("content-type", MSGPACK)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        let resp = client
            .get(gw.url(&format!("/v1/cache/{d}/eth")))
            .header("accept", MSGPACK)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], MSGPACK);
        assert_eq!(resp.bytes().await.unwrap().to_vec(), body);
    }
}

#[tokio::test]
async fn json_in_messagepack_out_and_back() {
    let (_redis, gw, client) = setup();
    for d in DOMAINS {
        let value = json!({"bids": [[64000.5, 1.25], [63999, 0.5]], "venue": "x"});
        put_json(&client, &gw.url(&format!("/v1/cache/{d}/depth")), &value).await;
        let resp = client
            .get(gw.url(&format!("/v1/cache/{d}/depth")))
            // The highest q wins.
            .header("accept", "application/json;q=0.5, application/msgpack")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], MSGPACK);
        let bytes = resp.bytes().await.unwrap();
        assert_eq!(rmp_serde::from_slice::<Value>(&bytes).unwrap(), value);
    }
}

#[tokio::test]
async fn a_miss_is_404_problem_with_cache_status() {
    let (_redis, gw, client) = setup();
    for d in DOMAINS {
        let resp = client
            .get(gw.url(&format!("/v1/cache/{d}/nothing-here")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["cache-status"], "sluice; fwd=uri-miss");
        let body = assert_problem(resp, 404).await;
        assert_eq!(body["type"], "urn:sluice:problem:not-found");
    }
}

#[tokio::test]
async fn delete_removes_the_key_from_redis() {
    let (redis, gw, client) = setup();
    for d in DOMAINS {
        put_json(&client, &gw.url(&format!("/v1/cache/{d}/gone")), &json!(1)).await;
        let resp = client
            .delete(gw.url(&format!("/v1/cache/{d}/gone")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        let exists: bool = redis.conn().exists(format!("{d}:gone")).unwrap();
        assert!(!exists);
        let resp = client
            .get(gw.url(&format!("/v1/cache/{d}/gone")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
    }
}

#[tokio::test]
async fn every_write_gets_a_ttl_the_domains_or_the_clients_within_bounds() {
    let (redis, gw, client) = setup();
    for d in DOMAINS {
        put_json(
            &client,
            &gw.url(&format!("/v1/cache/{d}/default")),
            &json!("v"),
        )
        .await;
        let pttl: i64 = redis.conn().pttl(format!("{d}:default")).unwrap();
        assert!(
            (55_000..=60_000).contains(&pttl),
            "domain default 60 s, got PTTL {pttl}"
        );

        let resp = put_json(
            &client,
            &gw.url(&format!("/v1/cache/{d}/short?ttl_s=5")),
            &json!("v"),
        )
        .await;
        assert_eq!(resp.status(), 204);
        let pttl: i64 = redis.conn().pttl(format!("{d}:short")).unwrap();
        assert!((1..=5_000).contains(&pttl), "client's 5 s, got PTTL {pttl}");

        // Outside the domain's 1..=3600 s: refused, nothing written.
        let resp = put_json(
            &client,
            &gw.url(&format!("/v1/cache/{d}/long?ttl_s=7200")),
            &json!("v"),
        )
        .await;
        let body = assert_problem(resp, 400).await;
        assert!(
            body["detail"].as_str().unwrap().contains("1..=3600"),
            "{body}"
        );
        let exists: bool = redis.conn().exists(format!("{d}:long")).unwrap();
        assert!(!exists);
        let resp = put_json(
            &client,
            &gw.url(&format!("/v1/cache/{d}/long?ttl_s=soon")),
            &json!("v"),
        )
        .await;
        assert_problem(resp, 400).await;
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_the_gateway_keeps_serving() {
    let (_redis, gw, client) = setup();
    let url = gw.url("/v1/cache/cache/k");

    // Unknown domain.
    let resp = client.get(gw.url("/v1/cache/nope/k")).send().await.unwrap();
    let body = assert_problem(resp, 404).await;
    assert!(body["detail"].as_str().unwrap().contains("nope"));

    // Malformed JSON, trailing garbage, an empty body, malformed MessagePack.
    for (ct, body) in [
        ("application/json", b"{\"a\":".to_vec()),
        ("application/json", b"{\"a\":1} x".to_vec()),
        ("application/json", Vec::new()),
        (MSGPACK, vec![0x82, 0xa1]),
        (MSGPACK, vec![0x01, 0x02]),
    ] {
        let resp = client
            .put(&url)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(resp, 400).await;
    }

    // Over the configured 64 KiB limit, with and without Content-Length.
    let big = vec![b' '; 70_000];
    let resp = client
        .put(&url)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_problem(resp, 413).await;
    let head = "PUT /v1/cache/cache/k HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut chunked = head.as_bytes().to_vec();
    for chunk in big.chunks(8192) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = support::raw_http(&gw.base, &chunked).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Unsupported media types in and out.
    let resp = client
        .put(&url)
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 415).await;
    let resp = client
        .get(&url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 406).await;

    // A key over max_key_bytes, an unknown query parameter, a wrong method.
    let resp = client
        .get(gw.url(&format!("/v1/cache/cache/{}", "k".repeat(200))))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
    let resp = client
        .get(gw.url("/v1/cache/cache/k?ttl=5"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 400).await;
    let resp = client.post(&url).send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET, HEAD, PUT, DELETE");
    assert_problem(resp, 405).await;

    // Still serving.
    let resp = put_json(&client, &url, &json!({"still": "here"})).await;
    assert_eq!(resp.status(), 204);
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"still": "here"})
    );
}

#[tokio::test]
async fn redis_unreachable_is_503_with_retry_after_and_liveness_stays_up() {
    let (mut redis, gw, client) = setup();
    put_json(&client, &gw.url("/v1/cache/cache/k"), &json!(1)).await;
    redis.kill();
    let resp = client
        .get(gw.url("/v1/cache/cache/k"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["retry-after"], "1");
    let body = assert_problem(resp, 503).await;
    assert_eq!(body["type"], "urn:sluice:problem:redis-unavailable");
    let resp = put_json(&client, &gw.url("/v1/cache/cache/k"), &json!(2)).await;
    assert_problem(resp, 503).await;
    let resp = client.get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}
