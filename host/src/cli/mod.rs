//! The command line: `sluice serve`, `sluice check-config`, the operator's
//! `sluice hash-key`, and the plugin author's `sluice plugin check` and
//! `sluice plugin new`.

mod plugin;

use crate::config::Config;
use crate::generation::Gateway;
use crate::plugin::Runtime;
use crate::reload::Live;
use crate::telemetry::LogFormat;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "A cache gateway in front of Redis with WebAssembly domain policies"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP with the given configuration.
    Serve {
        /// The configuration file.
        #[arg(long, short, default_value = "config/sluice.toml")]
        config: PathBuf,
        /// Listen here instead of the file's `server.listen` (port 0: any free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// How log lines on stderr look: `text` for people, `json` (one
        /// object a line, fields listed in docs/operations.md) for collectors.
        #[arg(long, env = "SLUICE_LOG_FORMAT", value_enum, default_value_t)]
        log_format: LogFormat,
    },
    /// Check a configuration file, its plugins and their settings; exit 0 when
    /// it would start.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
    },
    /// Read an API key from stdin (one trailing newline dropped) and print
    /// its hex SHA-256, for `key_sha256` in `[clients.NAME]`.
    HashKey,
    /// Work with plugin files.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Load a component as the gateway would, configure it for a domain, and
    /// print the Redis commands it plans for a sample request of each kind,
    /// or a clear error.
    Check {
        /// The `.wasm` component.
        file: PathBuf,
        /// Check it as this domain (its namespace, and its settings when
        /// `--config` has it).
        #[arg(long, default_value = "check")]
        domain: String,
        /// Take the domain's settings and scripts from this configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The sample key.
        #[arg(long, default_value = "sample:1")]
        key: String,
        /// The sample value for PUT and publish, as JSON.
        #[arg(long, default_value = plugin::SAMPLE)]
        value: String,
        /// The domain's default TTL in seconds (over the config's, or the
        /// default 60): try a domain before it is configured.
        #[arg(long)]
        ttl_s: Option<u64>,
        /// The domain's `[settings]`, as TOML (`'keep = 10'`), over the
        /// config's.
        #[arg(long)]
        settings: Option<String>,
    },
    /// Scaffold a policy project (a small policy, one test) in Rust, Python
    /// or TypeScript that builds and passes its test as generated.
    New {
        /// The crate's name: a lowercase letter, then lowercase letters, digits and '-'.
        name: String,
        /// Where to create it (default `plugins/NAME`).
        #[arg(long)]
        path: Option<PathBuf>,
        /// The policy's language: its SDK's template (Python and TypeScript
        /// use the toolchains this repository's `make` installs).
        #[arg(long, value_enum, default_value_t)]
        lang: crate::plugin::scaffold::Lang,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Only a server's logs go to collectors; the other commands talk to a person.
    crate::telemetry::init(match cli.command {
        Command::Serve { log_format, .. } => log_format,
        _ => LogFormat::Text,
    });
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::HashKey => hash_key(),
        Command::Plugin {
            command:
                PluginCommand::Check {
                    file,
                    domain,
                    config,
                    key,
                    value,
                    ttl_s,
                    settings,
                },
        } => {
            let over = plugin::Overrides { ttl_s, settings };
            plugin_check(&file, &domain, config.as_deref(), &over, &key, &value)
        }
        Command::Plugin {
            command: PluginCommand::New { name, path, lang },
        } => {
            let dir = path.unwrap_or_else(|| PathBuf::from("plugins").join(&name));
            report(crate::plugin::scaffold::scaffold(&name, &dir, lang).map(|made| {
                let files: String = (made.files.iter())
                    .map(|f| format!("  {}\n", f.display()))
                    .collect();
                let next: String = made.next.iter().map(|c| format!("  {c}\n")).collect();
                format!(
                    "created {}:\n{files}next (docs/plugin-guide.md: test, build, check):\n{next}",
                    dir.display()
                )
            }))
        }
        Command::Serve { config, listen, .. } => {
            // This thread serves HTTP too (see `server::run`): one
            // current-thread runtime per HTTP thread.
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("sluice: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(config, listen)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sluice: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    let loaded = Config::load(file)
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            crate::generation::check(&config)
                .map(|()| config)
                .map_err(anyhow::Error::from)
        });
    match loaded {
        Ok(config) => {
            if let Some(warning) = redis_user_warning(&config) {
                eprintln!("warning: {warning}");
            }
            if let Some(warning) = cleartext_warning(&config, admin_token_set()) {
                eprintln!("warning: {warning}");
            }
            println!(
                "{}: ok (domains: {})",
                file.display(),
                config
                    .domains
                    .keys()
                    .map(|d| d.get_ref().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `SLUICE_ADMIN_TOKEN` is set (the admin API is on).
fn admin_token_set() -> bool {
    std::env::var("SLUICE_ADMIN_TOKEN").is_ok_and(|t| !t.is_empty())
}

/// A warning when secrets would cross the network in clear: the listener
/// is not loopback, the gateway speaks plain HTTP, and API keys or the
/// admin token are set.
fn cleartext_warning(config: &Config, admin_token: bool) -> Option<String> {
    if config.server.tls.is_some() {
        return None;
    }
    let keys = config.clients.as_ref().is_some_and(|c| !c.is_empty());
    in_clear(config.server.listen, keys, admin_token)
}

/// [`cleartext_warning`] of a listener and what secrets are set.
fn in_clear(listen: SocketAddr, keys: bool, admin_token: bool) -> Option<String> {
    let secrets = match (keys, admin_token) {
        (false, false) => return None,
        (true, false) => "API keys",
        (false, true) => "the admin token",
        (true, true) => "API keys and the admin token",
    };
    (!listen.ip().is_loopback()).then(|| {
        format!(
            "server.listen {listen} is not a loopback address and the gateway speaks plain HTTP: {secrets} would cross the network in clear; set [server.tls], or listen on 127.0.0.1 behind a TLS-terminating proxy"
        )
    })
}

/// When Redis answers within two seconds: a warning if the configured user
/// may run `FLUSHALL`, `CONFIG` or `KEYS`. An unreachable Redis is not a
/// configuration error; the gateway checks again at start.
fn redis_user_warning(config: &Config) -> Option<String> {
    use crate::store::{Store, acl, scripts::Scripts, tracking::Tracking};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async {
        let store = Store::new(
            &config.redis,
            config.breaker.clone(),
            std::sync::Arc::new(Scripts::load(None).ok()?),
            Tracking::none(),
        )
        .ok()?;
        let rights = tokio::time::timeout(Duration::from_secs(2), store.acl_rights())
            .await
            .ok()?
            .ok()?;
        acl::warning(&rights)
    })
}

fn hash_key() -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut input) {
        return report(Err(format!("cannot read stdin: {e}")));
    }
    report(
        crate::auth::key_from_input(&input)
            .map(|key| {
                if key.len() < 16 {
                    eprintln!(
                        "sluice: a key of {} bytes can be guessed; use at least 16 random bytes",
                        key.len()
                    );
                }
                format!("{}\n", crate::auth::hash_key(key.as_bytes()))
            })
            .map_err(str::to_owned),
    )
}

fn plugin_check(
    file: &std::path::Path,
    domain: &str,
    config: Option<&std::path::Path>,
    over: &plugin::Overrides,
    key: &str,
    value: &str,
) -> ExitCode {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin");
    report(plugin::domain_config(name, domain, config, over).and_then(
        |(config, scripts, cache)| {
            let sample = plugin::Sample {
                domain,
                config,
                scripts,
                key,
                value,
                cache,
            };
            plugin::check(file, &sample)
        },
    ))
}

/// A report on stdout (exit 0), or what went wrong on stderr (exit 1).
fn report(outcome: Result<String, String>) -> ExitCode {
    match outcome {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            if !e.ends_with('\n') {
                eprintln!();
            }
            ExitCode::FAILURE
        }
    }
}

async fn serve(config_path: PathBuf, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let mut config = Config::load(&config_path)?;
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    let addr = config.server.listen;
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let watch = config.plugins.watch;
    let threads = match config.server.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // This thread is the first HTTP thread: what it connects at start
    // (lanes for the ACL check, the INFO poller) is its own.
    crate::store::pool::pin_lanes(0, threads);
    if let Some(warning) = cleartext_warning(&config, admin_token_set()) {
        tracing::warn!("{warning}");
    }
    let runtime = Runtime::new().map_err(|e| anyhow::anyhow!("WebAssembly runtime: {e:#}"))?;
    // Read at start only: a reload that changes [tracing] says it needs a restart.
    let dropped = crate::telemetry::METRICS.trace_spans_dropped.clone();
    crate::traces::start(&config.tracing, dropped)
        .map_err(|e| anyhow::anyhow!("cannot start exporting traces: {e:#}"))?;
    let gateway = Gateway::new(config, &runtime)?;
    if gateway.clients().is_open() {
        tracing::warn!(
            "no [clients] table in the config: the data API is open to anyone who can reach it (see docs/configuration.md, API keys)"
        );
    }
    gateway.start_background().await;
    let admin_token = std::env::var("SLUICE_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(crate::secret::Secret::new);

    let live = Live::new(gateway, runtime, config_path.clone(), admin_token);
    live.spawn_sighup();
    if watch {
        live.spawn_watcher()
            .map_err(|e| anyhow::anyhow!("cannot watch the config and plugin folders: {e}"))?;
    }
    let listeners = crate::server::bind(addr, threads)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = match listeners.first() {
        Some(l) => l.local_addr()?,
        None => anyhow::bail!("cannot listen on {addr}: no socket"),
    };
    tracing::info!(addr = %local, threads, config = %config_path.display(), "listening");
    // A stable line on stdout for scripts and tests that start on port 0.
    println!("sluice listening on {scheme}://{local}");
    let _ = std::io::stdout().flush();
    crate::server::run(listeners, live, shutdown_signal()).await;
    // The spans of the last requests, within a deadline (off a runtime
    // thread: sending them waits).
    let _ = tokio::task::spawn_blocking(crate::traces::shutdown).await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_takes_a_log_format_text_by_default() {
        let format = |args: &[&str]| match Cli::try_parse_from(args).map(|c| c.command) {
            Ok(Command::Serve { log_format, .. }) => log_format,
            other => panic!("{other:?}"),
        };
        assert_eq!(format(&["sluice", "serve"]), LogFormat::Text);
        assert_eq!(
            format(&["sluice", "serve", "--log-format", "json"]),
            LogFormat::Json
        );
        assert!(Cli::try_parse_from(["sluice", "serve", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn secrets_over_plain_http_beyond_loopback_are_warned_about() {
        let at = |listen: &str| listen.parse::<SocketAddr>().expect("address");
        let wide = in_clear(at("0.0.0.0:8080"), true, false).expect("warned");
        assert!(
            wide.contains("0.0.0.0:8080")
                && wide.contains("API keys would cross the network in clear"),
            "{wide}"
        );
        let admin = in_clear(at("10.0.0.5:8080"), false, true).expect("warned");
        assert!(admin.contains("the admin token would"), "{admin}");
        // Nothing secret, or loopback only: nothing to say.
        assert_eq!(in_clear(at("0.0.0.0:8080"), false, false), None);
        assert_eq!(in_clear(at("127.0.0.1:8080"), true, true), None);
        assert_eq!(in_clear(at("[::1]:8080"), true, true), None);
    }
}
