//! docs/openapi.json against a live gateway: it is served at
//! `/openapi.json` (open, like `/healthz`), and schemathesis, a
//! property-based tester, finds no 5xx and no answer that contradicts the
//! document on the data routes (cache, batches, events, streams, rate
//! limits), with real plugins and a real redis-server. `make test` installs
//! schemathesis into var/venv; `SCHEMATHESIS=path` points elsewhere.

use sluice_test_support as support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::{EXAMPLE_DOMAINS, Gateway, Redis, repo_root};

#[tokio::test]
async fn the_gateway_serves_its_document_without_a_key() {
    let redis = Redis::start();
    // API keys configured: the data API is closed, the document is not.
    let extra = "\n[clients.svc]\nkey_sha256 = \"d5583b731967b9d647d54f2de29bee12cb5079c45547c87157807ed364a6567e\"\nread = [\"cache\"]\n";
    let gw = Gateway::start(&support::config(&redis, extra));
    let resp = reqwest::get(gw.url("/openapi.json")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served: serde_json::Value = resp.json().await.unwrap();
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("docs/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        served, file,
        "the binary serves the document it was built with"
    );
    let closed = reqwest::get(gw.url("/v1/cache/cache/x")).await.unwrap();
    assert_eq!(closed.status(), 401);
}

fn schemathesis() -> PathBuf {
    std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("var/venv/bin/schemathesis"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_the_document_does_not_say() {
    let st = schemathesis();
    if !support::have(&st, "--version") {
        return;
    }
    let redis = Redis::start();
    let gw = Gateway::start(&support::config(&redis, EXAMPLE_DOMAINS));
    let report = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&st);
    cmd.arg("--config-file")
        .arg(repo_root().join("tests/schemathesis.toml"))
        .arg("run")
        .arg(gw.url("/openapi.json"))
        // The data routes; the operational and admin ones have tests of their own.
        .args(["--include-path-regex", "^/v1/"])
        .args(["--max-examples", "12"])
        // One worker: Python 3.11.7's `ast` is not safe to use from two
        // threads at once, and hypothesis parses sources as it generates.
        .args(["--workers", "1"])
        // A blocking read waits as long as it is asked to: not in this run.
        .args(["--request-timeout", "35"])
        .args(["--report", "junit"])
        .arg("--report-dir")
        .arg(report.path())
        .args(["--output-truncate", "true"])
        .current_dir(report.path())
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false");
    if let Ok(seed) = std::env::var("SCHEMATHESIS_SEED") {
        cmd.args(["--seed", &seed]);
    }
    let started = std::time::Instant::now();
    let (ok, out, err) = support::run_within(cmd, Duration::from_secs(600));
    eprintln!("schemathesis took {:?}", started.elapsed());
    assert!(
        ok,
        "schemathesis found problems:\n{out}\n{err}\ngateway log:\n{}",
        tail(&gw.log(), 40)
    );
    eprintln!("{}", tail(&out, 25));
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
