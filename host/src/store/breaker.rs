//! The circuit breaker in front of Redis.
//!
//! Vocabulary: **closed** — requests go to Redis; **open** — requests fail
//! fast without touching Redis; **half-open** — a few trial requests go
//! through, and their outcome closes or reopens the breaker.
//!
//! A task owns the state and is the only writer; the request path reads one
//! atomic (`admit`) and reports outcomes into counters (`report`). While
//! open, the task probes Redis itself — user requests never wait on a probe —
//! every `probe_interval` for the first ten seconds of an outage, so writes
//! resume within about one interval of Redis coming back, then backing off
//! up to `recovery_timeout` so a long outage is not hammered. Only Redis's
//! own failures count — transport failures and timeouts; not an error reply
//! (WRONGTYPE, NOSCRIPT: Redis is up), not a client that went away, not a
//! gateway out of connections. Admission is a [`Ticket`]: a guard, so a call
//! that ends any other way than with a report (cancelled, never sent) counts
//! nothing and gives its half-open trial permit back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::StoreError;
use crate::config::BreakerConfig;
use crate::telemetry::METRICS;

/// How long into an outage probes keep the first interval before backing off.
const FAST_PROBES_FOR: Duration = Duration::from_secs(10);

/// Transitions kept for the status page: enough to see a flap.
const HISTORY: usize = 10;

/// A change of state, as the status page lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Wall-clock time, for a person (the breaker itself runs on tokio's clock).
    pub at: std::time::SystemTime,
    pub from: State,
    pub to: State,
}

/// What the status page shows: the state, its last transitions (newest
/// first) and, on a cluster, each primary's state by address.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    pub transitions: Vec<Transition>,
    pub nodes: Vec<(String, State)>,
}

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
    /// Tokio's clock (as is the failure-rate window), so tests with paused
    /// time drive every deadline the breaker keeps.
    epoch: Instant,
    consecutive_failures: AtomicU32,
    window_calls: AtomicU32,
    window_failures: AtomicU32,
    trial_permits: AtomicU32,
    trial_successes: AtomicU32,
    trial_failures: AtomicU32,
    wake: Notify,
    config: std::sync::RwLock<BreakerConfig>,
    /// The last [`HISTORY`] transitions, oldest first; written only by the
    /// task, on a transition: never on the request path.
    history: std::sync::Mutex<std::collections::VecDeque<Transition>>,
    /// A cluster node's breaker: its state is shown by node, and each
    /// transition wakes whoever derives the gateway-wide state.
    node: Option<(String, Arc<Notify>)>,
}

/// Proof of admission, and the one way an outcome is counted. Dropped
/// without [`Ticket::report`] — the client went away, the call was never
/// sent — it counts nothing, and a trial's permit goes back.
pub struct Ticket<'a> {
    breaker: &'a Breaker,
    kind: Admission,
    reported: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// Closed: the outcome counts toward tripping.
    Counted,
    /// Half-open: one of the trials that close or reopen the breaker.
    Trial,
    /// Let through without a say (a blocking read in half-open).
    Uncounted,
}

impl Ticket<'_> {
    /// What happened: `ok` is false only for transport failures and timeouts.
    pub fn report(mut self, ok: bool) {
        self.reported = true;
        let b = self.breaker;
        match self.kind {
            Admission::Trial => {
                let counter = if ok {
                    &b.trial_successes
                } else {
                    &b.trial_failures
                };
                counter.fetch_add(1, Ordering::AcqRel);
                b.wake.notify_one();
            }
            Admission::Counted => {
                b.window_calls.fetch_add(1, Ordering::Relaxed);
                if ok {
                    if b.consecutive_failures.load(Ordering::Relaxed) != 0 {
                        b.consecutive_failures.store(0, Ordering::Relaxed);
                    }
                } else {
                    b.window_failures.fetch_add(1, Ordering::Relaxed);
                    b.consecutive_failures.fetch_add(1, Ordering::Relaxed);
                    b.wake.notify_one();
                }
            }
            Admission::Uncounted => {}
        }
    }
}

impl std::fmt::Debug for Ticket<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ticket({:?})", self.kind)
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.reported && self.kind == Admission::Trial {
            self.breaker.trial_permits.fetch_add(1, Ordering::AcqRel);
            self.breaker.wake.notify_one();
        }
    }
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Arc<Breaker> {
        Breaker::scoped(config, None)
    }

    /// The breaker of one primary of a Redis Cluster, at `addr`; `changed`
    /// is notified on each of its transitions.
    pub fn for_node(config: BreakerConfig, addr: &str, changed: Arc<Notify>) -> Arc<Breaker> {
        METRICS
            .breaker_node_state
            .with_label_values(&[addr])
            .set(State::Closed as u8 as i64);
        Breaker::scoped(config, Some((addr.to_owned(), changed)))
    }

    fn scoped(config: BreakerConfig, node: Option<(String, Arc<Notify>)>) -> Arc<Breaker> {
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
            history: std::sync::Mutex::new(std::collections::VecDeque::with_capacity(HISTORY)),
            node,
        })
    }

    /// A cluster node's breaker: the node's address.
    pub fn addr(&self) -> Option<&str> {
        self.node.as_ref().map(|(addr, _)| addr.as_str())
    }

    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// The last transitions, newest first.
    pub fn transitions(&self) -> Vec<Transition> {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        history.iter().rev().copied().collect()
    }

    /// May this call go to Redis? Fails fast while open, and in half-open
    /// beyond the trial permits.
    pub fn admit(&self) -> Result<Ticket<'_>, StoreError> {
        match self.state() {
            State::Closed => Ok(self.ticket(Admission::Counted)),
            State::HalfOpen
                if self
                    .trial_permits
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok() =>
            {
                Ok(self.ticket(Admission::Trial))
            }
            _ => Err(self.open()),
        }
    }

    /// Admission for a call that holds its connection for long (a blocking
    /// stream read): never a trial — its outcome comes too late to decide —
    /// so in half-open it goes through uncounted.
    pub fn admit_blocking(&self) -> Result<Ticket<'_>, StoreError> {
        match self.state() {
            State::Closed => Ok(self.ticket(Admission::Counted)),
            State::HalfOpen => Ok(self.ticket(Admission::Uncounted)),
            State::Open => Err(self.open()),
        }
    }

    /// Admission by a state this breaker does not decide (the gateway-wide
    /// state of a cluster, see [`Breaker::follow`]): fails fast only while
    /// open; the outcome counts nowhere.
    pub fn admit_any(&self) -> Result<Ticket<'_>, StoreError> {
        match self.state() {
            State::Open => Err(self.open()),
            _ => Ok(self.ticket(Admission::Uncounted)),
        }
    }

    /// Take a state decided elsewhere (this breaker runs no task of its
    /// own), the next try due in `next_try` (for `Retry-After`).
    pub fn follow(&self, to: State, next_try: Duration) {
        let due = self.epoch.elapsed() + next_try;
        self.next_probe_ms
            .store(due.as_millis() as u64, Ordering::Relaxed);
        self.transition(to);
    }

    fn ticket(&self, kind: Admission) -> Ticket<'_> {
        Ticket {
            breaker: self,
            kind,
            reported: false,
        }
    }

    fn open(&self) -> StoreError {
        StoreError::CircuitOpen {
            retry_after: self.retry_after(),
        }
    }

    /// Time until the breaker next tries Redis, at least a second.
    fn retry_after(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        let due = self.next_probe_ms.load(Ordering::Relaxed);
        Duration::from_millis(due.saturating_sub(now).max(1_000))
    }

    /// Record what happened to an admitted call (see [`Ticket::report`]).
    pub fn report(&self, ticket: Ticket<'_>, ok: bool) {
        ticket.report(ok);
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
            let node = match &self.node {
                Some((addr, changed)) => {
                    METRICS
                        .breaker_node_state
                        .with_label_values(&[addr])
                        .set(to as u8 as i64);
                    changed.notify_one();
                    addr.as_str()
                }
                None => {
                    METRICS.breaker_state.set(to as u8 as i64);
                    METRICS
                        .breaker_transitions
                        .with_label_values(&[to.name()])
                        .inc();
                    ""
                }
            };
            let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back(Transition {
                at: std::time::SystemTime::now(),
                from,
                to,
            });
            drop(history);
            tracing::warn!(
                event = "breaker",
                from = from.name(),
                to = to.name(),
                node,
                "circuit breaker"
            );
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
                    // A wake may be stale (a call admitted before the breaker
                    // opened, reporting late): only a quiet interval means no
                    // traffic came to try.
                    let quiet = tokio::time::timeout(interval, self.wake.notified())
                        .await
                        .is_err();
                    if self.trial_failures.load(Ordering::Acquire) > 0 {
                        self.open_and_probe(&c, &probe).await;
                    } else if self.trial_successes.load(Ordering::Acquire) >= c.half_open_trials {
                        self.reset_counters();
                        self.transition(State::Closed);
                    } else if quiet
                        && self.trial_permits.load(Ordering::Acquire) == c.half_open_trials
                    {
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
        let opened = Instant::now();
        let interval = Duration::from_millis(c.probe_interval_ms);
        let longest = interval.max(Duration::from_millis(c.recovery_timeout_ms));
        let mut backoff = interval;
        loop {
            // Fast while the outage is young (most are short), then doubling.
            let delay = if opened.elapsed() < FAST_PROBES_FOR {
                interval
            } else {
                backoff = (backoff * 2).min(longest);
                backoff
            };
            let due = self.epoch.elapsed() + delay;
            self.next_probe_ms
                .store(due.as_millis() as u64, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            METRICS.breaker_probes.inc();
            if probe().await {
                break;
            }
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

    /// A breaker whose task probes a Redis that is up while `up` says so;
    /// the returned counter counts the probes.
    fn spawn_breaker(
        config: BreakerConfig,
        up: &Arc<AtomicBool>,
    ) -> (Arc<Breaker>, Arc<AtomicU32>) {
        let breaker = Breaker::new(config);
        let probes = Arc::new(AtomicU32::new(0));
        let (up, seen) = (up.clone(), probes.clone());
        tokio::spawn(breaker.clone().run(move || {
            let (up, seen) = (up.clone(), seen.clone());
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                up.load(Ordering::SeqCst)
            }
        }));
        (breaker, probes)
    }

    /// Admit and report `n` calls with outcome `ok`.
    fn calls(breaker: &Breaker, n: u32, ok: bool) {
        for _ in 0..n {
            let t = breaker.admit().expect("admitted");
            breaker.report(t, ok);
        }
    }

    /// Only the consecutive-failure rule, one probe a second, `trials` trials.
    fn by_threshold(failure_threshold: u32, trials: u32) -> BreakerConfig {
        BreakerConfig {
            failure_threshold,
            failure_rate: 1.0,
            window_ms: 10_000,
            min_calls: 1_000,
            probe_interval_ms: 1_000,
            recovery_timeout_ms: 8_000,
            half_open_trials: trials,
        }
    }

    /// Open the breaker by failures, then let a successful probe half-open it.
    async fn half_opened(config: BreakerConfig) -> (Arc<Breaker>, Arc<AtomicBool>, Arc<AtomicU32>) {
        let up = Arc::new(AtomicBool::new(true));
        let threshold = config.failure_threshold;
        let (breaker, probes) = spawn_breaker(config, &up);
        calls(&breaker, threshold, false);
        settle().await;
        assert_eq!(breaker.state(), State::Open);
        tokio::time::sleep(Duration::from_millis(1_001)).await;
        settle().await;
        assert_eq!(breaker.state(), State::HalfOpen);
        (breaker, up, probes)
    }

    fn retry_after(breaker: &Breaker) -> Duration {
        match breaker.admit() {
            Err(StoreError::CircuitOpen { retry_after }) => retry_after,
            other => panic!("expected a fast failure, got {other:?}"),
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

        // Probes: at the interval for the first 10 s, then doubling up to the cap.
        tokio::time::sleep(Duration::from_secs(27)).await;
        let want: Vec<u64> = (1..=10).chain([12, 16, 24]).collect();
        assert_eq!(*probes.lock().unwrap(), want);

        // The next probe (t = 32 s) succeeds.
        redis_up.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5_500)).await;
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
        let breaker = Breaker::new(BreakerConfig {
            probe_interval_ms: 1_000,
            ..BreakerConfig::default()
        });
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

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_open_it_and_a_success_restarts_the_count() {
        let up = Arc::new(AtomicBool::new(false));
        let (breaker, _) = spawn_breaker(by_threshold(3, 1), &up);
        calls(&breaker, 2, false);
        calls(&breaker, 1, true);
        calls(&breaker, 2, false);
        settle().await;
        assert_eq!(breaker.state(), State::Closed, "never 3 failures in a row");
        calls(&breaker, 1, false);
        settle().await;
        assert_eq!(breaker.state(), State::Open);
        assert!(breaker.admit().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn error_replies_do_not_count_as_failures() {
        // An error reply (WRONGTYPE, NOSCRIPT) is reported with ok = true.
        let up = Arc::new(AtomicBool::new(true));
        let (breaker, _) = spawn_breaker(
            BreakerConfig {
                failure_threshold: 2,
                min_calls: 2,
                ..BreakerConfig::default()
            },
            &up,
        );
        calls(&breaker, 50, true);
        settle().await;
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker.window_calls.load(Ordering::Relaxed), 50);
        assert_eq!(breaker.window_failures.load(Ordering::Relaxed), 0);
        assert_eq!(breaker.consecutive_failures.load(Ordering::Relaxed), 0);
        // ... while one transport failure among them is counted.
        calls(&breaker, 1, false);
        settle().await;
        assert_eq!(breaker.window_failures.load(Ordering::Relaxed), 1);
        assert_eq!(breaker.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn the_failure_rate_window_resets_at_its_boundary() {
        // Rate 0.5 over at least 10 calls in 10 s; consecutive failures never trip.
        let config = BreakerConfig {
            failure_threshold: 100,
            failure_rate: 0.5,
            window_ms: 10_000,
            min_calls: 10,
            ..BreakerConfig::default()
        };
        let burst = |breaker: &Breaker, pairs: u32| {
            for _ in 0..pairs {
                calls(breaker, 1, true);
                calls(breaker, 1, false);
            }
        };
        let up = Arc::new(AtomicBool::new(false));

        // Within one window: 6 calls at t = 1 s and 4 at t = 9 s, half failed: trips.
        let (inside, _) = spawn_breaker(config.clone(), &up);
        tokio::time::sleep(Duration::from_secs(1)).await;
        burst(&inside, 3);
        tokio::time::sleep(Duration::from_secs(8)).await;
        settle().await;
        assert_eq!(inside.state(), State::Closed);
        assert_eq!(inside.window_calls.load(Ordering::Relaxed), 6);
        burst(&inside, 2);
        settle().await;
        assert_eq!(inside.state(), State::Open);

        // The same calls split by the boundary at t = 10 s: the counters
        // start over, and 4 calls are under min_calls.
        let (split, _) = spawn_breaker(config, &up);
        settle().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        burst(&split, 3);
        settle().await;
        assert_eq!(split.window_calls.load(Ordering::Relaxed), 6);
        assert_eq!(split.window_failures.load(Ordering::Relaxed), 3);
        tokio::time::sleep(Duration::from_secs(10)).await;
        settle().await;
        assert_eq!(split.window_calls.load(Ordering::Relaxed), 0);
        assert_eq!(split.window_failures.load(Ordering::Relaxed), 0);
        assert_eq!(split.consecutive_failures.load(Ordering::Relaxed), 0);
        burst(&split, 2);
        settle().await;
        assert_eq!(split.state(), State::Closed);
        assert_eq!(split.window_calls.load(Ordering::Relaxed), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn open_stays_open_until_a_probe_succeeds_then_half_opens() {
        let up = Arc::new(AtomicBool::new(false));
        let (breaker, probes) = spawn_breaker(by_threshold(2, 1), &up);
        calls(&breaker, 2, false);
        settle().await;
        assert_eq!(breaker.state(), State::Open);
        assert_eq!(
            probes.load(Ordering::SeqCst),
            0,
            "the first probe waits an interval"
        );
        // Probes at 1 s and 2 s fail: still open.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        settle().await;
        assert_eq!(probes.load(Ordering::SeqCst), 2);
        assert_eq!(breaker.state(), State::Open);
        // The probe at 3 s succeeds.
        up.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        settle().await;
        assert_eq!(probes.load(Ordering::SeqCst), 3);
        assert_eq!(breaker.state(), State::HalfOpen);
        assert!(
            breaker.admit().is_ok(),
            "a half-open breaker admits a trial"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_closes_after_the_configured_successful_trials() {
        let (breaker, _, _) = half_opened(by_threshold(2, 3)).await;
        let mut trials: Vec<_> = (0..3).map(|_| breaker.admit().unwrap()).collect();
        assert!(breaker.admit().is_err(), "only half_open_trials permits");
        let last = trials.pop().unwrap();
        for trial in trials {
            breaker.report(trial, true);
        }
        settle().await;
        assert_eq!(breaker.state(), State::HalfOpen, "two of three trials");
        breaker.report(last, true);
        settle().await;
        assert_eq!(breaker.state(), State::Closed);
        // Closed again with clean counters: one failure does not reopen it.
        calls(&breaker, 1, false);
        settle().await;
        assert_eq!(breaker.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_reopens_even_after_successes_and_probing_resumes() {
        let (breaker, up, probes) = half_opened(by_threshold(2, 3)).await;
        let (a, b) = (breaker.admit().unwrap(), breaker.admit().unwrap());
        breaker.report(a, true);
        up.store(false, Ordering::SeqCst);
        breaker.report(b, false);
        settle().await;
        assert_eq!(breaker.state(), State::Open);
        assert!(breaker.admit().is_err(), "the unused permit is withdrawn");
        let before = probes.load(Ordering::SeqCst);
        up.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1_001)).await;
        settle().await;
        assert_eq!(probes.load(Ordering::SeqCst), before + 1);
        assert_eq!(breaker.state(), State::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_without_traffic_is_closed_by_a_successful_probe() {
        let (breaker, _, probes) = half_opened(by_threshold(2, 3)).await;
        let before = probes.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(500)).await;
        settle().await;
        assert_eq!(breaker.state(), State::HalfOpen, "not before an interval");
        tokio::time::sleep(Duration::from_millis(600)).await;
        settle().await;
        assert_eq!(probes.load(Ordering::SeqCst), before + 1);
        assert_eq!(breaker.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_without_traffic_is_reopened_by_a_failed_probe() {
        let (breaker, up, probes) = half_opened(by_threshold(2, 3)).await;
        let before = probes.load(Ordering::SeqCst);
        up.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        settle().await;
        assert_eq!(probes.load(Ordering::SeqCst), before + 1);
        assert_eq!(breaker.state(), State::Open);
        assert!(breaker.admit().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_counts_down_to_the_next_probe_but_is_at_least_a_second() {
        let up = Arc::new(AtomicBool::new(false));
        let (breaker, _) = spawn_breaker(
            BreakerConfig {
                probe_interval_ms: 5_000,
                recovery_timeout_ms: 5_000,
                ..by_threshold(1, 1)
            },
            &up,
        );
        calls(&breaker, 1, false);
        settle().await;
        assert_eq!(retry_after(&breaker), Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(retry_after(&breaker), Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(1_800)).await;
        assert_eq!(
            retry_after(&breaker),
            Duration::from_secs(1),
            "never under 1 s"
        );

        // A probe due in 100 ms still says a second.
        let (fast, _) = spawn_breaker(
            BreakerConfig {
                probe_interval_ms: 100,
                ..by_threshold(1, 1)
            },
            &up,
        );
        calls(&fast, 1, false);
        settle().await;
        assert_eq!(retry_after(&fast), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_report_from_before_opening_does_not_cut_half_open_short() {
        let up = Arc::new(AtomicBool::new(true));
        let (breaker, probes) = spawn_breaker(by_threshold(2, 3), &up);
        let in_flight = breaker.admit().unwrap();
        calls(&breaker, 2, false);
        settle().await;
        assert_eq!(breaker.state(), State::Open);
        // The call admitted while closed fails while open.
        breaker.report(in_flight, false);
        tokio::time::sleep(Duration::from_millis(1_001)).await;
        settle().await;
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_eq!(probes.load(Ordering::SeqCst), 1);
        // Its wake must not count as a quiet interval: trials still decide.
        tokio::time::sleep(Duration::from_millis(500)).await;
        settle().await;
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_eq!(
            probes.load(Ordering::SeqCst),
            1,
            "no probe before a quiet interval"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_trial_dropped_mid_flight_gives_its_permit_back() {
        let (breaker, _up, probes) = half_opened(by_threshold(2, 1)).await;
        let trial = breaker.admit().expect("the one trial");
        assert!(breaker.admit().is_err(), "one permit only");
        // The client went away: the call never reports.
        drop(trial);
        let again = breaker.admit().expect("the permit came back");
        breaker.report(again, true);
        settle().await;
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(
            probes.load(Ordering::SeqCst),
            1,
            "closed by the trial, not a probe"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_trial_leaves_half_open_to_a_probe_not_stuck() {
        let (breaker, _up, probes) = half_opened(by_threshold(2, 1)).await;
        drop(breaker.admit().expect("trial"));
        // A quiet interval later, a probe decides.
        tokio::time::sleep(Duration::from_millis(1_001)).await;
        settle().await;
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(probes.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn calls_that_never_report_count_nothing() {
        let up = Arc::new(AtomicBool::new(true));
        let (breaker, _) = spawn_breaker(by_threshold(2, 1), &up);
        calls(&breaker, 1, false);
        for _ in 0..10 {
            drop(breaker.admit().expect("closed"));
        }
        calls(&breaker, 1, false);
        settle().await;
        assert_eq!(
            breaker.state(),
            State::Open,
            "the two failures stay consecutive"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn blocking_reads_are_never_trials() {
        let (breaker, _up, _probes) = half_opened(by_threshold(2, 1)).await;
        let long_poll = breaker.admit_blocking().expect("let through");
        breaker.report(long_poll, false);
        let trial = breaker.admit().expect("the permit is still there");
        breaker.report(trial, true);
        settle().await;
        assert_eq!(
            breaker.state(),
            State::Closed,
            "the long-poll's failure had no say"
        );

        let up = Arc::new(AtomicBool::new(false));
        let (open, _) = spawn_breaker(by_threshold(1, 1), &up);
        calls(&open, 1, false);
        settle().await;
        assert!(matches!(
            open.admit_blocking(),
            Err(StoreError::CircuitOpen { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_outage_is_probed_at_the_interval_so_recovery_is_one_interval() {
        let up = Arc::new(AtomicBool::new(false));
        let (breaker, probes) = spawn_breaker(
            BreakerConfig {
                probe_interval_ms: 50,
                ..by_threshold(1, 1)
            },
            &up,
        );
        calls(&breaker, 1, false);
        settle().await;
        // Redis comes back 3 s into the outage; the breaker half-opens
        // within one interval.
        tokio::time::sleep(Duration::from_millis(3_000)).await;
        up.store(true, Ordering::SeqCst);
        assert_eq!(breaker.state(), State::Open);
        tokio::time::sleep(Duration::from_millis(51)).await;
        settle().await;
        assert_ne!(breaker.state(), State::Open, "back within one interval");
        let n = probes.load(Ordering::SeqCst);
        assert!((60..=62).contains(&n), "{n} probes in 3 s at 50 ms");
    }
}
