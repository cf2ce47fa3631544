//! `sluice check-config`: exit 0 on a good file; on a broken one, a message
//! that names the line and the field.

use sluice_test_support as support;

use std::path::Path;
use std::process::Command;
use support::plugins_dir;

fn check(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    check_file(&path)
}

fn check_file(path: &Path) -> (bool, String) {
    sluice(&["check-config", path.to_str().unwrap()])
}

/// Run the binary; whether it succeeded, and all it printed.
fn sluice(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn good() -> String {
    format!(
        "[redis]\nurl = \"redis://127.0.0.1:6379\"\n\n[plugins]\ndir = \"{}\"\n\n[domains.cache]\nplugin = \"fixed-ttl\"\nttl_s = 60\n",
        plugins_dir().display()
    )
}

#[test]
fn a_good_file_passes_and_names_its_domains() {
    let (ok, out) = check(&good());
    assert!(ok, "{out}");
    assert!(out.contains("ok") && out.contains("cache"), "{out}");
}

/// API keys on a listener beyond loopback, in plain HTTP: the file is
/// valid, and `check-config` says the keys would cross the network in clear.
#[test]
fn keys_on_a_wide_plain_listener_are_warned_about() {
    let keys = "\n[clients.app]\nkey_sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\nread = [\"cache\"]\n";
    let wide = format!("[server]\nlisten = \"0.0.0.0:8080\"\n{}{keys}", good());
    let (ok, out) = check(&wide);
    assert!(ok, "{out}");
    assert!(
        out.contains("warning: server.listen 0.0.0.0:8080 is not a loopback address")
            && out.contains("API keys would cross the network in clear"),
        "{out}"
    );
    let (ok, out) = check(&format!("{}{keys}", good()));
    assert!(ok && !out.contains("in clear"), "loopback: {out}");
}

#[test]
fn the_shipped_example_config_passes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sluice.toml");
    let (ok, out) = check_file(&path);
    assert!(ok, "{out}");
}

#[test]
fn a_typo_in_a_field_is_reported_with_line_and_field() {
    let text = good().replace("ttl_s = 60", "tll_s = 60");
    let (ok, out) = check(&text);
    assert!(!ok);
    assert!(out.contains("line 9"), "{out}");
    assert!(out.contains("tll_s"), "{out}");
}

#[test]
fn a_toml_syntax_error_is_reported_with_its_line() {
    let text = good().replace("ttl_s = 60", "ttl_s = ");
    let (ok, out) = check(&text);
    assert!(!ok);
    assert!(out.contains("line 9"), "{out}");
}

#[test]
fn inconsistent_ttls_name_the_line_and_field() {
    let text = good().replace("ttl_s = 60", "ttl_s = 60\nmin_ttl_s = 100\nmax_ttl_s = 10");
    let (ok, out) = check(&text);
    assert!(!ok);
    assert!(out.contains(":10: domains.cache.min_ttl_s"), "{out}");
}

#[test]
fn a_missing_plugin_file_is_named() {
    let text = good().replace("fixed-ttl", "no-such-policy");
    let (ok, out) = check(&text);
    assert!(!ok);
    assert!(
        out.contains(":8: domains.cache.plugin") && out.contains("no-such-policy.wasm"),
        "{out}"
    );
}

#[test]
fn a_bad_domain_name_and_a_bad_redis_url_are_refused() {
    let (ok, out) = check(&good().replace("[domains.cache]", "[domains.Cache]"));
    assert!(!ok && out.contains("domains.Cache"), "{out}");
    let (ok, out) = check(&good().replace("redis://127.0.0.1:6379", "http://nope"));
    assert!(!ok && out.contains(":2: redis.url"), "{out}");
}

#[test]
fn a_file_that_is_not_a_plugin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.wasm"), b"\0asm not really").unwrap();
    let text = format!(
        "[plugins]\ndir = \"{}\"\n\n[domains.cache]\nplugin = \"broken\"\n",
        dir.path().display()
    );
    let (ok, out) = check(&text);
    assert!(!ok);
    assert!(
        out.contains("broken.wasm") && out.contains("not a usable sluice:policy component"),
        "{out}"
    );
}

fn plugin_check(args: &[&str]) -> (bool, String) {
    sluice(&[&["plugin", "check"], args].concat())
}

#[test]
fn plugin_check_prints_what_a_plugin_would_do() {
    let wasm = plugins_dir().join("price-hash.wasm");
    let (ok, out) = plugin_check(&[wasm.to_str().unwrap(), "--domain", "price"]);
    assert!(ok, "{out}");
    assert!(out.contains("sluice:policy@0.3.0 component"), "{out}");
    assert!(out.contains("configure for domain \"price\": ok"), "{out}");
    // The real commands, in order, as Redis receives them; values as JSON.
    assert!(
        out.contains("  MULTI\n  DEL price:sample:1\n  HSET price:sample:1 asset \"BTC\" fiat \"USD\" price 64000.5 type \"sample\"\n  PEXPIRE price:sample:1 60000\n  EXEC\n"),
        "{out}"
    );
    assert!(
        out.contains("  HGETALL price:sample:1    <- the answer"),
        "{out}"
    );
    assert!(
        out.contains("refused (a 400): prices are not events"),
        "{out}"
    );

    // Settings from a config: adaptive-ttl is configured with them.
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/sluice.toml");
    let wasm = plugins_dir().join("adaptive-ttl.wasm");
    let (ok, out) = plugin_check(&[
        wasm.to_str().unwrap(),
        "--domain",
        "market_depth",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(ok && out.contains("SET market_depth:sample:1"), "{out}");

    // A domain not configured yet: its TTL and settings from flags.
    let wasm = plugins_dir().join("stream-router.wasm");
    let (ok, out) = plugin_check(&[
        wasm.to_str().unwrap(),
        "--domain",
        "feed",
        "--ttl-s",
        "30",
        "--settings",
        "maxlen = 7",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("ttl_s 30 (bounds 1..=86400), settings {\"maxlen\":7}"),
        "{out}"
    );
    assert!(out.contains(" 1 feed:sample 7 30000 "), "{out}");
}

#[test]
fn plugin_check_refuses_what_would_fail() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"not a component").unwrap();
    let (ok, out) = plugin_check(&[garbage.to_str().unwrap()]);
    assert!(
        !ok && out.contains("not a usable sluice:policy component"),
        "{out}"
    );

    // The misbehaving fixture plans a publish outside its namespace.
    let wasm = plugins_dir().join("../fixtures/misbehave.wasm");
    let (ok, out) = plugin_check(&[wasm.to_str().unwrap()]);
    assert!(!ok && out.contains("INVALID PLAN"), "{out}");
}

#[test]
fn a_component_built_for_another_contract_version_is_refused_naming_both() {
    let old =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/fixed-ttl-contract-0.1.wasm");
    let (ok, out) = plugin_check(&[old.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("sluice:policy@0.1.0") && out.contains("sluice:policy@0.3.0"),
        "{out}"
    );
    assert!(out.contains("rebuild it with sluice-sdk"), "{out}");
    // The previous contract is still served, and said to be.
    let older =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/fixed-ttl-contract-0.2.wasm");
    let (ok, out) = plugin_check(&[older.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("sluice:policy@0.2.0 component"), "{out}");
    assert!(out.contains("SET check:sample:1"), "{out}");
}

#[test]
fn plugin_check_takes_a_sample_value_and_prints_sorted_set_commands() {
    let wasm = plugins_dir().join("../fixtures/guide-leaderboard.wasm");
    let (ok, out) = plugin_check(&[
        wasm.to_str().unwrap(),
        "--domain",
        "leaderboard",
        "--key",
        "w",
        "--value",
        r#"{"member":"a","score":1}"#,
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("  ZRANGE leaderboard:w 0 9 REV WITHSCORES    <- the answer"),
        "{out}"
    );
    assert!(out.contains("  ZADD leaderboard:w GT 1 a\n"), "{out}");
    assert!(
        out.contains("  ZREMRANGEBYRANK leaderboard:w 0 -101\n"),
        "{out}"
    );
    assert!(
        !out.contains("Rank(") && !out.contains("rev="),
        "no Rust debug text: {out}"
    );
}

#[test]
fn plugin_new_scaffolds_a_crate_that_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scores");
    let (ok, out) = sluice(&["plugin", "new", "scores", "--path", path.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(
        path.join("Cargo.toml").is_file() && path.join("src/lib.rs").is_file(),
        "{out}"
    );
    // A crate of its own: the guide's commands for one, in order.
    let next = format!("cd {} && cargo test", path.display());
    assert!(out.contains(&next), "{out}");
    assert!(out.contains("sluice plugin check"), "{out}");
    let (ok, out) = sluice(&["plugin", "new", "scores", "--path", path.to_str().unwrap()]);
    assert!(!ok, "a second run must not overwrite: {out}");
    // In this repository's workspace, a name another crate has is refused
    // before anything is written (two packages of one name break the build).
    let taken = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/misbehave");
    let (ok, out) = sluice(&[
        "plugin",
        "new",
        "misbehave",
        "--path",
        taken.to_str().unwrap(),
    ]);
    assert!(
        !ok && out.contains("already has a crate named `misbehave`"),
        "{out}"
    );
    assert!(!taken.exists());
    let (ok, _) = sluice(&[
        "plugin",
        "new",
        "Bad Name",
        "--path",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!ok);
}

/// What `sluice plugin new` writes builds and passes its own test as
/// generated (outside this workspace: a standalone crate on the SDK by path).
#[test]
fn a_scaffolded_policy_builds_and_passes_its_test() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("high-scores");
    let (ok, out) = sluice(&[
        "plugin",
        "new",
        "high-scores",
        "--path",
        path.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let test = Command::new(cargo)
        .args(["test", "--offline", "--quiet", "--manifest-path"])
        .arg(path.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(test.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}

/// `plugin new --lang python|typescript` outside this repository: the
/// commands it prints (test, build, check), run as printed in one shell
/// with this `sluice` on the PATH, pass: the generated test passes, the
/// component builds and the gateway loads it and plans with it.
#[test]
fn scaffolded_python_and_typescript_policies_pass_the_commands_they_print() {
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_sluice")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // How pytest and node's runner say that the one generated test passed.
    for (name, lang, passed) in [
        ("tally-py", "python", "1 passed"),
        ("tally-ts", "typescript", "# pass 1\n"),
    ] {
        let project = dir.path().join(name);
        let (ok, out) = sluice(&[
            "plugin",
            "new",
            name,
            "--lang",
            lang,
            "--path",
            project.to_str().unwrap(),
        ]);
        assert!(ok, "{out}");
        let next: Vec<&str> = (out.lines())
            .skip_while(|l| !l.starts_with("next"))
            .skip(1)
            .map(str::trim)
            .collect();
        assert_eq!(next.len(), 3, "{out}");
        let run = Command::new("sh")
            .arg("-c")
            .arg(next.join(" && "))
            .env("PATH", &path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(run.status.success(), "{lang}: {next:?}\n{text}");
        assert!(text.contains(passed), "{lang}: the test ran: {text}");
        assert!(
            text.contains(&format!("configure for domain \"{name}\": ok"))
                && text.contains(&format!("GET {name}:"))
                && !text.contains("FAILED"),
            "{lang}: {text}"
        );
    }
}

/// A second gateway started on the address a gateway serves refuses to
/// start and names the first: with `SO_REUSEPORT` alone both would bind
/// and the kernel would split the clients between them.
#[test]
fn a_second_gateway_on_a_served_address_refuses_to_start_naming_the_first() {
    let redis = support::Redis::start();
    let first = support::Gateway::start(&support::config(&redis, ""));
    let addr = first.url("").trim_start_matches("http://").to_owned();
    let mut second = Command::new(env!("CARGO_BIN_EXE_sluice"));
    second
        .args(["serve", "--config"])
        .arg(first.config_path())
        .args(["--listen", &addr])
        .env("RUST_LOG", "warn");
    let (ok, stdout, stderr) = support::run_within(second, support::STARTUP);
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("another process already listens on {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("pid {}", first.pid())), "{stderr}");
    // The first gateway still serves.
    let health = std::net::TcpStream::connect(&addr);
    assert!(health.is_ok());
}
