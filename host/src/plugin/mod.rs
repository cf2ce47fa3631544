//! Domain policies as WebAssembly components.
//!
//! One [`Runtime`] (engine + linker) per process compiles plugin files off
//! the request path into [`Compiled`] components. Each domain gets its own
//! [`Plugin`]: the compiled component, the domain's sandbox limits and warm
//! instances that are reused (a fresh instance costs tens of µs, a call on a
//! warm one under a µs) and retired after a number of calls or any trap. Each
//! call runs under an epoch deadline and each instance under a memory cap; a
//! trap, a timeout or an invalid plan fails that one request, is counted, and
//! other domains do not notice.

pub mod bindings;
mod cache;
mod epoch;
mod older;
mod sandbox;

pub use sandbox::BUDGET;
pub mod scaffold;

use crate::telemetry::METRICS;
use bindings::{Decision, Domain, Plan, PolicyError, PolicyPre, Request};
use epoch::{Ticker, ticks};
use sandbox::State;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

/// A warm instance is retired after this many calls, so memory a plugin
/// leaks cannot grow without bound.
const MAX_CALLS_PER_INSTANCE: u32 = 100_000;
/// Warm instances kept per domain; more are made under load and dropped after.
const MAX_IDLE_INSTANCES: usize = 64;
/// Instances made when a domain is loaded, off the request path, so the
/// first burst after a (re)load does not instantiate under its deadline.
const PREWARM_INSTANCES: usize = 4;
/// The contract this gateway speaks (`package` in `sdk/wit/policy.wit`).
pub const WORLD: &str = "sluice:policy@0.3.0";

/// Making and configuring an instance is the host's work, not a policy
/// decision: it gets this much time, not the per-call deadline.
const INSTANTIATE_DEADLINE: Duration = Duration::from_secs(1);

/// Why a plugin failed; each maps to one HTTP answer in [`crate::error`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("plugin `{plugin}` refused the request: {message}")]
    Refused { plugin: Arc<str>, message: String },
    #[error("plugin `{plugin}` failed: {message}")]
    Failed { plugin: Arc<str>, message: String },
    #[error("plugin `{plugin}` returned an invalid plan: {message}")]
    InvalidPlan { plugin: Arc<str>, message: String },
    /// The instances alive hold `plugins.max_instance_memory_mb`: no room
    /// for another one now (or for this one to grow).
    #[error(
        "plugin `{plugin}` has no memory left: the plugin instances alive hold plugins.max_instance_memory_mb ({limit_mib} MiB); retry shortly"
    )]
    NoMemory {
        plugin: Arc<str>,
        limit_mib: usize,
        /// What the instance would have held in all.
        wanted: usize,
    },
}

/// Why a plugin file could not be made live.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plugin {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("plugin {path} is not a usable sluice:policy component: {message}")]
    Compile { path: String, message: String },
    #[error(
        "plugin {path} imports what the gateway does not provide: {}; a policy may import sluice:policy and WASI 0.2's cli, clocks, io, random, filesystem and sockets (the last two grant nothing){}",
        names.join(", "),
        if names.iter().any(|n| n.starts_with("wasi:http/")) { " (with jco, build with --disable http fetch-event)" } else { "" }
    )]
    Imports { path: String, names: Vec<String> },
    #[error(
        "plugin {path} was built for sluice:policy@{found}; this gateway speaks {WORLD}: rebuild it with sluice-sdk {}",
        sdk_version()
    )]
    Version { path: String, found: String },
}

/// The SDK release that builds components for [`WORLD`].
fn sdk_version() -> &'static str {
    WORLD.rsplit_once('@').map_or(WORLD, |(_, v)| v)
}

/// The `sluice:policy` version a component was built for, from its imports
/// (`sluice:policy/log@0.2.0`); `None` when it imports nothing of ours.
fn built_for<'a>(imports: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    imports
        .into_iter()
        .filter_map(|name| name.strip_prefix("sluice:policy/"))
        .find_map(|rest| rest.split_once('@').map(|(_, version)| version))
}

/// Imports a policy may have: the contract, and the WASI 0.2 interfaces the
/// language runtimes import (Rust's std, CPython, StarlingMonkey), which the
/// sandbox links with nothing behind them.
const PROVIDED: [&str; 7] = [
    "sluice:policy/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:io/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
];

/// The imports of a component the gateway does not provide.
fn refused<'a>(imports: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    imports
        .into_iter()
        .filter(|name| {
            let provided = PROVIDED.iter().any(|p| name.starts_with(p));
            !provided || (name.starts_with("wasi:") && !name.contains("@0.2."))
        })
        .map(str::to_owned)
        .collect()
}

/// Limits a domain's plugin runs under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SandboxLimits {
    /// Wall time one call may take.
    pub deadline: Duration,
    /// Linear memory one instance may grow to.
    pub memory_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            deadline: Duration::from_millis(5),
            memory_bytes: 16 << 20,
        }
    }
}

/// The process's one wasmtime engine and the linker with the imports a
/// policy may use (logging, and WASI with no files, env, network or clock).
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<State>>,
    ticker: Arc<Ticker>,
}

/// A plugin file compiled and linked against the `sluice:policy` world.
pub struct Compiled {
    pub name: Arc<str>,
    /// Hex SHA-256 of the file, so an operator can tell versions apart.
    pub sha256: String,
    /// The contract it was built for: [`WORLD`] or an older one still served.
    pub contract: &'static str,
    pub loaded_at: SystemTime,
    engine: Engine,
    /// Told before each call how long it may run.
    ticker: Arc<Ticker>,
    pre: Pre,
}

/// A component ready to instantiate, by the contract it was built for.
enum Pre {
    Now(PolicyPre<State>),
    Older(older::PolicyPre<State>),
}

impl Runtime {
    pub fn new() -> wasmtime::Result<Runtime> {
        let mut config = wasmtime::Config::new();
        // No wasm backtraces: trap messages go to clients, and traps are cheaper.
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .wasm_backtrace_max_frames(None);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        sandbox::add_to_linker(&mut linker)?;
        older::add_to_linker(&mut linker)?;
        let ticker = Ticker::spawn(&engine)?;
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            ticker,
        })
    }

    /// Compile and link a plugin file, or load its compiled form from
    /// `cache` (`plugins.cache_dir`). Slow (a quarter of a second for a Rust
    /// policy, seconds for Python or TypeScript): never on the request path.
    pub fn compile(
        &self,
        name: &str,
        path: &Path,
        cache: Option<&Path>,
    ) -> Result<Arc<Compiled>, LoadError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: shown.clone(),
            source,
        })?;
        let compile = |e: wasmtime::Error| LoadError::Compile {
            path: shown.clone(),
            message: format!("{e:#}"),
        };
        let sha256 = sha256_hex(&bytes);
        let cache = cache.map(cache::Cache::new);
        let started = std::time::Instant::now();
        let component = match cache.as_ref().and_then(|c| c.load(&self.engine, &sha256)) {
            Some(component) => {
                let took_ms = started.elapsed().as_millis() as u64;
                tracing::info!(
                    plugin = name,
                    took_ms,
                    "plugin loaded compiled from plugins.cache_dir"
                );
                component
            }
            None => {
                let component = Component::new(&self.engine, &bytes).map_err(compile)?;
                let took = started.elapsed();
                let took_ms = took.as_millis() as u64;
                match &cache {
                    Some(cache) => {
                        cache.store(&self.engine, &sha256, &component);
                        tracing::info!(
                            plugin = name,
                            took_ms,
                            "plugin compiled and kept in plugins.cache_dir"
                        );
                    }
                    None if took > Duration::from_secs(1) => tracing::info!(
                        plugin = name,
                        took_ms,
                        "plugin compiled; set plugins.cache_dir to compile each version once"
                    ),
                    None => {}
                }
                component
            }
        };
        let ty = component.component_type();
        let imports: Vec<&str> = ty.imports(&self.engine).map(|(import, _)| import).collect();
        tracing::debug!(plugin = name, ?imports, "plugin imports");
        let names = refused(imports.iter().copied());
        if !names.is_empty() {
            return Err(LoadError::Imports { path: shown, names });
        }
        // A component of another contract version would fail to link with a
        // message about a missing import; say what is actually wrong.
        let found = built_for(imports.iter().copied());
        let older = found == Some(older::VERSION);
        if let Some(found) = found
            && !older
            && found != sdk_version()
        {
            return Err(LoadError::Version {
                path: shown,
                found: found.to_owned(),
            });
        }
        let linked = self.linker.instantiate_pre(&component).map_err(compile)?;
        let pre = match older {
            true => {
                tracing::info!(
                    plugin = name,
                    path = %shown,
                    "plugin built for sluice:policy@{}: it serves as before; rebuild it with sluice-sdk {} for reads before writes and batches in one call",
                    older::VERSION,
                    sdk_version()
                );
                Pre::Older(older::PolicyPre::new(linked).map_err(compile)?)
            }
            false => Pre::Now(PolicyPre::new(linked).map_err(compile)?),
        };
        Ok(Arc::new(Compiled {
            name: name.into(),
            sha256,
            contract: match older {
                true => older::WORLD,
                false => WORLD,
            },
            loaded_at: SystemTime::now(),
            engine: self.engine.clone(),
            ticker: self.ticker.clone(),
            pre,
        }))
    }
}

/// What happened to a plugin's calls, for `/admin/plugins` and `/metrics`.
#[derive(Default)]
pub struct PluginStats {
    pub calls: AtomicU64,
    pub traps: AtomicU64,
    pub timeouts: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// A domain's plugin: compiled component, limits, warm instances.
/// A batch's plans on one instance ([`Plugin::planner`]).
pub struct Planner<'p> {
    plugin: &'p Plugin,
    held: Option<Instance>,
}

impl Planner<'_> {
    /// Ask the policy what to do. A trap or timeout fails this call only.
    pub fn plan(&mut self, req: &Request) -> Result<Decision, PluginError> {
        let mut span = crate::traces::policy(self.plugin.name(), "plan", 1);
        let answer = self.plugin.call_with(&mut self.held, 1, &mut span, |inst| {
            let store = &mut inst.store;
            match &inst.policy {
                Exports::Now(p) => p.call_plan(store, req),
                Exports::Older(p) => Ok(p
                    .call_plan(store, &older::request(req))?
                    .map(older::decision)
                    .map_err(older::error)),
            }
        });
        let answer = self.plugin.answer(answer?);
        outcome(&mut span, &answer);
        answer
    }

    /// The second round of a read: the plan that writes, given what the
    /// first round's reads answered (MessagePack, `None` for a miss).
    pub fn after_read(
        &mut self,
        req: &Request,
        replies: &[Option<Vec<u8>>],
    ) -> Result<Plan, PluginError> {
        let mut span = crate::traces::policy(self.plugin.name(), "after_read", 1);
        let answer = self.plugin.call_with(&mut self.held, 1, &mut span, |inst| {
            let store = &mut inst.store;
            match &inst.policy {
                Exports::Now(p) => p.call_plan_after_read(store, req, replies),
                // A 0.2 plan never reads first, so this is never asked.
                Exports::Older(_) => Ok(Err(PolicyError::Internal(
                    "a sluice:policy@0.2.0 component cannot plan after a read".into(),
                ))),
            }
        });
        let answer = self.plugin.answer(answer?);
        outcome(&mut span, &answer);
        answer
    }

    /// What to do with each request of a batch, in one call across the
    /// boundary (a 0.2 component: one call each). The call may take the
    /// deadline once per request, as that many calls could.
    pub fn plan_batch(&mut self, reqs: &[Request]) -> Vec<Result<Decision, PluginError>> {
        let n = reqs.len() as u32;
        let mut span = crate::traces::policy(self.plugin.name(), "plan_batch", n);
        let answers = self.plugin.call_with(&mut self.held, n, &mut span, |inst| {
            let store = &mut inst.store;
            match &inst.policy {
                Exports::Now(p) => p.call_plan_batch(store, reqs),
                Exports::Older(p) => reqs
                    .iter()
                    .map(|req| {
                        Ok(p.call_plan(&mut *store, &older::request(req))?
                            .map(older::decision)
                            .map_err(older::error))
                    })
                    .collect(),
            }
        });
        let answers: Vec<_> = match answers {
            Ok(answers) if answers.len() == reqs.len() => {
                answers.into_iter().map(|a| self.plugin.answer(a)).collect()
            }
            Ok(answers) => {
                let m = format!("{} answers to a batch of {}", answers.len(), reqs.len());
                let e = self.plugin.failed(m);
                reqs.iter().map(|_| Err(e.clone())).collect()
            }
            Err(e) => reqs.iter().map(|_| Err(e.clone())).collect(),
        };
        // The batch's outcome: its first decision that was not a plan, if any.
        match answers.iter().find(|a| a.is_err()) {
            Some(Err(e)) => outcome(&mut span, &Err::<(), _>(e.clone())),
            _ => outcome(&mut span, &Ok(())),
        }
        answers
    }
}

/// A policy call's outcome on its span, unless the call already said it
/// (a trap, a timeout).
fn outcome<T>(span: &mut Option<crate::traces::Child>, answer: &Result<T, PluginError>) {
    if let Some(span) = span {
        span.outcome(match answer {
            Ok(_) => "ok",
            Err(PluginError::Refused { .. }) => "refused",
            Err(PluginError::Failed { .. }) => "failed",
            Err(PluginError::InvalidPlan { .. }) => "invalid_plan",
            Err(PluginError::NoMemory { .. }) => "no_memory",
        });
    }
}

impl Drop for Planner<'_> {
    fn drop(&mut self) {
        if let Some(inst) = self.held.take() {
            self.plugin.put_back(inst);
        }
    }
}

pub struct Plugin {
    compiled: Arc<Compiled>,
    limits: SandboxLimits,
    /// The domain every instance serves, with its TTLs and settings: each new
    /// instance gets it once, through `configure`.
    domain: Domain,
    idle: Mutex<Vec<Instance>>,
    pub stats: PluginStats,
    /// `sluice_plugin_calls_total` by outcome, looked up once: a labelled
    /// lookup per call would cost more than the call.
    outcomes: [prometheus::IntCounter; Outcome::ALL.len()],
}

/// How one plugin call ended: the `outcome` label of `sluice_plugin_calls_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A plan came back.
    Ok,
    /// The policy refused the request as the client's mistake (a 400).
    Refused,
    /// The policy said it failed (bad config, internal error).
    Failed,
    /// The instance trapped (a panic, a memory cap) and is dropped.
    Trap,
    /// The call ran out of time and is dropped.
    Timeout,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Refused,
        Outcome::Failed,
        Outcome::Trap,
        Outcome::Timeout,
    ];

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
            Outcome::Trap => "trap",
            Outcome::Timeout => "timeout",
        }
    }
}

struct Instance {
    store: Store<State>,
    policy: Exports,
    calls: u32,
}

/// An instance's exports, by the contract it was built for.
enum Exports {
    Now(bindings::Policy),
    Older(older::Policy),
}

impl Plugin {
    /// Make a compiled component ready for a domain: one instance is made and
    /// configured now, so a component that cannot start or refuses the
    /// domain's settings is refused at load rather than on the first request.
    pub fn new(
        compiled: Arc<Compiled>,
        limits: SandboxLimits,
        domain: Domain,
    ) -> Result<Plugin, PluginError> {
        let outcomes = Outcome::ALL.map(|o| {
            METRICS
                .plugin_calls
                .with_label_values(&[&compiled.name, o.label()])
        });
        // At zero from the start, as every series the config names.
        METRICS
            .plugin_invalid_plans
            .with_label_values(&[&compiled.name]);
        let plugin = Plugin {
            compiled,
            limits,
            domain,
            idle: Mutex::new(Vec::new()),
            stats: PluginStats::default(),
            outcomes,
        };
        for n in 0..PREWARM_INSTANCES {
            match plugin.instantiate() {
                Ok(warm) => plugin.put_back(warm),
                // One instance that could never fit is refused now; room
                // taken by other plugins' instances only ends the prewarm.
                Err(PluginError::NoMemory { wanted, .. }) if n > 0 || wanted <= BUDGET.limit() => {
                    break;
                }
                Err(PluginError::NoMemory { wanted, .. }) => {
                    return Err(plugin.failed(format!(
                        "one instance needs {} MiB, more than plugins.max_instance_memory_mb ({} MiB) for all of them",
                        wanted.div_ceil(1 << 20),
                        BUDGET.limit() >> 20
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(plugin)
    }

    pub fn name(&self) -> &str {
        &self.compiled.name
    }

    pub fn compiled(&self) -> &Arc<Compiled> {
        &self.compiled
    }

    /// Ask the policy what to do. A trap or timeout fails this call only.
    pub fn plan(&self, req: &Request) -> Result<Decision, PluginError> {
        self.planner().plan(req)
    }

    /// Plans for a batch on one instance, taken from the idle ones at the
    /// first plan and put back when the planner is dropped: a 100-key mget
    /// locks the idle list twice, not 200 times.
    pub fn planner(&self) -> Planner<'_> {
        Planner {
            plugin: self,
            held: None,
        }
    }

    /// One call on the instance `held` (taken from the idle ones, or made,
    /// when empty), for `decisions` decisions: it may take the deadline
    /// that many times. It stays held after an answer; a trap drops it.
    fn call_with<T>(
        &self,
        held: &mut Option<Instance>,
        decisions: u32,
        span: &mut Option<crate::traces::Child>,
        call: impl FnOnce(&mut Instance) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        (self.stats.calls).fetch_add(u64::from(decisions), Ordering::Relaxed);
        let taken = match held.take() {
            Some(inst) => Some(inst),
            None => self.lock_idle().pop(),
        };
        let mut inst = match taken {
            Some(inst) => inst,
            None => self.instantiate()?,
        };
        let ticks = self
            .deadline_ticks()
            .saturating_mul(u64::from(decisions.max(1)));
        (self.compiled.ticker).busy_for(sandbox::wall_cap(ticks, self.deadline_ticks()));
        inst.store.set_epoch_deadline(ticks);
        inst.store.data_mut().overtime = None;
        inst.calls = inst.calls.saturating_add(decisions);
        match call(&mut inst) {
            Ok(answer) => {
                *held = Some(inst);
                Ok(answer)
            }
            // After a trap the instance refuses further calls: it is dropped here.
            Err(trap) => {
                let (message, outcome) = match trap.downcast_ref::<wasmtime::Trap>() {
                    Some(wasmtime::Trap::Interrupt) => {
                        self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                        let m = format!("no answer within {:?} of CPU time", self.limits.deadline);
                        (m, Outcome::Timeout)
                    }
                    Some(t) => {
                        self.stats.traps.fetch_add(1, Ordering::Relaxed);
                        let hint = if *t == wasmtime::Trap::UnreachableCodeReached {
                            " (a panic, an abort or an uncaught exception ends here: its message, if any, is in the gateway's log)"
                        } else {
                            ""
                        };
                        (format!("trapped: {t}{hint}"), Outcome::Trap)
                    }
                    None => {
                        self.stats.traps.fetch_add(1, Ordering::Relaxed);
                        (format!("trapped: {}", trap.root_cause()), Outcome::Trap)
                    }
                };
                tracing::warn!(plugin = %self.compiled.name, %message, "plugin call failed");
                if let Some(span) = span {
                    span.outcome(outcome.label());
                }
                self.outcomes[outcome as usize].inc_by(u64::from(decisions.max(1)));
                Err(self
                    .no_memory(&inst.store)
                    .unwrap_or_else(|| self.failed(message)))
            }
        }
    }

    /// One decision's answer: what the policy said, counted by outcome.
    fn answer<T>(&self, answer: Result<T, PolicyError>) -> Result<T, PluginError> {
        let (result, outcome) = match answer {
            Ok(v) => (Ok(v), Outcome::Ok),
            Err(PolicyError::BadRequest(message)) => (
                Err(PluginError::Refused {
                    plugin: self.compiled.name.clone(),
                    message,
                }),
                Outcome::Refused,
            ),
            Err(PolicyError::BadConfig(m)) => (
                Err(self.failed(format!("bad config: {m}"))),
                Outcome::Failed,
            ),
            Err(PolicyError::Internal(m)) => (Err(self.failed(m)), Outcome::Failed),
        };
        self.outcomes[outcome as usize].inc();
        result
    }

    fn instantiate(&self) -> Result<Instance, PluginError> {
        let mut store = Store::new(
            &self.compiled.engine,
            State::new(self.compiled.name.clone(), self.limits.memory_bytes),
        );
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_callback(sandbox::deadline_callback(
            self.deadline_ticks(),
            self.limits.deadline,
        ));
        let first = ticks(INSTANTIATE_DEADLINE);
        self.compiled
            .ticker
            .busy_for(sandbox::wall_cap(first, self.deadline_ticks()));
        store.set_epoch_deadline(first);
        let cannot = |store: &Store<State>, e: wasmtime::Error| {
            self.no_memory(store)
                .unwrap_or_else(|| self.failed(format!("cannot instantiate: {e:#}")))
        };
        let (policy, configured) = match &self.compiled.pre {
            Pre::Now(pre) => {
                let policy = match pre.instantiate(&mut store) {
                    Ok(p) => p,
                    Err(e) => return Err(cannot(&store, e)),
                };
                let configured = policy.call_configure(&mut store, &self.domain);
                (Exports::Now(policy), configured)
            }
            Pre::Older(pre) => {
                let policy = match pre.instantiate(&mut store) {
                    Ok(p) => p,
                    Err(e) => return Err(cannot(&store, e)),
                };
                let configured = (policy.call_configure(&mut store, &older::domain(&self.domain)))
                    .map(|r| r.map_err(older::error));
                (Exports::Older(policy), configured)
            }
        };
        match configured {
            Ok(Ok(())) => {}
            Ok(Err(
                PolicyError::BadConfig(m) | PolicyError::BadRequest(m) | PolicyError::Internal(m),
            )) => {
                return Err(self.failed(format!(
                    "refused the settings of domain {:?}: {m}",
                    self.domain.name
                )));
            }
            Err(trap) => {
                return Err(self.no_memory(&store).unwrap_or_else(|| {
                    self.failed(format!("trapped in configure: {}", trap.root_cause()))
                }));
            }
        }
        Ok(Instance {
            store,
            policy,
            calls: 0,
        })
    }

    /// [`PluginError::NoMemory`] when the budget, not the plugin, ended
    /// what `store` was doing.
    fn no_memory(&self, store: &Store<State>) -> Option<PluginError> {
        let wanted = store.data().limits.denied?;
        Some(PluginError::NoMemory {
            plugin: self.compiled.name.clone(),
            limit_mib: BUDGET.limit() >> 20,
            wanted,
        })
    }

    /// Keep `inst` warm, unless it has served its calls, the memory budget
    /// needs the room, or it holds ⅞ of its memory cap: a runtime whose heap
    /// only grows (StarlingMonkey's does, by kilobytes a call) is let go
    /// before it traps on a request at the cap.
    fn put_back(&self, inst: Instance) {
        let grown = inst.store.data().limits.held() > self.limits.memory_bytes / 8 * 7;
        if inst.calls < MAX_CALLS_PER_INSTANCE && BUDGET.roomy() && !grown {
            let mut idle = self.lock_idle();
            if idle.len() < MAX_IDLE_INSTANCES {
                idle.push(inst);
            }
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Instance>> {
        // A panic while holding the lock cannot leave the Vec inconsistent.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deadline_ticks(&self) -> u64 {
        ticks(self.limits.deadline)
    }

    fn failed(&self, message: String) -> PluginError {
        *self
            .stats
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
        PluginError::Failed {
            plugin: self.compiled.name.clone(),
            message,
        }
    }

    pub(crate) fn invalid_plan(&self, message: String) -> PluginError {
        METRICS
            .plugin_invalid_plans
            .with_label_values(&[&self.compiled.name])
            .inc();
        *self
            .stats
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(format!("invalid plan: {message}"));
        PluginError::InvalidPlan {
            plugin: self.compiled.name.clone(),
            message,
        }
    }
}

/// The SHA-256 of a file, if it can be read.
pub fn file_sha256(path: &Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| sha256_hex(&b))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_version_is_read_from_a_components_imports() {
        let imports = ["wasi:io/error@0.2.6", "sluice:policy/log@0.1.0"];
        assert_eq!(built_for(imports), Some("0.1.0"));
        assert_eq!(built_for(["wasi:cli/environment@0.2.6"]), None);
        assert_eq!(built_for(["sluice:policy/types@0.2.0"]), Some("0.2.0"));
    }

    #[test]
    fn imports_beyond_the_contract_and_wasi_0_2_are_named() {
        let ok = [
            "sluice:policy/log@0.3.0",
            "wasi:cli/stdout@0.2.9",
            "wasi:sockets/tcp@0.2.12",
            "wasi:filesystem/preopens@0.2.6",
        ];
        assert!(refused(ok).is_empty());
        let names = refused([
            "wasi:http/types@0.2.10",
            "wasi:cli/stdout@0.3.0",
            "wasi:random/random@0.2.12",
            "acme:spy/net",
        ]);
        assert_eq!(
            names,
            [
                "wasi:http/types@0.2.10",
                "wasi:cli/stdout@0.3.0",
                "acme:spy/net"
            ]
        );
        let text = LoadError::Imports {
            path: "p.wasm".into(),
            names,
        }
        .to_string();
        assert!(text.contains("--disable http"), "{text}");
    }

    #[test]
    fn a_component_for_another_version_is_refused_naming_both() {
        let e = LoadError::Version {
            path: "p.wasm".into(),
            found: "0.1.0".into(),
        };
        let text = e.to_string();
        assert!(text.contains("sluice:policy@0.1.0"), "{text}");
        assert!(text.contains("sluice:policy@0.3.0"), "{text}");
    }

    #[test]
    fn the_world_constant_is_the_wits_package() {
        let wit = include_str!("../../../sdk/wit/policy.wit");
        assert!(wit.contains(&format!("package {WORLD};")));
    }
}
