//! Hot reload: plugin files replaced under load (rename-and-replace and
//! symlink swap), corrupt plugins and broken configs refused while the old
//! generation serves, SIGHUP, and the admin API; reads of the plugin files
//! and rewrites of the same bytes reload nothing.

use sluice_test_support as support;

use redis::Commands;
use serde_json::{Value, json};
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use support::{
    Gateway, Redis, assert_problem, config_in, eventually, own_plugins_dir, plugins_dir,
};

const SWAP: &str = r#"
[domains.swap]
plugin = "swap"
ttl_s = 60
max_ttl_s = 3600
"#;

/// Replace `to` the way editors and deploy tools do: write aside, rename over.
fn rename_replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// A fresh write's TTL tells which policy is live: fixed-ttl gives the
/// domain's 60 s, adaptive-ttl half of it for a key nobody reads.
async fn live_ttl(client: &reqwest::Client, gw: &Gateway, redis: &Redis) -> i64 {
    let resp = client
        .put(gw.url("/v1/cache/swap/probe"))
        .json(&json!(1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    redis.conn().pttl("swap:probe").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_replaced_under_load_goes_live_without_a_failed_request() {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&[]);
    let swap = plugins.path().join("swap.wasm");
    std::fs::copy(plugins_dir().join("fixed-ttl.wasm"), &swap).unwrap();
    let gw = Arc::new(Gateway::start(&config_in(&redis, plugins.path(), SWAP)));
    let client = reqwest::Client::new();
    assert!(live_ttl(&client, &gw, &redis).await > 50_000);

    let load = Load::start(&gw, &client);
    load.serving().await;

    // Rename-and-replace with adaptive-ttl.
    rename_replace(&plugins_dir().join("adaptive-ttl.wasm"), &swap);
    let to_adaptive = eventually(
        "adaptive-ttl to go live",
        Duration::from_secs(20),
        async || live_ttl(&client, &gw, &redis).await < 40_000,
    )
    .await;

    // Symlink swap back to fixed-ttl.
    let link = plugins.path().join("swap.link");
    std::os::unix::fs::symlink(plugins_dir().join("fixed-ttl.wasm"), &link).unwrap();
    std::fs::rename(&link, &swap).unwrap();
    let to_fixed = eventually(
        "fixed-ttl to go live again",
        Duration::from_secs(20),
        async || live_ttl(&client, &gw, &redis).await > 50_000,
    )
    .await;

    let (ok, failed) = load.stop().await;
    println!(
        "write-to-live: rename-replace {to_adaptive:?}, symlink swap {to_fixed:?}; {ok} request pairs ok, {failed} failed"
    );
}

/// Python and TypeScript policies go live under load as Rust ones do: the
/// fixed-ttl domain's policy is replaced by the Python `misbehave-py`
/// (ordinary keys: fixed-ttl's plans), then by the TypeScript fixed-ttl.
/// The key `clock` tells them apart: the fixture stores what its clock said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_typescript_policies_replaced_under_load_fail_no_request() {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&["misbehave-py"]);
    let swap = plugins.path().join("swap.wasm");
    std::fs::copy(plugins_dir().join("fixed-ttl.wasm"), &swap).unwrap();
    let config = config_in(&redis, plugins.path(), SWAP).replace(
        "max_ttl_s = 3600\n",
        "max_ttl_s = 3600\nplugin_memory_mib = 32\n",
    );
    let gw = Arc::new(Gateway::start(&config));
    let client = reqwest::Client::new();
    let clock = async || -> String {
        let resp = client
            .put(gw.url("/v1/cache/swap/clock"))
            .json(&json!("value"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
        let raw: Vec<u8> = redis.conn().get("swap:clock").unwrap();
        rmp_serde::from_slice(&raw).unwrap()
    };
    assert_eq!(clock().await, "value");
    let load = Load::start(&gw, &client);
    load.serving().await;

    let fixture = support::repo_root().join("build/fixtures/misbehave-py.wasm");
    rename_replace(&fixture, &swap);
    let to_python = eventually(
        "the Python policy to go live",
        Duration::from_secs(60),
        async || clock().await == "clock: 0",
    )
    .await;
    rename_replace(&plugins_dir().join("fixed-ttl-ts.wasm"), &swap);
    let to_typescript = eventually(
        "the TypeScript policy to go live",
        Duration::from_secs(60),
        async || clock().await == "value",
    )
    .await;
    let (ok, failed) = load.stop().await;
    println!(
        "write-to-live: Python {to_python:?}, TypeScript {to_typescript:?}; {ok} request pairs ok, {failed} failed"
    );
}

/// A Kubernetes ConfigMap volume, updated as the kubelet's atomic writer
/// does: the files go into a new timestamped folder, a `..data_tmp`
/// symlink to it is renamed over `..data`, each file is a symlink through
/// `..data`, and the old folder is removed. The files a reader opens never
/// change; only `..data` does.
struct ConfigMapVolume {
    dir: tempfile::TempDir,
    generation: u32,
}

impl ConfigMapVolume {
    fn new() -> ConfigMapVolume {
        ConfigMapVolume {
            dir: tempfile::tempdir().unwrap(),
            generation: 0,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Project `files` (name, bytes) as the volume's whole content.
    fn project(&mut self, files: &[(&str, Vec<u8>)]) {
        let root = self.dir.path();
        let old = std::fs::read_link(root.join("..data")).ok();
        self.generation += 1;
        let stamp = format!("..2026_12_02_20_00_00.{:09}", self.generation);
        std::fs::create_dir(root.join(&stamp)).unwrap();
        for (name, bytes) in files {
            std::fs::write(root.join(&stamp).join(name), bytes).unwrap();
        }
        std::os::unix::fs::symlink(&stamp, root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        for (name, _) in files {
            let link = root.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
            }
        }
        if let Some(old) = old {
            std::fs::remove_dir_all(root.join(old)).unwrap();
        }
    }
}

/// The config and the plugins each in a ConfigMap-style volume, updated the
/// kubelet's way under load: each swap is one reload, no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_volume_swap_reloads_once_under_load() {
    let redis = Redis::start();
    let wasm = |name: &str| std::fs::read(plugins_dir().join(format!("{name}.wasm"))).unwrap();
    let mut plugins = ConfigMapVolume::new();
    plugins.project(&[
        ("fixed-ttl.wasm", wasm("fixed-ttl")),
        ("swap.wasm", wasm("fixed-ttl")),
    ]);
    let text = config_in(&redis, plugins.path(), SWAP);
    let mut config = ConfigMapVolume::new();
    config.project(&[("sluice.toml", text.clone().into_bytes())]);
    let gw = Arc::new(Gateway::start_at(&config.path().join("sluice.toml")));
    let client = reqwest::Client::new();
    assert!(live_ttl(&client, &gw, &redis).await > 50_000);
    let load = Load::start(&gw, &client);
    load.serving().await;

    // The config: the swap domain's TTL doubles.
    let longer = text.replace(
        "plugin = \"swap\"\nttl_s = 60",
        "plugin = \"swap\"\nttl_s = 120",
    );
    assert_ne!(longer, text);
    config.project(&[("sluice.toml", longer.into_bytes())]);
    eventually(
        "the new config to go live",
        Duration::from_secs(20),
        async || live_ttl(&client, &gw, &redis).await > 100_000,
    )
    .await;
    assert_eq!(reloads(&gw).await, (1.0, 0.0));

    // A plugin: adaptive-ttl gives a key nobody reads half the TTL.
    plugins.project(&[
        ("fixed-ttl.wasm", wasm("fixed-ttl")),
        ("swap.wasm", wasm("adaptive-ttl")),
    ]);
    eventually(
        "the new plugin to go live",
        Duration::from_secs(20),
        async || live_ttl(&client, &gw, &redis).await < 70_000,
    )
    .await;
    // A reload of the same burst again cannot be awaited: a second is many
    // debounces.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(reloads(&gw).await, (2.0, 0.0), "one reload per swap");
    let (ok, failed) = load.stop().await;
    println!("{ok} request pairs ok, {failed} failed");
}

/// Eight clients writing and reading back their own keys until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(gw: &Arc<Gateway>, client: &reqwest::Client) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let clients = (0..8)
            .map(|c| {
                let (gw, client, stop, ok, failed, failures) = (
                    gw.clone(),
                    client.clone(),
                    stop.clone(),
                    ok.clone(),
                    failed.clone(),
                    failures.clone(),
                );
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let url = gw.url(&format!("/v1/cache/swap/c{c}-{}", n % 20));
                        let put = client.put(&url).json(&json!(n)).send().await;
                        let get = client.get(&url).send().await;
                        let mut good = true;
                        for (what, r, want) in [("PUT", put, 204), ("GET", get, 200)] {
                            let problem = match r {
                                Ok(r) if r.status() == want => continue,
                                Ok(r) => {
                                    format!("{} {}", r.status(), r.text().await.unwrap_or_default())
                                }
                                Err(e) => e.to_string(),
                            };
                            good = false;
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("{what} {url}: {problem}"));
                        }
                        if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
                        n += 1;
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            failures,
            clients,
        }
    }

    /// Once the clients have been served a while.
    async fn serving(&self) {
        eventually("requests served", Duration::from_secs(20), async || {
            self.ok.load(Ordering::Relaxed) >= 50
        })
        .await;
    }

    /// Stop after the clients served a while past the last swap; every
    /// request must have succeeded. Returns the pairs that did and did not.
    async fn stop(self) -> (u64, u64) {
        let served = self.ok.load(Ordering::Relaxed);
        eventually(
            "requests after the swap",
            Duration::from_secs(20),
            async || self.ok.load(Ordering::Relaxed) > served + 100,
        )
        .await;
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients {
            c.await.unwrap();
        }
        let (ok, failed) = (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        );
        assert_eq!(
            failed,
            0,
            "requests failed during the swaps: {:?}",
            self.failures.lock().unwrap()
        );
        assert!(ok > 0);
        (ok, failed)
    }
}

#[tokio::test]
async fn corrupt_plugins_and_broken_configs_are_refused_and_the_old_ones_serve() {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&[]);
    let swap = plugins.path().join("swap.wasm");
    std::fs::copy(plugins_dir().join("fixed-ttl.wasm"), &swap).unwrap();
    let config = config_in(&redis, plugins.path(), SWAP);
    let gw = Gateway::start_with_env(&config, &[("SLUICE_ADMIN_TOKEN", "s3cret")]);
    let client = reqwest::Client::new();
    let admin = |path: &str| client.get(gw.url(path)).bearer_auth("s3cret");
    let status = async |client: &reqwest::Client| -> Value {
        client
            .get(gw.url("/admin/plugins"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };

    // The admin API wants the token.
    assert_problem(
        client.get(gw.url("/admin/plugins")).send().await.unwrap(),
        401,
    )
    .await;
    let resp = client
        .get(gw.url("/admin/plugins"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401).await;
    let body: Value = admin("/admin/plugins")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let swap_entry = body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["domain"] == "swap")
        .unwrap()
        .clone();
    assert_eq!(swap_entry["plugin"], "swap");
    assert_eq!(swap_entry["sha256"].as_str().unwrap().len(), 64);

    // A corrupt plugin file: refused, shown, counted; the old one serves.
    std::fs::write(&swap, b"\0asm garbage").unwrap();
    eventually(
        "the corrupt plugin to be refused",
        Duration::from_secs(20),
        async || {
            status(&client).await["last_reload"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("swap.wasm"))
        },
    )
    .await;
    assert!(
        live_ttl(&client, &gw, &redis).await > 50_000,
        "the old plugin must keep serving"
    );
    std::fs::copy(plugins_dir().join("fixed-ttl.wasm"), &swap).unwrap();
    eventually(
        "the good plugin to be back",
        Duration::from_secs(20),
        async || status(&client).await["last_reload"]["applied"] == true,
    )
    .await;

    // A broken config: refused; the old one serves.
    let path = gw.config_path();
    std::fs::write(&path, format!("{config}\n[domains.broken\n")).unwrap();
    eventually(
        "the broken config to be refused",
        Duration::from_secs(20),
        async || {
            status(&client).await["last_reload"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("TOML parse error"))
        },
    )
    .await;
    assert_eq!(
        client
            .get(gw.url("/v1/cache/swap/probe"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A good change applies live; the listen address is reported, not applied.
    let changed = config.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\"")
        + "\n[domains.extra]\nplugin = \"fixed-ttl\"\n";
    std::fs::write(&path, changed).unwrap();
    eventually(
        "the new domain to answer",
        Duration::from_secs(20),
        async || domain_answers(&client, &gw, "extra").await,
    )
    .await;
    let last = status(&client).await["last_reload"].clone();
    assert!(
        last["needs_restart"][0]
            .as_str()
            .unwrap()
            .contains("server.listen"),
        "{last}"
    );
    assert_eq!(
        client
            .get(gw.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // On demand, and the config as loaded.
    let resp = client
        .post(gw.url("/admin/reload"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let config: Value = admin("/admin/config")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(config["domains"]["extra"].is_object(), "{config}");
    assert!(support::metric(&gw, "sluice_reloads_total{result=\"refused\"}").await >= 2.0);
}

#[tokio::test]
async fn sighup_reloads_and_admin_is_off_without_a_token() {
    let redis = Redis::start();
    let config = support::config(&redis, "").replace("[plugins]\n", "[plugins]\nwatch = false\n");
    let gw = Gateway::start(&config);
    let client = reqwest::Client::new();
    assert_problem(
        client.get(gw.url("/admin/plugins")).send().await.unwrap(),
        404,
    )
    .await;

    std::fs::write(
        gw.config_path(),
        format!("{config}\n[domains.later]\nplugin = \"fixed-ttl\"\n"),
    )
    .unwrap();
    let resp = client
        .get(gw.url("/v1/cache/later/x"))
        .send()
        .await
        .unwrap();
    let body = assert_problem(resp, 404).await;
    assert_eq!(
        body["type"], "urn:sluice:problem:unknown-domain",
        "no watcher: nothing reloads by itself"
    );
    gw.signal("HUP");
    eventually(
        "SIGHUP to load the new domain",
        Duration::from_secs(20),
        async || domain_answers(&client, &gw, "later").await,
    )
    .await;
}

/// Whether a domain is configured: a read of it is a hit or a miss (it has a
/// `Cache-Status`), not "unknown domain".
async fn domain_answers(client: &reqwest::Client, gw: &Gateway, domain: &str) -> bool {
    let r = client
        .get(gw.url(&format!("/v1/cache/{domain}/x")))
        .send()
        .await
        .unwrap();
    r.headers().get("cache-status").is_some()
}

/// Write `path`'s own bytes over it, without truncating it first.
fn rewrite_in_place(path: &Path) {
    use std::io::Write;
    let bytes = std::fs::read(path).unwrap();
    let mut file = std::fs::File::options().write(true).open(path).unwrap();
    file.write_all(&bytes).unwrap();
}

/// Replace `path`'s content in one step: written aside, renamed over.
fn write_atomically(path: &Path, text: String) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Reloads counted on `/metrics`: (applied, refused).
async fn reloads(gw: &Gateway) -> (f64, f64) {
    (
        support::metric(gw, "sluice_reloads_total{result=\"applied\"}").await,
        support::metric(gw, "sluice_reloads_total{result=\"refused\"}").await,
    )
}

/// Read every `.wasm` in `dir` as backups, deploy tools and other gateways
/// do: open and read to the end, and copy out of the folder. Returns the
/// rounds done, at least one, for at least `for_at_least`.
fn read_plugins_repeatedly(dir: &Path, for_at_least: Duration) -> u64 {
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut rounds = 0;
    while rounds == 0 || started.elapsed() < for_at_least {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "wasm") {
                continue;
            }
            let mut bytes = Vec::new();
            std::fs::File::open(&path)
                .unwrap()
                .read_to_end(&mut bytes)
                .unwrap();
            assert!(!bytes.is_empty());
            std::fs::copy(&path, out.path().join(path.file_name().unwrap())).unwrap();
        }
        rounds += 1;
    }
    rounds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_plugin_files_reloads_nothing() {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&[]);
    let swap = plugins.path().join("swap.wasm");
    std::fs::copy(plugins_dir().join("fixed-ttl.wasm"), &swap).unwrap();
    let config = config_in(&redis, plugins.path(), SWAP);
    let gw = Gateway::start(&config);
    // A second gateway on the same folder: its start reads every plugin, and
    // each one's reloads would be the other's trigger.
    let other = Gateway::start(&config);
    let before = reloads(&gw).await;
    assert_eq!(
        before,
        (0.0, 0.0),
        "the second gateway's start reloaded the first"
    );
    assert_eq!(reloads(&other).await, (0.0, 0.0));

    // Two seconds of reads, with `check-config` and `plugin check` (which
    // load the files the gateway would) run meanwhile.
    let dir = plugins.path().to_owned();
    let reader =
        tokio::task::spawn_blocking(move || read_plugins_repeatedly(&dir, Duration::from_secs(2)));
    let cli = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "sluice {args:?}: {out:?}");
    };
    let config_path = gw.config_path();
    let checks = tokio::task::spawn_blocking(move || {
        cli(&["check-config".as_ref(), config_path.as_os_str()]);
        cli(&["plugin".as_ref(), "check".as_ref(), swap.as_os_str()]);
    });
    let rounds = reader.await.unwrap();
    checks.await.unwrap();
    assert_eq!(
        reloads(&gw).await,
        before,
        "reloads while the files were read"
    );

    // A reload that is not there cannot be awaited. Before the fix the first
    // read-triggered reload came 150 ms (the debounce) plus one build after
    // the reads stopped, then about 7 a second, each one's reads triggering
    // the next; a second of quiet is that many times over.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = reloads(&gw).await;
    println!(
        "{rounds} rounds of reading every plugin file: reloads {before:?} before, {after:?} after"
    );
    assert_eq!(
        after, before,
        "reading the plugin files reloaded the gateway"
    );
    assert_eq!(
        reloads(&other).await,
        (0.0, 0.0),
        "the second gateway reloaded"
    );

    // The watcher is alive: a real change is one reload, and its own reading
    // of the files starts no other.
    rename_replace(
        &plugins_dir().join("adaptive-ttl.wasm"),
        &plugins.path().join("swap.wasm"),
    );
    eventually(
        "the replaced plugin to be reloaded",
        Duration::from_secs(20),
        async || reloads(&gw).await.0 > before.0,
    )
    .await;
    assert!(live_ttl(&reqwest::Client::new(), &gw, &redis).await < 40_000);
    assert_eq!(reloads(&gw).await, (before.0 + 1.0, before.1));
}

#[tokio::test]
async fn rewriting_the_same_bytes_is_a_no_op_and_a_real_change_still_reloads() {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&[]);
    let swap = plugins.path().join("swap.wasm");
    std::fs::copy(plugins_dir().join("fixed-ttl.wasm"), &swap).unwrap();
    let config = config_in(&redis, plugins.path(), SWAP);
    let gw = Gateway::start_with_env(&config, &[("SLUICE_ADMIN_TOKEN", "s3cret")]);
    let client = reqwest::Client::new();
    let last_reload = async || -> Value {
        let body: Value = client
            .get(gw.url("/admin/plugins"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["last_reload"].clone()
    };
    let before = reloads(&gw).await;
    assert_eq!(last_reload().await["at"], Value::Null, "no reload yet");

    // The config and a plugin rewritten with the bytes they had (in place,
    // not truncated first: the watcher must never see other bytes); another
    // plugin opened for writing, its time stamp and mode set to what they were.
    let path = gw.config_path();
    rewrite_in_place(&path);
    rewrite_in_place(&swap);
    let fixed = plugins.path().join("fixed-ttl.wasm");
    let file = std::fs::File::options().append(true).open(&fixed).unwrap();
    file.set_modified(SystemTime::now()).unwrap();
    file.set_permissions(file.metadata().unwrap().permissions())
        .unwrap();
    drop(file);

    // The watcher looked and found nothing new: that is reported, not counted.
    eventually(
        "the watcher to find nothing changed",
        Duration::from_secs(20),
        async || last_reload().await["unchanged"] == true,
    )
    .await;
    let last = last_reload().await;
    assert_eq!(last["applied"], true, "{last}");
    assert_eq!(last["error"], Value::Null, "{last}");
    assert_eq!(
        reloads(&gw).await,
        before,
        "a rewrite of the same bytes counted"
    );

    // On demand, too: 200, nothing changed.
    let resp = client
        .post(gw.url("/admin/reload"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        (&body["applied"], &body["unchanged"]),
        (&json!(true), &json!(true)),
        "{body}"
    );
    assert_eq!(reloads(&gw).await, before);
    assert!(
        !gw.log().contains("reloaded"),
        "a no-op logged:\n{}",
        gw.log()
    );

    // A real change still reloads, once, and says so. (Written aside and
    // renamed over: a reload never sees a half-written file.)
    write_atomically(
        &path,
        format!("{config}\n[domains.extra]\nplugin = \"fixed-ttl\"\n"),
    );
    eventually(
        "the new domain to answer",
        Duration::from_secs(20),
        async || domain_answers(&client, &gw, "extra").await,
    )
    .await;
    eventually(
        "the reload to be counted",
        Duration::from_secs(20),
        async || reloads(&gw).await.0 > before.0,
    )
    .await;
    assert_eq!(reloads(&gw).await, (before.0 + 1.0, before.1));
    let last = last_reload().await;
    assert_eq!(
        (&last["applied"], &last["unchanged"]),
        (&json!(true), &json!(false)),
        "{last}"
    );
    assert_eq!(gw.log().matches("reloaded").count(), 1, "{}", gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_files_in_the_watched_folders_reload_nothing() {
    let redis = Redis::start();
    let plugins = own_plugins_dir(&[]);
    // The gateway's log is a file beside its config (tests/support), and at
    // trace level the watcher's own lines are written there: were it to
    // react to them, each reload would log the next.
    let gw = Gateway::start_with_env(
        &config_in(&redis, plugins.path(), ""),
        &[("RUST_LOG", "sluice=trace,notify=trace")],
    );
    let config_dir = gw.config_path().parent().unwrap().to_owned();
    for i in 0..50 {
        std::fs::write(config_dir.join("notes.txt"), format!("{i}")).unwrap();
        std::fs::write(plugins.path().join("README.md"), format!("{i}")).unwrap();
        std::fs::write(plugins.path().join("draft.wasm.tmp"), format!("{i}")).unwrap();
    }
    // One real trigger: the config rewritten with its own bytes.
    rewrite_in_place(&gw.config_path());
    let looked = || gw.log().matches("reload: nothing changed").count();
    eventually(
        "the rewrite looked at",
        Duration::from_secs(20),
        async || looked() >= 1,
    )
    .await;
    // A loop that is not there cannot be awaited: a second is many debounces.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(looked(), 1, "{}", gw.log());
    assert_eq!(reloads(&gw).await, (0.0, 0.0));
}
