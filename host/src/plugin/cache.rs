//! Compiled components on disk (`plugins.cache_dir`), so a start or a
//! reload does not compile a plugin it compiled before. A Rust policy
//! compiles in a quarter of a second, but a Python or TypeScript one carries
//! its language's runtime: 13–19 MB of wasm, 8–12 s of CPU and +300 MiB of
//! peak memory to compile, against tens of milliseconds to load the native
//! code back.
//!
//! Loading native code is trusting it as much as the gateway's binary, so an
//! entry is used only from a folder and a file that this user owns and
//! nobody else can write; anything else is compiled afresh. An entry is
//! named by the plugin file's SHA-256 and the engine's compatibility hash (a
//! new wasmtime or other settings miss, never misload), written whole under a
//! temporary name and renamed, and the folder keeps the [`MAX_ENTRIES`] used
//! last: each new version of a plugin adds an entry, old ones go.

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Entries kept: a few versions of each plugin of a large config.
pub const MAX_ENTRIES: usize = 32;

/// The cache folder of one config.
pub struct Cache<'a> {
    dir: &'a Path,
}

impl<'a> Cache<'a> {
    pub fn new(dir: &'a Path) -> Self {
        Cache { dir }
    }

    /// The compiled form of the file whose SHA-256 is `sha256`, if a
    /// trusted entry holds it and this engine can run it.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.entry(engine, sha256);
        if !trusted(self.dir) || !trusted(&path) {
            if path.exists() {
                tracing::warn!(path = %path.display(), "compiled plugin ignored: the folder or file is writable by others or owned by another user");
            }
            return None;
        }
        // SAFETY: the entry was written by `store` (a component this engine
        // compiled) into a folder only this user can write, and wasmtime
        // checks that its engine settings match before running it.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                // Its age is its last use: eviction keeps the ones in use.
                let touched = fs::File::options().append(true).open(&path);
                let _ = touched.and_then(|f| f.set_modified(SystemTime::now()));
                Some(component)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "compiled plugin unusable: compiling afresh");
                None
            }
        }
    }

    /// Keep `component` (compiled from the file `sha256`) for next time.
    /// Best effort: a full disk or a read-only folder costs a compile later.
    pub fn store(&self, engine: &Engine, sha256: &str, component: &Component) {
        let path = self.entry(engine, sha256);
        let written = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(self.dir)
            .and_then(|()| {
                let bytes = component.serialize().map_err(std::io::Error::other)?;
                // Another gateway may share the folder: a name of its own.
                let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
                let write = |mut f: fs::File| std::io::Write::write_all(&mut f, &bytes);
                (fs::File::options().write(true).create_new(true).mode(0o600))
                    .open(&tmp)
                    .and_then(write)
                    .and_then(|()| fs::rename(&tmp, &path))
                    .inspect_err(|_| drop(fs::remove_file(&tmp)))
            });
        match written {
            Ok(()) => self.evict(),
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot keep the compiled plugin")
            }
        }
    }

    fn entry(&self, engine: &Engine, sha256: &str) -> PathBuf {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        self.dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()))
    }

    /// Drop all but the [`MAX_ENTRIES`] used last.
    fn evict(&self) {
        let Ok(entries) = fs::read_dir(self.dir) else {
            return;
        };
        let mut kept: Vec<(SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
            .collect();
        kept.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        for (_, old) in kept.into_iter().skip(MAX_ENTRIES) {
            let _ = fs::remove_file(old);
        }
    }
}

/// Owned by this user and writable by no one else.
fn trusted(path: &Path) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    fs::metadata(path).is_ok_and(|m| m.uid() == me && m.mode() & 0o022 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// `(component)`: the smallest component there is.
    const EMPTY: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn a_stored_component_loads_back_and_a_file_others_can_write_is_not_run() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("cache");
        let cache = Cache::new(&dir);
        assert!(cache.load(&engine, "aa").is_none(), "nothing yet");
        cache.store(&engine, "aa", &Component::new(&engine, EMPTY).unwrap());
        let mode = fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700, "only the gateway's user reads or writes it");
        assert!(cache.load(&engine, "aa").is_some());
        assert!(cache.load(&engine, "bb").is_none(), "another file misses");

        let entry = cache.entry(&engine, "aa");
        fs::set_permissions(&entry, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(cache.load(&engine, "aa").is_none(), "world-writable");
        fs::set_permissions(&entry, fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            cache.load(&engine, "aa").is_none(),
            "in a world-writable folder"
        );
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();

        fs::write(&entry, b"not native code").unwrap();
        assert!(
            cache.load(&engine, "aa").is_none(),
            "garbage is compiled afresh"
        );
    }

    #[test]
    fn the_folder_keeps_only_the_entries_used_last() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let component = Component::new(&engine, EMPTY).unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(3600);
        cache.store(&engine, "first", &component);
        let first = fs::File::options()
            .append(true)
            .open(cache.entry(&engine, "first"));
        first.unwrap().set_modified(old).unwrap();
        for n in 0..MAX_ENTRIES {
            cache.store(&engine, &format!("{n}"), &component);
        }
        let count = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(count, MAX_ENTRIES);
        assert!(!cache.entry(&engine, "first").exists(), "the oldest went");
    }
}
