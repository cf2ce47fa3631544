//! A redis-server of a test's own, on a unix socket and optionally a
//! loopback port (plain or TLS).

use crate::Pki;
use crate::process::{STARTUP, free_port, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tempfile::TempDir;

/// A redis-server process of this test's own.
pub struct Redis {
    child: Option<Child>,
    dir: TempDir,
    /// A loopback TCP port it also listens on (plain, or TLS with `tls`).
    port: Option<u16>,
    /// `--tls-*` arguments: the port above speaks TLS only.
    tls: Vec<String>,
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

    /// Its data folder (`--dir`): a `dump.rdb` here is loaded at start.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
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
