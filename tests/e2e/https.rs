//! The gateway's own door, end to end against real redis-server processes:
//! HTTPS with certificates the test makes (HTTP/1.1 and HTTP/2 by ALPN),
//! h2c with prior knowledge on a plain listener, the pair rotated live and
//! a bad pair refused while the old one serves, client certificates as
//! identities, `check-config` on a mismatched pair, the admin cookie's
//! `Secure`, and the HTTP/2 floods (rapid reset, CONTINUATION) sent as raw
//! frames, each ending the attacker's connection at a bounded cost.

use sluice_test_support as support;

use reqwest::{Client, StatusCode, Version};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use support::{Gateway, Pki, Redis, config, eventually, gateway_bin, run_within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `[server.tls]` with `pki`'s server pair; with its CA for client
/// certificates when `clients` is set.
fn tls_table(cert: &Path, key: &Path, client_ca: Option<&Path>) -> String {
    let ca = client_ca.map_or(String::new(), |ca| {
        format!("client_ca_file = \"{}\"\n", ca.display())
    });
    format!(
        "\n[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{ca}",
        cert.display(),
        key.display()
    )
}

/// A client that trusts only `pki`'s CA, showing `identity` (certificate
/// and key files) when given.
fn client(pki: &Pki, identity: Option<(&Path, &Path)>) -> reqwest::ClientBuilder {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
    let mut builder = Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca);
    if let Some((cert, key)) = identity {
        let pem = [std::fs::read(cert).unwrap(), std::fs::read(key).unwrap()].concat();
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder
}

fn host_port(gw: &Gateway) -> String {
    gw.base
        .split_once("://")
        .map(|(_, a)| a.to_owned())
        .unwrap()
}

/// A raw TLS connection to the gateway, trusting `pki`'s CA, offering
/// HTTP/1.1 only.
async fn tls_connect(gw: &Gateway, pki: &Pki) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&pki.ca).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(host_port(gw)).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// The certificate a new handshake gets.
async fn served_certificate(gw: &Gateway, pki: &Pki) -> Vec<u8> {
    let tls = tls_connect(gw, pki).await;
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn der(pem_file: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(pem_file).unwrap().to_vec()
}

/// A healthz request on an open HTTP/1.1 connection: its status line.
async fn healthz_on(tls: &mut tokio_rustls::client::TlsStream<TcpStream>) -> String {
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tls.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_http1_and_http2_by_alpn_and_plain_http_serves_h2c() {
    let redis = Redis::start();
    let pki = Pki::new();
    let tls = tls_table(&pki.server_cert, &pki.server_key, None);
    let gw = Gateway::start(&config(&redis, &tls));
    assert!(gw.base.starts_with("https://127.0.0.1:"), "{}", gw.base);
    let base = gw.base.replace("127.0.0.1", "localhost");
    let url = format!("{base}/v1/cache/cache/greeting");
    let h1 = client(&pki, None).http1_only().build().unwrap();
    let put = h1
        .put(&url)
        .json(&serde_json::json!({"hello": "world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    assert_eq!(put.version(), Version::HTTP_11);
    // ALPN: a client that offers h2 gets it.
    let h2 = client(&pki, None).build().unwrap();
    let got = h2.get(&url).send().await.unwrap();
    assert_eq!(got.version(), Version::HTTP_2);
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(
        got.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"hello": "world"})
    );
    // Plain HTTP to an HTTPS door: no answer but a failed handshake.
    let plain = Client::new()
        .get(format!("http://{}/healthz", host_port(&gw)))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // A plain listener speaks HTTP/2 to a client that knows it does.
    let plain_gw = Gateway::start(&config(&redis, ""));
    let h2c = Client::builder().http2_prior_knowledge().build().unwrap();
    let got = h2c
        .get(plain_gw.url("/v1/cache/cache/greeting"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.version(), Version::HTTP_2);
    assert_eq!(got.status(), StatusCode::OK);
    let missing = h2c
        .get(plain_gw.url("/v1/cache/cache/absent"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_pair_serves_new_handshakes_and_a_bad_one_keeps_the_old() {
    let redis = Redis::start();
    let pki = Pki::new();
    // The gateway's files, which the test rewrites in place.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("gw.pem"), dir.path().join("gw.key"));
    std::fs::copy(&pki.server_cert, &cert).unwrap();
    std::fs::copy(&pki.server_key, &key).unwrap();
    let gw = Gateway::start(&config(&redis, &tls_table(&cert, &key, None)));
    assert_eq!(served_certificate(&gw, &pki).await, der(&pki.server_cert));
    let mut open = tls_connect(&gw, &pki).await;
    assert_eq!(healthz_on(&mut open).await, "HTTP/1.1 200 OK");

    // A new pair, written over the old files: the watcher reloads it.
    let (new_cert, new_key) = pki.server("rotated");
    std::fs::copy(&new_key, &key).unwrap();
    std::fs::copy(&new_cert, &cert).unwrap();
    let want = der(&new_cert);
    eventually(
        "the new certificate serves new handshakes",
        Duration::from_secs(30),
        || async { served_certificate(&gw, &pki).await == want },
    )
    .await;
    // The connection opened before goes on with its own session.
    assert_eq!(healthz_on(&mut open).await, "HTTP/1.1 200 OK");

    // A key of another certificate: the reload is refused, the pair that
    // serves stays, also on SIGHUP.
    let (_, stranger_key) = pki.server("stranger");
    std::fs::copy(&stranger_key, &key).unwrap();
    eventually(
        "the mismatched pair refused",
        Duration::from_secs(30),
        || async { gw.log().contains("server.tls.key_file") },
    )
    .await;
    gw.signal("HUP");
    eventually(
        "the SIGHUP reload refused too",
        Duration::from_secs(30),
        || async {
            gw.log().matches("trigger=\"SIGHUP\"").count() > 0
                || gw.log().matches("trigger=SIGHUP").count() > 0
        },
    )
    .await;
    assert!(
        gw.log().contains("is not the key of the certificate in"),
        "{}",
        gw.log()
    );
    assert_eq!(served_certificate(&gw, &pki).await, want);
    let h2 = client(&pki, None).build().unwrap();
    let url = gw.base.replace("127.0.0.1", "localhost") + "/healthz";
    assert_eq!(h2.get(&url).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_names_its_client_and_must_agree_with_a_key() {
    let redis = Redis::start();
    let pki = Pki::new();
    let key_hash = sluice::auth::hash_key(b"keyed-key");
    let clients = format!(
        "\n[clients.svc]\ncert_san = \"dns:sluice\"\nread = [\"cache\"]\nwrite = [\"cache\"]\n[clients.keyed]\nkey_sha256 = \"{key_hash}\"\nread = [\"cache\"]\n"
    );
    let tls = tls_table(&pki.server_cert, &pki.server_key, Some(&pki.ca));
    let gw = Gateway::start(&config(&redis, &format!("{tls}{clients}")));
    let url = gw.base.replace("127.0.0.1", "localhost") + "/v1/cache/cache/who";
    // A certificate the CA signed for dns:sluice: client svc, no key needed.
    let svc = client(&pki, Some((&pki.client_cert, &pki.client_key)))
        .build()
        .unwrap();
    let put = svc.put(&url).json(&1).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    assert_eq!(svc.get(&url).send().await.unwrap().status(), StatusCode::OK);
    // The same certificate with another client's key.
    let both = svc.get(&url).bearer_auth("keyed-key").send().await.unwrap();
    let problem = support::assert_problem(both, 403).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("speaks for two clients, \"keyed\" and \"svc\""),
        "{problem}"
    );
    // A certificate the CA signed that names no client.
    let (cert, key) = pki.client("stranger", &["stranger"]);
    let stranger = client(&pki, Some((&cert, &key))).build().unwrap();
    let refused = stranger
        .get(&url)
        .bearer_auth("keyed-key")
        .send()
        .await
        .unwrap();
    let problem = support::assert_problem(refused, 403).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("dns:stranger"),
        "{problem}"
    );
    // No certificate: the key alone, as over plain HTTP.
    let plain = client(&pki, None).build().unwrap();
    let got = plain
        .get(&url)
        .bearer_auth("keyed-key")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    support::assert_problem(plain.get(&url).send().await.unwrap(), 401).await;
    // A certificate of another CA does not get through the handshake.
    let other = Pki::new();
    let foreign = client(&pki, Some((&other.client_cert, &other.client_key)))
        .build()
        .unwrap();
    assert!(foreign.get(&url).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_refuses_a_mismatched_pair_on_its_line_and_the_cookie_is_secure() {
    let redis = Redis::start();
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    let text = config(&redis, &tls_table(&pki.server_cert, &pki.client_key, None));
    std::fs::write(&path, &text).unwrap();
    let mut cmd = Command::new(gateway_bin());
    cmd.arg("check-config").arg(&path);
    let (ok, _, stderr) = run_within(cmd, Duration::from_secs(60));
    assert!(!ok);
    let line = text
        .lines()
        .position(|l| l.starts_with("key_file"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!(":{line}: server.tls.key_file: "))
            && stderr.contains("is not the key of the certificate in"),
        "{stderr}"
    );

    // Under HTTPS the admin session cookie is `Secure`.
    let tls = tls_table(&pki.server_cert, &pki.server_key, None);
    let gw = Gateway::start_with_env(
        &config(&redis, &tls),
        &[("SLUICE_ADMIN_TOKEN", "admin-secret-token")],
    );
    let admin = client(&pki, None)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = admin
        .post(gw.base.replace("127.0.0.1", "localhost") + "/admin/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=admin-secret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

/// One HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// `GET /healthz` as an HPACK block (static table indices and literals
/// without indexing).
fn healthz_block() -> Vec<u8> {
    let mut b = vec![0x82, 0x86, 0x04, 8];
    b.extend_from_slice(b"/healthz");
    b.extend_from_slice(&[0x01, 9]);
    b.extend_from_slice(b"localhost");
    b
}

/// An h2c connection with the preface and empty settings sent; a task
/// reads the server's frames and reports the GOAWAY's error code (or
/// `None` when the connection ended without one).
async fn raw_h2(
    gw: &Gateway,
) -> (
    tokio::net::tcp::OwnedWriteHalf,
    tokio::task::JoinHandle<Option<u32>>,
) {
    let tcp = TcpStream::connect(host_port(gw)).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    write
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    write.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut head = [0u8; 9];
        loop {
            read.read_exact(&mut head).await.ok()?;
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            read.read_exact(&mut payload).await.ok()?;
            if head[3] == GOAWAY && len >= 8 {
                return Some(u32::from_be_bytes([
                    payload[4], payload[5], payload[6], payload[7],
                ]));
            }
        }
    });
    (write, reader)
}

/// How many `/healthz` requests the gateway has answered.
async fn served_healthz(gw: &Gateway) -> f64 {
    support::scrape(gw)
        .await
        .lines()
        .filter(|l| {
            l.starts_with("sluice_http_request_duration_seconds_count{")
                && l.contains("route=\"healthz\"")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_floods_end_the_attackers_connection_at_a_bounded_cost() {
    let redis = Redis::start();
    let gw = Gateway::start(&config(&redis, ""));
    let h2c = Client::builder().http2_prior_knowledge().build().unwrap();
    assert_eq!(
        h2c.get(gw.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let (rss_before, cpu_before) = support::rss_kib_and_cpu_ticks(gw.pid());

    // Rapid reset (CVE-2023-44487): streams opened and cancelled at once,
    // 10,000 of them in a few writes.
    const STREAMS: u32 = 10_000;
    let (mut write, reader) = raw_h2(&gw).await;
    let block = healthz_block();
    let mut sent = 0;
    'flood: for chunk in (0..STREAMS).collect::<Vec<_>>().chunks(500) {
        let mut burst = Vec::new();
        for i in chunk {
            let id = 2 * i + 1;
            burst.extend(frame(HEADERS, END_STREAM | END_HEADERS, id, &block));
            burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
        }
        if write.write_all(&burst).await.is_err() {
            break 'flood;
        }
        sent += chunk.len();
    }
    let code = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the connection ends")
        .unwrap();
    assert_eq!(code, Some(ENHANCE_YOUR_CALM), "after {sent} streams");
    let served = served_healthz(&gw).await;
    println!("rapid reset: {sent} streams sent, {served} served before GOAWAY");
    assert!(served < (sent / 4) as f64, "{served} of {sent} served");

    // CONTINUATION flood (CVE-2024-27316): one header block that never ends.
    let (mut write, reader) = raw_h2(&gw).await;
    let mut block = vec![0x82, 0x86, 0x84, 0x01, 9];
    block.extend_from_slice(b"localhost");
    let mut sent_bytes = 0usize;
    if write
        .write_all(&frame(HEADERS, END_STREAM, 1, &block))
        .await
        .is_ok()
    {
        // Literal headers with new names, 16 KiB a frame.
        let mut field = vec![0x00, 4];
        field.extend_from_slice(b"x-aa");
        field.extend_from_slice(&[0x7f, 0x7f]); // a 254-byte value (7-bit prefix: 127 + 127)
        field.extend(std::iter::repeat_n(b'v', 254));
        let payload: Vec<u8> = field
            .iter()
            .copied()
            .cycle()
            .take(field.len() * 60)
            .collect();
        for _ in 0..4_096 {
            if write
                .write_all(&frame(CONTINUATION, 0, 1, &payload))
                .await
                .is_err()
            {
                break;
            }
            sent_bytes += payload.len();
        }
    }
    let code = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the connection ends")
        .unwrap();
    println!(
        "CONTINUATION flood: {sent_bytes} bytes accepted by the socket (most never read) before GOAWAY {code:?}"
    );
    assert!(
        matches!(code, Some(ENHANCE_YOUR_CALM) | Some(0x9)),
        "GOAWAY {code:?}"
    );

    let (rss_after, cpu_after) = support::rss_kib_and_cpu_ticks(gw.pid());
    let ticks = cpu_after - cpu_before;
    println!(
        "gateway: RSS {} → {} MB, {ticks} CPU ticks for both floods",
        rss_before >> 10,
        rss_after >> 10
    );
    assert!(
        rss_after < rss_before + (32 << 10),
        "RSS grew from {rss_before} to {rss_after}"
    );
    // Others are served all along.
    assert_eq!(
        h2c.get(gw.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        reqwest::get(gw.url("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_the_readmes_answers_over_h2_and_h2c() {
    let curl = Path::new("curl");
    if !support::have(curl, "--version") {
        return;
    }
    let redis = Redis::start();
    let pki = Pki::new();
    let tls = tls_table(&pki.server_cert, &pki.server_key, None);
    let extra = format!("{tls}{}", support::EXAMPLE_DOMAINS);
    let secure = Gateway::start(&config(&redis, &extra));
    let plain = Gateway::start(&config(&redis, support::EXAMPLE_DOMAINS));
    let put = reqwest::Client::new()
        .put(plain.url("/v1/cache/price/btc:usd"))
        .json(
            &serde_json::json!({"asset":"BTC","fiat":"USD","price":64000.5,"ts":1732550000000u64}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    let run = |args: Vec<String>| {
        let mut cmd = Command::new(curl);
        cmd.args(["-s", "-w", " %{http_version}"]).args(args);
        let (ok, out, err) = run_within(cmd, Duration::from_secs(30));
        assert!(ok, "{err}");
        out
    };
    let path = "/v1/cache/price/btc:usd?fields=price";
    let h2c = run(vec!["--http2-prior-knowledge".into(), plain.url(path)]);
    assert_eq!(h2c, "{\"price\":64000.5} 2");
    let https = secure.base.replace("127.0.0.1", "localhost");
    let h2 = run(vec![
        "--http2".into(),
        "--cacert".into(),
        pki.ca.display().to_string(),
        format!("{https}{path}"),
    ]);
    assert_eq!(h2, "{\"price\":64000.5} 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_never_comes_is_dropped_and_blocks_no_one() {
    let redis = Redis::start();
    let pki = Pki::new();
    let tls = tls_table(&pki.server_cert, &pki.server_key, None);
    let gw = Gateway::start(&config(&redis, &tls));
    // A client that connects and sends nothing (or half a handshake).
    let mut stalled = TcpStream::connect(host_port(&gw)).await.unwrap();
    let mut half = TcpStream::connect(host_port(&gw)).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    // Others are served meanwhile, on every thread.
    let client = client(&pki, None).build().unwrap();
    let url = gw.base.replace("127.0.0.1", "localhost") + "/healthz";
    for _ in 0..8 {
        let fresh = client.get(&url).send().await.unwrap();
        assert_eq!(fresh.status(), StatusCode::OK);
    }
    // Within the handshake's 10 s both are closed and counted.
    for conn in [&mut stalled, &mut half] {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(30), conn.read(&mut buf))
            .await
            .expect("closed by the gateway");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    let metrics = client
        .get(gw.base.replace("127.0.0.1", "localhost") + "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failures: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_tls_handshake_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(failures >= 2.0, "{failures}");
}
