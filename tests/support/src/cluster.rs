//! A local Redis Cluster: 3 primaries and 3 replicas on loopback ports.

use crate::process::{STARTUP, free_port, run_within, wait_until};
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Timing for a local cluster: a node is failed after this long without an
/// answer, and its replica may then be promoted.
pub const CLUSTER_NODE_TIMEOUT_MS: u64 = 1000;

/// How long a failover or a topology change may take to settle on a loaded
/// machine (node timeout, election, gossip).
pub const FAILOVER: Duration = Duration::from_secs(60);

/// One node of a [`Cluster`] as the live nodes see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The node id (`CLUSTER MYID`).
    pub id: String,
    /// For a replica, the address of its primary.
    pub primary: Option<String>,
    /// Inclusive slot ranges it serves (a replica: its primary's).
    pub slots: Vec<(u16, u16)>,
}

impl ClusterNode {
    pub fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
    }
}

/// A process of a [`Cluster`]: its port, its own dir (nodes.conf), its child.
struct ClusterProcess {
    port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl ClusterProcess {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A Redis Cluster of this test's own: 3 primaries and 3 replicas, each a
/// redis-server on a free loopback port (`redis://127.0.0.1:PORT`, no
/// password) in a temp dir of its own. [`Cluster::start`] returns once every
/// node says `cluster_state:ok`, every slot is covered, every replica's link
/// to its primary is up and every node sees the same topology, also in
/// `CLUSTER SLOTS` (what a cluster client reads). All killed on drop.
///
/// `cluster-require-full-coverage no`: while a primary is down, only its
/// slots fail (the gateway's failover tests rely on it); and
/// `cluster-replica-validity-factor 0`: a replica always stands for
/// promotion, however long a loaded machine kept it from its primary.
pub struct Cluster {
    nodes: Vec<ClusterProcess>,
    /// Killed primary's address → the addresses of its replicas then.
    replicas_of_killed: Vec<(String, Vec<String>)>,
}

/// `n` distinct free loopback ports.
fn free_ports(n: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::with_capacity(n);
    while ports.len() < n {
        let p = free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

/// A field of an `INFO` or `CLUSTER INFO` text (`field:value` lines).
fn info_field(text: &str, field: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// A node's line of `CLUSTER NODES`, as far as the topology goes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct NodesLine {
    id: String,
    addr: String,
    primary: bool,
    /// For a replica, its primary's id.
    primary_id: Option<String>,
    slots: Vec<(u16, u16)>,
    /// `fail` or `fail?` in the flags: not part of the comparison of views.
    failing: bool,
}

fn parse_cluster_nodes(text: &str) -> Vec<NodesLine> {
    let mut lines: Vec<NodesLine> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 8, "a CLUSTER NODES line: {l}");
            // ip:port@cport[,hostname]
            let addr = f[1].split('@').next().unwrap_or(f[1]).to_owned();
            let flags: Vec<&str> = f[2].split(',').collect();
            let slots = f[8..]
                .iter()
                // "[slot->-id]" / "[slot-<-id]": a slot being moved, not served here.
                .filter(|s| !s.starts_with('['))
                .map(|s| {
                    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
                    (
                        lo.parse().expect("slot number"),
                        hi.parse().expect("slot number"),
                    )
                })
                .collect();
            NodesLine {
                id: f[0].to_owned(),
                addr,
                primary: flags.contains(&"master"),
                primary_id: (f[3] != "-").then(|| f[3].to_owned()),
                slots,
                failing: flags.iter().any(|&fl| fl == "fail" || fl == "fail?"),
            }
        })
        .collect();
    lines.sort();
    lines
}

impl Cluster {
    /// Start 6 nodes, create the cluster with one replica per primary and
    /// wait until it is whole and every node agrees on it.
    pub fn start() -> Cluster {
        let ports = free_ports(12);
        let mut cluster = Cluster {
            nodes: Vec::new(),
            replicas_of_killed: Vec::new(),
        };
        for pair in ports.chunks(2) {
            let dir = tempfile::tempdir().expect("temp dir");
            let child = Command::new("redis-server")
                .arg("--port")
                .arg(pair[0].to_string())
                // The bus port: a free one, not port + 10000 (which may pass 65535).
                .arg("--cluster-port")
                .arg(pair[1].to_string())
                .args(["--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .arg("--cluster-node-timeout")
                .arg(CLUSTER_NODE_TIMEOUT_MS.to_string())
                .args(["--cluster-require-full-coverage", "no"])
                .args(["--cluster-replica-validity-factor", "0"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .arg("--logfile")
                .arg(dir.path().join("redis.log"))
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (make test installs it)");
            cluster.nodes.push(ClusterProcess {
                port: pair[0],
                child: Some(child),
                dir,
            });
        }
        for i in 0..cluster.nodes.len() {
            let addr = cluster.nodes[i].addr();
            wait_until(
                &format!("cluster node {addr} to answer PING"),
                STARTUP,
                || {
                    cluster.assert_running(i);
                    cluster.ping(&addr)
                },
            );
        }
        let mut create = Command::new("redis-cli");
        create
            .arg("--cluster")
            .arg("create")
            .args(cluster.nodes.iter().map(ClusterProcess::addr))
            .args(["--cluster-replicas", "1", "--cluster-yes"]);
        let (ok, out, err) = run_within(create, STARTUP * 2);
        assert!(ok, "redis-cli --cluster create failed:\n{out}\n{err}");
        cluster.wait_whole("the new cluster to be whole");
        cluster
    }

    /// Panics with the node's log when its process exited.
    fn assert_running(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(child) = node.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let log =
                std::fs::read_to_string(node.dir.path().join("redis.log")).unwrap_or_default();
            panic!(
                "cluster node {} exited ({status}); its log:\n{log}",
                node.addr()
            );
        }
    }

    fn live(&self) -> impl Iterator<Item = &ClusterProcess> {
        self.nodes.iter().filter(|n| n.child.is_some())
    }

    fn try_conn(&self, addr: &str) -> Option<redis::Connection> {
        let client = redis::Client::open(format!("redis://{addr}")).ok()?;
        let conn = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        Some(conn)
    }

    fn ping(&self, addr: &str) -> bool {
        self.try_conn(addr)
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).ok())
            .is_some()
    }

    /// A text command's answer from the node at `addr`, if it answers.
    fn text(&self, addr: &str, cmd: &[&str]) -> Option<String> {
        let mut c = self.try_conn(addr)?;
        let mut command = redis::cmd(cmd[0]);
        for a in &cmd[1..] {
            command.arg(*a);
        }
        command.query(&mut c).ok()
    }

    /// Whether every live node says the cluster is ok with every slot
    /// served, every live replica's link is up, and every live node sees the
    /// same topology of the live nodes and lists them all in CLUSTER SLOTS.
    fn is_whole(&self) -> bool {
        let mut views = Vec::new();
        let killed = self.killed_ids();
        let live: BTreeSet<String> = self.live().map(ClusterProcess::addr).collect();
        for node in self.live() {
            let addr = node.addr();
            let Some(info) = self.text(&addr, &["CLUSTER", "INFO"]) else {
                return false;
            };
            let ok = info_field(&info, "cluster_state").as_deref() == Some("ok")
                && info_field(&info, "cluster_slots_ok").as_deref() == Some("16384");
            if !ok {
                return false;
            }
            let Some(replication) = self.text(&addr, &["INFO", "replication"]) else {
                return false;
            };
            if info_field(&replication, "role").as_deref() == Some("slave")
                && info_field(&replication, "master_link_status").as_deref() != Some("up")
            {
                return false;
            }
            let Some(nodes) = self.text(&addr, &["CLUSTER", "NODES"]) else {
                return false;
            };
            let view: Vec<NodesLine> = parse_cluster_nodes(&nodes)
                .into_iter()
                .filter(|l| !killed.contains(&l.id))
                .collect();
            // A live node some node still holds failing, or a node missing.
            if view.len() != self.live().count() || view.iter().any(|l| l.failing) {
                return false;
            }
            // What a cluster client reads: Redis leaves a replica out of
            // CLUSTER SLOTS for a few seconds after its first sync.
            if self.cluster_slots_nodes(&addr) != Some(live.clone()) {
                return false;
            }
            views.push(view);
        }
        views.windows(2).all(|w| w[0] == w[1])
    }

    /// Every `ip:port` the node at `addr` lists in `CLUSTER SLOTS`.
    fn cluster_slots_nodes(&self, addr: &str) -> Option<BTreeSet<String>> {
        let mut c = self.try_conn(addr)?;
        let ranges: Vec<Vec<redis::Value>> =
            redis::cmd("CLUSTER").arg("SLOTS").query(&mut c).ok()?;
        let mut nodes = BTreeSet::new();
        for range in ranges {
            // [start, end, [ip, port, id, ...] of the primary, then of each replica]
            for node in range.into_iter().skip(2) {
                let redis::Value::Array(fields) = node else {
                    return None;
                };
                let ip: String = redis::from_redis_value_ref(fields.first()?).ok()?;
                let port: u16 = redis::from_redis_value_ref(fields.get(1)?).ok()?;
                nodes.insert(format!("{ip}:{port}"));
            }
        }
        Some(nodes)
    }

    fn wait_whole(&self, what: &str) {
        let deadline = Instant::now() + FAILOVER;
        while !self.is_whole() {
            if Instant::now() >= deadline {
                let views: Vec<String> = self
                    .live()
                    .map(|n| {
                        let a = n.addr();
                        let info = self.text(&a, &["CLUSTER", "INFO"]).unwrap_or_default();
                        let nodes = self.text(&a, &["CLUSTER", "NODES"]).unwrap_or_default();
                        format!("{a}:\n{info}\n{nodes}")
                    })
                    .collect();
                panic!(
                    "timed out waiting for {what}; the nodes say:\n{}",
                    views.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The ids of the nodes [`Cluster::kill`] killed, as the others know them.
    fn killed_ids(&self) -> Vec<String> {
        let killed: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.child.is_none())
            .map(ClusterProcess::addr)
            .collect();
        if killed.is_empty() {
            return killed;
        }
        self.live()
            .find_map(|n| self.text(&n.addr(), &["CLUSTER", "NODES"]))
            .map(|t| {
                parse_cluster_nodes(&t)
                    .into_iter()
                    .filter(|l| killed.contains(&l.addr))
                    .map(|l| l.id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The live nodes as the first live node that answers sees them.
    fn topology(&self) -> Vec<ClusterNode> {
        let killed = self.killed_ids();
        let text = self
            .live()
            .find_map(|n| self.text(&n.addr(), &["CLUSTER", "NODES"]))
            .expect("no cluster node answers CLUSTER NODES");
        let lines: Vec<NodesLine> = parse_cluster_nodes(&text)
            .into_iter()
            .filter(|l| !killed.contains(&l.id))
            .collect();
        let by_id = |id: &str| lines.iter().find(|l| l.id == id);
        let mut nodes: Vec<ClusterNode> = lines
            .iter()
            .map(|l| {
                let primary = l.primary_id.as_deref().and_then(by_id);
                ClusterNode {
                    addr: l.addr.clone(),
                    id: l.id.clone(),
                    primary: primary.map(|p| p.addr.clone()),
                    slots: match primary {
                        Some(p) => p.slots.clone(),
                        None => l.slots.clone(),
                    },
                }
            })
            .collect();
        nodes.sort_by(|a, b| a.slots.cmp(&b.slots).then(a.addr.cmp(&b.addr)));
        nodes
    }

    /// `redis://127.0.0.1:PORT` of every live node: a cluster client's seeds.
    pub fn seeds(&self) -> Vec<String> {
        self.live()
            .map(|n| format!("redis://{}", n.addr()))
            .collect()
    }

    /// The live primaries that serve slots, by slot order.
    pub fn primaries(&self) -> Vec<ClusterNode> {
        self.topology()
            .into_iter()
            .filter(|n| n.primary.is_none() && !n.slots.is_empty())
            .collect()
    }

    /// The live replicas, by their primaries' slot order.
    pub fn replicas(&self) -> Vec<ClusterNode> {
        self.topology()
            .into_iter()
            .filter(|n| n.primary.is_some())
            .collect()
    }

    /// The key's hash slot, as the cluster computes it (`CLUSTER KEYSLOT`).
    pub fn slot(&self, key: &str) -> u16 {
        let mut c = self
            .live()
            .find_map(|n| self.try_conn(&n.addr()))
            .expect("no cluster node to ask");
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut c)
            .expect("CLUSTER KEYSLOT")
    }

    /// The address of the primary that serves `key`'s slot now.
    pub fn node_for_key(&self, key: &str) -> String {
        let slot = self.slot(key);
        self.primaries()
            .into_iter()
            .find(|p| p.serves(slot))
            .unwrap_or_else(|| panic!("no live primary serves slot {slot} (key {key:?})"))
            .addr
    }

    /// A plain connection to one node (no redirections followed).
    pub fn conn(&self, addr: &str) -> redis::Connection {
        self.try_conn(addr)
            .unwrap_or_else(|| panic!("connect to cluster node {addr}"))
    }

    /// Hold the replicas of the primary at `addr` back from taking its
    /// place (`cluster-replica-no-failover`), or let them again: a test
    /// can then look at the outage for as long as it needs.
    pub fn hold_failover(&self, addr: &str, hold: bool) {
        let value = if hold { "yes" } else { "no" };
        for r in self
            .replicas_of_killed
            .iter()
            .filter(|(a, _)| a == addr)
            .flat_map(|(_, r)| r.clone())
            .chain(
                self.replicas()
                    .into_iter()
                    .filter(|r| r.primary.as_deref() == Some(addr))
                    .map(|r| r.addr),
            )
        {
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("cluster-replica-no-failover")
                .arg(value)
                .query(&mut self.conn(&r))
                .unwrap_or_else(|e| panic!("hold the failover on {r}: {e}"));
        }
    }

    /// SIGKILL the node at `addr` (no goodbye to clients or to the cluster)
    /// and wait for the process to go.
    pub fn kill(&mut self, addr: &str) {
        let replicas: Vec<String> = self
            .replicas()
            .into_iter()
            .filter(|r| r.primary.as_deref() == Some(addr))
            .map(|r| r.addr)
            .collect();
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.addr() == addr)
            .unwrap_or_else(|| panic!("{addr} is not a node of this cluster"));
        let mut child = node
            .child
            .take()
            .unwrap_or_else(|| panic!("{addr} was already killed"));
        let _ = child.kill();
        let _ = child.wait();
        if !replicas.is_empty() {
            self.replicas_of_killed.push((addr.to_owned(), replicas));
        }
    }

    /// After [`Cluster::kill`] of the primary at `dead`: wait until one of its
    /// replicas reports `role:master`, serves the dead primary's slots and
    /// the live nodes agree the cluster is whole again. Returns the new
    /// primary's address.
    pub fn wait_promoted(&self, dead: &str) -> String {
        let replicas = self
            .replicas_of_killed
            .iter()
            .find(|(a, _)| a == dead)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{dead} is not a killed primary with replicas"));
        let mut promoted = None;
        wait_until(
            &format!("a replica of {dead} to be promoted"),
            FAILOVER,
            || {
                promoted = replicas.iter().find(|r| {
                    self.text(r, &["INFO", "replication"])
                        .and_then(|t| info_field(&t, "role"))
                        .as_deref()
                        == Some("master")
                });
                promoted.is_some()
            },
        );
        let promoted = promoted.expect("promoted").clone();
        self.wait_whole(&format!(
            "the cluster to be whole after {promoted} took {dead}'s place"
        ));
        promoted
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
