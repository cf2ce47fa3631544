//! The way every call goes to Redis, in one small layer: admission by the
//! breaker that serves it, the command deadline, NOSCRIPT recovery, and the
//! outcome reported back to that breaker. It is generic over the connection
//! so that the order of those steps is tested here, with a fake connection
//! on tokio's paused clock; the backends only say which connection and
//! which breaker serve a call.

use super::breaker::{self, Breaker};
use super::error::{StoreError, is_noscript, is_transport};
use super::scripts::Scripts;
use crate::telemetry::METRICS;
use redis::{Pipeline, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Something a pipeline is sent on, shared by many calls: a lane of the
/// pool, the cluster client.
pub(super) trait Connection: Sync {
    /// Send `pipe` in one round trip: every command's reply, error replies
    /// in place. A transport failure marks what failed so that the next
    /// call does not reuse it.
    fn send(&self, pipe: &Pipeline) -> impl Future<Output = Result<Vec<Value>, StoreError>> + Send;
}

/// A connection one caller holds alone (a blocking read): it may not be
/// reused after a command that did not finish.
pub(super) trait Held: Send {
    fn query<'a>(
        &'a mut self,
        pipe: &'a Pipeline,
    ) -> impl Future<Output = Result<Vec<Value>, redis::RedisError>> + Send + 'a;
    /// Nobody may use this connection again.
    fn mark_broken(&mut self);
}

/// Which breaker admits a call.
pub(super) enum Gate<'s> {
    /// The one breaker of a single Redis.
    Whole(&'s Breaker),
    /// On a cluster, the breaker of the primary serving the call's slot.
    Node(Arc<Breaker>),
    /// On a cluster, a call that names no key (or before the slot map is
    /// known): refused only while the gateway-wide state is open, and its
    /// outcome counts nowhere.
    Any(&'s Breaker),
}

impl Gate<'_> {
    /// The cluster node that serves the call, when known (for its span).
    fn node(&self) -> Option<&str> {
        match self {
            Gate::Node(b) => b.addr(),
            Gate::Whole(_) | Gate::Any(_) => None,
        }
    }

    /// Admit a call; `blocking`: one that holds its connection (never a
    /// half-open trial).
    fn admit(&self, blocking: bool) -> Result<breaker::Ticket<'_>, StoreError> {
        let admitted = match (self, blocking) {
            (Gate::Whole(b), false) => b.admit(),
            (Gate::Node(b), false) => b.admit(),
            (Gate::Whole(b), true) => b.admit_blocking(),
            (Gate::Node(b), true) => b.admit_blocking(),
            (Gate::Any(b), _) => b.admit_any(),
        };
        admitted.inspect_err(|_| METRICS.breaker_rejected.inc())
    }
}

/// One call: admitted by `gate`, sent on `conn` within `deadline` (one
/// round trip; two when NOSCRIPT must be recovered), its outcome reported.
pub(super) async fn call(
    gate: &Gate<'_>,
    conn: &impl Connection,
    pipe: &Pipeline,
    scripts: &Scripts,
    deadline: Duration,
) -> Result<Vec<Value>, StoreError> {
    let ticket = gate.admit(false)?;
    let result = tokio::time::timeout(deadline, recover(conn, pipe, scripts, gate.node()))
        .await
        .unwrap_or(Err(StoreError::Timeout(deadline)));
    settle(ticket, &result);
    result
}

/// Send `pipe`; if Redis lost the scripts (SCRIPT FLUSH, a restart, a
/// failover), load them and re-run just the calls that failed, once.
async fn recover(
    conn: &impl Connection,
    pipe: &Pipeline,
    scripts: &Scripts,
    node: Option<&str>,
) -> Result<Vec<Value>, StoreError> {
    let mut replies = round_trip(conn, pipe, node).await?;
    let failed: Vec<usize> = (replies.iter().enumerate())
        .filter(|(_, v)| is_noscript(v))
        .map(|(i, _)| i)
        .collect();
    if failed.is_empty() {
        return Ok(replies);
    }
    let cmds: Vec<&redis::Cmd> = pipe.cmd_iter().collect();
    let mut retry = scripts.load_all_pipeline();
    METRICS.script_loads.inc_by(scripts.all().count() as u64);
    for &i in &failed {
        if let Some(cmd) = cmds.get(i) {
            retry.add_command((*cmd).clone());
        }
    }
    let again = round_trip(conn, &retry, node).await?;
    METRICS.noscript_recoveries.inc_by(failed.len() as u64);
    for (i, v) in failed.into_iter().zip(again) {
        replies[i] = v;
    }
    Ok(replies)
}

/// One round trip, in a span of its own when the request is traced (a
/// round trip cut short by the deadline ends its span when dropped).
async fn round_trip(
    conn: &impl Connection,
    pipe: &Pipeline,
    node: Option<&str>,
) -> Result<Vec<Value>, StoreError> {
    METRICS.round_trips.inc();
    METRICS.pipeline_commands.observe(pipe.len() as f64);
    let mut span = crate::traces::redis(pipe, node);
    let result = conn.send(pipe).await;
    traced(&mut span, &result);
    result
}

/// A round trip's outcome on its span: a failure's kind, never its message.
fn traced<T>(span: &mut Option<crate::traces::Child>, result: &Result<T, StoreError>) {
    if let (Some(span), Err(e)) = (span, result) {
        span.failed(e.kind());
    }
}

/// A call that holds a connection of its own (from `open`) while Redis
/// waits up to `holds_for` for something to answer with: never a half-open
/// trial; `deadline` to get the connection, `deadline + holds_for` for the
/// command. A command that did not finish — timed out, failed on the wire,
/// or its caller went away — leaves the connection to nobody.
pub(super) async fn hold<C: Held>(
    gate: &Gate<'_>,
    open: impl Future<Output = Result<C, StoreError>>,
    pipe: &Pipeline,
    deadline: Duration,
    holds_for: Duration,
) -> Result<Vec<Value>, StoreError> {
    let ticket = gate.admit(true)?;
    let result = async {
        let conn = tokio::time::timeout(deadline, open)
            .await
            .unwrap_or(Err(StoreError::Timeout(deadline)))?;
        METRICS.round_trips.inc();
        METRICS.pipeline_commands.observe(pipe.len() as f64);
        let limit = deadline + holds_for;
        let mut armed = Unfinished(conn, true);
        let mut span = crate::traces::redis(pipe, gate.node());
        let result = match tokio::time::timeout(limit, armed.0.query(pipe)).await {
            Ok(Ok(v)) => {
                armed.1 = false;
                Ok(v)
            }
            Ok(Err(e)) => {
                armed.1 = is_transport(&e);
                Err(e.into())
            }
            // A reply may still come on this connection.
            Err(_) => Err(StoreError::Timeout(limit)),
        };
        traced(&mut span, &result);
        result
    }
    .await;
    settle(ticket, &result);
    result
}

/// A connection held alone across round trips (a read under `WATCH`, then
/// its `MULTI`…`EXEC`), each admitted by the breaker and bounded by the
/// deadline. Until [`Session::clean`] says its state is the pool's again
/// (after `EXEC` or `UNWATCH` answered), dropping it — an error, a
/// cancelled request — leaves the connection to nobody, so no `WATCH`
/// outlives its request on a connection another caller gets.
pub(super) struct Session<'g, C: Held> {
    gate: Gate<'g>,
    conn: Unfinished<C>,
    deadline: Duration,
}

/// Open a session on a connection from `open` (waited for within `deadline`).
pub(super) async fn session<'g, C: Held>(
    gate: Gate<'g>,
    open: impl Future<Output = Result<C, StoreError>>,
    deadline: Duration,
) -> Result<Session<'g, C>, StoreError> {
    gate.admit(false).map(drop)?;
    let conn = tokio::time::timeout(deadline, open)
        .await
        .unwrap_or(Err(StoreError::Timeout(deadline)))?;
    Ok(Session {
        gate,
        conn: Unfinished(conn, true),
        deadline,
    })
}

impl<C: Held> Session<'_, C> {
    /// One round trip: every command's reply, error replies in place.
    pub async fn query(&mut self, pipe: &Pipeline) -> Result<Vec<Value>, StoreError> {
        let ticket = self.gate.admit(false)?;
        METRICS.round_trips.inc();
        METRICS.pipeline_commands.observe(pipe.len() as f64);
        let mut span = crate::traces::redis(pipe, self.gate.node());
        let result = match tokio::time::timeout(self.deadline, self.conn.0.query(pipe)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(StoreError::Timeout(self.deadline)),
        };
        traced(&mut span, &result);
        settle(ticket, &result);
        result
    }

    /// The connection holds nothing of this session's any more: it may go
    /// back to the pool when dropped.
    pub fn clean(&mut self) {
        self.conn.1 = false;
    }
}

/// A held connection, marked broken when dropped armed.
struct Unfinished<C: Held>(C, bool);

impl<C: Held> Drop for Unfinished<C> {
    fn drop(&mut self) {
        if self.1 {
            self.0.mark_broken();
        }
    }
}

/// Count what Redis did: a transport failure or timeout is a failure, any
/// answer (error replies included) a success; the gateway being busy or
/// failing its own rules is neither, and a call cancelled half-way never
/// gets here (its ticket is dropped unreported).
fn settle(ticket: breaker::Ticket<'_>, result: &Result<Vec<Value>, StoreError>) {
    match result {
        Err(StoreError::Busy(_) | StoreError::Internal(_)) => drop(ticket),
        Err(StoreError::Unavailable(_) | StoreError::Timeout(_)) => ticket.report(false),
        _ => ticket.report(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BreakerConfig;
    use crate::store::breaker::State;
    use crate::store::error::error_reply;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A connection that answers from a script: each round trip takes
    /// `delay`, then gives the next scripted answer; it records what was sent.
    #[derive(Default)]
    struct Fake {
        answers: Mutex<Vec<Result<Vec<Value>, StoreError>>>,
        sent: Mutex<Vec<Vec<String>>>,
        delay: Duration,
    }

    impl Fake {
        fn answering(answers: Vec<Result<Vec<Value>, StoreError>>) -> Fake {
            Fake {
                answers: Mutex::new(answers.into_iter().rev().collect()),
                ..Fake::default()
            }
        }

        fn sent(&self) -> Vec<Vec<String>> {
            self.sent.lock().unwrap().clone()
        }
    }

    impl Connection for Fake {
        async fn send(&self, pipe: &Pipeline) -> Result<Vec<Value>, StoreError> {
            let names = pipe
                .cmd_iter()
                .map(crate::store::plan::render)
                .map(|l| l.split(' ').next().unwrap_or("").to_owned())
                .collect();
            self.sent.lock().unwrap().push(names);
            tokio::time::sleep(self.delay).await;
            let next = self.answers.lock().unwrap().pop();
            next.unwrap_or_else(|| Err(StoreError::Unavailable("no answer scripted".into())))
        }
    }

    fn breaker() -> Arc<Breaker> {
        Breaker::new(BreakerConfig {
            failure_threshold: 2,
            ..BreakerConfig::default()
        })
    }

    fn get(keys: &[&str]) -> Pipeline {
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("GET").arg(*k);
        }
        pipe
    }

    const DEADLINE: Duration = Duration::from_millis(100);

    /// Let the breaker's task see what was reported.
    async fn settle_task() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_fails_fast_without_sending() {
        let (b, scripts) = (breaker(), Scripts::load(None).unwrap());
        tokio::spawn(b.clone().run(|| async { false }));
        let fake = Fake::answering(vec![]);
        for _ in 0..2 {
            let e = call(&Gate::Whole(&b), &fake, &get(&["a"]), &scripts, DEADLINE).await;
            assert!(matches!(e, Err(StoreError::Unavailable(_))));
        }
        settle_task().await;
        assert_eq!(b.state(), State::Open);
        let sent_before = fake.sent().len();
        let e = call(&Gate::Whole(&b), &fake, &get(&["a"]), &scripts, DEADLINE).await;
        assert!(matches!(e, Err(StoreError::CircuitOpen { .. })), "{e:?}");
        assert_eq!(fake.sent().len(), sent_before, "nothing sent while open");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_slower_than_the_deadline_times_out_and_counts_as_a_failure() {
        let (b, scripts) = (breaker(), Scripts::load(None).unwrap());
        tokio::spawn(b.clone().run(|| async { false }));
        let slow = Fake {
            delay: DEADLINE * 2,
            ..Fake::answering(vec![Ok(vec![Value::Nil]), Ok(vec![Value::Nil])])
        };
        let started = tokio::time::Instant::now();
        let e = call(&Gate::Whole(&b), &slow, &get(&["a"]), &scripts, DEADLINE).await;
        assert!(
            matches!(e, Err(StoreError::Timeout(d)) if d == DEADLINE),
            "{e:?}"
        );
        assert_eq!(
            started.elapsed(),
            DEADLINE,
            "the deadline, not the reply, ends it"
        );
        let _ = call(&Gate::Whole(&b), &slow, &get(&["a"]), &scripts, DEADLINE).await;
        settle_task().await;
        assert_eq!(
            b.state(),
            State::Open,
            "two timeouts trip a threshold of two"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn error_replies_are_answers_not_failures() {
        let (b, scripts) = (breaker(), Scripts::load(None).unwrap());
        tokio::spawn(b.clone().run(|| async { false }));
        let fake = Fake::answering(vec![Ok(vec![error_reply("WRONGTYPE")]); 3]);
        for _ in 0..3 {
            let replies = call(&Gate::Whole(&b), &fake, &get(&["a"]), &scripts, DEADLINE)
                .await
                .unwrap();
            assert_eq!(replies, [error_reply("WRONGTYPE")]);
        }
        settle_task().await;
        assert_eq!(b.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn noscript_loads_the_scripts_and_retries_only_the_failed_calls() {
        let (b, scripts) = (breaker(), Scripts::load(None).unwrap());
        let loads = scripts.all().count();
        // First round: the second of three commands lost its script.
        let first = vec![Value::Int(1), error_reply("NOSCRIPT"), Value::Int(3)];
        let again = vec![Value::Int(2)];
        let fake = Fake::answering(vec![Ok(first), Ok(again)]);
        let replies = call(
            &Gate::Whole(&b),
            &fake,
            &get(&["a", "b", "c"]),
            &scripts,
            DEADLINE,
        )
        .await
        .unwrap();
        assert_eq!(replies, [Value::Int(1), Value::Int(2), Value::Int(3)]);
        let sent = fake.sent();
        assert_eq!(sent.len(), 2, "one retry round trip");
        let mut expected = vec!["SCRIPT".to_owned(); loads];
        expected.push("GET".into());
        assert_eq!(sent[1], expected, "every script loaded, then the one call");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_naming_no_key_on_a_cluster_counts_nowhere() {
        let (scripts, whole) = (Scripts::load(None).unwrap(), breaker());
        let (failing, pipe, gate) = (Fake::answering(vec![]), get(&["a"]), Gate::Any(&whole));
        let any = || call(&gate, &failing, &pipe, &scripts, DEADLINE);
        for _ in 0..5 {
            let _ = any().await;
        }
        assert_eq!(whole.state(), State::Closed, "Any admits, reports nothing");
        whole.follow(State::Open, Duration::from_secs(1));
        assert!(matches!(any().await, Err(StoreError::CircuitOpen { .. })));
    }

    /// A held connection: answers after `delay`; remembers being marked.
    struct Own {
        delay: Duration,
        answer: Option<Result<Vec<Value>, redis::RedisError>>,
        broken: Arc<AtomicBool>,
    }

    impl Held for Own {
        async fn query(&mut self, _: &Pipeline) -> Result<Vec<Value>, redis::RedisError> {
            tokio::time::sleep(self.delay).await;
            self.answer.take().unwrap_or_else(|| Ok(vec![Value::Nil]))
        }
        fn mark_broken(&mut self) {
            self.broken.store(true, Ordering::Relaxed);
        }
    }

    fn own(
        delay: Duration,
        answer: Result<Vec<Value>, redis::RedisError>,
    ) -> (Own, Arc<AtomicBool>) {
        let broken = Arc::new(AtomicBool::new(false));
        let conn = Own {
            delay,
            answer: Some(answer),
            broken: broken.clone(),
        };
        (conn, broken)
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_call_may_wait_its_block_time_beyond_the_deadline() {
        let b = breaker();
        let block = Duration::from_secs(5);
        let (conn, broken) = own(block, Ok(vec![Value::Int(7)]));
        let got = hold(
            &Gate::Whole(&b),
            async { Ok(conn) },
            &get(&["s"]),
            DEADLINE,
            block,
        )
        .await
        .unwrap();
        assert_eq!(got, [Value::Int(7)]);
        assert!(
            !broken.load(Ordering::Relaxed),
            "finished: fit for the next user"
        );
        let (conn, broken) = own(block * 2, Ok(vec![]));
        let e = hold(
            &Gate::Whole(&b),
            async { Ok(conn) },
            &get(&["s"]),
            DEADLINE,
            block,
        )
        .await;
        assert!(
            matches!(e, Err(StoreError::Timeout(d)) if d == DEADLINE + block),
            "{e:?}"
        );
        assert!(
            broken.load(Ordering::Relaxed),
            "a late reply may still come"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_call_cancelled_half_way_leaves_its_connection_to_nobody() {
        let b = breaker();
        let (conn, broken) = own(Duration::from_secs(5), Ok(vec![]));
        let (gate, pipe) = (Gate::Whole(&b), get(&["s"]));
        let call = hold(&gate, async { Ok(conn) }, &pipe, DEADLINE, DEADLINE * 100);
        let cancelled = tokio::time::timeout(DEADLINE, call).await;
        assert!(cancelled.is_err());
        assert!(broken.load(Ordering::Relaxed));
        // An error reply finishes the command: the connection is fine.
        let refused = redis::RedisError::from((redis::ErrorKind::Client, "WRONGTYPE"));
        let (conn, broken) = own(Duration::ZERO, Err(refused));
        let e = hold(
            &Gate::Whole(&b),
            async { Ok(conn) },
            &get(&["s"]),
            DEADLINE,
            DEADLINE,
        )
        .await;
        assert!(matches!(e, Err(StoreError::Command(_))), "{e:?}");
        assert!(!broken.load(Ordering::Relaxed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_gateway_is_not_counted_against_redis() {
        let b = breaker();
        tokio::spawn(b.clone().run(|| async { false }));
        for _ in 0..5 {
            let busy = async { Err::<Own, _>(StoreError::Busy("all taken".into())) };
            let e = hold(&Gate::Whole(&b), busy, &get(&["s"]), DEADLINE, DEADLINE).await;
            assert!(matches!(e, Err(StoreError::Busy(_))));
        }
        settle_task().await;
        assert_eq!(b.state(), State::Closed);
    }
}
