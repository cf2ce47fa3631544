//! The restore drill: what clients stored through the gateway — values,
//! hashes, streams with a consumer group and its pending entries, rate-limit
//! state — is backed up with `docker/backup/backup.sh`, Redis is wiped, the
//! snapshot restored, and everything reads back through the gateway, every
//! key's TTL as it was less the time that passed.

use sluice_test_support as support;

use redis::Commands;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Cluster, Gateway, Redis, config, eventually, repo_root};

const DOMAINS: &str = r#"
[domains.prices]
plugin = "price-hash"
ttl_s = 600
max_ttl_s = 3600

[domains.arbitrage]
plugin = "stream-router"
ttl_s = 86400
streams = true
[domains.arbitrage.settings]
maxlen = 100

[ratelimits.t]
capacity = 10
refill_per_s = 0.01
"#;

/// `backup.sh --once` against `redis` into `dir`, named `stamp`; its output.
fn backup(redis: &Redis, dir: &Path, stamp: &str, keep: u32) -> String {
    let out = Command::new("sh")
        .arg(repo_root().join("docker/backup/backup.sh"))
        .arg("--once")
        .env("REDIS_SOCKET", redis.socket())
        .env("BACKUP_DIR", dir)
        .env("KEEP", keep.to_string())
        .env("STAMP", stamp)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "backup.sh failed: {text}");
    text
}

fn snapshots(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every key: its serialized content (DUMP, which leaves the TTL out) and
/// its PTTL.
fn everything(redis: &Redis) -> BTreeMap<String, (Vec<u8>, i64)> {
    let mut c = redis.conn();
    let keys: Vec<String> = c.keys("*").unwrap();
    keys.into_iter()
        .map(|k| {
            let dump: Vec<u8> = redis::cmd("DUMP").arg(&k).query(&mut c).unwrap();
            let pttl: i64 = c.pttl(&k).unwrap();
            (k, (dump, pttl))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_every_kind_of_data_with_its_ttl_less_the_time_passed() {
    let mut redis = Redis::start();
    let gw = Gateway::start(&config(&redis, DOMAINS));
    let http = reqwest::Client::new();
    let url = |p: &str| gw.url(p);

    // A value, a hash, two streams with a group and a pending entry, a
    // rate-limit bucket part spent.
    let value = json!({"user": "ann", "tags": ["a", "b"], "n": 3});
    let put = http
        .put(url("/v1/cache/cache/user:1?ttl_s=1800"))
        .json(&value);
    assert_eq!(put.send().await.unwrap().status(), 204);
    let price = json!({"asset": "BTC", "price": 64000.5, "ts": 1_732_550_000_000u64});
    let put = http.put(url("/v1/cache/prices/btc:usd")).json(&price);
    assert_eq!(put.send().await.unwrap().status(), 204);
    for n in 0..3 {
        let event = json!({"type": "tick", "asset": "BTC", "n": n});
        let post = http.post(url("/v1/events/arbitrage")).json(&event);
        assert_eq!(post.send().await.unwrap().status(), 201);
    }
    let group = url("/v1/streams/arbitrage:tick/groups/g?start=0");
    assert_eq!(http.post(&group).send().await.unwrap().status(), 201);
    let read = url("/v1/streams/arbitrage:tick/groups/g/messages?consumer=c&count=1");
    let first: Value = http.get(&read).send().await.unwrap().json().await.unwrap();
    assert_eq!(first["messages"].as_array().unwrap().len(), 1, "{first}");
    let mut remaining = 0;
    for _ in 0..4 {
        let said: Value = (http.post(url("/v1/ratelimit/t/sam")).send().await.unwrap())
            .json()
            .await
            .unwrap();
        remaining = said["remaining"].as_u64().unwrap();
    }
    assert_eq!(remaining, 6);

    let before = everything(&redis);
    let taken = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let said = backup(&redis, dir.path(), "20261202T000000Z", 24);
    assert_eq!(
        snapshots(dir.path()),
        ["sluice-20261202T000000Z.rdb"],
        "{said}"
    );
    for kind in ["user:1", "btc:usd", "arbitrage:tick", "ratelimit"] {
        assert!(
            before.keys().any(|k| k.contains(kind)),
            "no {kind} in {before:?}"
        );
    }

    // Wiped: the gateway finds nothing.
    let _: () = redis::cmd("FLUSHALL").query(&mut redis.conn()).unwrap();
    let gone = http
        .get(url("/v1/cache/cache/user:1"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    // Restored: the snapshot is the data folder's dump.rdb when Redis starts.
    redis.kill();
    let restore: PathBuf = redis.data_dir().join("dump.rdb");
    std::fs::copy(dir.path().join("sluice-20261202T000000Z.rdb"), &restore).unwrap();
    redis.restart();
    let after = everything(&redis);
    let passed = taken.elapsed().as_millis() as i64;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    for (key, (dump, pttl)) in &before {
        let (dump_after, pttl_after) = &after[key];
        assert_eq!(dump_after, dump, "{key}: the content changed");
        if *pttl < 0 {
            assert_eq!(pttl_after, pttl, "{key}");
        } else {
            assert!(
                *pttl_after <= *pttl && *pttl_after >= pttl - passed - 1_000,
                "{key}: PTTL {pttl} before, {pttl_after} after {passed} ms"
            );
        }
    }

    // And through the gateway, once it is back on the restarted Redis.
    eventually(
        "the gateway to read again",
        Duration::from_secs(30),
        async || {
            http.get(url("/v1/cache/cache/user:1"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    for (path, stored) in [
        ("/v1/cache/cache/user:1", &value),
        ("/v1/cache/prices/btc:usd", &price),
    ] {
        let got: Value = http
            .get(url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(&got, stored, "{path}");
    }
    // The group goes on after its last delivered entry; the pending one
    // is still pending, and can be claimed.
    let next: Value = http.get(&read).send().await.unwrap().json().await.unwrap();
    assert_eq!(next["messages"][0]["fields"]["n"], 1, "{next}");
    let claim = url("/v1/streams/arbitrage:tick/groups/g/claim?consumer=d&min_idle_ms=0");
    let claimed: Value = http
        .post(&claim)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&Value> = claimed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert!(ids.contains(&&first["messages"][0]["id"]), "{claimed}");
    // The bucket is as spent as it was.
    let said: Value = (http.post(url("/v1/ratelimit/t/sam")).send().await.unwrap())
        .json()
        .await
        .unwrap();
    assert_eq!(said["remaining"], 5, "{said}");
}

#[test]
fn backups_keep_the_newest_and_a_failed_round_removes_nothing() {
    let redis = Redis::start();
    let _: () = redis.conn().set_ex("cache:k", "v", 600).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for stamp in ["20261202T010000Z", "20261202T020000Z", "20261202T030000Z"] {
        backup(&redis, dir.path(), stamp, 2);
    }
    assert_eq!(
        snapshots(dir.path()),
        ["sluice-20261202T020000Z.rdb", "sluice-20261202T030000Z.rdb"]
    );
    // Redis gone: the round fails, says so, and keeps the last good ones.
    let out = Command::new("sh")
        .arg(repo_root().join("docker/backup/backup.sh"))
        .arg("--once")
        .env("REDIS_SOCKET", dir.path().join("nobody.sock"))
        .env("BACKUP_DIR", dir.path())
        .env("KEEP", "1")
        .env("STAMP", "20261202T040000Z")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed"));
    assert_eq!(snapshots(dir.path()).len(), 2);
}

/// On a Redis Cluster, one snapshot per primary, named by its address, and
/// together they hold every key: each loads into a Redis of its own.
#[test]
fn a_cluster_is_backed_up_primary_by_primary() {
    let cluster = Cluster::start();
    let keys: Vec<String> = (0..60).map(|i| format!("cache:k{i}")).collect();
    for key in &keys {
        let mut c = cluster.conn(&cluster.node_for_key(key));
        let _: () = c.set_ex(key, "v", 600).unwrap();
    }
    let seed = cluster.primaries()[0].addr.clone();
    let (host, port) = seed.rsplit_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .arg(repo_root().join("docker/backup/backup.sh"))
        .arg("--once")
        .env("REDIS_HOST", host)
        .env("REDIS_PORT", port)
        .env("REDIS_CLUSTER", "1")
        .env("BACKUP_DIR", dir.path())
        .env("STAMP", "20261202T000000Z")
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    let mut want: Vec<String> = (cluster.primaries().iter())
        .map(|p| format!("sluice-20261202T000000Z-{}.rdb", p.addr.replace(':', "-")))
        .collect();
    want.sort();
    assert_eq!(snapshots(dir.path()), want, "{said}");

    let mut found = 0;
    for name in want {
        let mut redis = Redis::start();
        redis.kill();
        std::fs::copy(dir.path().join(&name), redis.data_dir().join("dump.rdb")).unwrap();
        redis.restart();
        let held: Vec<String> = redis.conn().keys("cache:*").unwrap();
        assert!(!held.is_empty(), "{name} holds no key");
        found += held.len();
    }
    assert_eq!(found, keys.len(), "every key in exactly one snapshot");
}
