//! The operations files (docker/) against the gateway they describe: every
//! path the image copies and compose mounts exists and lands where the
//! configs' relative paths expect it; every alert has a runbook section;
//! every metric the dashboard and the alert rules query is on a live
//! gateway's `/metrics`; and promtool finds no problem in that exposition.

use sluice_test_support as support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use support::{Gateway, Redis, STARTUP, config_in, eventually, metric, own_plugins_dir, repo_root};

/// Where the image puts the repository's files (its WORKDIR).
const IMAGE_ROOT: &str = "/opt/sluice/";

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A path inside the repository, relative to its root ("docker/gateway").
fn in_repo(path: &Path) -> String {
    let full = path
        .canonicalize()
        .unwrap_or_else(|e| panic!("{} does not exist: {e}", path.display()));
    let rel = full
        .strip_prefix(repo_root())
        .expect("a path inside the repository");
    rel.to_str().unwrap().to_owned()
}

/// The Dockerfile's instructions, continuation lines joined.
fn dockerfile() -> Vec<String> {
    read("docker/Dockerfile")
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_image_copies_and_compose_mounts_paths_that_exist_where_the_configs_expect_them() {
    let root = repo_root();
    let mut from_build = Vec::new();
    for line in dockerfile().iter().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        let (flags, paths): (Vec<&str>, Vec<&str>) =
            words.iter().partition(|w| w.starts_with("--"));
        let (dest, sources) = paths.split_last().expect("COPY names a destination");
        if flags.iter().any(|f| f.starts_with("--from=")) {
            from_build.push(dest.to_string());
            continue;
        }
        for source in sources {
            // The image mirrors the repository's layout under its WORKDIR.
            let rel = in_repo(&root.join(source));
            let want = if rel.is_empty() { "." } else { &rel };
            assert_eq!(dest.trim_end_matches('/'), want, "{line}");
        }
    }
    // config/sluice.toml's plugins.dir ("../build/plugins") resolves there.
    assert!(
        from_build.contains(&"build/plugins/".to_owned()),
        "{from_build:?}"
    );
    let cmd = dockerfile()
        .into_iter()
        .find(|l| l.starts_with("CMD "))
        .expect("CMD");
    let config = cmd
        .split('"')
        .find(|w| w.ends_with(".toml"))
        .expect("CMD names a config file");
    assert!(root.join(config).is_file(), "{cmd}");

    let docker = root.join("docker");
    let compose = read("docker/compose.yaml");
    let mut mounts = 0;
    for line in compose.lines().map(str::trim) {
        if let Some(dir) = line.strip_prefix("context: ") {
            assert!(docker.join(dir).is_dir(), "{line}");
        } else if let Some(file) = line.strip_prefix("dockerfile: ") {
            assert!(root.join(file).is_file(), "{line}");
        } else if let Some(mount) = line
            .strip_prefix("- ./")
            .map(|m| format!("./{m}"))
            .or_else(|| line.strip_prefix("- ../").map(|m| format!("../{m}")))
        {
            let mut parts = mount.trim_matches('"').split(':');
            let (host, container) = (parts.next().unwrap(), parts.next().expect("host:container"));
            let rel = in_repo(&docker.join(host));
            mounts += 1;
            if let Some(inside) = container.strip_prefix(IMAGE_ROOT) {
                assert_eq!(inside, rel, "the gateway's mount {line} moves a path");
            }
        }
    }
    assert!(
        mounts >= 6,
        "only {mounts} mounts found in docker/compose.yaml"
    );

    let (ok, out) = check_config(&root.join(config));
    assert!(ok, "{config}: {out}");
}

fn check_config(path: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("check-config")
        .arg(path)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text.into_owned())
}

/// GitHub's anchor for a heading: lowercase, spaces to '-', punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_alert_has_a_runbook_section() {
    let alerts = read("docker/prometheus/alerts.yml");
    let doc = read("docs/operations.md");
    let anchors: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| anchor(h.trim_start_matches('#')))
        .collect();
    let names = alerts
        .lines()
        .filter(|l| l.trim().starts_with("- alert:"))
        .count();
    let runbooks: Vec<&str> = alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook: docs/operations.md#"))
        .collect();
    assert!(names >= 8, "{names} alerts");
    assert_eq!(runbooks.len(), names, "an alert without a runbook");
    for r in runbooks {
        assert!(
            anchors.contains(r),
            "docs/operations.md has no section #{r}"
        );
    }
}

/// Metric names in a query or a rules file: the words that start as the
/// gateway's do (recording rules, `sluice:...`, are not the gateway's).
fn metric_names(text: &str, into: &mut BTreeSet<String>) {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("sluice_") || w.starts_with("redis_"))
        .for_each(|w| {
            into.insert(w.to_owned());
        });
}

/// The dashboard's queries (panels and variables).
fn dashboard_queries() -> Vec<String> {
    fn walk(v: &Value, key: &str, out: &mut Vec<String>) {
        match v {
            Value::String(s) if matches!(key, "expr" | "query" | "definition") => {
                out.push(s.clone())
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, key, out)),
            Value::Object(o) => o.iter().for_each(|(k, v)| walk(v, k, out)),
            _ => {}
        }
    }
    let dashboard: Value = serde_json::from_str(&read("docker/grafana/sluice.json")).unwrap();
    let mut out = Vec::new();
    walk(&dashboard, "", &mut out);
    out
}

/// Two domains (one with a near cache, one on the misbehaving fixture)
/// and a rate limit, one request in flight at most.
const EXTRA: &str = "\n[domains.near]\nplugin = \"fixed-ttl\"\nnear_cache_ms = 60000\n\
                     \n[domains.odd]\nplugin = \"misbehave\"\n\
                     \n[ratelimits.t]\ncapacity = 10\nrefill_per_s = 1\n";

fn ops_config(redis: &Redis, plugins: &Path) -> String {
    config_in(redis, plugins, EXTRA).replacen("[server]\n", "[server]\nmax_in_flight = 1\n", 1)
}

/// The metric names an exposition has.
fn exported(exposition: &str) -> BTreeSet<String> {
    let mut exported = BTreeSet::new();
    for line in exposition.lines() {
        let name = match line.strip_prefix("# TYPE ") {
            Some(rest) => rest.split(' ').next(),
            None if line.starts_with('#') => None,
            None => line.split(['{', ' ']).next(),
        };
        exported.extend(name.map(str::to_owned));
    }
    exported
}

/// A gateway whose every metric family has a child: a near-cache hit, a
/// rate-limit decision, an invalid plan, a shed request, an applied and a
/// refused reload, the breaker opened.
async fn touched_gateway() -> String {
    let mut redis = Redis::start();
    let plugins = own_plugins_dir(&["misbehave"]);
    let text = ops_config(&redis, plugins.path());
    let gw = Gateway::start(&text);
    let client = reqwest::Client::new();
    let url = |p: &str| gw.url(p);
    let put = client
        .put(url("/v1/cache/near/k"))
        .json(&1)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    eventually("a near-cache hit", STARTUP, async || {
        client.get(url("/v1/cache/near/k")).send().await.unwrap();
        metric(&gw, "sluice_l1_total{result=\"hit\"}").await >= 1.0
    })
    .await;
    let limited = client.post(url("/v1/ratelimit/t/s")).send().await.unwrap();
    assert_eq!(limited.status(), 200);
    let escape = client
        .get(url("/v1/cache/odd/escape"))
        .send()
        .await
        .unwrap();
    assert_eq!(escape.status(), 500);

    // One long-poll holds the only in-flight slot: the next request is shed.
    let group = url("/v1/streams/cache:ev/groups/g");
    assert_eq!(client.post(&group).send().await.unwrap().status(), 201);
    let poll = tokio::spawn(
        client
            .get(format!("{group}/messages?consumer=c&block_ms=20000"))
            .send(),
    );
    // Redis says when the long-poll holds its slot (a request sent before
    // that could take the slot first and have the long-poll shed instead).
    eventually("the long-poll blocked", STARTUP, async || {
        redis.info("blocked_clients") == "1"
    })
    .await;
    let shed = client.get(url("/healthz")).send().await.unwrap();
    assert_eq!(shed.status(), 503, "a request past max_in_flight is shed");
    let _: String = redis::cmd("XADD")
        .arg("cache:ev")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(&mut redis.conn())
        .unwrap();
    assert_eq!(poll.await.unwrap().unwrap().status(), 200);

    let config = gw.config_path();
    std::fs::write(&config, text.replace("capacity = 10", "capacity = 20")).unwrap();
    gw.signal("HUP");
    let reloads = |result| format!("sluice_reloads_total{{result=\"{result}\"}}");
    eventually("a reload applied", STARTUP, async || {
        metric(&gw, &reloads("applied")).await >= 1.0
    })
    .await;
    std::fs::write(&config, "[server\n").unwrap();
    gw.signal("HUP");
    eventually("a reload refused", STARTUP, async || {
        metric(&gw, &reloads("refused")).await >= 1.0
    })
    .await;

    redis.kill();
    eventually("the breaker to open", STARTUP, async || {
        client.get(url("/v1/cache/cache/x")).send().await.unwrap();
        metric(&gw, "sluice_breaker_state").await == 1.0
    })
    .await;
    let scrape = reqwest::get(url("/metrics")).await.unwrap();
    assert_eq!(scrape.status(), 200);
    scrape.text().await.unwrap()
}

/// Whether promtool is installed. Under CI (and `make test`, which installs
/// it) its absence is a failure; elsewhere its checks are skipped.
fn have_promtool() -> bool {
    let found = Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is missing (make test installs it)"
        );
        eprintln!("promtool is missing: skipping its checks (make test installs it)");
    }
    found
}

/// Run promtool with `args`, `stdin` on its standard input; its success and output.
fn promtool(args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_alerts_query_only_metrics_the_gateway_exports() {
    let queries = dashboard_queries();
    let mut wanted = BTreeSet::new();
    queries.iter().for_each(|q| metric_names(q, &mut wanted));
    metric_names(&read("docker/prometheus/alerts.yml"), &mut wanted);
    for sure in [
        "sluice_http_request_duration_seconds_bucket",
        "redis_memory_used_bytes",
    ] {
        assert!(wanted.contains(sure), "no {sure} among {wanted:?}");
    }

    // Exported only by a gateway on a Redis Cluster (a series per primary):
    // `cluster.rs` checks them on one.
    const CLUSTER_ONLY: [&str; 1] = ["sluice_breaker_node_state"];
    let missing = |exposition: &str| -> Vec<String> {
        let exported = exported(exposition);
        (wanted.difference(&exported))
            .filter(|m| !CLUSTER_ONLY.contains(&m.as_str()))
            .cloned()
            .collect()
    };

    // A fresh gateway, asked for nothing yet: every series the config
    // names is there, at zero.
    let redis = Redis::start();
    let plugins = own_plugins_dir(&["misbehave"]);
    let fresh = Gateway::start(&ops_config(&redis, plugins.path()));
    let exposition = reqwest::get(fresh.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let none = missing(&exposition);
    assert!(
        none.is_empty(),
        "a fresh gateway lacks {none:?}\n{exposition}"
    );
    for zero in [
        "sluice_http_request_duration_seconds_count{domain=\"near\",route=\"cache\",status=\"200\"} 0",
        "sluice_plugin_invalid_plans_total{plugin=\"misbehave\"} 0",
        "sluice_plugin_calls_total{plugin=\"fixed-ttl\",result=\"trap\"} 0",
        "sluice_ratelimit_total{policy=\"t\",result=\"limited\"} 0",
        "sluice_reloads_total{result=\"refused\"} 0",
        "sluice_l1_total{result=\"stale\"} 0",
        "redis_maxmemory_bytes ",
    ] {
        assert!(exposition.contains(zero), "no {zero:?} in\n{exposition}");
    }
    drop((fresh, redis));

    let exposition = touched_gateway().await;
    let none = missing(&exposition);
    assert!(
        none.is_empty(),
        "queried but not exported: {none:?}\n{exposition}"
    );

    if !have_promtool() {
        return;
    }
    let (ok, out) = promtool(&["check", "metrics"], &exposition);
    assert!(
        ok && out.trim().is_empty(),
        "promtool check metrics:\n{out}"
    );
    // The dashboard's queries parse: as recording rules, with Grafana's
    // variables given values.
    let dir = tempfile::tempdir().unwrap();
    let rules: String = queries
        .iter()
        .filter(|q| !q.starts_with("label_values("))
        .enumerate()
        .map(|(i, q)| {
            let q = q.replace("$__rate_interval", "5m").replace("$domain", ".*");
            format!(
                "      - record: dashboard:{i}\n        expr: {}\n",
                Value::from(q)
            )
        })
        .collect();
    let file = dir.path().join("dashboard.yml");
    std::fs::write(
        &file,
        format!("groups:\n  - name: dashboard\n    rules:\n{rules}"),
    )
    .unwrap();
    let (ok, out) = promtool(&["check", "rules", file.to_str().unwrap()], "");
    assert!(ok, "the dashboard's queries:\n{out}");
}
