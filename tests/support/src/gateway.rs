//! The `sluice` gateway process of a test's own.

use crate::process::STARTUP;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The `sluice` binary the running test was built with.
///
/// `env!("CARGO_BIN_EXE_sluice")` is set only when cargo compiles an
/// integration test of the `sluice` package, not this crate. But cargo (1.94
/// on; the workspace needs 1.95) also sets `CARGO_BIN_EXE_sluice` in the
/// environment of every test of that package it runs, after building the
/// binary for it: that path is the binary of this very build, never a stale
/// one, wherever cargo put it (another target or build dir, another profile).
///
/// Without it, the test executable was run by hand (under a debugger, say),
/// and the binary is looked for beside it: cargo writes an integration test
/// to `<target dir>/[<triple>/]<profile>/deps/<test>-<hash>` and the
/// package's binaries to `<target dir>/[<triple>/]<profile>/<name>`, and it
/// builds them whenever it builds the package's integration tests, so the one
/// there is at least as new as the test. Only a test of the `sluice` package
/// has that guarantee, so a test of another package that cargo runs (it sets
/// `CARGO_PKG_NAME`, but no `CARGO_BIN_EXE_sluice`) is refused rather than
/// given whatever binary an older build left there.
pub fn gateway_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CARGO_BIN_EXE_sluice") {
        return bin.into();
    }
    if let Some(package) = std::env::var_os("CARGO_PKG_NAME") {
        panic!(
            "cargo runs this test for the package {package:?}: only the `sluice` \
             package's tests get the gateway binary built and named for them"
        );
    }
    let test = std::env::current_exe().expect("the test executable's path");
    let profile_dir = test
        .parent()
        .filter(|deps| deps.ends_with("deps"))
        .and_then(Path::parent)
        .unwrap_or_else(|| {
            panic!(
                "{} is not an integration test in cargo's <profile>/deps folder: \
                 set CARGO_BIN_EXE_sluice to the gateway binary",
                test.display()
            )
        });
    let bin = profile_dir.join(format!("sluice{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "no gateway binary at {}: set CARGO_BIN_EXE_sluice to it",
        bin.display()
    );
    bin
}

/// A `sluice serve` process of this test's own.
pub struct Gateway {
    child: Child,
    dir: TempDir,
    config: PathBuf,
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
        Gateway::spawn(dir, &config_path, env)
    }

    /// Start the gateway on a config file the test laid out itself (a
    /// symlink into a Kubernetes-style volume, say); its log goes to a
    /// folder of its own.
    pub fn start_at(config_path: &Path) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        Gateway::spawn(dir, config_path, &[])
    }

    fn spawn(dir: TempDir, config_path: &Path, env: &[(&str, &str)]) -> Gateway {
        let log = std::fs::File::create(dir.path().join("gateway.log")).expect("log file");
        let mut child = Command::new(gateway_bin())
            .arg("serve")
            .arg("--config")
            .arg(config_path)
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
            config: config_path.to_owned(),
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
        self.config.clone()
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
