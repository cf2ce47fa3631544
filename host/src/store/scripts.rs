//! Registered Lua scripts: hashed once, loaded with `SCRIPT LOAD` on every new
//! connection, called with `EVALSHA` only — also inside pipelines, where the
//! store recovers from `NOSCRIPT` (after `SCRIPT FLUSH`, a restart or a
//! failover) by loading and retrying the failed calls once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The token bucket behind `/v1/ratelimit`.
pub const RATE_LIMIT: &str = "ratelimit";
/// A trivial script: readiness asks Redis to run it.
pub const READY: &str = "ready";

/// Counters' add (`counter-add`, `plan/counter.rs`). Its name holds a `/`,
/// which no script file's name can: an operator's scripts never clash with it.
pub const COUNTER_ADD: &str = "sluice/counter-add";
/// Streams' add (`stream-add`, `plan/stream.rs`), named like [`COUNTER_ADD`].
pub const STREAM_ADD: &str = "sluice/stream-add";

const BUILTIN: [(&str, &str); 2] = [
    (RATE_LIMIT, include_str!("ratelimit.lua")),
    (READY, "return 1"),
];

/// Scripts only the host calls, for actions it runs as one script: loaded
/// and recovered like every other, but no plan may call them by name (a
/// call would pass the action's checks, its TTL's bounds among them).
const OWN: [(&str, &str); 2] = [
    (COUNTER_ADD, include_str!("plan/counter.lua")),
    (STREAM_ADD, include_str!("plan/stream.lua")),
];

/// One script: its name, source and SHA1.
#[derive(Debug)]
pub struct Script {
    pub name: String,
    pub source: String,
    pub sha: String,
    /// The argument (0-based) that is a TTL in ms, declared in the script
    /// by a line `-- sluice: ttl-ms ARGV[n]`: the host holds it to the
    /// calling domain's TTL bounds, as every other TTL.
    pub ttl_arg: Option<usize>,
    /// The host's own ([`OWN`]): no plan may call it by name.
    pub own: bool,
}

/// `-- sluice: ttl-ms ARGV[n]` → `n - 1`.
fn declared_ttl_arg(source: &str) -> Option<usize> {
    source.lines().find_map(|line| {
        let rest = line
            .trim()
            .strip_prefix("--")?
            .trim()
            .strip_prefix("sluice:")?;
        let n = rest.trim().strip_prefix("ttl-ms")?.trim();
        let n: usize = n.strip_prefix("ARGV[")?.strip_suffix(']')?.parse().ok()?;
        n.checked_sub(1)
    })
}

/// Every script the gateway may run, by name.
#[derive(Debug, Default)]
pub struct Scripts {
    by_name: HashMap<String, Arc<Script>>,
}

impl Scripts {
    /// The built-in scripts plus every `NAME.lua` in `dir` (if given), read
    /// in name order. A file cannot replace a built-in script (the gateway's
    /// own routes depend on them); an error names the file.
    pub fn load(dir: Option<&Path>) -> std::io::Result<Scripts> {
        let mut scripts = Scripts::default();
        for (name, source) in BUILTIN {
            scripts.add(name, source.to_owned(), false);
        }
        for (name, source) in OWN {
            scripts.add(name, source.to_owned(), true);
        }
        if let Some(dir) = dir {
            let named = |path: &Path, e: std::io::Error| {
                std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
            };
            let mut entries: Vec<_> = std::fs::read_dir(dir)
                .and_then(|d| d.collect::<Result<_, _>>())
                .map_err(|e| named(dir, e))?;
            entries.sort_by_key(|e| e.path());
            for entry in entries {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "lua")
                    && let Some(name) = path.file_stem().and_then(|s| s.to_str())
                {
                    if BUILTIN.iter().any(|(builtin, _)| *builtin == name) {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            format!("{}: {name:?} is a built-in script", path.display()),
                        ));
                    }
                    let source = std::fs::read_to_string(&path).map_err(|e| named(&path, e))?;
                    scripts.add(name, source, false);
                }
            }
        }
        Ok(scripts)
    }

    fn add(&mut self, name: &str, source: String, own: bool) {
        let sha = redis::Script::new(&source).get_hash().to_owned();
        self.by_name.insert(
            name.to_owned(),
            Arc::new(Script {
                name: name.to_owned(),
                ttl_arg: declared_ttl_arg(&source),
                source,
                sha,
                own,
            }),
        );
    }

    /// Every script's name, the host's own included.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Any script, the host's own included.
    pub fn get(&self, name: &str) -> Option<&Arc<Script>> {
        self.by_name.get(name)
    }

    /// A script a plan may call by name: registered, and not the host's own.
    pub fn callable(&self, name: &str) -> Option<&Arc<Script>> {
        self.get(name).filter(|s| !s.own)
    }

    pub fn by_sha(&self, sha: &[u8]) -> Option<&Arc<Script>> {
        self.by_name.values().find(|s| s.sha.as_bytes() == sha)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Script>> {
        self.by_name.values()
    }

    /// `SCRIPT LOAD` of every script, as one pipeline.
    pub fn load_all_pipeline(&self) -> redis::Pipeline {
        // Error replies in place, as every pipeline of the store's.
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for s in self.all() {
            pipe.cmd("SCRIPT").arg("LOAD").arg(&s.source).ignore();
        }
        pipe
    }
}

/// `EVALSHA sha numkeys keys... args...`
pub fn evalsha<K: redis::ToRedisArgs, A: redis::ToRedisArgs>(
    script: &Script,
    keys: &[K],
    args: &[A],
) -> redis::Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(&script.sha).arg(keys.len()).arg(keys).arg(args);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        dir
    }

    /// A command's arguments as text.
    fn args(cmd: &redis::Cmd) -> Vec<String> {
        cmd.args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8(b.to_vec()).unwrap(),
                _ => panic!("not a plain argument"),
            })
            .collect()
    }

    fn names(scripts: &Scripts) -> Vec<&str> {
        let mut names: Vec<_> = scripts.all().map(|s| s.name.as_str()).collect();
        names.sort();
        names
    }

    #[test]
    fn the_built_ins_are_there_with_their_sha1() {
        let scripts = Scripts::load(None).unwrap();
        assert_eq!(
            names(&scripts),
            [RATE_LIMIT, READY, COUNTER_ADD, STREAM_ADD]
        );
        for (name, source) in BUILTIN.into_iter().chain(OWN) {
            let s = scripts.get(name).unwrap();
            assert_eq!((s.name.as_str(), s.source.as_str()), (name, source));
            assert_eq!(s.sha, redis::Script::new(source).get_hash());
        }
        // SHA1("return 1"), as Redis's SCRIPT LOAD answers it.
        assert_eq!(
            scripts.get(READY).unwrap().sha,
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
        assert!(scripts.get("incr_capped").is_none());
    }

    #[test]
    fn lua_files_in_the_folder_are_added_by_name_and_others_ignored() {
        let dir = folder(&[
            ("b.lua", b"return 2"),
            ("a.lua", b"return 'a'"),
            ("notes.txt", b"return 3"),
            ("c.lua.bak", b"return 4"),
            ("README", b"x"),
        ]);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let scripts = Scripts::load(Some(dir.path())).unwrap();
        assert_eq!(
            names(&scripts),
            ["a", "b", RATE_LIMIT, READY, COUNTER_ADD, STREAM_ADD]
        );
        let b = scripts.get("b").unwrap();
        assert_eq!(b.source, "return 2");
        assert_eq!(b.sha, redis::Script::new("return 2").get_hash());
        assert!(scripts.get("notes").is_none() && scripts.get("c.lua").is_none());
    }

    #[test]
    fn files_are_read_in_name_order_and_an_error_names_the_file() {
        // Two unreadable (not UTF-8) files: the first by name is reported.
        let dir = folder(&[
            ("z.lua", b"\xff"),
            ("m.lua", b"\xfe"),
            ("a.lua", b"return 1"),
        ]);
        let e = Scripts::load(Some(dir.path())).unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains("m.lua"), "{shown}");
        assert!(!shown.contains("z.lua"), "{shown}");
        let e = Scripts::load(Some(&dir.path().join("absent"))).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(e.to_string().contains("absent"), "{e}");
    }

    #[test]
    fn a_file_cannot_replace_a_built_in() {
        let dir = folder(&[("ratelimit.lua", b"return 0")]);
        let e = Scripts::load(Some(dir.path())).unwrap_err();
        assert!(e.to_string().contains("ratelimit.lua"), "{e}");
        assert!(e.to_string().contains("built-in"), "{e}");
    }

    #[test]
    fn by_sha_finds_a_script_by_its_hash() {
        let dir = folder(&[("mine.lua", b"return redis.call('GET', KEYS[1])")]);
        let scripts = Scripts::load(Some(dir.path())).unwrap();
        let mine = scripts.get("mine").unwrap();
        assert_eq!(scripts.by_sha(mine.sha.as_bytes()).unwrap().name, "mine");
        let ready = redis::Script::new("return 1").get_hash().to_owned();
        assert_eq!(scripts.by_sha(ready.as_bytes()).unwrap().name, READY);
        assert!(
            scripts
                .by_sha(b"0000000000000000000000000000000000000000")
                .is_none()
        );
        assert!(scripts.by_sha(b"").is_none());
    }

    #[test]
    fn evalsha_sends_the_hash_the_key_count_keys_and_args() {
        let scripts = Scripts::load(None).unwrap();
        let s = scripts.get(RATE_LIMIT).unwrap();
        let cmd = evalsha(s, &["ratelimit:g:u"], &[10, 5]);
        assert_eq!(
            args(&cmd),
            ["EVALSHA", &s.sha, "1", "ratelimit:g:u", "10", "5"]
        );
    }

    #[test]
    fn load_all_loads_every_script_once() {
        let dir = folder(&[("x.lua", b"return 'x'")]);
        let scripts = Scripts::load(Some(dir.path())).unwrap();
        let pipe = scripts.load_all_pipeline();
        let mut loaded: Vec<String> = pipe
            .cmd_iter()
            .map(|c| {
                let args = args(c);
                assert_eq!(&args[..2], ["SCRIPT", "LOAD"]);
                args[2].clone()
            })
            .collect();
        loaded.sort();
        let mut sources: Vec<String> = scripts.all().map(|s| s.source.clone()).collect();
        sources.sort();
        assert_eq!(loaded, sources);
        assert_eq!(loaded.len(), 5, "the host's own scripts too");
    }

    #[test]
    fn the_hosts_own_scripts_are_loaded_but_not_callable_by_name() {
        let scripts = Scripts::load(None).unwrap();
        let counter = scripts.get(COUNTER_ADD).unwrap();
        assert!(counter.own);
        assert!(scripts.callable(COUNTER_ADD).is_none());
        assert_eq!(
            scripts.by_sha(counter.sha.as_bytes()).unwrap().name,
            COUNTER_ADD
        );
        for name in [RATE_LIMIT, READY] {
            assert!(scripts.callable(name).is_some(), "{name}");
        }
        // No file can take its name: a name with a `/` is no file's stem.
        assert!(COUNTER_ADD.contains('/'));
    }

    #[test]
    fn a_script_declares_which_argument_is_its_ttl() {
        assert_eq!(
            declared_ttl_arg("-- sluice: ttl-ms ARGV[3]\nreturn 1"),
            Some(2)
        );
        assert_eq!(declared_ttl_arg("return 1"), None);
        assert_eq!(
            declared_ttl_arg("-- sluice: ttl-ms ARGV[0]"),
            None,
            "ARGV is 1-based"
        );
        assert_eq!(declared_ttl_arg("-- sluice: ttl-ms 3"), None);
    }
}
