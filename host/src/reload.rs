//! Hot reload: the live generation of the gateway, and the one path every
//! trigger goes through — the file watcher (plugins folder and config file),
//! `SIGHUP` and `POST /admin/reload`.
//!
//! A reload reads and checks the config, compiles and instantiates every
//! changed plugin and runs its self-check, then swaps the new generation in
//! atomically. Requests in flight finish on the generation they started with.
//! Anything that fails refuses the whole reload: the old generation keeps
//! serving, and the error is logged, counted and shown in `/admin/plugins`.
//! Settings that need a restart (the listen address, the Redis connection)
//! are reported and left as they were, never half-applied.

use crate::config::Config;
use crate::generation::Gateway;
use crate::plugin::Runtime;
use crate::telemetry::METRICS;
use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Events closer together than this are one change (editors write, rename
/// and chmod in quick succession).
const DEBOUNCE: Duration = Duration::from_millis(150);

/// The gateway as it serves now, and how to make the next generation.
pub struct Live {
    current: ArcSwap<Gateway>,
    runtime: Runtime,
    config_path: PathBuf,
    /// One reload at a time; triggers arriving meanwhile wait their turn.
    reloading: tokio::sync::Mutex<()>,
    pub status: Mutex<ReloadStatus>,
    /// Bearer token for `/admin/*` (`SLUICE_ADMIN_TOKEN`); none disables it.
    pub admin_token: Option<String>,
}

/// What the last reload did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    /// Seconds since the Unix epoch.
    pub at: Option<u64>,
    pub applied: bool,
    pub error: Option<String>,
    /// Changed settings that only a restart applies.
    pub needs_restart: Vec<String>,
}

impl Live {
    pub fn new(
        gateway: Gateway,
        runtime: Runtime,
        config_path: PathBuf,
        admin_token: Option<String>,
    ) -> Arc<Live> {
        Arc::new(Live {
            current: ArcSwap::from_pointee(gateway),
            runtime,
            config_path,
            reloading: tokio::sync::Mutex::new(()),
            status: Mutex::new(ReloadStatus::default()),
            admin_token,
        })
    }

    /// The generation a new request works with.
    pub fn current(&self) -> Arc<Gateway> {
        self.current.load_full()
    }

    /// Reload config and plugins; the old generation stays on any failure.
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
            Ok((next, needs_restart)) => {
                self.current.store(Arc::new(next));
                METRICS.plugin_reloads.with_label_values(&["applied"]).inc();
                tracing::info!(trigger = why, ?needs_restart, "reloaded");
                ReloadStatus {
                    at: Some(now),
                    applied: true,
                    error: None,
                    needs_restart,
                }
            }
            Err(error) => {
                METRICS.plugin_reloads.with_label_values(&["refused"]).inc();
                tracing::error!(trigger = why, %error, "reload refused; the previous configuration keeps serving");
                ReloadStatus {
                    at: Some(now),
                    applied: false,
                    error: Some(error),
                    needs_restart: Vec::new(),
                }
            }
        };
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = status.clone();
        status
    }

    fn build_next(&self) -> Result<(Gateway, Vec<String>), String> {
        let config = Config::load(&self.config_path).map_err(|e| e.to_string())?;
        let old = self.current();
        let mut needs_restart = Vec::new();
        if config.server.listen != old.config().server.listen {
            needs_restart.push(format!(
                "server.listen ({} → {})",
                old.config().server.listen,
                config.server.listen
            ));
        }
        let (a, b) = (&old.config().redis, &config.redis);
        if a.url != b.url
            || a.pool_size != b.pool_size
            || a.shared_connections != b.shared_connections
        {
            needs_restart.push("redis.url / pool_size / shared_connections".into());
        }
        if old.config().scripts.dir != config.scripts.dir {
            needs_restart.push("scripts.dir".into());
        }
        if old.config().plugins.dir != config.plugins.dir
            || old.config().plugins.watch != config.plugins.watch
        {
            // Plugins load from the new folder now; the watcher follows at restart.
            needs_restart.push("plugins.dir / plugins.watch (the file watcher)".into());
        }
        // What needs a restart keeps its old value in the new generation.
        let mut config = config;
        config.server.listen = old.config().server.listen;
        config.redis = old.config().redis.clone();
        config.scripts = old.config().scripts.clone();
        let next = old.next(config, &self.runtime).map_err(|e| e.to_string())?;
        Ok((next, needs_restart))
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
    /// rename-and-replace or a symlink swap replaces the file itself.
    pub fn spawn_watcher(self: &Arc<Self>) -> notify::Result<()> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    for path in event.paths {
                        let _ = tx.send(path);
                    }
                }
            })?;
        let config_file = absolute(&self.config_path);
        let config_dir = config_file.parent().map(Path::to_owned).unwrap_or_default();
        let plugins_dir = absolute(&self.current().config().plugin_path("x"))
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        watcher.watch(&config_dir, RecursiveMode::NonRecursive)?;
        if plugins_dir != config_dir {
            watcher.watch(&plugins_dir, RecursiveMode::NonRecursive)?;
        }
        let live = self.clone();
        tokio::spawn(async move {
            let _watcher = watcher; // lives as long as the task
            let relevant = |p: &Path| {
                p == config_file
                    || (p.parent() == Some(&plugins_dir)
                        && p.extension().is_some_and(|e| e == "wasm"))
            };
            while let Some(path) = rx.recv().await {
                if !relevant(&path) {
                    continue;
                }
                // Let the burst of events of one change settle.
                while let Ok(Some(_)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                live.reload("file change").await;
            }
        });
        Ok(())
    }
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
