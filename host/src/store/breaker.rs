//! The circuit breaker in front of Redis.
//!
//! Vocabulary: **closed** — requests go to Redis; **open** — requests fail
//! fast without touching Redis; **half-open** — a few trial requests go
//! through, and their outcome closes or reopens the breaker.
//!
//! A task owns the state and is the only writer; the request path reads one
//! atomic (`admit`) and reports outcomes into counters (`report`). While
//! open, the task probes Redis itself — user requests never wait on a probe —
//! first after `probe_interval`, keeping that pace for a few probes so a
//! short outage costs about one interval, then backing off up to
//! `recovery_timeout` so a long outage is not hammered. Only transport
//! failures and timeouts count; an error reply (WRONGTYPE, NOSCRIPT) means
//! Redis is up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

use super::StoreError;
use crate::telemetry::METRICS;

/// Thresholds, from `[breaker]` in the config.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// Failure rate over `window_ms` that opens it, given `min_calls` calls.
    pub failure_rate: f64,
    pub window_ms: u64,
    pub min_calls: u32,
    /// First probe after opening, and the pace of the first few probes.
    pub probe_interval_ms: u64,
    /// The longest wait between probes while Redis stays down.
    pub recovery_timeout_ms: u64,
    /// Successful trial requests in half-open that close the breaker.
    pub half_open_trials: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            failure_rate: 0.5,
            window_ms: 10_000,
            min_calls: 20,
            probe_interval_ms: 1_000,
            recovery_timeout_ms: 30_000,
            half_open_trials: 3,
        }
    }
}

/// Probes at the first interval before backing off.
const STEADY_PROBES: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Open,
            2 => State::HalfOpen,
            _ => State::Closed,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
        }
    }
}

/// What the request path sees and writes: the state (read only) and
/// outcome counters.
pub struct Breaker {
    state: AtomicU8,
    /// When the next probe is due, ms after `epoch` (for `Retry-After`).
    next_probe_ms: AtomicU64,
    epoch: Instant,
    consecutive_failures: AtomicU32,
    window_calls: AtomicU32,
    window_failures: AtomicU32,
    trial_permits: AtomicU32,
    trial_successes: AtomicU32,
    trial_failures: AtomicU32,
    wake: Notify,
    config: std::sync::RwLock<BreakerConfig>,
}

/// Proof of admission: whether the call is a half-open trial.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    trial: bool,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Arc<Breaker> {
        Arc::new(Breaker {
            state: AtomicU8::new(State::Closed as u8),
            next_probe_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            consecutive_failures: AtomicU32::new(0),
            window_calls: AtomicU32::new(0),
            window_failures: AtomicU32::new(0),
            trial_permits: AtomicU32::new(0),
            trial_successes: AtomicU32::new(0),
            trial_failures: AtomicU32::new(0),
            wake: Notify::new(),
            config: std::sync::RwLock::new(config),
        })
    }

    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// May this call go to Redis? Fails fast while open, and in half-open
    /// beyond the trial permits.
    pub fn admit(&self) -> Result<Ticket, StoreError> {
        match self.state() {
            State::Closed => Ok(Ticket { trial: false }),
            State::HalfOpen
                if self
                    .trial_permits
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok() =>
            {
                Ok(Ticket { trial: true })
            }
            _ => Err(StoreError::CircuitOpen {
                retry_after: self.retry_after(),
            }),
        }
    }

    /// Time until the breaker next tries Redis, at least a second.
    fn retry_after(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        let due = self.next_probe_ms.load(Ordering::Relaxed);
        Duration::from_millis(due.saturating_sub(now).max(1_000))
    }

    /// Record what happened to an admitted call: `ok` is false only for
    /// transport failures and timeouts.
    pub fn report(&self, ticket: Ticket, ok: bool) {
        if ticket.trial {
            if ok {
                self.trial_successes.fetch_add(1, Ordering::AcqRel);
            } else {
                self.trial_failures.fetch_add(1, Ordering::AcqRel);
            }
            self.wake.notify_one();
            return;
        }
        self.window_calls.fetch_add(1, Ordering::Relaxed);
        if ok {
            if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
                self.consecutive_failures.store(0, Ordering::Relaxed);
            }
        } else {
            self.window_failures.fetch_add(1, Ordering::Relaxed);
            self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    pub fn set_config(&self, config: BreakerConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    fn config(&self) -> BreakerConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn transition(&self, to: State) {
        let from = State::from_u8(self.state.swap(to as u8, Ordering::AcqRel));
        if from != to {
            METRICS.breaker_state.set(to as u8 as i64);
            METRICS
                .breaker_transitions
                .with_label_values(&[to.name()])
                .inc();
            tracing::warn!(from = from.name(), to = to.name(), "circuit breaker");
        }
    }

    fn should_trip(&self, c: &BreakerConfig) -> bool {
        let calls = self.window_calls.load(Ordering::Relaxed);
        let failures = self.window_failures.load(Ordering::Relaxed);
        self.consecutive_failures.load(Ordering::Relaxed) >= c.failure_threshold
            || (calls >= c.min_calls && f64::from(failures) >= c.failure_rate * f64::from(calls))
    }

    fn reset_counters(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.window_calls.store(0, Ordering::Relaxed);
        self.window_failures.store(0, Ordering::Relaxed);
    }

    /// The breaker's task: the only writer of the state. `probe` asks Redis
    /// whether it answers (true) on a connection from the pool.
    pub async fn run<F, Fut>(self: Arc<Self>, probe: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let mut window_started = Instant::now();
        loop {
            let c = self.config();
            match self.state() {
                State::Closed => {
                    let window = Duration::from_millis(c.window_ms);
                    let left = window.saturating_sub(window_started.elapsed());
                    let _ = tokio::time::timeout(left, self.wake.notified()).await;
                    if self.should_trip(&c) {
                        self.open_and_probe(&c, &probe).await;
                        window_started = Instant::now();
                    } else if window_started.elapsed() >= window {
                        self.reset_counters();
                        window_started = Instant::now();
                    }
                }
                State::HalfOpen => {
                    let interval = Duration::from_millis(c.probe_interval_ms);
                    let _ = tokio::time::timeout(interval, self.wake.notified()).await;
                    if self.trial_failures.load(Ordering::Acquire) > 0 {
                        self.open_and_probe(&c, &probe).await;
                    } else if self.trial_successes.load(Ordering::Acquire) >= c.half_open_trials {
                        self.reset_counters();
                        self.transition(State::Closed);
                    } else if self.trial_permits.load(Ordering::Acquire) == c.half_open_trials {
                        // No traffic came to try: a probe decides instead.
                        if probe().await {
                            self.reset_counters();
                            self.transition(State::Closed);
                        } else {
                            self.open_and_probe(&c, &probe).await;
                        }
                    }
                    window_started = Instant::now();
                }
                State::Open => self.open_and_probe(&c, &probe).await,
            }
        }
    }

    /// Open, then probe until Redis answers; leaves the breaker half-open.
    async fn open_and_probe<F, Fut>(&self, c: &BreakerConfig, probe: &F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        self.trial_permits.store(0, Ordering::Release);
        self.transition(State::Open);
        let mut failed_probes = 0u32;
        loop {
            let factor = 1u64 << (failed_probes + 1).saturating_sub(STEADY_PROBES).min(16);
            let delay = Duration::from_millis(
                c.probe_interval_ms
                    .saturating_mul(factor)
                    .min(c.recovery_timeout_ms.max(c.probe_interval_ms)),
            );
            let due = self.epoch.elapsed() + delay;
            self.next_probe_ms
                .store(due.as_millis() as u64, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            METRICS.breaker_probes.inc();
            if probe().await {
                break;
            }
            failed_probes += 1;
        }
        self.trial_successes.store(0, Ordering::Release);
        self.trial_failures.store(0, Ordering::Release);
        self.trial_permits
            .store(c.half_open_trials, Ordering::Release);
        self.transition(State::HalfOpen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    async fn settle() {
        // Let the breaker's task run (time is paused: this does not wait).
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn trips_on_failure_rate_backs_off_probes_then_half_opens_and_closes() {
        let breaker = Breaker::new(BreakerConfig {
            failure_threshold: 100,
            failure_rate: 0.5,
            min_calls: 10,
            window_ms: 10_000,
            probe_interval_ms: 1_000,
            recovery_timeout_ms: 8_000,
            half_open_trials: 2,
        });
        let redis_up = Arc::new(AtomicBool::new(false));
        let probes = Arc::new(Mutex::new(Vec::new()));
        let start = tokio::time::Instant::now();
        let (up, seen) = (redis_up.clone(), probes.clone());
        tokio::spawn(breaker.clone().run(move || {
            let (up, seen) = (up.clone(), seen.clone());
            async move {
                seen.lock().unwrap().push(start.elapsed().as_secs());
                up.load(Ordering::SeqCst)
            }
        }));

        // 4 failures in 9 calls: under the rate. The 10th failure crosses it.
        for i in 0..9 {
            let t = breaker.admit().unwrap();
            breaker.report(t, i % 2 == 0);
        }
        settle().await;
        assert_eq!(breaker.state(), State::Closed);
        let t = breaker.admit().unwrap();
        breaker.report(t, false);
        settle().await;
        assert_eq!(breaker.state(), State::Open);
        assert!(matches!(
            breaker.admit(),
            Err(StoreError::CircuitOpen { .. })
        ));

        // Probes: the first few at the interval, then doubling up to the cap.
        tokio::time::sleep(Duration::from_secs(27)).await;
        assert_eq!(*probes.lock().unwrap(), vec![1, 2, 3, 4, 6, 10, 18, 26]);

        // The next probe (t = 34 s) succeeds.
        redis_up.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(7_500)).await;
        settle().await;
        assert_eq!(breaker.state(), State::HalfOpen);
        // Two trials only; a third caller still fails fast.
        let (a, b) = (breaker.admit().unwrap(), breaker.admit().unwrap());
        assert!(breaker.admit().is_err());
        breaker.report(a, true);
        breaker.report(b, true);
        settle().await;
        assert_eq!(breaker.state(), State::Closed);
        assert!(breaker.admit().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_reopens() {
        let breaker = Breaker::new(BreakerConfig::default());
        tokio::spawn(breaker.clone().run(|| async { true }));
        for _ in 0..5 {
            let t = breaker.admit().unwrap();
            breaker.report(t, false);
        }
        settle().await;
        assert_eq!(breaker.state(), State::Open);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        settle().await;
        assert_eq!(breaker.state(), State::HalfOpen);
        let t = breaker.admit().unwrap();
        breaker.report(t, false);
        settle().await;
        assert_eq!(breaker.state(), State::Open);
    }
}
