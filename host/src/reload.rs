//! Hot reload: the live generation of the gateway, and the one path every
//! trigger goes through — the file watcher (plugins folder and config file),
//! `SIGHUP` and `POST /admin/reload`.
//!
//! A reload reads and checks the config, compiles and instantiates every
//! changed plugin and runs its self-check, then swaps the new generation in
//! atomically. Requests in flight finish on the generation they started with.
//! A reload that finds the config file's text and every plugin file (by
//! SHA-256) as the live generation was built from is a no-op: no rebuild,
//! no swap, nothing counted, logged at debug level only.
//! Anything that fails refuses the whole reload: the old generation keeps
//! serving, and the error is logged, counted and shown in `/admin/plugins`.
//! Settings that need a restart (the listen address, the Redis connection)
//! are reported and left as they were, never half-applied.

use crate::config::{Config, ConfigError};
use crate::generation::Gateway;
use crate::plugin::{self, Runtime};
use crate::secret::Secret;
use crate::telemetry::METRICS;
use arc_swap::ArcSwap;
use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Events closer together than this are one change (editors write, rename
/// and chmod in quick succession).
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Reloads the status page lists.
const HISTORY: usize = 10;

/// The gateway as it serves now, and how to make the next generation.
pub struct Live {
    current: ArcSwap<Gateway>,
    runtime: Runtime,
    config_path: PathBuf,
    /// One reload at a time; triggers arriving meanwhile wait their turn.
    reloading: tokio::sync::Mutex<()>,
    /// The config file's text the live generation was built from (its
    /// plugins' SHA-256 are in the generation); `None` when not known, and
    /// the next reload rebuilds.
    built_from: Mutex<Option<String>>,
    /// The last [`HISTORY`] reloads, oldest first (`/admin/plugins` shows
    /// the newest, the status page all of them).
    history: Mutex<std::collections::VecDeque<ReloadStatus>>,
    /// Bearer token for `/admin/*` (`SLUICE_ADMIN_TOKEN`); none disables it.
    pub admin_token: Option<Secret>,
}

/// What the last reload did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    /// Seconds since the Unix epoch.
    pub at: Option<u64>,
    /// What asked for it: `file change`, `SIGHUP` or `admin`.
    pub trigger: String,
    /// The files on disk are what serves: a new generation went live, or
    /// nothing had changed (`unchanged`).
    pub applied: bool,
    /// The config text and every plugin file were those of the live
    /// generation: nothing was rebuilt or swapped.
    pub unchanged: bool,
    pub error: Option<String>,
    /// Changed settings that only a restart applies.
    pub needs_restart: Vec<String>,
}

impl Live {
    pub fn new(
        gateway: Gateway,
        runtime: Runtime,
        config_path: PathBuf,
        admin_token: Option<Secret>,
    ) -> Arc<Live> {
        expiry_metric(&gateway);
        Arc::new(Live {
            built_from: Mutex::new(config_text_of(&config_path, &gateway)),
            current: ArcSwap::from_pointee(gateway),
            runtime,
            config_path,
            reloading: tokio::sync::Mutex::new(()),
            history: Mutex::new(std::collections::VecDeque::with_capacity(HISTORY)),
            admin_token,
        })
    }

    /// What the last reload did (all `None`/empty before the first).
    pub fn last_reload(&self) -> ReloadStatus {
        lock(&self.history).back().cloned().unwrap_or_default()
    }

    /// The last reloads, newest first.
    pub fn reloads(&self) -> Vec<ReloadStatus> {
        lock(&self.history).iter().rev().cloned().collect()
    }

    /// The generation a new request works with.
    pub fn current(&self) -> Arc<Gateway> {
        self.current.load_full()
    }

    /// Reload config and plugins; the old generation stays on any failure,
    /// and stays without a word when nothing changed.
    pub async fn reload(self: &Arc<Self>, why: &str) -> ReloadStatus {
        let _one = self.reloading.lock().await;
        let this = self.clone();
        // Compiling plugins takes milliseconds of CPU: not on a worker thread.
        let outcome = tokio::task::spawn_blocking(move || this.build_next())
            .await
            .unwrap_or_else(|e| Err(format!("reload task failed: {e}")));
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let status = match outcome {
            Ok(Next::Unchanged { needs_restart }) => {
                tracing::debug!(
                    event = "reload",
                    trigger = why,
                    outcome = "unchanged",
                    "reload: nothing changed"
                );
                ReloadStatus {
                    at: Some(now),
                    trigger: why.to_owned(),
                    applied: true,
                    unchanged: true,
                    error: None,
                    needs_restart,
                }
            }
            Ok(Next::Built {
                gateway,
                needs_restart,
                config_text,
            }) => {
                expiry_metric(&gateway);
                self.current.store(gateway);
                *lock(&self.built_from) = Some(config_text);
                METRICS.plugin_reloads.with_label_values(&["applied"]).inc();
                tracing::info!(
                    event = "reload",
                    trigger = why,
                    outcome = "applied",
                    ?needs_restart,
                    "reloaded"
                );
                ReloadStatus {
                    at: Some(now),
                    trigger: why.to_owned(),
                    applied: true,
                    unchanged: false,
                    error: None,
                    needs_restart,
                }
            }
            Err(error) => {
                METRICS.plugin_reloads.with_label_values(&["refused"]).inc();
                tracing::error!(
                    event = "reload",
                    trigger = why,
                    outcome = "refused",
                    %error,
                    "reload refused; the previous configuration keeps serving"
                );
                ReloadStatus {
                    at: Some(now),
                    trigger: why.to_owned(),
                    applied: false,
                    unchanged: false,
                    error: Some(error),
                    needs_restart: Vec::new(),
                }
            }
        };
        let mut history = lock(&self.history);
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(status.clone());
        drop(history);
        status
    }

    fn build_next(&self) -> Result<Next, String> {
        // The text is read once: what is compared is what is parsed.
        let text = std::fs::read_to_string(&self.config_path).map_err(|source| {
            ConfigError::Read {
                path: self.config_path.clone(),
                source,
            }
            .to_string()
        })?;
        let config = Config::parse(&text, &self.config_path).map_err(|e| e.to_string())?;
        let old = self.current();
        let needs_restart = needs_restart(old.config(), &config);
        if self.unchanged(&text, &old) {
            return Ok(Next::Unchanged { needs_restart });
        }
        // What needs a restart keeps its old value in the new generation.
        let mut config = config;
        config.server.listen = old.config().server.listen;
        config.server.http2 = old.config().server.http2.clone();
        if config.server.tls.is_some() != old.config().server.tls.is_some() {
            config.server.tls = old.config().server.tls.clone();
        }
        config.redis = old.config().redis.clone();
        config.scripts = old.config().scripts.clone();
        let gateway = old.next(config, &self.runtime).map_err(|e| e.to_string())?;
        Ok(Next::Built {
            gateway: Arc::new(gateway),
            needs_restart,
            config_text: text,
        })
    }

    /// Whether `text` is the config text `live` was built from and every
    /// plugin file it loaded still has the SHA-256 it was compiled from.
    /// (Nothing else is read by a reload: the scripts need a restart.)
    fn unchanged(&self, text: &str, live: &Gateway) -> bool {
        if lock(&self.built_from).as_deref() != Some(text) {
            return false;
        }
        // The TLS files are read anew when their bytes changed.
        if let Some(tls) = &live.config().server.tls {
            let loaded = tls.door.as_ref().map(|d| d.digest);
            if loaded.is_none() || tls.files().digest() != loaded {
                return false;
            }
        }
        // The same text names the same plugins; each file once.
        let loaded: BTreeMap<&str, &str> = live
            .domains()
            .map(|d| {
                let c = d.plugin.compiled();
                (&*c.name, c.sha256.as_str())
            })
            .collect();
        loaded.into_iter().all(|(name, sha)| {
            plugin::file_sha256(&live.config().plugin_path(name)).as_deref() == Some(sha)
        })
    }

    /// Reload on `SIGHUP`, forever.
    pub fn spawn_sighup(self: &Arc<Self>) {
        use tokio::signal::unix::{SignalKind, signal};
        let live = self.clone();
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        live.reload("SIGHUP").await;
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch SIGHUP"),
        }
    }

    /// Watch the config file and the plugins folder; reload, debounced, when
    /// either changes. The folders are watched, not the files: an editor's
    /// rename-and-replace or a symlink swap replaces the file itself, and a
    /// Kubernetes volume swaps its `..data` link ([`swapped_volume`]). Only
    /// events that can change what a reload reads count ([`is_change`]):
    /// a reload reads every plugin file, so reacting to reads would reload
    /// forever.
    pub fn spawn_watcher(self: &Arc<Self>) -> notify::Result<()> {
        let config_file = absolute(&self.config_path);
        let config_dir = config_file.parent().map(Path::to_owned).unwrap_or_default();
        let plugins_dir = absolute(&self.current().config().plugin_path("x"))
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        // The TLS files, where they are now (a new path: at restart).
        let tls_files: Vec<PathBuf> = self
            .current()
            .config()
            .server
            .tls
            .iter()
            .flat_map(|t| {
                [
                    Some(&t.cert_file),
                    Some(&t.key_file),
                    t.client_ca_file.as_ref(),
                ]
            })
            .flatten()
            .map(|p| absolute(p))
            .collect();
        let mut dirs = vec![config_dir, plugins_dir.clone()];
        dirs.extend(
            tls_files
                .iter()
                .filter_map(|f| f.parent().map(Path::to_owned)),
        );
        dirs.sort();
        dirs.dedup();
        let relevant = {
            let (config_file, watched) = (config_file.clone(), dirs.clone());
            let tls_files = tls_files.clone();
            move |p: &Path| {
                p == config_file
                    || tls_files.iter().any(|f| f == p)
                    || (p.parent() == Some(&plugins_dir)
                        && p.extension().is_some_and(|e| e == "wasm"))
                    || swapped_volume(p, &watched)
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                // Events were lost (the kernel's queue overflowed): look.
                let missed = event.need_rescan();
                if missed || (is_change(&event.kind) && event.paths.iter().any(|p| relevant(p))) {
                    let _ = tx.send(());
                }
            })?;
        for dir in &dirs {
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
        }
        let live = self.clone();
        tokio::spawn(async move {
            let _watcher = watcher; // lives as long as the task
            while rx.recv().await.is_some() {
                // Let the burst of events of one change settle.
                while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                live.reload("file change").await;
            }
        });
        Ok(())
    }
}

/// What [`Live::build_next`] found.
enum Next {
    /// The inputs are byte for byte those of the live generation.
    Unchanged { needs_restart: Vec<String> },
    Built {
        gateway: Arc<Gateway>,
        needs_restart: Vec<String>,
        /// The config text `gateway` was built from.
        config_text: String,
    },
}

/// When the certificate `gateway` serves HTTPS with expires, for the alert
/// that warns before it does.
fn expiry_metric(gateway: &Gateway) {
    let door = gateway
        .config()
        .server
        .tls
        .as_ref()
        .and_then(|t| t.door.as_ref());
    METRICS
        .tls_certificate_expiry
        .set(door.map_or(0, |d| d.not_after));
}

/// The settings of `new` that a reload cannot apply, as they differ from `old`.
fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    let mut needs_restart = Vec::new();
    if new.server.listen != old.server.listen {
        needs_restart.push(format!(
            "server.listen ({} → {})",
            old.server.listen, new.server.listen
        ));
    }
    let (a, b) = (&old.redis, &new.redis);
    if a.url != b.url
        || a.tls != b.tls
        || a.pool_size != b.pool_size
        || a.shared_connections != b.shared_connections
    {
        needs_restart.push("redis.url / tls / pool_size / shared_connections".into());
    }
    if old.server.tls.is_some() != new.server.tls.is_some() {
        needs_restart.push("server.tls (HTTPS on or off; its files reload live)".into());
    }
    if old.server.http2 != new.server.http2 {
        needs_restart.push("server.http2".into());
    }
    if old.tracing != new.tracing {
        needs_restart.push("tracing (the span exporter starts with the process)".into());
    }
    if old.scripts.dir != new.scripts.dir {
        needs_restart.push("scripts.dir".into());
    }
    if old.plugins.dir != new.plugins.dir || old.plugins.watch != new.plugins.watch {
        // Plugins load from the new folder now; the watcher follows at restart.
        needs_restart.push("plugins.dir / plugins.watch (the file watcher)".into());
    }
    needs_restart
}

/// Whether a file event may mean new bytes: created, written (modified or
/// closed after writing), renamed to or from, removed, or its permissions
/// or owner changed (whether the gateway can read it). Opening, reading or
/// closing after reading, and time stamps, change nothing. (Linux reports
/// every metadata change, `touch` included, as one kind; the no-op check of
/// a reload keeps those silent.)
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::AccessTime | MetadataKind::WriteTime | MetadataKind::Extended,
        )) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        // Not knowing what happened, look: a reload of nothing new is a no-op.
        EventKind::Any | EventKind::Other => true,
    }
}

/// Whether `p` is the `..data` link of a watched folder: Kubernetes updates
/// a ConfigMap or Secret volume by writing a new timestamped folder and
/// renaming a `..data` symlink to it, and every file of the volume is a
/// link through `..data` — the files themselves never change, so only this
/// rename says that they did (the kubelet's atomic writer).
fn swapped_volume(p: &Path, watched: &[PathBuf]) -> bool {
    p.file_name().is_some_and(|n| n == "..data")
        && p.parent().is_some_and(|d| watched.iter().any(|w| w == d))
}

/// The config file's text, if it is the one `gateway` was built from (it
/// may have changed while the first generation loaded).
fn config_text_of(path: &Path, gateway: &Gateway) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut config = Config::parse(&text, path).ok()?;
    // `serve --listen` overrides the file's address.
    config.server.listen = gateway.config().server.listen;
    let same =
        serde_json::to_value(&config).ok()? == serde_json::to_value(gateway.config()).ok()?;
    same.then_some(text)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn absolute(p: &Path) -> PathBuf {
    let p = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    // Resolve `..` so paths from the watcher compare equal.
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind, RenameMode};

    #[test]
    fn a_change_of_tracing_needs_a_restart() {
        let parse = |extra: &str| {
            let text = format!("[plugins]\ndir = \"p\"\n{extra}");
            Config::parse(&text, Path::new("conf/sluice.toml")).unwrap()
        };
        let off = parse("");
        let on = parse("[tracing]\notlp_endpoint = \"http://127.0.0.1:4318\"\n");
        let rarer =
            parse("[tracing]\notlp_endpoint = \"http://127.0.0.1:4318\"\nsample_ratio = 0.5\n");
        assert!(needs_restart(&off, &off).is_empty());
        for (a, b) in [(&off, &on), (&on, &off), (&on, &rarer)] {
            let said = needs_restart(a, b);
            assert!(said.iter().any(|s| s.starts_with("tracing")), "{said:?}");
        }
    }

    #[test]
    fn a_kubernetes_volume_swap_counts_in_a_watched_folder_only() {
        let watched = [PathBuf::from("/etc/sluice"), PathBuf::from("/plugins")];
        assert!(swapped_volume(Path::new("/etc/sluice/..data"), &watched));
        assert!(swapped_volume(Path::new("/plugins/..data"), &watched));
        assert!(!swapped_volume(
            Path::new("/etc/sluice/..data_tmp"),
            &watched
        ));
        assert!(!swapped_volume(
            Path::new("/etc/sluice/..2026_12_02_20_10_00.1"),
            &watched
        ));
        assert!(!swapped_volume(Path::new("/elsewhere/..data"), &watched));
    }

    #[test]
    fn only_events_that_can_change_bytes_trigger_a_reload() {
        let reads = [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Any),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::WriteTime)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Extended)),
        ];
        for kind in &reads {
            assert!(!is_change(kind), "{kind:?} changes nothing");
        }
        let changes = [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            EventKind::Remove(RemoveKind::File),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Permissions)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
        ];
        for kind in &changes {
            assert!(is_change(kind), "{kind:?} may change what a reload reads");
        }
    }
}
