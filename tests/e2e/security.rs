//! Security end to end, against real redis-server processes: the whole
//! request path over TLS (with and without a client certificate), as a Redis
//! user made with the ACL line docs/configuration.md recommends, the start-up
//! warning about a user that may run FLUSHALL/CONFIG/KEYS, and a planted
//! password and admin token that no output of the gateway ever shows.

use sluice_test_support as support;

use redis::Commands;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use support::{Gateway, Pki, Redis, config_url, eventually};

/// Domains of the documented ACL line (cache with a near cache, price as
/// hashes in MULTI/EXEC, arbitrage's streams) and a rate limit.
const DOMAINS: &str = r#"near_cache_ms = 60000

[domains.price]
plugin = "price-hash"
ttl_s = 5

[domains.arbitrage]
plugin = "stream-router"
ttl_s = 600
streams = true
[domains.arbitrage.settings]
maxlen = 100
per_asset = false

[ratelimits.t]
capacity = 2
refill_per_s = 0.001

[metrics]
info_interval_ms = 100
"#;

fn tls_table(pki: &Pki, client_cert: bool) -> String {
    let mut table = format!("\n[redis.tls]\nca_file = \"{}\"\n", pki.ca.display());
    if client_cert {
        table += &format!(
            "cert_file = \"{}\"\nkey_file = \"{}\"\n",
            pki.client_cert.display(),
            pki.client_key.display()
        );
    }
    table
}

async fn status(resp: reqwest::Response) -> (u16, Value) {
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

/// Everything a service does through the gateway; each step answers as it
/// does on a plain connection as the default user.
async fn full_path(gw: &Gateway, redis: &Redis) {
    let c = reqwest::Client::new();
    let get = async |url: &str| status(c.get(url).send().await.unwrap()).await;

    // Cache PUT / GET / DELETE, and the near cache kept coherent by Redis's
    // invalidations, which arrive on the gateway's own connection.
    let url = gw.url("/v1/cache/cache/k1");
    let put = c.put(&url).json(&json!({"a": 1})).send().await.unwrap();
    assert_eq!(put.status(), 204);
    assert_eq!(get(&url).await, (200, json!({"a": 1})));
    assert_eq!(get(&url).await, (200, json!({"a": 1})), "a near-cache hit");
    let direct = rmp_serde::to_vec(&json!("direct")).unwrap();
    let _: () = redis.conn().set("cache:k1", direct).unwrap();
    eventually(
        "the near-cache copy to end on Redis's word",
        Duration::from_secs(5),
        async || get(&url).await.1 == json!("direct"),
    )
    .await;
    assert_eq!(c.delete(&url).send().await.unwrap().status(), 204);
    assert_eq!(get(&url).await.0, 404);

    // A hash written atomically (MULTI/EXEC) and read by field.
    let price = gw.url("/v1/cache/price/btc:usd");
    let object = json!({"asset": "BTC", "fiat": "USD", "price": 1.5, "ts": 1});
    let put = c.put(&price).json(&object).send().await.unwrap();
    assert_eq!(put.status(), 204);
    assert_eq!(
        get(&format!("{price}?fields=price")).await,
        (200, json!({"price": 1.5}))
    );

    // Batches: one pipeline each.
    let items = json!({"items": {"a": 1, "b": [2]}});
    let mset = c.post(gw.url("/v1/mset/cache")).json(&items).send();
    assert_eq!(mset.await.unwrap().status(), 200);
    let keys = json!({"keys": ["a", "b", "absent"]});
    let mget = c.post(gw.url("/v1/mget/cache")).json(&keys).send();
    assert_eq!(
        status(mget.await.unwrap()).await,
        (200, json!({"values": {"a": 1, "b": [2], "absent": null}}))
    );

    // The rate-limit script (EVALSHA; TIME, HMGET, HSET, PEXPIRE inside it).
    let limit = gw.url("/v1/ratelimit/t/subject");
    let codes = [
        c.post(&limit).send().await.unwrap().status(),
        c.post(&limit).send().await.unwrap().status(),
        c.post(&limit).send().await.unwrap().status(),
    ];
    assert_eq!(codes.map(|s| s.as_u16()), [200, 200, 429]);

    // An event into a stream, and a consumer group created, read (blocking
    // too, on a connection of its own) and acknowledged.
    let group = gw.url("/v1/streams/arbitrage:spread/groups/g?start=0");
    assert_eq!(c.post(&group).send().await.unwrap().status(), 201);
    let event = json!({"type": "spread", "asset": "BTC", "bps": 12});
    let publish = c.post(gw.url("/v1/events/arbitrage")).json(&event).send();
    assert_eq!(publish.await.unwrap().status(), 201);
    let read = gw.url("/v1/streams/arbitrage:spread/groups/g/messages?consumer=c&block_ms=200");
    let (code, body) = get(&read).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["messages"][0]["fields"], event, "{body}");
    let id = body["messages"][0]["id"].clone();
    let ack = gw.url("/v1/streams/arbitrage:spread/groups/g/ack");
    let acked = c.post(&ack).json(&json!({"ids": [id]})).send();
    assert_eq!(
        status(acked.await.unwrap()).await,
        (200, json!({"acked": 1}))
    );
    let (code, body) = get(&read).await;
    assert_eq!((code, &body["messages"]), (200, &json!([])), "{body}");

    // Ready (Redis runs a script), and INFO reaches the metrics.
    assert_eq!(c.get(gw.url("/readyz")).send().await.unwrap().status(), 200);
    eventually("INFO in /metrics", Duration::from_secs(5), async || {
        support::metric(gw, "redis_memory_used_bytes").await > 0.0
    })
    .await;
    // Nothing was refused (the start-up check's own ACL GETUSER aside).
    let log = gw.log();
    let refused = |l: &&str| l.contains("NOPERM") && !l.contains("sluice::store::acl");
    assert_eq!(log.lines().find(refused), None, "{log}");
    assert!(!log.contains("request failed"), "{log}");
}

/// Redis's clients connected to `port` (its TLS or TCP listener).
fn clients_on(redis: &Redis, port: u16) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut redis.conn())
        .unwrap();
    let at = format!("laddr=127.0.0.1:{port} ");
    list.lines().filter(|l| l.contains(&at)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_path_works_over_tls() {
    let pki = Pki::new();
    let redis = Redis::start_tls(&pki, false);
    let url = format!("rediss://127.0.0.1:{}", redis.port());
    let gw = Gateway::start(&config_url(
        &url,
        &(DOMAINS.to_owned() + &tls_table(&pki, false)),
    ));
    full_path(&gw, &redis).await;
    // Redis speaks TLS only on that port: the gateway's connections are there.
    assert!(clients_on(&redis, redis.port()) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_checks_client_certificates_needs_the_gateways() {
    let pki = Pki::new();
    let redis = Redis::start_tls(&pki, true);
    let url = format!("rediss://127.0.0.1:{}", redis.port());
    let c = reqwest::Client::new();

    // Without a certificate Redis hangs up on the handshake: not ready.
    let without = Gateway::start(&config_url(
        &url,
        &(DOMAINS.to_owned() + &tls_table(&pki, false)),
    ));
    let resp = c.get(without.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    drop(without);

    let with = Gateway::start(&config_url(
        &url,
        &(DOMAINS.to_owned() + &tls_table(&pki, true)),
    ));
    full_path(&with, &redis).await;
}

/// docs/configuration.md's ACL line, with `password` for `CHANGE-ME`, as
/// the arguments of one `ACL SETUSER`.
fn documented_acl(password: &str) -> Vec<String> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let doc = std::fs::read_to_string(doc).unwrap();
    let line = doc
        .lines()
        .find(|l| l.starts_with("ACL SETUSER sluice "))
        .expect("docs/configuration.md has the ACL line");
    line.split_whitespace()
        .skip(1)
        .map(|w| w.replace("CHANGE-ME", password))
        .collect()
}

fn acl(redis: &Redis, args: &[String]) {
    let _: () = redis::cmd("ACL")
        .arg(args)
        .query(&mut redis.conn())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_acl_user_suffices_and_draws_no_warning() {
    let redis = Redis::start_tcp();
    acl(&redis, &documented_acl("sluice-pw"));
    // The user's rules are what the docs say: it may run none of the three.
    for cmd in ["FLUSHALL", "CONFIG|GET", "KEYS"] {
        let parts: Vec<&str> = cmd.split('|').collect();
        let dry: String = redis::cmd("ACL")
            .arg("DRYRUN")
            .arg("sluice")
            .arg(&parts)
            .arg("x")
            .query(&mut redis.conn())
            .unwrap();
        assert!(dry.contains("no permissions"), "{cmd}: {dry}");
    }
    let url = format!("redis://sluice:sluice-pw@127.0.0.1:{}", redis.port());
    let gw = Gateway::start(&config_url(&url, DOMAINS));
    full_path(&gw, &redis).await;
    let users: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut redis.conn())
        .unwrap();
    assert!(users.contains("user=sluice"), "{users}");
    // It may not read its own rights: the check says so, without a warning.
    wait_for_log(&gw, "could not check what the Redis user may run").await;
    let log = gw.log();
    assert!(!log.contains("may run FLUSHALL"), "{log}");
    let acl_warnings = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("sluice::store::acl"));
    assert_eq!(acl_warnings.count(), 0, "{log}");
}

async fn wait_for_log(gw: &Gateway, text: &str) {
    eventually(
        &format!("{text:?} in the log"),
        Duration::from_secs(10),
        async || gw.log().contains(text),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_that_may_run_everything_is_warned_about_at_start() {
    let redis = Redis::start_tcp();
    let everything = ["SETUSER", "wide", "on", ">wide-pw", "~*", "&*", "+@all"];
    acl(&redis, &everything.map(String::from));
    let url = format!("redis://wide:wide-pw@127.0.0.1:{}", redis.port());
    let gw = Gateway::start(&config_url(&url, ""));
    wait_for_log(&gw, "the Redis user may run FLUSHALL, CONFIG, KEYS").await;
    let log = gw.log();
    let line = log
        .lines()
        .find(|l| l.contains("the Redis user may run"))
        .unwrap();
    assert!(
        line.contains("WARN") && line.contains("user=wide"),
        "{line}"
    );
    // check-config says so too (Redis answers), and still passes the file.
    let (passed, out) = check_config(&gw.config_path());
    assert!(passed, "{out}");
    assert!(
        out.contains("warning: the Redis user may run FLUSHALL, CONFIG, KEYS"),
        "{out}"
    );
}

const PLANTED_PASSWORD: &str = "pw-PLANTED-q7Zx3";
const WRONG_PASSWORD: &str = "pw-WRONG-PLANTED-8Hc2";
const PLANTED_TOKEN: &str = "tok-PLANTED-m4Kd9";

/// Whatever the gateway shows, none of it may hold a planted secret.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn add(&mut self, what: &str, text: impl Into<String>) {
        self.0.push((what.to_owned(), text.into()));
    }

    async fn response(&mut self, what: &str, resp: reqwest::Response) -> (u16, String) {
        let code = resp.status().as_u16();
        let mut text = format!("{:?}\n", resp.headers());
        text += &resp.text().await.unwrap_or_default();
        self.add(what, text.clone());
        (code, text)
    }

    fn assert_clean(&self) {
        for (what, text) in &self.0 {
            for secret in [PLANTED_PASSWORD, WRONG_PASSWORD, PLANTED_TOKEN] {
                assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
            }
        }
    }
}

fn check_config(path: &Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("check-config")
        .arg(path)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_password_and_admin_token_never_show() {
    let redis = Redis::start_tcp();
    let user = |password: &str| {
        let rules = ["SETUSER", "app", "reset", "on", "~*", "&*", "+@all"];
        let mut args = rules.map(String::from).to_vec();
        args.push(format!(">{password}"));
        args
    };
    acl(&redis, &user(PLANTED_PASSWORD));
    let url = format!("redis://app:{PLANTED_PASSWORD}@127.0.0.1:{}", redis.port());
    let text = config_url(&url, DOMAINS);
    let mut seen = Seen::default();
    let c = reqwest::Client::new();
    let bearer = format!("Bearer {PLANTED_TOKEN}");

    // Start, at debug level, and serve.
    let env = [
        ("SLUICE_ADMIN_TOKEN", PLANTED_TOKEN),
        ("RUST_LOG", "debug,cranelift=info,wasmtime=info"),
    ];
    let gw = Gateway::start_with_env(&text, &env);
    let resp = c.get(gw.url("/readyz")).send().await.unwrap();
    assert_eq!(seen.response("readyz", resp).await.0, 200);
    let put = c.put(gw.url("/v1/cache/cache/k")).json(&json!(1)).send();
    assert_eq!(seen.response("put", put.await.unwrap()).await.0, 204);

    // The admin API: its config shows the URL without the password.
    let resp = c
        .get(gw.url("/admin/config"))
        .header("authorization", &bearer)
        .send();
    let (code, body) = seen.response("admin config", resp.await.unwrap()).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("redis://app:***@127.0.0.1"), "{body}");
    let resp = c
        .get(gw.url("/admin/plugins"))
        .header("authorization", &bearer)
        .send();
    assert_eq!(
        seen.response("admin plugins", resp.await.unwrap()).await.0,
        200
    );
    for (what, header) in [
        ("no token", None),
        ("wrong token", Some("Bearer tok-PLANTED-m4Kd")),
        ("token as basic", Some(&*format!("Basic {PLANTED_TOKEN}"))),
    ] {
        let mut req = c.get(gw.url("/admin/config"));
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        assert_eq!(seen.response(what, req.send().await.unwrap()).await.0, 401);
    }
    let wrong_method = c
        .delete(gw.url("/admin/config"))
        .header("authorization", &bearer);
    assert_eq!(
        seen.response("admin 405", wrong_method.send().await.unwrap())
            .await
            .0,
        405
    );

    // Reloads: applied, then refused by a TOML error on the url line itself.
    let reload = || {
        c.post(gw.url("/admin/reload"))
            .header("authorization", &bearer)
            .send()
    };
    std::fs::write(gw.config_path(), text.replace("ttl_s = 5", "ttl_s = 6")).unwrap();
    assert_eq!(
        seen.response("reload", reload().await.unwrap()).await.0,
        200
    );
    let broken = text.replace(
        &format!("url = \"{url}\""),
        &format!("url = \"{url}\" oops"),
    );
    assert_ne!(broken, text);
    std::fs::write(gw.config_path(), &broken).unwrap();
    let (code, body) = seen
        .response("refused reload", reload().await.unwrap())
        .await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("redis://app:***@"),
        "the error quotes the line: {body}"
    );
    gw.signal("HUP");
    let resp = c
        .get(gw.url("/admin/plugins"))
        .header("authorization", &bearer)
        .send();
    let (_, body) = seen
        .response("status after refusal", resp.await.unwrap())
        .await;
    assert!(body.contains("TOML parse error"), "{body}");

    // check-config on the good file, the broken one, and others that fail
    // on the URL.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sluice.toml");
    for (what, content, ok) in [
        ("good", text.clone(), true),
        ("toml error on the url line", broken.clone(), false),
        (
            "tls on a plain url",
            text.clone() + "\n[redis.tls]\nca_file = \"nope.pem\"\n",
            false,
        ),
        (
            "not a redis url",
            text.replace("redis://app:", "http://app:"),
            false,
        ),
        (
            "a password with a slash",
            text.replace(PLANTED_PASSWORD, &format!("{PLANTED_PASSWORD}/x")),
            false,
        ),
    ] {
        std::fs::write(&file, content).unwrap();
        let (passed, out) = check_config(&file);
        assert_eq!(passed, ok, "{what}: {out}");
        println!("check-config, {what}: {}", out.trim_end());
        seen.add(&format!("check-config, {what}"), out);
    }

    // Redis stops taking the password: every connection made from now on
    // fails (WRONGPASS) and requests get errors.
    acl(&redis, &user("another-password"));
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg("app")
        .query(&mut redis.conn())
        .unwrap();
    eventually("requests to fail", Duration::from_secs(10), async || {
        let resp = c.get(gw.url("/v1/cache/cache/k")).send().await.unwrap();
        seen.response("while refused", resp).await.0 == 503
    })
    .await;
    for path in ["/readyz", "/v1/cache/cache/k2", "/v1/cache/nope/k", "/nope"] {
        let resp = c.get(gw.url(path)).send().await.unwrap();
        seen.response(path, resp).await;
    }
    let limit = c.post(gw.url("/v1/ratelimit/t/s")).send();
    seen.response("rate limit while refused", limit.await.unwrap())
        .await;
    let put = c.put(gw.url("/v1/cache/cache/k")).json(&json!(2)).send();
    seen.response("put while refused", put.await.unwrap()).await;
    let resp = c
        .get(gw.url("/admin/config"))
        .header("authorization", &bearer)
        .send();
    seen.response("admin config while refused", resp.await.unwrap())
        .await;
    // A second gateway that starts with the wrong password.
    acl(&redis, &user(PLANTED_PASSWORD));
    let wrong = config_url(&url.replace(PLANTED_PASSWORD, WRONG_PASSWORD), DOMAINS);
    let other = Gateway::start_with_env(&wrong, &env);
    let resp = c.get(other.url("/readyz")).send().await.unwrap();
    assert_eq!(seen.response("wrong password readyz", resp).await.0, 503);

    wait_for_log(&gw, "WRONGPASS").await;
    seen.add("gateway log", gw.log());
    seen.add("gateway stdout", gw.stdout());
    seen.add("second gateway log", other.log());
    seen.add("second gateway stdout", other.stdout());
    let log = gw.log();
    assert!(
        log.contains("admin call") && log.contains("outcome=\"unauthorized\""),
        "the audit lines: {log}"
    );
    assert!(log.contains("route=\"/admin/config\""), "{log}");
    for line in log
        .lines()
        .filter(|l| l.contains("WRONGPASS") || l.contains("admin call"))
    {
        println!("{line}");
    }
    seen.assert_clean();
}
