//! Real parts for end-to-end tests: a redis-server on a unix socket in a temp
//! dir (and, when asked, on a loopback port, plain or TLS with certificates
//! made by the test), and the `sluice` binary on port 0 with real plugins from
//! `build/plugins/` (`make test` builds them). Both are killed on drop.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long anything may take to come up on a loaded machine.
pub const STARTUP: Duration = Duration::from_secs(30);

/// Poll `cond` until it holds or `within` passes; panics with `what` otherwise.
pub fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Await `cond` until it holds, polling; panics after `within`. Returns how
/// long it took (tests report it).
pub async fn eventually(
    what: &str,
    within: Duration,
    mut cond: impl AsyncFnMut() -> bool,
) -> Duration {
    let started = Instant::now();
    while !cond().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

/// A redis-server process of this test's own.
pub struct Redis {
    child: Option<Child>,
    dir: TempDir,
    /// A loopback TCP port it also listens on (plain, or TLS with `tls`).
    port: Option<u16>,
    /// `--tls-*` arguments: the port above speaks TLS only.
    tls: Vec<String>,
}

/// A port nobody listens on right now (the OS's pick, released at once).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Redis {
    /// On a unix socket only.
    pub fn start() -> Redis {
        Redis::start_with(None, Vec::new())
    }

    /// Also on a plain loopback port: `redis://user:password@127.0.0.1:PORT`.
    pub fn start_tcp() -> Redis {
        Redis::start_with(Some(free_port()), Vec::new())
    }

    /// Also on a loopback port that speaks TLS only, with `pki`'s server
    /// certificate; `client_certs`: Redis asks clients for a certificate
    /// signed by `pki`'s CA (`tls-auth-clients yes`).
    pub fn start_tls(pki: &Pki, client_certs: bool) -> Redis {
        let path = |p: &Path| p.display().to_string();
        let tls = vec![
            "--tls-port".into(),
            free_port().to_string(),
            "--tls-cert-file".into(),
            path(&pki.server_cert),
            "--tls-key-file".into(),
            path(&pki.server_key),
            "--tls-ca-cert-file".into(),
            path(&pki.ca),
            "--tls-auth-clients".into(),
            if client_certs { "yes" } else { "no" }.into(),
        ];
        let port = tls[1].parse().ok();
        Redis::start_with(port, tls)
    }

    fn start_with(port: Option<u16>, tls: Vec<String>) -> Redis {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut redis = Redis {
            child: None,
            dir,
            port,
            tls,
        };
        redis.spawn();
        redis
    }

    /// The loopback port of [`Redis::start_tcp`] or [`Redis::start_tls`].
    pub fn port(&self) -> u16 {
        self.port.expect("a Redis started with a TCP port")
    }

    fn spawn(&mut self) {
        let plain_port = match (self.port, self.tls.is_empty()) {
            (Some(p), true) => p,
            _ => 0,
        };
        let child = Command::new("redis-server")
            .args(&self.tls)
            .arg("--port")
            .arg(plain_port.to_string())
            .args(["--bind", "127.0.0.1", "--unixsocket"])
            .arg(self.socket())
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (make test installs it)");
        self.child = Some(child);
        // The socket answers once every listener is up (the TLS port too).
        wait_until("redis-server to answer PING", STARTUP, || {
            self.try_connection()
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).ok())
                .is_some()
        });
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    fn try_connection(&self) -> Option<redis::Connection> {
        redis::Client::open(self.url()).ok()?.get_connection().ok()
    }

    /// A direct connection, to look at what the gateway wrote.
    pub fn conn(&self) -> redis::Connection {
        self.try_connection()
            .expect("connect to the test's redis-server")
    }

    /// Start the server again on the same socket (after [`Redis::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A field of `INFO`, e.g. `connected_clients`.
    pub fn info(&self, field: &str) -> String {
        let text: String = redis::cmd("INFO").query(&mut self.conn()).expect("INFO");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in INFO"))
            .trim()
            .to_owned()
    }

    /// Kill the server (SIGKILL: no goodbye to clients) and wait for it to go.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The repo's `build/plugins/`, where `make plugins` puts every policy.
pub fn plugins_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/plugins");
    assert!(
        dir.join("fixed-ttl.wasm").is_file(),
        "no plugins in {}: run `make plugins` (make test does)",
        dir.display()
    );
    dir.canonicalize().expect("plugins dir")
}

/// A config for `redis` with the `cache` domain on fixed-ttl; `extra` is
/// appended (more domains, overrides in new tables).
pub fn config(redis: &Redis, extra: &str) -> String {
    config_in(redis, &plugins_dir(), extra)
}

/// A plugins folder of this test's own: every shipped plugin plus the named
/// fixtures from `build/fixtures/`, so a test can replace files in it.
pub fn own_plugins_dir(fixtures: &[&str]) -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(plugins_dir()).expect("plugins dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    let built = plugins_dir().join("../fixtures");
    for f in fixtures {
        let from = built.join(format!("{f}.wasm"));
        std::fs::copy(&from, dir.path().join(format!("{f}.wasm")))
            .unwrap_or_else(|e| panic!("{}: {e} (make plugins builds fixtures)", from.display()));
    }
    dir
}

/// [`config`] with another plugins folder.
pub fn config_in(redis: &Redis, plugins: &Path, extra: &str) -> String {
    config_at(&redis.url(), plugins, extra)
}

/// [`config`] for a Redis at `url` (a user, a password, TLS).
pub fn config_url(url: &str, extra: &str) -> String {
    config_at(url, &plugins_dir(), extra)
}

fn config_at(url: &str, plugins: &Path, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 65536
max_key_bytes = 128

[redis]
url = "{url}"
pool_size = 4
command_timeout_ms = 1000

[plugins]
dir = "{plugins}"

[domains.cache]
plugin = "fixed-ttl"
ttl_s = 60
min_ttl_s = 1
max_ttl_s = 3600
streams = true
{extra}"#,
        plugins = plugins.display(),
    )
}

/// A `sluice serve` process of this test's own.
pub struct Gateway {
    child: Child,
    dir: TempDir,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Everything it printed on stdout so far.
    stdout: Arc<Mutex<String>>,
}

impl Gateway {
    /// Start the gateway with the given config text.
    pub fn start(config: &str) -> Gateway {
        Gateway::start_with_env(config, &[])
    }

    /// Start the gateway with extra environment variables.
    pub fn start_with_env(config: &str, env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("sluice.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .env_remove("RUST_BACKTRACE")
            .env_remove("SLUICE_ADMIN_TOKEN")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn sluice");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let printed = Arc::new(Mutex::new(String::new()));
        let keep = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("sluice listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
                let mut all = keep.lock().unwrap_or_else(|p| p.into_inner());
                all.push_str(&line);
                all.push('\n');
            }
        });
        let base = match rx.recv_timeout(STARTUP) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let log =
                    std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default();
                panic!("the gateway did not start; its log:\n{log}");
            }
        };
        Gateway {
            child,
            dir,
            base,
            stdout: printed,
        }
    }

    /// What the gateway printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The config file it serves; rewrite it to test reloads.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("sluice.toml")
    }

    /// Send the process a signal (e.g. "HUP").
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// The process id (chaos tests read its RSS from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the gateway logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// Whether the process exited (on its own) within `within`.
    pub fn exited_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Assert a response is a problem+json with `status`; returns its body.
pub async fn assert_problem(resp: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    let body: serde_json::Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status, "problem status field: {body}");
    let detail = body["detail"].as_str().unwrap_or("");
    assert!(!detail.is_empty(), "problem without detail: {body}");
    body
}

/// Send raw bytes to the gateway and return what it answers first (for
/// requests a normal client will not make, such as chunked bodies).
pub async fn raw_http(base: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The gateway may answer and close before reading everything: ignore write errors.
    let _ = stream.write_all(request).await;
    let mut buf = vec![0; 4096];
    let n = stream.read(&mut buf).await.unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The value of one sample on `/metrics`, e.g.
/// `sluice_redis_round_trips_total` or `sluice_ratelimit_total{policy="t",result="allowed"}`;
/// 0 when absent.
pub async fn metric(gw: &Gateway, sample: &str) -> f64 {
    let text = reqwest::get(gw.url("/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.strip_prefix(sample)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

/// A CA and the certificates it signed, as PEM files in a temp dir: Redis's
/// (for 127.0.0.1 and localhost) and a client's.
pub struct Pki {
    dir: TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sluice test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(names).expect("params");
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).expect("sign");
            (cert.pem(), key.serialize_pem())
        };
        let (server, server_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client, client_key) = leaf(vec!["sluice".into()], ExtendedKeyUsagePurpose::ClientAuth);
        Pki {
            ca: write("ca.pem", ca.pem()),
            server_cert: write("redis.pem", server),
            server_key: write("redis.key", server_key),
            client_cert: write("sluice.pem", client),
            client_key: write("sluice.key", client_key),
            dir,
        }
    }
}

/// The example configuration's other domains and its rate limit (beside the
/// `cache` domain [`config`] has): `price`, `market_depth`, `arbitrage`
/// (streams) and `global`, as config/sluice.toml sets them.
pub const EXAMPLE_DOMAINS: &str = r#"
[ratelimits.global]
capacity = 100
refill_per_s = 50

[domains.price]
plugin = "price-hash"
ttl_s = 5
min_ttl_s = 1
max_ttl_s = 60
max_stale_s = 30
near_cache_ms = 250

[domains.market_depth]
plugin = "adaptive-ttl"
ttl_s = 10
min_ttl_s = 2
max_ttl_s = 120
track_access = true

[domains.market_depth.settings]
hot_reads_per_min = 60
jitter_pct = 10

[domains.arbitrage]
plugin = "stream-router"
ttl_s = 86400
streams = true

[domains.arbitrage.settings]
maxlen = 10000
per_asset = true
"#;

/// Whether `program` runs (`program arg` exits 0). Under CI (and `make
/// test`, which installs it) its absence is a failure; elsewhere the checks
/// that need it are skipped, saying so.
pub fn have(program: &Path, arg: &str) -> bool {
    let found = Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing (make test installs it)",
            program.display()
        );
        eprintln!(
            "{} is missing: skipping its checks (make test installs it)",
            program.display()
        );
    }
    found
}

/// Run `cmd` to its end, killing it after `within`; its exit status and
/// what it printed (stdout, stderr).
pub fn run_within(mut cmd: Command, within: Duration) -> (bool, String, String) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(Ok(out)) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Ok(Err(e)) => panic!("{cmd:?}: {e}"),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(id.to_string())
                .status();
            panic!("{cmd:?} did not finish within {within:?}");
        }
    }
}

/// Timing for a local cluster: a node is failed after this long without an
/// answer, and its replica may then be promoted.
pub const CLUSTER_NODE_TIMEOUT_MS: u64 = 1000;

/// How long a failover or a topology change may take to settle on a loaded
/// machine (node timeout, election, gossip).
pub const FAILOVER: Duration = Duration::from_secs(60);

/// One node of a [`Cluster`] as the live nodes see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The node id (`CLUSTER MYID`).
    pub id: String,
    /// For a replica, the address of its primary.
    pub primary: Option<String>,
    /// Inclusive slot ranges it serves (a replica: its primary's).
    pub slots: Vec<(u16, u16)>,
}

impl ClusterNode {
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
    }
}

/// A process of a [`Cluster`]: its port, its own dir (nodes.conf), its child.
struct ClusterProcess {
    port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl ClusterProcess {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A Redis Cluster of this test's own: 3 primaries and 3 replicas, each a
/// redis-server on a free loopback port (`redis://127.0.0.1:PORT`, no
/// password) in a temp dir of its own. [`Cluster::start`] returns once every
/// node says `cluster_state:ok`, every slot is covered, every replica's link
/// to its primary is up and every node sees the same topology, also in
/// `CLUSTER SLOTS` (what a cluster client reads). All killed on drop.
///
/// `cluster-require-full-coverage no`: while a primary is down, only its
/// slots fail (the gateway's failover tests rely on it); and
/// `cluster-replica-validity-factor 0`: a replica always stands for
/// promotion, however long a loaded machine kept it from its primary.
pub struct Cluster {
    nodes: Vec<ClusterProcess>,
    /// Killed primary's address → the addresses of its replicas then.
    replicas_of_killed: Vec<(String, Vec<String>)>,
}

/// `n` distinct free loopback ports.
fn free_ports(n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    while ports.len() < n {
        let p = free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

/// A field of an `INFO` or `CLUSTER INFO` text (`field:value` lines).
fn info_field(text: &str, field: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// A node's line of `CLUSTER NODES`, as far as the topology goes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct NodesLine {
    id: String,
    addr: String,
    primary: bool,
    /// For a replica, its primary's id.
    primary_id: Option<String>,
    slots: Vec<(u16, u16)>,
    /// `fail` or `fail?` in the flags: not part of the comparison of views.
    failing: bool,
}

fn parse_cluster_nodes(text: &str) -> Vec<NodesLine> {
    let mut lines: Vec<NodesLine> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 8, "a CLUSTER NODES line: {l}");
            // ip:port@cport[,hostname]
            let addr = f[1].split('@').next().unwrap_or(f[1]).to_owned();
            let flags: Vec<&str> = f[2].split(',').collect();
            let slots = f[8..]
                .iter()
                // "[slot->-id]" / "[slot-<-id]": a slot being moved, not served here.
                .filter(|s| !s.starts_with('['))
                .map(|s| {
                    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
                    (
                        lo.parse().expect("slot number"),
                        hi.parse().expect("slot number"),
                    )
                })
                .collect();
            NodesLine {
                id: f[0].to_owned(),
                addr,
                primary: flags.contains(&"master"),
                primary_id: (f[3] != "-").then(|| f[3].to_owned()),
                slots,
                failing: flags.iter().any(|&fl| fl == "fail" || fl == "fail?"),
            }
        })
        .collect();
    lines.sort();
    lines
}

impl Cluster {
    /// Start 6 nodes, create the cluster with one replica per primary and
    /// wait until it is whole and every node agrees on it.
    pub fn start() -> Cluster {
        let ports = free_ports(12);
        let mut cluster = Cluster {
            nodes: Vec::new(),
            replicas_of_killed: Vec::new(),
        };
        for pair in ports.chunks(2) {
            let dir = tempfile::tempdir().expect("temp dir");
            let child = Command::new("redis-server")
                .arg("--port")
                .arg(pair[0].to_string())
                // The bus port: a free one, not port + 10000 (which may pass 65535).
                .arg("--cluster-port")
                .arg(pair[1].to_string())
                .args(["--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .arg("--cluster-node-timeout")
                .arg(CLUSTER_NODE_TIMEOUT_MS.to_string())
                .args(["--cluster-require-full-coverage", "no"])
                .args(["--cluster-replica-validity-factor", "0"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(dir.path().join("redis.log"))
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (make test installs it)");
            cluster.nodes.push(ClusterProcess {
                port: pair[0],
                child: Some(child),
                dir,
            });
        }
        for i in 0..cluster.nodes.len() {
            let addr = cluster.nodes[i].addr();
            wait_until(
                &format!("cluster node {addr} to answer PING"),
                STARTUP,
                || {
                    cluster.assert_running(i);
                    cluster.ping(&addr)
                },
            );
        }
        let mut create = Command::new("redis-cli");
        create
            .arg("--cluster")
            .arg("create")
            .args(cluster.nodes.iter().map(ClusterProcess::addr))
            .args(["--cluster-replicas", "1", "--cluster-yes"]);
        let (ok, out, err) = run_within(create, STARTUP * 2);
        assert!(ok, "redis-cli --cluster create failed:\n{out}\n{err}");
        cluster.wait_whole("the new cluster to be whole");
        cluster
    }

    /// Panics with the node's log when its process exited.
    fn assert_running(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(child) = node.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let log =
                std::fs::read_to_string(node.dir.path().join("redis.log")).unwrap_or_default();
            panic!(
                "cluster node {} exited ({status}); its log:\n{log}",
                node.addr()
            );
        }
    }

    fn live(&self) -> impl Iterator<Item = &ClusterProcess> {
        self.nodes.iter().filter(|n| n.child.is_some())
    }

    fn try_conn(&self, addr: &str) -> Option<redis::Connection> {
        let client = redis::Client::open(format!("redis://{addr}")).ok()?;
        let conn = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        Some(conn)
    }

    fn ping(&self, addr: &str) -> bool {
        self.try_conn(addr)
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).ok())
            .is_some()
    }

    /// A text command's answer from the node at `addr`, if it answers.
    fn text(&self, addr: &str, cmd: &[&str]) -> Option<String> {
        let mut c = self.try_conn(addr)?;
        let mut command = redis::cmd(cmd[0]);
        for a in &cmd[1..] {
            command.arg(*a);
        }
        command.query(&mut c).ok()
    }

    /// Whether every live node says the cluster is ok with every slot
    /// served, every live replica's link is up, and every live node sees the
    /// same topology of the live nodes and lists them all in CLUSTER SLOTS.
    fn is_whole(&self) -> bool {
        let mut views = Vec::new();
        let killed = self.killed_ids();
        let live: BTreeSet<String> = self.live().map(ClusterProcess::addr).collect();
        for node in self.live() {
            let addr = node.addr();
            let Some(info) = self.text(&addr, &["CLUSTER", "INFO"]) else {
                return false;
            };
            let ok = info_field(&info, "cluster_state").as_deref() == Some("ok")
                && info_field(&info, "cluster_slots_ok").as_deref() == Some("16384");
            if !ok {
                return false;
            }
            let Some(replication) = self.text(&addr, &["INFO", "replication"]) else {
                return false;
            };
            if info_field(&replication, "role").as_deref() == Some("slave")
                && info_field(&replication, "master_link_status").as_deref() != Some("up")
            {
                return false;
            }
            let Some(nodes) = self.text(&addr, &["CLUSTER", "NODES"]) else {
                return false;
            };
            let view: Vec<NodesLine> = parse_cluster_nodes(&nodes)
                .into_iter()
                .filter(|l| !killed.contains(&l.id))
                .collect();
            // A live node some node still holds failing, or a node missing.
            if view.len() != self.live().count() || view.iter().any(|l| l.failing) {
                return false;
            }
            // What a cluster client reads: Redis leaves a replica out of
            // CLUSTER SLOTS for a few seconds after its first sync.
            if self.cluster_slots_nodes(&addr) != Some(live.clone()) {
                return false;
            }
            views.push(view);
        }
        views.windows(2).all(|w| w[0] == w[1])
    }

    /// Every `ip:port` the node at `addr` lists in `CLUSTER SLOTS`.
    fn cluster_slots_nodes(&self, addr: &str) -> Option<BTreeSet<String>> {
        let mut c = self.try_conn(addr)?;
        let ranges: Vec<Vec<redis::Value>> =
            redis::cmd("CLUSTER").arg("SLOTS").query(&mut c).ok()?;
        let mut nodes = BTreeSet::new();
        for range in ranges {
            // [start, end, [ip, port, id, ...] of the primary, then of each replica]
            for node in range.into_iter().skip(2) {
                let redis::Value::Array(fields) = node else {
                    return None;
                };
                let ip: String = redis::from_redis_value_ref(fields.first()?).ok()?;
                let port: u16 = redis::from_redis_value_ref(fields.get(1)?).ok()?;
                nodes.insert(format!("{ip}:{port}"));
            }
        }
        Some(nodes)
    }

    fn wait_whole(&self, what: &str) {
        let deadline = Instant::now() + FAILOVER;
        while !self.is_whole() {
            if Instant::now() >= deadline {
                let views: Vec<String> = self
                    .live()
                    .map(|n| {
                        let a = n.addr();
                        let info = self.text(&a, &["CLUSTER", "INFO"]).unwrap_or_default();
                        let nodes = self.text(&a, &["CLUSTER", "NODES"]).unwrap_or_default();
                        format!("{a}:\n{info}\n{nodes}")
                    })
                    .collect();
                panic!(
                    "timed out waiting for {what}; the nodes say:\n{}",
                    views.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The ids of the nodes [`Cluster::kill`] killed, as the others know them.
    fn killed_ids(&self) -> Vec<String> {
        let killed: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.child.is_none())
            .map(ClusterProcess::addr)
            .collect();
        if killed.is_empty() {
            return killed;
        }
        self.live()
            .find_map(|n| self.text(&n.addr(), &["CLUSTER", "NODES"]))
            .map(|t| {
                parse_cluster_nodes(&t)
                    .into_iter()
                    .filter(|l| killed.contains(&l.addr))
                    .map(|l| l.id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The live nodes as the first live node that answers sees them.
    fn topology(&self) -> Vec<ClusterNode> {
        let killed = self.killed_ids();
        let text = self
            .live()
            .find_map(|n| self.text(&n.addr(), &["CLUSTER", "NODES"]))
            .expect("no cluster node answers CLUSTER NODES");
        let lines: Vec<NodesLine> = parse_cluster_nodes(&text)
            .into_iter()
            .filter(|l| !killed.contains(&l.id))
            .collect();
        let by_id = |id: &str| lines.iter().find(|l| l.id == id);
        let mut nodes: Vec<ClusterNode> = lines
            .iter()
            .map(|l| {
                let primary = l.primary_id.as_deref().and_then(by_id);
                ClusterNode {
                    addr: l.addr.clone(),
                    id: l.id.clone(),
                    primary: primary.map(|p| p.addr.clone()),
                    slots: match primary {
                        Some(p) => p.slots.clone(),
                        None => l.slots.clone(),
                    },
                }
            })
            .collect();
        nodes.sort_by(|a, b| a.slots.cmp(&b.slots).then(a.addr.cmp(&b.addr)));
        nodes
    }

    /// `redis://127.0.0.1:PORT` of every live node: a cluster client's seeds.
    pub fn seeds(&self) -> Vec<String> {
        self.live()
            .map(|n| format!("redis://{}", n.addr()))
            .collect()
    }

    /// The live primaries that serve slots, by slot order.
    pub fn primaries(&self) -> Vec<ClusterNode> {
        self.topology()
            .into_iter()
            .filter(|n| n.primary.is_none() && !n.slots.is_empty())
            .collect()
    }

    /// The live replicas, by their primaries' slot order.
    pub fn replicas(&self) -> Vec<ClusterNode> {
        self.topology()
            .into_iter()
            .filter(|n| n.primary.is_some())
            .collect()
    }

    /// The key's hash slot, as the cluster computes it (`CLUSTER KEYSLOT`).
    pub fn slot(&self, key: &str) -> u16 {
        let mut c = self
            .live()
            .find_map(|n| self.try_conn(&n.addr()))
            .expect("no cluster node to ask");
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut c)
            .expect("CLUSTER KEYSLOT")
    }

    /// The address of the primary that serves `key`'s slot now.
    pub fn node_for_key(&self, key: &str) -> String {
        let slot = self.slot(key);
        self.primaries()
            .into_iter()
            .find(|p| p.serves(slot))
            .unwrap_or_else(|| panic!("no live primary serves slot {slot} (key {key:?})"))
            .addr
    }

    /// A plain connection to one node (no redirections followed).
    pub fn conn(&self, addr: &str) -> redis::Connection {
        self.try_conn(addr)
            .unwrap_or_else(|| panic!("connect to cluster node {addr}"))
    }

    /// Hold the replicas of the primary at `addr` back from taking its
    /// place (`cluster-replica-no-failover`), or let them again: a test
    /// can then look at the outage for as long as it needs.
    pub fn hold_failover(&self, addr: &str, hold: bool) {
        let value = if hold { "yes" } else { "no" };
        for r in self
            .replicas_of_killed
            .iter()
            .filter(|(a, _)| a == addr)
            .flat_map(|(_, r)| r.clone())
            .chain(
                self.replicas()
                    .into_iter()
                    .filter(|r| r.primary.as_deref() == Some(addr))
                    .map(|r| r.addr),
            )
        {
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("cluster-replica-no-failover")
                .arg(value)
                .query(&mut self.conn(&r))
                .unwrap_or_else(|e| panic!("hold the failover on {r}: {e}"));
        }
    }

    /// SIGKILL the node at `addr` (no goodbye to clients or to the cluster)
    /// and wait for the process to go.
    pub fn kill(&mut self, addr: &str) {
        let replicas: Vec<String> = self
            .replicas()
            .into_iter()
            .filter(|r| r.primary.as_deref() == Some(addr))
            .map(|r| r.addr)
            .collect();
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.addr() == addr)
            .unwrap_or_else(|| panic!("{addr} is not a node of this cluster"));
        let mut child = node
            .child
            .take()
            .unwrap_or_else(|| panic!("{addr} was already killed"));
        let _ = child.kill();
        let _ = child.wait();
        if !replicas.is_empty() {
            self.replicas_of_killed.push((addr.to_owned(), replicas));
        }
    }

    /// After [`Cluster::kill`] of the primary at `dead`: wait until one of its
    /// replicas reports `role:master`, serves the dead primary's slots and
    /// the live nodes agree the cluster is whole again. Returns the new
    /// primary's address.
    pub fn wait_promoted(&self, dead: &str) -> String {
        let replicas = self
            .replicas_of_killed
            .iter()
            .find(|(a, _)| a == dead)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{dead} is not a killed primary with replicas"));
        let mut promoted = None;
        wait_until(
            &format!("a replica of {dead} to be promoted"),
            FAILOVER,
            || {
                promoted = replicas.iter().find(|r| {
                    self.text(r, &["INFO", "replication"])
                        .and_then(|t| info_field(&t, "role"))
                        .as_deref()
                        == Some("master")
                });
                promoted.is_some()
            },
        );
        let promoted = promoted.expect("promoted").clone();
        self.wait_whole(&format!(
            "the cluster to be whole after {promoted} took {dead}'s place"
        ));
        promoted
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
