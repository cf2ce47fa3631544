//! Waiting on conditions and running helper programs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

/// A port nobody listens on right now, for a server that binds it itself
/// (redis-server). Picked at random below the kernel's ephemeral range
/// (32768-60999): a port the OS picked there could be taken by any
/// client connection's ephemeral port before the server binds it (a
/// cluster node once failed so). Never the same one twice in a process.
pub(crate) fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let p = 20_000 + (RandomState::new().hash_one(Instant::now()) % 12_768) as u16;
        let fresh = GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(p);
        if fresh && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

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

/// A process's resident set size in KiB and the CPU time it has used, in
/// clock ticks (user + system), from /proc.
pub fn rss_kib_and_cpu_ticks(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (rss, tick(11) + tick(12))
}
