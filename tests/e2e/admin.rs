//! What an operator sees: JSON logs with one line per reload, breaker
//! transition and admin call; the status page behind its login, checked as
//! a person sees it, in headless Chromium (`SLUICE_SCREENSHOT=1` also
//! refreshes docs/images/status.png).

use sluice_test_support as support;

use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{EXAMPLE_DOMAINS, Gateway, Redis, STARTUP, eventually, metric, repo_root};

const TOKEN: &str = "status-page-test-token-7f3a";

/// The lines of `log` with `event` = `event`, parsed; every line must be JSON.
fn events(log: &str, event: &str) -> Vec<Value> {
    log.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| v["event"] == event)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_reload_breaker_transition_and_admin_call() {
    let mut redis = Redis::start();
    let config = support::config(&redis, "").replace("[plugins]\n", "[plugins]\nwatch = false\n");
    let gw = Gateway::start_with_env(
        &config,
        &[("SLUICE_LOG_FORMAT", "json"), ("SLUICE_ADMIN_TOKEN", TOKEN)],
    );
    let client = reqwest::Client::new();

    std::fs::write(
        gw.config_path(),
        format!("{config}\n[domains.later]\nplugin = \"fixed-ttl\"\n"),
    )
    .unwrap();
    gw.signal("HUP");
    eventually("the reload", STARTUP, async || {
        metric(&gw, "sluice_reloads_total{result=\"applied\"}").await >= 1.0
    })
    .await;

    let plugins = client
        .get(gw.url("/admin/plugins"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(plugins.status(), 200);
    let denied = client.get(gw.url("/admin/config")).send().await.unwrap();
    assert_eq!(denied.status(), 401);

    redis.kill();
    eventually("the breaker to open", STARTUP, async || {
        client
            .get(gw.url("/v1/cache/cache/x"))
            .send()
            .await
            .unwrap();
        metric(&gw, "sluice_breaker_state").await == 1.0
    })
    .await;

    eventually("the three kinds of lines", STARTUP, async || {
        let log = gw.log();
        !events(&log, "breaker").is_empty() && events(&log, "admin").len() >= 2
    })
    .await;
    let log = gw.log();
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        for field in ["timestamp", "level", "target", "message"] {
            assert!(v.get(field).is_some(), "no {field}: {line}");
        }
    }
    let reloads = events(&log, "reload");
    assert_eq!(reloads.len(), 1, "{reloads:?}");
    assert_eq!(reloads[0]["trigger"], "SIGHUP");
    assert_eq!(reloads[0]["outcome"], "applied");
    assert_eq!(reloads[0]["target"], "sluice::reload");
    let breaker = events(&log, "breaker");
    assert_eq!(
        (&breaker[0]["from"], &breaker[0]["to"]),
        (&Value::from("closed"), &Value::from("open")),
        "{breaker:?}"
    );
    let admin = events(&log, "admin");
    let call = |route: &str| {
        admin
            .iter()
            .find(|v| v["route"] == route)
            .unwrap_or_else(|| panic!("no admin line for {route}: {admin:?}"))
    };
    let ok = call("/admin/plugins");
    assert_eq!(
        (&ok["method"], &ok["status"], &ok["outcome"], &ok["target"]),
        (
            &Value::from("GET"),
            &Value::from(200),
            &Value::from("done"),
            &Value::from("sluice::audit")
        )
    );
    assert_eq!(call("/admin/config")["outcome"], "unauthorized");
    assert!(!log.contains(TOKEN), "the token is never logged");
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_needs_the_token_or_a_session_from_the_login_form() {
    let redis = Redis::start();
    let gw = Gateway::start_with_env(
        &support::config(&redis, ""),
        &[("SLUICE_ADMIN_TOKEN", TOKEN)],
    );
    let client = no_redirects();

    let bare = client.get(gw.url("/admin/")).send().await.unwrap();
    assert_eq!(bare.status(), 303);
    assert_eq!(header(&bare, "location"), "/admin/login");
    let form = client.get(gw.url("/admin/login")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    assert!(header(&form, "content-security-policy").contains("default-src 'none'"));
    assert!(form.text().await.unwrap().contains("name=\"token\""));

    let wrong = client
        .post(gw.url("/admin/login"))
        .form(&[("token", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    assert!(wrong.text().await.unwrap().contains("not the admin token"));

    let right = client
        .post(gw.url("/admin/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 303);
    assert_eq!(header(&right, "location"), "/admin/");
    let cookie = header(&right, "set-cookie").to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains(TOKEN), "the cookie never holds the token");
    let session = cookie.split(';').next().unwrap().to_owned();

    let page = client
        .get(gw.url("/admin/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "cache-control"), "no-store");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<td>cache</td>") && html.contains("fixed-ttl"),
        "{html}"
    );
    let forged = session.replace("v2.", "v2.1");
    let refused = client
        .get(gw.url("/admin/"))
        .header("cookie", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 303, "a forged session is no session");

    // The session opens the page only; the JSON API keeps its bearer token.
    let json = client
        .get(gw.url("/admin/plugins"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 401);
    let bearer = client
        .get(gw.url("/admin/"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);

    let out = client
        .post(gw.url("/admin/logout"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(header(&out, "set-cookie").contains("Max-Age=0"));
    // Logout ends the session itself: a copy taken before it opens nothing.
    let after = client
        .get(gw.url("/admin/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303, "a cookie captured before logout");
    assert_eq!(header(&after, "location"), "/admin/login");

    // Without a token the whole admin side does not exist.
    let closed = Gateway::start(&support::config(&redis, ""));
    for path in ["/admin/", "/admin/login"] {
        let resp = client.get(closed.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
}

/// Every answer under `/admin`, whatever made it, is kept by no cache and
/// sniffed by no browser.
fn assert_hardened(resp: &reqwest::Response, what: &str) {
    assert_eq!(header(resp, "cache-control"), "no-store", "{what}");
    assert_eq!(header(resp, "x-content-type-options"), "nosniff", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_answers_take_any_case_of_bearer_and_are_never_cached_or_sniffed() {
    let redis = Redis::start();
    let gw = Gateway::start_with_env(
        &support::config(&redis, ""),
        &[("SLUICE_ADMIN_TOKEN", TOKEN)],
    );
    let client = no_redirects();

    // RFC 9110 §11.1: the scheme is case-insensitive, as on the data API.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let json = client
            .get(gw.url("/admin/plugins"))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(json.status(), 200, "{scheme}");
        assert_hardened(&json, "JSON");
    }
    let page = client
        .get(gw.url("/admin/"))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_hardened(&page, "the status page");
    let denied = client
        .get(gw.url("/admin/plugins"))
        .header("authorization", format!("Basic {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    assert_hardened(&denied, "a 401");
    let redirect = client.get(gw.url("/admin/")).send().await.unwrap();
    assert_eq!(redirect.status(), 303);
    assert_hardened(&redirect, "a redirect");
    let unknown = client.get(gw.url("/admin/nothing")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_hardened(&unknown, "a 404");
    // Only the admin side: the data API's answers are the client's to cache.
    let health = client.get(gw.url("/healthz")).send().await.unwrap();
    assert!(health.headers().get("x-content-type-options").is_none());
}

/// Serve `page` to every request on a loopback port (another port of the
/// same host is the same site, so the gateway's `SameSite=Strict` cookie
/// set from its form is sent on the redirect); its address.
fn serve_page(page: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut buf = [0; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    format!("http://{addr}/")
}

/// Headless Chromium as the machine runs it: no sandbox (root), no
/// background traffic (the network is closed), a profile of its own.
fn chromium(profile: &Path) -> Command {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        // Let the login form submit itself and the redirect land.
        "--virtual-time-budget=10000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_and_reads_the_status_page_in_chromium() {
    if !support::have(Path::new("chromium"), "--version") {
        return;
    }
    let redis = Redis::start();
    let gw = Gateway::start_with_env(
        &support::config(&redis, EXAMPLE_DOMAINS),
        &[("SLUICE_ADMIN_TOKEN", TOKEN)],
    );
    let client = reqwest::Client::new();
    for (path, value) in [
        ("/v1/cache/cache/greeting", r#"{"hello":"world"}"#),
        (
            "/v1/cache/price/btc:usd",
            r#"{"asset":"BTC","fiat":"USD","price":64000.5,"ts":1732550000000}"#,
        ),
    ] {
        let put = client
            .put(gw.url(path))
            .header("content-type", "application/json")
            .body(value)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 204, "{path}");
    }
    let reload = client
        .post(gw.url("/admin/reload"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(reload.status(), 200);
    let screenshot = std::env::var_os("SLUICE_SCREENSHOT").is_some();
    if screenshot {
        // A picture with the request-rate chart and Redis's numbers: some
        // traffic until the page has two rate samples (10 s apart).
        eventually(
            "the request-rate chart",
            Duration::from_secs(90),
            async || {
                for path in [
                    "/v1/cache/price/btc:usd",
                    "/v1/cache/cache/greeting",
                    "/v1/cache/cache/nope",
                ] {
                    let _ = client.get(gw.url(path)).send().await;
                }
                let page = client
                    .get(gw.url("/admin/"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                page.contains("<svg") && !page.contains("no INFO read yet")
            },
        )
        .await;
    }

    // The form a person fills in, sent by the browser itself.
    let login = serve_page(format!(
        "<!DOCTYPE html><html><body onload=\"document.forms[0].submit()\">\
         <form method=\"post\" action=\"{}\"><input name=\"token\" value=\"{TOKEN}\"></form></body></html>",
        gw.url("/admin/login")
    ));
    let profile = tempfile::tempdir().unwrap();
    let mut dump = chromium(profile.path());
    dump.arg("--dump-dom").arg(&login);
    let (ok, dom, err) = support::run_within(dump, Duration::from_secs(60));
    assert!(ok, "chromium failed: {err}");
    for text in [
        "<title>Sluice status</title>",
        "<h2>Domains</h2>",
        "<td>market_depth</td>",
        "<td>arbitrage</td>",
        "stream-router",
        "price-hash",
        "<h2>Circuit breaker</h2>",
        "<strong class=\"ok\">closed</strong>",
        "<h2>Near cache</h2>",
        "<h2>Reloads</h2>",
        "<td>admin</td>",
        "<h2>Redis</h2>",
    ] {
        assert!(dom.contains(text), "the page has no {text:?}:\n{dom}");
    }
    assert!(!dom.contains(TOKEN), "the page never shows the token");

    if screenshot {
        let png = repo_root().join("docs/images/status.png");
        std::fs::create_dir_all(png.parent().unwrap()).unwrap();
        let mut shot = chromium(profile.path());
        shot.arg(format!("--screenshot={}", png.display()))
            .arg("--window-size=1280,1000")
            .arg(&login);
        let (ok, _, err) = support::run_within(shot, Duration::from_secs(60));
        assert!(ok && png.is_file(), "chromium failed: {err}");
        eprintln!("wrote {}", png.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_admin_tokens_shut_their_address_out_longer_each_time_audited_once() {
    let redis = Redis::start();
    let gw = Gateway::start_with_env(
        &support::config(&redis, ""),
        &[("SLUICE_LOG_FORMAT", "json"), ("SLUICE_ADMIN_TOKEN", TOKEN)],
    );
    let client = reqwest::Client::new();
    let plugins = |token: &str| {
        client
            .get(gw.url("/admin/plugins"))
            .bearer_auth(token)
            .send()
    };
    // Guess until shut out for at least 4 s, waiting out each 429 as told.
    let (mut wrong, mut shut_out) = (0, 0);
    let retry_after = loop {
        let r = plugins("guess").await.unwrap();
        match r.status().as_u16() {
            401 => wrong += 1,
            429 => {
                shut_out += 1;
                let secs: u64 = header(&r, "retry-after").parse().unwrap();
                let problem: Value = r.json().await.unwrap();
                assert_eq!(problem["type"], "urn:sluice:problem:throttled");
                if secs >= 4 {
                    break secs;
                }
                tokio::time::sleep(Duration::from_secs(secs)).await;
            }
            other => panic!("{other}"),
        }
        assert!(
            wrong <= 12,
            "{wrong} wrong tokens and never shut out for 4 s"
        );
    };
    assert!(wrong >= 4, "the first three are free: {wrong}");
    // While shut out, even the right token waits: a guess cannot be told apart.
    let right = plugins(TOKEN).await.unwrap();
    assert_eq!(right.status(), 429, "shut out for {retry_after} s");
    // Another address is not.
    let elsewhere = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let other = elsewhere
        .get(gw.url("/admin/plugins"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    // One audit line for the burst; the rest are counted.
    let audited = events(&gw.log(), "admin")
        .into_iter()
        .filter(|e| e["outcome"] == "unauthorized")
        .count();
    assert_eq!(audited, 1, "{}", gw.log());
    assert_eq!(
        metric(&gw, "sluice_admin_throttled_total").await,
        (wrong - 1 + shut_out + 1) as f64
    );
}
