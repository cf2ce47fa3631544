//! A breaker per primary of a Redis Cluster, so that one failed primary
//! fails fast only the requests for keys in its slots.
//!
//! One task reads the slot map (`CLUSTER SLOTS`): every second while all is
//! well, every `breaker.probe_interval_ms` while a node's breaker is not
//! closed or no map is known, and as soon as a node's breaker changes state
//! (never twice within one interval). So a replica promoted in a failed
//! primary's place takes its slots — with a new, closed breaker — about one
//! interval after the cluster says so. A primary that no longer serves
//! slots loses its breaker, its probe task and its metric label: what the
//! task keeps is bounded by the primaries serving slots.
//!
//! The same map tells blocking reads which node to connect to and the near
//! cache which primaries to track: one reader of the topology, not three.
//!
//! The gateway-wide state (`sluice_breaker_state`, the status page) is
//! derived: closed while every primary's breaker is closed, open when every
//! one is open or no node answers, half-open in between — some keys fail
//! fast. Calls that name no key are refused only while it is open.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::BreakerConfig;
use crate::store::StoreError;
use crate::store::breaker::{Breaker, State};
use crate::telemetry::METRICS;

/// The pace while every primary's breaker is closed.
const SETTLED_EVERY: Duration = Duration::from_secs(1);

/// Slot ranges, as `CLUSTER SLOTS` gives them: first, last, primary address.
pub type SlotRanges = Vec<(u16, u16, String)>;

/// The primaries of a cluster and their breakers.
pub struct Nodes {
    /// Slot ranges sorted by first slot, each with its primary; `None`
    /// until the map is first read.
    map: ArcSwapOption<Vec<Range>>,
    /// A node's breaker changed state, or a call saw the topology move.
    changed: Arc<Notify>,
    config: std::sync::RwLock<BreakerConfig>,
}

struct Range {
    first: u16,
    last: u16,
    node: Arc<Node>,
}

/// One primary: its breaker and the task that probes it.
struct Node {
    addr: String,
    breaker: Arc<Breaker>,
    task: tokio::task::AbortHandle,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Nodes {
    pub fn new(config: BreakerConfig) -> Arc<Nodes> {
        Arc::new(Nodes {
            map: ArcSwapOption::empty(),
            changed: Arc::new(Notify::new()),
            config: std::sync::RwLock::new(config),
        })
    }

    /// The breaker of the primary serving `slot`, once the map is known.
    pub fn breaker(&self, slot: u16) -> Option<Arc<Breaker>> {
        let map = self.map.load();
        find(map.as_deref()?, slot).map(|n| n.breaker.clone())
    }

    /// The address of the primary serving `slot`.
    pub fn addr(&self, slot: u16) -> Result<String, StoreError> {
        let map = self.map.load();
        let map = map
            .as_deref()
            .ok_or_else(|| StoreError::Unavailable("the cluster's slot map is not known".into()))?;
        find(map, slot)
            .map(|n| n.addr.clone())
            .ok_or_else(|| StoreError::Unavailable(format!("no primary serves slot {slot}")))
    }

    /// The primaries serving slots, by address (`None` before the map is
    /// first read).
    pub fn primaries(&self) -> Option<Vec<String>> {
        let map = self.map.load();
        let mut addrs: Vec<String> = map
            .as_deref()?
            .iter()
            .map(|r| r.node.addr.clone())
            .collect();
        addrs.sort();
        addrs.dedup();
        Some(addrs)
    }

    /// Each primary's breaker state, by address.
    pub fn states(&self) -> Vec<(String, State)> {
        let map = self.map.load();
        let mut out: Vec<(String, State)> = map
            .as_deref()
            .map_or(&[][..], |m| m.as_slice())
            .iter()
            .map(|r| (r.node.addr.clone(), r.node.breaker.state()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// A call found a node gone: read the map again soon.
    pub fn moved(&self) {
        self.changed.notify_one();
    }

    pub fn set_config(&self, config: BreakerConfig) {
        if let Some(map) = self.map.load().as_deref() {
            for r in map {
                r.node.breaker.set_config(config.clone());
            }
        }
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    fn config(&self) -> BreakerConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The task: reads the map with `read`, gives each primary a breaker
    /// whose task probes it with `probe(addr)`, and sets `whole` (a breaker
    /// that runs no task of its own) to the gateway-wide state.
    pub async fn run<R, RF, P, PF>(self: Arc<Self>, whole: Arc<Breaker>, read: R, probe: P)
    where
        R: Fn() -> RF,
        RF: Future<Output = Result<SlotRanges, StoreError>>,
        P: Fn(String) -> PF + Clone + Send + Sync + 'static,
        PF: Future<Output = bool> + Send + 'static,
    {
        let mut last_read: Option<Instant> = None;
        loop {
            let c = self.config();
            let interval = Duration::from_millis(c.probe_interval_ms);
            if let Some(at) = last_read {
                let settled = self.whole() == State::Closed;
                let every = if settled { SETTLED_EVERY } else { interval };
                let _ = tokio::time::timeout(every, self.changed.notified()).await;
                // Checked: `probe_interval_ms` has no upper bound.
                if let Some(next) = at.checked_add(interval) {
                    tokio::time::sleep_until(next).await;
                }
            }
            last_read = Some(Instant::now());
            match read().await {
                Ok(ranges) => self.update(ranges, &c, &probe),
                Err(e) => tracing::debug!(error = %e, "cannot read the cluster's slot map"),
            }
            let state = self.whole();
            let next = if state == State::Closed {
                SETTLED_EVERY
            } else {
                interval
            };
            whole.follow(state, next);
        }
    }

    /// The gateway-wide state, from the primaries' breakers.
    fn whole(&self) -> State {
        let map = self.map.load();
        match map.as_deref() {
            None => State::Open,
            Some(map) => whole(map.iter().map(|r| r.node.breaker.state())),
        }
    }

    /// Take a newly read map: unchanged, nothing happens; otherwise each
    /// primary keeps its breaker, a new one gets a closed breaker, and one
    /// gone loses its (its task ends with the last range naming it).
    fn update<P, PF>(&self, mut ranges: SlotRanges, c: &BreakerConfig, probe: &P)
    where
        P: Fn(String) -> PF + Clone + Send + Sync + 'static,
        PF: Future<Output = bool> + Send + 'static,
    {
        ranges.sort();
        let old = self.map.load_full();
        let old: &[Range] = old.as_deref().map_or(&[], |m| m.as_slice());
        let same = old.len() == ranges.len()
            && old.iter().zip(&ranges).all(|(r, (first, last, addr))| {
                (r.first, r.last) == (*first, *last) && r.node.addr == *addr
            });
        if same {
            return;
        }
        let mut nodes: Vec<Arc<Node>> = Vec::new();
        let mut map = Vec::with_capacity(ranges.len());
        for (first, last, addr) in ranges {
            let node = match nodes
                .iter()
                .chain(old.iter().map(|r| &r.node))
                .find(|n| n.addr == addr)
            {
                Some(n) => n.clone(),
                None => {
                    let breaker = Breaker::for_node(c.clone(), &addr, self.changed.clone());
                    let (probe, at) = (probe.clone(), addr.clone());
                    let task = tokio::spawn(breaker.clone().run(move || probe(at.clone())));
                    Arc::new(Node {
                        addr,
                        breaker,
                        task: task.abort_handle(),
                    })
                }
            };
            if !nodes.iter().any(|n| Arc::ptr_eq(n, &node)) {
                nodes.push(node.clone());
            }
            map.push(Range { first, last, node });
        }
        for gone in old
            .iter()
            .filter(|r| !nodes.iter().any(|n| n.addr == r.node.addr))
        {
            let _ = METRICS
                .breaker_node_state
                .remove_label_values(&[&gone.node.addr]);
        }
        tracing::info!(
            primaries = nodes.len(),
            ranges = map.len(),
            "cluster slot map"
        );
        self.map.store(Some(Arc::new(map)));
    }
}

/// The range holding `slot`, in ranges sorted by first slot.
fn find(map: &[Range], slot: u16) -> Option<&Node> {
    let i = map.partition_point(|r| r.first <= slot).checked_sub(1)?;
    let r = &map[i];
    (slot <= r.last).then_some(&*r.node)
}

/// Closed while every breaker is, open when every one is (or there are
/// none), half-open in between.
fn whole(states: impl Iterator<Item = State>) -> State {
    let (mut any, mut open, mut closed) = (false, true, true);
    for s in states {
        any = true;
        open &= s == State::Open;
        closed &= s == State::Closed;
    }
    match (any, open, closed) {
        (false, _, _) => State::Open,
        (_, true, _) => State::Open,
        (_, _, true) => State::Closed,
        _ => State::HalfOpen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn the_whole_is_closed_open_or_in_between() {
        use State::*;
        assert_eq!(whole([Closed, Closed].into_iter()), Closed);
        assert_eq!(whole([Open, Open].into_iter()), Open);
        assert_eq!(whole([Closed, Open].into_iter()), HalfOpen);
        assert_eq!(whole([Closed, HalfOpen].into_iter()), HalfOpen);
        assert_eq!(whole(std::iter::empty()), Open, "no primary known");
    }

    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_threshold: 3,
            probe_interval_ms: 50,
            ..BreakerConfig::default()
        }
    }

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    fn fail(breaker: &Breaker, n: u32) {
        for _ in 0..n {
            let t = breaker.admit().expect("admitted");
            t.report(false);
        }
    }

    /// A cluster whose slot map and live nodes the test sets.
    #[derive(Clone, Default)]
    struct Fake {
        map: Arc<Mutex<Option<SlotRanges>>>,
        down: Arc<Mutex<Vec<String>>>,
        reads: Arc<std::sync::atomic::AtomicU32>,
    }

    impl Fake {
        fn set(&self, map: &[(u16, u16, &str)]) {
            let map = map
                .iter()
                .map(|(a, b, n)| (*a, *b, n.to_string()))
                .collect();
            *self.map.lock().unwrap() = Some(map);
        }

        fn spawn(&self, nodes: &Arc<Nodes>) -> Arc<Breaker> {
            let whole = Breaker::new(config());
            let (map, reads) = (self.map.clone(), self.reads.clone());
            let read = move || {
                reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let map = map.lock().unwrap().clone();
                async move { map.ok_or(StoreError::Unavailable("down".into())) }
            };
            let down = self.down.clone();
            let probe = move |addr: String| {
                let up = !down.lock().unwrap().contains(&addr);
                async move { up }
            };
            tokio::spawn(nodes.clone().run(whole.clone(), read, probe));
            whole
        }
    }

    const THREE: [(u16, u16, &str); 3] = [
        (0, 5460, "a:1"),
        (5461, 10922, "b:1"),
        (10923, 16383, "c:1"),
    ];

    /// Three primaries, their map read.
    async fn three() -> (Fake, Arc<Nodes>, Arc<Breaker>) {
        let fake = Fake::default();
        fake.set(&THREE);
        let nodes = Nodes::new(config());
        let whole = fake.spawn(&nodes);
        settle().await;
        (fake, nodes, whole)
    }

    #[tokio::test(start_paused = true)]
    async fn one_failed_primary_fails_fast_only_its_slots_until_its_replica_takes_them() {
        let (fake, nodes, whole) = three().await;
        assert_eq!(nodes.addr(5461).unwrap(), "b:1");
        assert_eq!(nodes.addr(16383).unwrap(), "c:1");
        assert_eq!(whole.state(), State::Closed);

        // b fails: its slots fail fast, a's and c's do not.
        fake.down.lock().unwrap().push("b:1".into());
        fail(&nodes.breaker(6000).unwrap(), 3);
        settle().await;
        assert!(nodes.breaker(6000).unwrap().admit().is_err());
        assert!(nodes.breaker(0).unwrap().admit().is_ok());
        assert!(nodes.breaker(12000).unwrap().admit().is_ok());
        tokio::time::sleep(Duration::from_millis(60)).await;
        settle().await;
        assert_eq!(whole.state(), State::HalfOpen, "some keys fail fast");
        assert!(whole.admit_any().is_ok(), "a call naming no key goes on");

        // Its replica is promoted: the map names it within an interval,
        // with a closed breaker; b's breaker is gone.
        fake.set(&[
            (0, 5460, "a:1"),
            (5461, 10922, "d:1"),
            (10923, 16383, "c:1"),
        ]);
        tokio::time::sleep(Duration::from_millis(110)).await;
        settle().await;
        assert_eq!(nodes.addr(6000).unwrap(), "d:1");
        assert!(nodes.breaker(6000).unwrap().admit().is_ok());
        assert_eq!(
            nodes.primaries().unwrap(),
            vec!["a:1".to_string(), "c:1".into(), "d:1".into()]
        );
        assert_eq!(whole.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn every_primary_down_or_no_map_is_open() {
        let fake = Fake::default();
        let nodes = Nodes::new(config());
        let whole = fake.spawn(&nodes);
        settle().await;
        assert_eq!(whole.state(), State::Open, "no map read yet");
        assert!(whole.admit_any().is_err());
        assert!(nodes.addr(0).is_err());

        fake.set(&THREE);
        tokio::time::sleep(Duration::from_millis(60)).await;
        settle().await;
        assert_eq!(whole.state(), State::Closed);
        *fake.down.lock().unwrap() = vec!["a:1".into(), "b:1".into(), "c:1".into()];
        for slot in [0, 6000, 12000] {
            fail(&nodes.breaker(slot).unwrap(), 3);
        }
        settle().await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        settle().await;
        assert_eq!(whole.state(), State::Open);
        assert!(whole.admit_any().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_settled_cluster_is_read_once_a_second_and_kept_as_it_was() {
        let (fake, nodes, _whole) = three().await;
        let b = nodes.breaker(6000).unwrap();
        let reads = || fake.reads.load(std::sync::atomic::Ordering::SeqCst);
        let before = reads();
        tokio::time::sleep(Duration::from_millis(10_050)).await;
        settle().await;
        assert_eq!(reads() - before, 10);
        assert!(
            Arc::ptr_eq(&b, &nodes.breaker(6000).unwrap()),
            "same breaker"
        );
        // A burst of "moved" hints reads at most once an interval.
        let before = reads();
        for _ in 0..100 {
            nodes.moved();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(reads() - before <= 3, "{} reads", reads() - before);
    }

    #[tokio::test]
    async fn a_slot_is_found_in_its_range_and_nowhere_else() {
        let node = |addr: &str| {
            Arc::new(Node {
                addr: addr.into(),
                breaker: Breaker::new(BreakerConfig::default()),
                task: tokio::spawn(async {}).abort_handle(),
            })
        };
        let map = vec![
            Range {
                first: 0,
                last: 99,
                node: node("a"),
            },
            Range {
                first: 200,
                last: 299,
                node: node("b"),
            },
        ];
        assert_eq!(find(&map, 0).map(|n| n.addr.as_str()), Some("a"));
        assert_eq!(find(&map, 99).map(|n| n.addr.as_str()), Some("a"));
        assert!(find(&map, 100).is_none(), "a gap in the map");
        assert_eq!(find(&map, 250).map(|n| n.addr.as_str()), Some("b"));
        assert!(find(&map, 300).is_none());
        assert!(find(&[], 0).is_none());
    }
}
