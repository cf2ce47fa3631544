//! The chaos suite: Redis SIGKILLed and SIGSTOPped under load, `SCRIPT FLUSH`
//! under rate-limit load, durability of acknowledged writes with
//! `appendfsync always` across a SIGKILL and, in the long form, a plugin
//! replaced every 200 ms under load.
//!
//! `make test` runs the short form (a few seconds a case); `make chaos` sets
//! `SLUICE_CHAOS_LONG=1` for the long one (kill loops, more keys, the plugin
//! swap). Every wait is on a condition, every loop bounded. The cases run one
//! at a time (a lock), so their latency bounds hold on a small machine.

use sluice_test_support as support;

use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{
    Gateway, Redis, STARTUP, config, config_in, eventually, metric, own_plugins_dir, plugins_dir,
    wait_until,
};

/// `command_timeout_ms` in the support config.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(1000);
/// What a request may take beyond the command timeout on a loaded machine.
const MARGIN: Duration = Duration::from_millis(500);

/// One case at a time: the latency bounds are about the gateway, not about
/// four cases sharing two cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn long() -> bool {
    std::env::var("SLUICE_CHAOS_LONG").is_ok_and(|v| v == "1")
}

fn client() -> reqwest::Client {
    // Far above any bound asserted: a hung request shows up as an error.
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// What a group of load tasks saw.
#[derive(Default)]
struct Seen {
    statuses: Mutex<BTreeMap<u16, u64>>,
    errors: Mutex<Vec<String>>,
    slowest_ms: AtomicU64,
    ok: AtomicU64,
}

impl Seen {
    fn record(&self, took: Duration, status: Result<u16, String>) {
        self.slowest_ms
            .fetch_max(took.as_millis() as u64, Ordering::Relaxed);
        match status {
            Ok(s) => {
                if (200..300).contains(&s) || s == 404 {
                    self.ok.fetch_add(1, Ordering::Relaxed);
                }
                *self.statuses.lock().unwrap().entry(s).or_default() += 1;
            }
            Err(e) => self.errors.lock().unwrap().push(e),
        }
    }

    fn slowest(&self) -> Duration {
        Duration::from_millis(self.slowest_ms.load(Ordering::Relaxed))
    }

    fn summary(&self) -> String {
        format!(
            "statuses {:?}, transport errors {}, slowest {:?}",
            self.statuses.lock().unwrap(),
            self.errors.lock().unwrap().len(),
            self.slowest()
        )
    }
}

/// `writers` tasks that PUT then GET keys of the `cache` domain until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(gw: &Arc<Gateway>, domain: &str, writers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Seen::default());
        let client = client();
        let tasks = (0..writers)
            .map(|w| {
                let (gw, client, stop, seen) =
                    (gw.clone(), client.clone(), stop.clone(), seen.clone());
                let domain = domain.to_owned();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let url = gw.url(&format!("/v1/cache/{domain}/w{w}-{}", n % 20));
                        let t = Instant::now();
                        let r = client.put(&url).json(&json!({"n": n})).send().await;
                        seen.record(t.elapsed(), status(r));
                        let t = Instant::now();
                        let r = client.get(&url).send().await;
                        seen.record(t.elapsed(), status(r));
                        n += 1;
                    }
                })
            })
            .collect();
        Load { stop, seen, tasks }
    }

    /// Wait until `more` further requests succeeded.
    async fn progress(&self, more: u64, within: Duration) {
        let from = self.seen.ok.load(Ordering::Relaxed);
        eventually("load to make progress", within, async || {
            self.seen.ok.load(Ordering::Relaxed) >= from + more
        })
        .await;
    }

    async fn finish(self) -> Arc<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.seen
    }
}

fn status(r: reqwest::Result<reqwest::Response>) -> Result<u16, String> {
    r.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
}

/// PUT until one is acknowledged; how long that took.
async fn first_write(gw: &Gateway, key: &str, within: Duration) -> Duration {
    let client = client();
    let url = gw.url(&format!("/v1/cache/cache/{key}"));
    eventually("a write to be acknowledged", within, async || {
        matches!(client.put(&url).json(&json!(1)).send().await, Ok(r) if r.status() == 204)
    })
    .await
}

fn signal(pid: &str, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid)
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Sends SIGCONT on drop, so a failed assertion never leaves Redis stopped.
struct Resume(String);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-CONT").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sigkilled_under_load_bounds_every_request_and_writes_come_back() {
    let _serial = SERIAL.lock().await;
    let mut redis = Redis::start();
    let gw = Arc::new(Gateway::start(&config(&redis, "")));
    let load = Load::start(&gw, "cache", 4);
    load.progress(50, STARTUP).await;
    let cycles = if long() { 10 } else { 1 };
    let mut recoveries = Vec::new();
    for cycle in 0..cycles {
        redis.kill();
        eventually("the breaker to open", Duration::from_secs(10), async || {
            metric(&gw, "sluice_breaker_state").await == 1.0
        })
        .await;
        redis.restart();
        recoveries.push(first_write(&gw, &format!("back{cycle}"), Duration::from_secs(10)).await);
        load.progress(20, Duration::from_secs(10)).await;
    }
    let seen = load.finish().await;
    println!(
        "chaos sigkill: {cycles} cycle(s); restart to first 204: {recoveries:?}; load: {}",
        seen.summary()
    );
    assert!(
        seen.errors.lock().unwrap().is_empty(),
        "{:?}",
        seen.errors.lock().unwrap()
    );
    assert!(
        seen.slowest() < COMMAND_TIMEOUT + MARGIN,
        "a request waited {:?}",
        seen.slowest()
    );
    for (s, _) in seen.statuses.lock().unwrap().iter() {
        assert!([200, 204, 404, 503].contains(s), "unexpected status {s}");
    }
    for r in recoveries {
        assert!(r < Duration::from_secs(3), "writes came back after {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sigstopped_for_two_seconds_bounds_latency_opens_the_breaker_and_recovers() {
    let _serial = SERIAL.lock().await;
    let redis = Redis::start();
    let gw = Arc::new(Gateway::start(&config(&redis, "")));
    // More writers than the breaker's 5 consecutive failures: it opens on the
    // first round of timeouts, about 1 s into the pause.
    let load = Load::start(&gw, "cache", 6);
    load.progress(50, STARTUP).await;
    let pid = redis.info("process_id");
    let pauses = if long() { 5 } else { 1 };
    let mut opened_after = Vec::new();
    let mut recoveries = Vec::new();
    for p in 0..pauses {
        signal(&pid, "STOP");
        let resume = Resume(pid.clone());
        let stopped = Instant::now();
        opened_after.push(
            eventually("the breaker to open", Duration::from_secs(10), async || {
                metric(&gw, "sluice_breaker_state").await == 1.0
            })
            .await,
        );
        tokio::time::sleep(Duration::from_secs(2).saturating_sub(stopped.elapsed())).await;
        drop(resume);
        let back = Instant::now();
        first_write(&gw, &format!("cont{p}"), Duration::from_secs(10)).await;
        recoveries.push(back.elapsed());
        load.progress(20, Duration::from_secs(10)).await;
    }
    let seen = load.finish().await;
    println!(
        "chaos sigstop: {pauses} pause(s) of 2 s; breaker open after {opened_after:?}; \
         SIGCONT to first 204: {recoveries:?}; load: {}",
        seen.summary()
    );
    assert!(
        seen.errors.lock().unwrap().is_empty(),
        "{:?}",
        seen.errors.lock().unwrap()
    );
    assert!(
        seen.slowest() < COMMAND_TIMEOUT + MARGIN,
        "a request waited {:?}",
        seen.slowest()
    );
    let statuses = seen.statuses.lock().unwrap().clone();
    assert!(statuses.contains_key(&503), "no 503 during the pause");
    for s in statuses.keys() {
        assert!([200, 204, 404, 503].contains(s), "unexpected status {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_flush_under_rate_limit_load_never_reaches_a_client() {
    let _serial = SERIAL.lock().await;
    let redis = Redis::start();
    let gw = Arc::new(Gateway::start(&config(
        &redis,
        "[ratelimits.t]\ncapacity = 1000000000\nrefill_per_s = 1000000\n",
    )));
    let (flushes_wanted, requests_wanted) = if long() { (2000, 50_000) } else { (200, 2000) };
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let client = client();
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let (gw, client, stop, seen) = (gw.clone(), client.clone(), stop.clone(), seen.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = client
                        .post(gw.url(&format!("/v1/ratelimit/t/x{w}")))
                        .send()
                        .await;
                    let r = match r {
                        Ok(r) if ![200, 429].contains(&r.status().as_u16()) => Err(format!(
                            "{} {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        )),
                        r => status(r),
                    };
                    seen.record(t.elapsed(), r);
                }
            })
        })
        .collect();
    let flushes = Arc::new(AtomicU64::new(0));
    let flusher = {
        let (stop, flushes, url) = (stop.clone(), flushes.clone(), redis.url());
        tokio::task::spawn_blocking(move || {
            let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
            while !stop.load(Ordering::Relaxed) {
                let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut conn).unwrap();
                flushes.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let took = eventually(
        "enough requests and flushes",
        Duration::from_secs(if long() { 300 } else { 20 }),
        async || {
            flushes.load(Ordering::Relaxed) >= flushes_wanted
                && seen.ok.load(Ordering::Relaxed) >= requests_wanted
                || !seen.errors.lock().unwrap().is_empty()
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    flusher.await.unwrap();
    let recoveries = metric(&gw, "sluice_script_noscript_recoveries_total").await;
    let loads = metric(&gw, "sluice_script_loads_total").await;
    println!(
        "chaos script flush: {} flushes in {took:?}; {}; NOSCRIPT recoveries {recoveries}, SCRIPT LOADs {loads}",
        flushes.load(Ordering::Relaxed),
        seen.summary()
    );
    let errors = seen.errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} responses other than 200/429, first: {:?}",
        errors.len(),
        errors.iter().take(5).collect::<Vec<_>>()
    );
}

/// A redis-server of the test's own on `redis`'s socket and data dir, with
/// the append-only file on (the support `Redis` starts with it off).
struct AofRedis(Child);

impl AofRedis {
    fn start(redis: &Redis) -> AofRedis {
        let socket = redis.socket();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(socket.parent().unwrap())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server");
        let server = AofRedis(child);
        wait_until("redis-server to load its AOF", STARTUP, || {
            redis::Client::open(redis.url())
                .ok()
                .and_then(|c| c.get_connection().ok())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).ok())
                .is_some()
        });
        server
    }
}

impl Drop for AofRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_acknowledged_before_a_sigkill_is_there_after_the_restart() {
    let _serial = SERIAL.lock().await;
    let mut redis = Redis::start();
    // The AOF on, every write fsynced before Redis answers.
    let mut conn = redis.conn();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("yes")
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendfsync")
        .arg("always")
        .query(&mut conn)
        .unwrap();
    wait_until("the first AOF rewrite", STARTUP, || {
        redis.info("aof_enabled") == "1"
            && redis.info("aof_rewrite_in_progress") == "0"
            && redis.info("aof_rewrite_scheduled") == "0"
    });
    let gw = Arc::new(Gateway::start(&config(&redis, "")));
    let (writers, kill_after) = if long() { (8, 5000) } else { (4, 300) };
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let client = client();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (gw, client, stop, acked, refused) = (
                gw.clone(),
                client.clone(),
                stop.clone(),
                acked.clone(),
                refused.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("d{w}-{n}");
                    let r = client
                        .put(gw.url(&format!("/v1/cache/cache/{key}")))
                        .json(&json!({"n": n}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 204 => acked.lock().unwrap().push(key),
                        _ => _ = refused.fetch_add(1, Ordering::Relaxed),
                    }
                    n += 1;
                }
            })
        })
        .collect();
    eventually("writes before the kill", STARTUP, async || {
        acked.lock().unwrap().len() >= kill_after
    })
    .await;
    // Mid-stream: writers are still sending.
    redis.kill();
    eventually("the breaker to open", Duration::from_secs(10), async || {
        metric(&gw, "sluice_breaker_state").await == 1.0
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let _server = AofRedis::start(&redis);
    let mut conn = redis.conn();
    let acked = acked.lock().unwrap().clone();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|k| {
            !redis::cmd("EXISTS")
                .arg(format!("cache:{k}"))
                .query::<bool>(&mut conn)
                .unwrap()
        })
        .collect();
    let keys: u64 = redis::cmd("DBSIZE").query(&mut conn).unwrap();
    println!(
        "chaos durability: {} writes acknowledged, {} refused, {keys} keys after the restart, lost: {}",
        acked.len(),
        refused.load(Ordering::Relaxed),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}

fn rename_replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// Long form only: 150 replacements take 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_replaced_every_200_ms_under_load_fails_no_request() {
    if !long() {
        println!("chaos plugin swap: long form only (SLUICE_CHAOS_LONG=1, make chaos)");
        return;
    }
    let _serial = SERIAL.lock().await;
    let redis = Redis::start();
    let plugins = own_plugins_dir(&[]);
    let swap = plugins.path().join("swap.wasm");
    std::fs::copy(plugins_dir().join("fixed-ttl.wasm"), &swap).unwrap();
    let domain = "[domains.swap]\nplugin = \"swap\"\nttl_s = 60\nmax_ttl_s = 3600\n";
    let gw = Arc::new(Gateway::start(&config_in(&redis, plugins.path(), domain)));
    let load = Load::start(&gw, "swap", 4);
    load.progress(200, STARTUP).await;
    let rss_before = support::rss_kib_and_cpu_ticks(gw.pid()).0;
    let started = Instant::now();
    let mut swaps = 0u64;
    while started.elapsed() < Duration::from_secs(30) {
        let from = if swaps.is_multiple_of(2) {
            "adaptive-ttl"
        } else {
            "fixed-ttl"
        };
        rename_replace(&plugins_dir().join(format!("{from}.wasm")), &swap);
        swaps += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    load.progress(50, Duration::from_secs(10)).await;
    let rss_after = support::rss_kib_and_cpu_ticks(gw.pid()).0;
    let applied = metric(&gw, "sluice_reloads_total{result=\"applied\"}").await;
    let refused = metric(&gw, "sluice_reloads_total{result=\"refused\"}").await;
    let seen = load.finish().await;
    println!(
        "chaos plugin swap: {swaps} replacements in 30 s, reloads applied {applied}, refused {refused}; RSS {} MiB -> {} MiB; load: {}",
        rss_before / 1024,
        rss_after / 1024,
        seen.summary()
    );
    let statuses = seen.statuses.lock().unwrap().clone();
    assert!(seen.errors.lock().unwrap().is_empty());
    assert_eq!(refused, 0.0, "a replacement was refused");
    // A reload compiles the component (hundreds of ms in a debug build), so
    // replacements arriving meanwhile coalesce, and a batch that ends on the
    // live bytes is a no-op: far fewer than `swaps` apply, but they keep coming.
    assert!(
        applied >= 10.0,
        "only {applied} of {swaps} replacements went live"
    );
    for s in statuses.keys() {
        assert!([200, 204].contains(s), "failed requests: {statuses:?}");
    }
    assert!(
        rss_after < rss_before * 3 / 2 + 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}
