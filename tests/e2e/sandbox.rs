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

/// A misbehaving policy in each language the SDKs serve: the fixture and
/// the memory cap its domain gets (a Python or JavaScript runtime starts at
/// 11–14 MiB of its own), and the key on which it raises an exception
/// instead of trapping, with what the answer then says.
struct Twin {
    plugin: &'static str,
    memory_mib: u32,
    /// The per-call deadline: an interpreter allocating 1 MiB at a time
    /// needs more than 20 ms to reach its cap (and must reach it).
    timeout_ms: u32,
    raises: Option<(&'static str, &'static str)>,
    /// What the plugin stored for `file`, `env` and `clock`: each language
    /// says "nothing there" in its own words.
    saw: [&'static str; 3],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_misbehaviour_fails_alone_and_the_other_domain_does_not_notice() {
    contained(Twin {
        plugin: "misbehave",
        memory_mib: 8,
        timeout_ms: 20,
        raises: None,
        saw: ["denied", "[]", "clock: 0"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_policy_is_held_to_the_same_sandbox() {
    contained(Twin {
        plugin: "misbehave-py",
        memory_mib: 24,
        timeout_ms: 200,
        raises: Some(("raise", "RuntimeError: asked to raise")),
        saw: ["denied: [Errno 44]", "[]", "clock: 0"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_policy_is_held_to_the_same_sandbox() {
    contained(Twin {
        plugin: "misbehave-ts",
        memory_mib: 24,
        timeout_ms: 200,
        raises: Some(("throw", "Error: asked to throw")),
        saw: ["no file API", "env: null", "clock: 0"],
    })
    .await;
}

async fn contained(twin: Twin) {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&[twin.plugin]);
    let bad = BAD
        .replace("\"misbehave\"", &format!("{:?}", twin.plugin))
        .replace(
            "plugin_memory_mib = 8",
            &format!("plugin_memory_mib = {}", twin.memory_mib),
        )
        .replace(
            "plugin_timeout_ms = 20",
            &format!("plugin_timeout_ms = {}", twin.timeout_ms),
        );
    let gw = Arc::new(Gateway::start(&config_in(&redis, plugins.path(), &bad)));
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
        ("loop", &format!("no answer within {}ms", twin.timeout_ms)),
        ("alloc", "trapped"),
    ] {
        let t = Instant::now();
        let resp = client.get(url(key)).send().await.unwrap();
        let body = assert_problem(resp, 500).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains(twin.plugin) && detail.contains(says),
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
    for (key, expect) in ["file", "env", "clock"].into_iter().zip(twin.saw) {
        let resp = client.put(url(key)).json(&json!(1)).send().await.unwrap();
        assert_eq!(resp.status(), 204, "{key}");
        let raw: Vec<u8> = redis.conn().get(format!("bad:{key}")).unwrap();
        let got: String = rmp_serde::from_slice(&raw).unwrap();
        assert!(got.starts_with(expect), "{key}: the plugin saw {got:?}");
    }

    // An exception is the policy's failure, not a trap: a 500 with its
    // message, and the instance lives on.
    if let Some((key, says)) = twin.raises {
        let resp = client.get(url(key)).send().await.unwrap();
        let body = assert_problem(resp, 500).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.contains(twin.plugin) && detail.contains(says),
            "{detail}"
        );
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
                &format!(
                    "sluice_plugin_calls_total{{plugin=\"{}\",result=\"{r}\"}}",
                    twin.plugin
                ),
            )
            .await
        }
    };
    assert_eq!(calls("trap").await, 2.0);
    assert_eq!(calls("timeout").await, 1.0);
    let raised = f64::from(u8::from(twin.raises.is_some()));
    assert_eq!(calls("failed").await, raised);
    let invalid = format!(
        "sluice_plugin_invalid_plans_total{{plugin=\"{}\"}}",
        twin.plugin
    );
    assert_eq!(metric(&gw, &invalid).await, 2.0);
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
