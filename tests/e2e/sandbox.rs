//! The sandbox against a plugin that misbehaves on request (the `misbehave`
//! fixture): each misbehaviour fails that one request with a 500 naming the
//! plugin, is counted, and another domain serving at the same time does not
//! notice.

use sluice_test_support as support;

use redis::Commands;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{Gateway, Redis, assert_problem, config_in, metric, own_plugins_dir};

const BAD: &str = r#"
[domains.bad]
plugin = "misbehave"
plugin_timeout_ms = 20
plugin_memory_mib = 8
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_misbehaviour_fails_alone_and_the_other_domain_does_not_notice() {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&["misbehave"]);
    let gw = Arc::new(Gateway::start(&config_in(&redis, plugins.path(), BAD)));
    let client = reqwest::Client::new();

    // A well-behaved domain serves throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let neighbour = {
        let (gw, client, stop, served) = (gw.clone(), client.clone(), stop.clone(), served.clone());
        tokio::spawn(async move {
            let url = gw.url("/v1/cache/cache/neighbour");
            while !stop.load(Ordering::Relaxed) {
                let put = client.put(&url).json(&json!(1)).send().await.unwrap();
                assert_eq!(put.status(), 204, "the other domain noticed");
                let get = client.get(&url).send().await.unwrap();
                assert_eq!(get.status(), 200, "the other domain noticed");
                served.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let url = |k: &str| gw.url(&format!("/v1/cache/bad/{k}"));
    for (key, says) in [
        ("trap", "trapped"),
        ("loop", "no answer within 20ms"),
        ("alloc", "trapped"),
    ] {
        let t = Instant::now();
        let resp = client.get(url(key)).send().await.unwrap();
        let body = assert_problem(resp, 500).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains("misbehave") && detail.contains(says),
            "{key}: {detail}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{key} took {:?}",
            t.elapsed()
        );
    }
    for (key, says) in [
        ("escape", "outside the namespace"),
        ("script", "no registered script"),
    ] {
        let resp = client.put(url(key)).json(&json!(1)).send().await.unwrap();
        let body = assert_problem(resp, 500).await;
        assert!(
            body["detail"].as_str().unwrap().contains(says),
            "{key}: {body}"
        );
    }
    let exists: bool = redis.conn().exists("elsewhere:stolen").unwrap();
    assert!(!exists, "a plan outside its namespace reached Redis");

    // No files, no environment, a clock stopped at zero.
    for (key, expect) in [("file", "denied"), ("env", "[]"), ("clock", "clock: 0")] {
        let resp = client.put(url(key)).json(&json!(1)).send().await.unwrap();
        assert_eq!(resp.status(), 204, "{key}");
        let raw: Vec<u8> = redis.conn().get(format!("bad:{key}")).unwrap();
        let got: String = rmp_serde::from_slice(&raw).unwrap();
        assert!(got.starts_with(expect), "{key}: the plugin saw {got:?}");
    }

    // The plugin itself serves again: broken instances were retired.
    assert_eq!(
        client
            .put(url("fine"))
            .json(&json!({"ok": 1}))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let got: Value = client
        .get(url("fine"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, json!({"ok": 1}));

    stop.store(true, Ordering::Relaxed);
    neighbour.await.unwrap();
    assert!(served.load(Ordering::Relaxed) > 0);
    let calls = |r: &'static str| {
        let gw = gw.clone();
        async move {
            metric(
                &gw,
                &format!("sluice_plugin_calls_total{{plugin=\"misbehave\",result=\"{r}\"}}"),
            )
            .await
        }
    };
    assert_eq!(calls("trap").await, 2.0);
    assert_eq!(calls("timeout").await, 1.0);
    assert_eq!(
        metric(
            &gw,
            "sluice_plugin_invalid_plans_total{plugin=\"misbehave\"}"
        )
        .await,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_one_memory_budget_and_one_that_cannot_fit_is_refused_at_load() {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&["misbehave"]);
    // Each domain's cap (64 MiB) is far above what all instances may hold.
    let bad = BAD.replace("plugin_memory_mib = 8", "plugin_memory_mib = 64");
    let config = config_in(&redis, plugins.path(), &bad)
        .replace("[plugins]\n", "[plugins]\nmax_instance_memory_mb = 24\n");
    let gw = Gateway::start(&config);
    let client = reqwest::Client::new();
    // An instance that allocates without end stops at the budget: 503 for
    // that call, the memory given back.
    let resp = client
        .get(gw.url("/v1/cache/bad/alloc"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["retry-after"], "1");
    let body = assert_problem(resp, 503).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("misbehave") && detail.contains("plugins.max_instance_memory_mb (24 MiB)"),
        "{detail}"
    );
    assert_eq!(body["type"], "urn:sluice:problem:overloaded");
    for _ in 0..3 {
        let put = client
            .put(gw.url("/v1/cache/cache/after"))
            .json(&json!(1))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 204);
        let ok = client
            .get(gw.url("/v1/cache/bad/fine"))
            .send()
            .await
            .unwrap();
        assert_ne!(ok.status(), 503, "the budget was given back");
    }

    // A budget smaller than one instance refuses the plugin at start.
    let tiny = config.replace("max_instance_memory_mb = 24", "max_instance_memory_mb = 1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, tiny).unwrap();
    let mut serve = std::process::Command::new(support::gateway_bin());
    serve
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .arg("--listen")
        .arg("127.0.0.1:0");
    let (ok, _, stderr) = support::run_within(serve, Duration::from_secs(60));
    assert!(!ok, "started");
    assert!(
        stderr.contains("MiB, more than plugins.max_instance_memory_mb (1 MiB) for all of them"),
        "{stderr}"
    );
}
