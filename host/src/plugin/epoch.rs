//! The epoch ticker: what bounds a plugin call's time.
//!
//! wasmtime checks a call's deadline against an epoch counter that a plain
//! thread advances every [`EPOCH_TICK`]. Ticking costs a wakeup a
//! millisecond, so the ticker ticks only while a call could be running:
//! each call, before it starts, pushes `busy_until` to the tick by which
//! its deadline and every extension of it ([`super::sandbox`]) are spent.
//! Past that tick no call can be running, and the ticker parks until the
//! next call wakes it — an idle gateway's ticker wakes once a second (to
//! notice its engine is gone), not a thousand times.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wasmtime::Engine;

/// How often the epoch ticks; deadlines are counted in ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// How long a parked ticker sleeps before it looks whether its engine is
/// still there.
const PARKED_FOR: Duration = Duration::from_secs(1);

/// Epoch ticks for a deadline; one more, since the next tick may be imminent.
pub fn ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() as u64 / EPOCH_TICK.as_millis() as u64).max(1) + 1
}

/// The ticker's state, shared with the calls it times.
#[derive(Default)]
pub struct Ticker {
    /// Ticks so far (the engine's epoch moves with it).
    ticks: AtomicU64,
    /// No call can still be running after this tick.
    busy_until: AtomicU64,
    parked: AtomicBool,
    thread: OnceLock<std::thread::Thread>,
}

impl Ticker {
    /// Start ticking `engine`'s epoch on a thread of its own; it ends once
    /// the engine is dropped.
    pub fn spawn(engine: &Engine) -> std::io::Result<Arc<Ticker>> {
        let ticker = Arc::new(Ticker::default());
        let weak = engine.weak();
        let shared = ticker.clone();
        let thread = std::thread::Builder::new()
            .name("sluice-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    shared.tick();
                }
            })?;
        let _ = ticker.thread.set(thread.thread().clone());
        Ok(ticker)
    }

    /// One tick's wait: a tick's sleep while a call may be running, else
    /// parked until a call starts.
    fn tick(&self) {
        let now = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        if now <= self.busy_until.load(Ordering::SeqCst) {
            std::thread::sleep(EPOCH_TICK);
            return;
        }
        // Say so before looking again: a call that pushed `busy_until`
        // meanwhile either is seen here or sees `parked` and unparks.
        self.parked.store(true, Ordering::SeqCst);
        if now > self.busy_until.load(Ordering::SeqCst) {
            std::thread::park_timeout(PARKED_FOR);
        }
        self.parked.store(false, Ordering::SeqCst);
    }

    /// A call that may run for up to `cap` ticks is about to start: tick
    /// until then. Costs two loads when the ticker already runs long enough.
    pub fn busy_for(&self, cap: u64) {
        // Two ticks of slack: `ticks` trails the engine's epoch a moment.
        let until = self
            .ticks
            .load(Ordering::Relaxed)
            .saturating_add(cap)
            .saturating_add(2);
        if self.busy_until.load(Ordering::Relaxed) >= until {
            return;
        }
        self.busy_until.fetch_max(until, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst)
            && let Some(thread) = self.thread.get()
        {
            thread.unpark();
        }
    }

    #[cfg(test)]
    fn state(&self) -> (u64, bool) {
        (
            self.ticks.load(Ordering::SeqCst),
            self.parked.load(Ordering::SeqCst),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let started = std::time::Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(10), "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_call_with_a_huge_deadline_keeps_the_ticker_running() {
        let ticker = Ticker::default();
        ticker.busy_for(super::super::sandbox::wall_cap(u64::MAX / 2, u64::MAX / 3));
        assert_eq!(ticker.busy_until.load(Ordering::SeqCst), u64::MAX);
    }

    #[test]
    fn deadlines_round_up_to_at_least_two_ticks() {
        assert_eq!(ticks(Duration::from_millis(5)), 6);
        assert_eq!(ticks(Duration::ZERO), 2);
    }

    #[test]
    fn the_ticker_parks_when_no_call_can_run_and_a_call_wakes_it() {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).unwrap();
        let ticker = Ticker::spawn(&engine).unwrap();
        wait_until("parked with no call", || ticker.state().1);
        let parked_at = ticker.state().0;
        std::thread::sleep(Duration::from_millis(50));
        assert!(ticker.state().0 <= parked_at + 1, "no ticks while parked");

        // A call of up to 30 ticks: ticking resumes, and lasts past them.
        let before = ticker.state().0;
        ticker.busy_for(30);
        wait_until("ticking again", || ticker.state().0 > before + 1);
        wait_until("parked after the call's cap", || ticker.state().1);
        let (at, _) = ticker.state();
        assert!(
            at >= before + 30,
            "parked at tick {at}, the call could run to {}",
            before + 30
        );
    }
}
