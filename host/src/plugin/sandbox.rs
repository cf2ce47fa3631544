//! What a plugin instance can reach: a log line, and WASI with nothing behind
//! it. Rust's standard library on wasm32-wasip2 imports WASI, so it must be
//! linked, but the context has no preopened files, no environment, no
//! sockets, no stdio and clocks frozen at zero: the only time a policy sees
//! is the one in its request.

use super::bindings::sluice::policy::log;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

/// Per-instance host state.
pub struct State {
    plugin: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: Limits,
    /// Set when the current call passed its wall-clock deadline: the
    /// thread's CPU time then, and how many times the deadline was extended.
    pub overtime: Option<(Duration, u32)>,
}

/// Extensions of a call's deadline while its thread is starved of CPU
/// (not while it runs): the wall-clock cap is this many deadlines.
const MAX_EXTENSIONS: u32 = 20;

/// The most ticks a call can run whose first deadline is `first` ticks
/// away, each extension `deadline` ticks: past them it has trapped.
pub fn wall_cap(first: u64, deadline: u64) -> u64 {
    // Saturating: `plugin_timeout_ms` has no upper bound in the config.
    first.saturating_add(u64::from(MAX_EXTENSIONS).saturating_mul(deadline))
}

/// The deadline is a CPU budget, checked cheaply: epoch ticks measure wall
/// time, and on a loaded host a thread can be descheduled mid-call. When the
/// wall deadline passes, the call gets another window; if it spent at least
/// half of that window on the CPU, it is running, not waiting: it traps.
/// No per-call syscall: the thread's CPU time is read only at a deadline.
pub fn deadline_callback(
    deadline_ticks: u64,
    deadline: Duration,
) -> impl FnMut(wasmtime::StoreContextMut<'_, State>) -> wasmtime::Result<wasmtime::UpdateDeadline>
+ Send
+ Sync
+ 'static {
    move |mut ctx| {
        let state = ctx.data_mut();
        let cpu = thread_cpu_time();
        let verdict = match state.overtime {
            None => Some((cpu, 1)),
            Some((prev, n)) if cpu.saturating_sub(prev) < deadline / 2 && n < MAX_EXTENSIONS => {
                Some((cpu, n + 1))
            }
            Some(_) => None,
        };
        state.overtime = verdict;
        Ok(match verdict {
            Some(_) => wasmtime::UpdateDeadline::Continue(deadline_ticks),
            None => wasmtime::UpdateDeadline::Interrupt,
        })
    }
}

/// CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::MAX; // unknown: treat the call as running
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl State {
    pub fn new(plugin: Arc<str>, memory_bytes: usize) -> State {
        // Sockets are wasmtime-wasi's defaults too; said here so a change
        // of default upstream cannot open the network to a policy.
        let wasi = WasiCtx::builder()
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        // Counts bound bookkeeping, not memory (each memory is capped, all
        // of them together by the budget): a CPython component links 14
        // core instances, a QuickJS one 3 memories.
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            .instances(64)
            .tables(8)
            .memories(4)
            // A clear trap instead of the guest's OOM handler's `unreachable`.
            .trap_on_grow_failure(true)
            .build();
        State {
            plugin,
            wasi,
            table: ResourceTable::new(),
            limits: Limits {
                instance: limits,
                charged: 0,
                denied: None,
            },
            overtime: None,
        }
    }
}

/// The linear memory of every live instance, all plugins together, held to
/// `plugins.max_instance_memory_mb`: warm instances are many (one or more
/// per domain and thread, a Python one tens of MB), and each domain's cap
/// bounds one instance, not how many there are.
pub struct Budget {
    limit: AtomicUsize,
    used: AtomicUsize,
}

/// The process's budget (its limit set by each generation's config).
pub static BUDGET: Budget = Budget {
    limit: AtomicUsize::new(1 << 30),
    used: AtomicUsize::new(0),
};

impl Budget {
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Take `bytes` if they fit.
    fn charge(&self, bytes: usize) -> bool {
        let limit = self.limit();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Whether an idle instance may stay warm: a quarter of the budget is
    /// kept free for instances that calls need.
    pub fn roomy(&self) -> bool {
        self.used() <= self.limit() / 4 * 3
    }
}

/// One instance's limits: its own (memory cap, counts), and its share of
/// the [`BUDGET`], given back when the instance is dropped.
pub struct Limits {
    instance: StoreLimits,
    charged: usize,
    /// Set when the budget refused a growth: the bytes the instance would
    /// have held in all.
    pub denied: Option<usize>,
}

impl Limits {
    /// Linear memory the instance holds, all its memories together.
    pub fn held(&self) -> usize {
        self.charged
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if !self.instance.memory_growing(current, desired, maximum)? {
            return Ok(false);
        }
        let more = desired.saturating_sub(current);
        if BUDGET.charge(more) {
            self.charged += more;
            return Ok(true);
        }
        self.denied = Some(self.charged + more);
        Err(wasmtime::format_err!(
            "plugins.max_instance_memory_mb ({} MiB) is taken by the instances alive",
            BUDGET.limit() >> 20
        ))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.instance.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.instance.instances()
    }

    fn tables(&self) -> usize {
        self.instance.tables()
    }

    fn memories(&self) -> usize {
        self.instance.memories()
    }
}

impl Drop for Limits {
    fn drop(&mut self) {
        BUDGET.release(self.charged);
    }
}

/// WASI entry points that would block: wasmtime-wasi's sync bindings run
/// them with `block_on`, which panics on a tokio worker thread. A policy has
/// no business with them: they trap instead, failing that one call.
const BLOCKING: [(&str, &[&str]); 4] = [
    ("wasi:cli/stdin@0.2.12", &["get-stdin"]),
    ("wasi:cli/stdout@0.2.12", &["get-stdout"]),
    ("wasi:cli/stderr@0.2.12", &["get-stderr"]),
    ("wasi:io/poll@0.2.12", &["poll", "[method]pollable.block"]),
];

pub fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    for (interface, funcs) in BLOCKING {
        let mut instance = linker.instance(interface)?;
        for func in funcs {
            let what = format!("{interface} {func}");
            instance.func_new(func, move |_, _, _, _| {
                Err(wasmtime::format_err!(
                    "{what}: a policy has no stdio and cannot block (log with the SDK's log)"
                ))
            })?;
        }
    }
    linker.allow_shadowing(false);
    log::add_to_linker::<State, HasSelf<State>>(linker, |s| s)
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl log::Host for State {
    fn log(&mut self, level: log::Level, message: String) {
        self::log(self, level, message);
    }
}

/// A policy's log line, tagged with its plugin (every contract version's `log`).
pub fn log(state: &State, level: log::Level, message: String) {
    let plugin = &*state.plugin;
    match level {
        log::Level::Trace => tracing::trace!(plugin, "{message}"),
        log::Level::Debug => tracing::debug!(plugin, "{message}"),
        log::Level::Info => tracing::info!(plugin, "{message}"),
        log::Level::Warn => tracing::warn!(plugin, "{message}"),
        log::Level::Error => tracing::error!(plugin, "{message}"),
    }
}

/// Both WASI clocks, stopped at zero.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_takes_what_fits_and_gets_it_back() {
        let b = Budget {
            limit: AtomicUsize::new(100),
            used: AtomicUsize::new(0),
        };
        assert!(b.charge(60));
        assert!(b.roomy());
        assert!(!b.charge(41), "past the limit");
        assert_eq!(b.used(), 60);
        assert!(b.charge(40));
        assert!(!b.roomy(), "full: no instance stays warm");
        b.release(100);
        assert_eq!(b.used(), 0);
        b.set_limit(10);
        assert!(!b.charge(11));
    }
}
