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

const BUILTIN: [(&str, &str); 2] = [
    (RATE_LIMIT, include_str!("ratelimit.lua")),
    (READY, "return 1"),
];

/// One script: its name, source and SHA1.
#[derive(Debug)]
pub struct Script {
    pub name: String,
    pub source: String,
    pub sha: String,
}

/// Every script the gateway may run, by name.
#[derive(Debug, Default)]
pub struct Scripts {
    by_name: HashMap<String, Arc<Script>>,
}

impl Scripts {
    /// The built-in scripts plus every `NAME.lua` in `dir` (if given).
    pub fn load(dir: Option<&Path>) -> std::io::Result<Scripts> {
        let mut scripts = Scripts::default();
        for (name, source) in BUILTIN {
            scripts.add(name, source.to_owned());
        }
        if let Some(dir) = dir {
            let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
            entries.sort_by_key(|e| e.path());
            for entry in entries {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "lua")
                    && let Some(name) = path.file_stem().and_then(|s| s.to_str())
                {
                    scripts.add(name, std::fs::read_to_string(&path)?);
                }
            }
        }
        Ok(scripts)
    }

    fn add(&mut self, name: &str, source: String) {
        let sha = redis::Script::new(&source).get_hash().to_owned();
        self.by_name.insert(
            name.to_owned(),
            Arc::new(Script {
                name: name.to_owned(),
                source,
                sha,
            }),
        );
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Script>> {
        self.by_name.get(name)
    }

    pub fn by_sha(&self, sha: &[u8]) -> Option<&Arc<Script>> {
        self.by_name.values().find(|s| s.sha.as_bytes() == sha)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Script>> {
        self.by_name.values()
    }

    /// `SCRIPT LOAD` of every script, as one pipeline.
    pub fn load_all_pipeline(&self) -> redis::Pipeline {
        let mut pipe = super::pipeline();
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
