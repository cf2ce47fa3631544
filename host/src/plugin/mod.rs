//! Domain policies as WebAssembly components.
//!
//! One [`Runtime`] (engine + linker) per process compiles plugins off the
//! request path. A [`Plugin`] keeps warm instances and reuses them: a fresh
//! instance costs tens of µs, a call on a warm one under a µs. Each call runs
//! under an epoch deadline and each instance under a memory cap; a trap drops
//! the instance and fails that one request.

pub mod bindings;
mod sandbox;
mod validate;

pub use validate::{PlanLimits, validate};

use bindings::{Plan, PolicyError, PolicyPre, Request};
use sandbox::State;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};

/// How often the epoch ticks; deadlines are counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(1);
/// A warm instance is retired after this many calls, so memory a plugin
/// leaks cannot grow without bound.
const MAX_CALLS_PER_INSTANCE: u32 = 100_000;
/// Warm instances kept per plugin; more are made under load and dropped after.
const MAX_IDLE_INSTANCES: usize = 64;

/// Why a plugin failed; each maps to one HTTP answer in [`crate::error`].
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin `{plugin}` refused the request: {message}")]
    Refused { plugin: Arc<str>, message: String },
    #[error("plugin `{plugin}` failed: {message}")]
    Failed { plugin: Arc<str>, message: String },
    #[error("plugin `{plugin}` returned an invalid plan: {message}")]
    InvalidPlan { plugin: Arc<str>, message: String },
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
}

/// Limits every plugin runs under.
#[derive(Debug, Clone, Copy)]
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
}

impl Runtime {
    pub fn new() -> wasmtime::Result<Runtime> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        sandbox::add_to_linker(&mut linker)?;
        spawn_epoch_ticker(&engine)?;
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
        })
    }

    /// Compile and link a plugin file. Slow (milliseconds): never on the request path.
    pub fn load(
        &self,
        name: &str,
        path: &Path,
        limits: SandboxLimits,
    ) -> Result<Plugin, LoadError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: shown.clone(),
            source,
        })?;
        let compile = |e: wasmtime::Error| LoadError::Compile {
            path: shown.clone(),
            message: format!("{e:#}"),
        };
        let component = Component::new(&self.engine, &bytes).map_err(compile)?;
        let pre = self.linker.instantiate_pre(&component).map_err(compile)?;
        let pre = PolicyPre::new(pre).map_err(compile)?;
        let plugin = Plugin {
            name: name.into(),
            engine: self.engine.clone(),
            pre,
            limits,
            idle: Mutex::new(Vec::new()),
        };
        // Instantiate once now, so a component that cannot start is refused
        // at load rather than on the first request.
        let warm = plugin.instantiate().map_err(|e| LoadError::Compile {
            path: shown,
            message: e.to_string(),
        })?;
        plugin.put_back(warm);
        Ok(plugin)
    }
}

/// The epoch advances on a plain thread; it stops when the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(())
}

/// A loaded plugin: compiled, linked, with warm instances ready.
pub struct Plugin {
    name: Arc<str>,
    engine: Engine,
    pre: PolicyPre<State>,
    limits: SandboxLimits,
    idle: Mutex<Vec<Instance>>,
}

struct Instance {
    store: Store<State>,
    policy: bindings::Policy,
    calls: u32,
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ask the policy for a plan. A trap or timeout fails this call only.
    pub fn plan(&self, req: &Request) -> Result<Plan, PluginError> {
        self.with_instance(|inst| inst.policy.call_plan(&mut inst.store, req))
    }

    /// Run the plugin's check of a domain's settings.
    pub fn check_config(
        &self,
        domain: &str,
        config: &[(String, String)],
    ) -> Result<(), PluginError> {
        self.with_instance(|inst| {
            inst.policy
                .call_check_config(&mut inst.store, domain, config)
        })
    }

    fn with_instance<T>(
        &self,
        call: impl FnOnce(&mut Instance) -> wasmtime::Result<Result<T, PolicyError>>,
    ) -> Result<T, PluginError> {
        let taken = self.lock_idle().pop();
        let mut inst = match taken {
            Some(inst) => inst,
            None => self.instantiate()?,
        };
        inst.store.set_epoch_deadline(self.deadline_ticks());
        inst.calls += 1;
        match call(&mut inst) {
            Ok(answer) => {
                self.put_back(inst);
                answer.map_err(|e| match e {
                    PolicyError::BadRequest(message) => PluginError::Refused {
                        plugin: self.name.clone(),
                        message,
                    },
                    PolicyError::BadConfig(m) => self.failed(format!("bad config: {m}")),
                    PolicyError::Internal(m) => self.failed(m),
                })
            }
            // After a trap the instance refuses further calls: it is dropped here.
            Err(trap) => {
                let message = match trap.downcast_ref::<wasmtime::Trap>() {
                    Some(wasmtime::Trap::Interrupt) => {
                        format!("no answer within {:?}", self.limits.deadline)
                    }
                    Some(t) => format!("trapped: {t}"),
                    None => format!("trapped: {trap:#}"),
                };
                tracing::warn!(plugin = %self.name, %message, "plugin call failed");
                Err(self.failed(message))
            }
        }
    }

    fn instantiate(&self) -> Result<Instance, PluginError> {
        let mut store = Store::new(
            &self.engine,
            State::new(self.name.clone(), self.limits.memory_bytes),
        );
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.deadline_ticks());
        let policy = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| self.failed(format!("cannot instantiate: {e:#}")))?;
        Ok(Instance {
            store,
            policy,
            calls: 0,
        })
    }

    fn put_back(&self, inst: Instance) {
        if inst.calls < MAX_CALLS_PER_INSTANCE {
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
        (self.limits.deadline.as_millis() as u64 / EPOCH_TICK.as_millis() as u64).max(1) + 1
    }

    fn failed(&self, message: String) -> PluginError {
        PluginError::Failed {
            plugin: self.name.clone(),
            message,
        }
    }

    pub(crate) fn invalid_plan(&self, message: String) -> PluginError {
        PluginError::InvalidPlan {
            plugin: self.name.clone(),
            message,
        }
    }
}
