//! Sluice in front of a Redis Cluster (3 primaries, 3 replicas of Debian's
//! redis-server on loopback ports). For now these check the local cluster
//! the gateway's cluster tests will run against: slots spread over the
//! primaries, writes replicated, a killed primary's replica promoted.

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use support::Cluster;

/// Keys `k0`, `k1`, … until one lands on each of the cluster's primaries.
fn one_key_per_primary(cluster: &Cluster) -> Vec<(String, String)> {
    let primaries = cluster.primaries();
    let mut found: Vec<(String, String)> = Vec::new();
    for i in 0.. {
        let key = format!("k{i}");
        let node = cluster.node_for_key(&key);
        if !found.iter().any(|(_, n)| *n == node) {
            found.push((key, node));
        }
        if found.len() == primaries.len() {
            return found;
        }
        assert!(i < 10_000, "no key for every primary: {found:?}");
    }
    unreachable!()
}

#[test]
fn slots_spread_over_three_primaries_and_writes_reach_their_replica() {
    let cluster = Cluster::start();
    let primaries = cluster.primaries();
    let replicas = cluster.replicas();
    assert_eq!(primaries.len(), 3, "primaries: {primaries:?}");
    assert_eq!(replicas.len(), 3, "replicas: {replicas:?}");
    assert_eq!(cluster.seeds().len(), 6);
    // Every slot is served by exactly one primary.
    for slot in 0..16384u16 {
        let serving = primaries.iter().filter(|p| p.serves(slot)).count();
        assert_eq!(serving, 1, "slot {slot} served by {serving} primaries");
    }
    // One replica per primary, serving its slots.
    let of: BTreeSet<&str> = replicas
        .iter()
        .filter_map(|r| r.primary.as_deref())
        .collect();
    let all: BTreeSet<&str> = primaries.iter().map(|p| p.addr.as_str()).collect();
    assert_eq!(of, all, "each primary has a replica");
    for r in &replicas {
        let p = primaries
            .iter()
            .find(|p| Some(&p.addr) == r.primary.as_ref());
        assert_eq!(Some(&r.slots), p.map(|p| &p.slots));
    }

    // What a cluster client reads its topology from: every node lists all six.
    for node in primaries.iter().chain(&replicas) {
        let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut cluster.conn(&node.addr))
            .expect("CLUSTER SLOTS");
        let listed: usize = ranges.iter().map(|r| r.len() - 2).sum();
        assert_eq!(listed, 6, "{}'s CLUSTER SLOTS: {ranges:?}", node.addr);
    }

    let keys = one_key_per_primary(&cluster);
    for (key, addr) in &keys {
        let mut primary = cluster.conn(addr);
        let () = redis::cmd("SET")
            .arg(key)
            .arg(format!("on {addr}"))
            .query(&mut primary)
            .expect("SET on the key's primary");
        // Another primary redirects: the slot is not its.
        let other = keys
            .iter()
            .find(|(_, a)| a != addr)
            .map(|(_, a)| a)
            .unwrap();
        let err = redis::cmd("GET")
            .arg(key)
            .query::<Option<String>>(&mut cluster.conn(other))
            .expect_err("another primary answers for the key");
        assert_eq!(err.code(), Some("MOVED"), "{err}");
        // Replicated: WAIT counts the replica's acknowledgement, and the
        // replica (in READONLY mode) has the value.
        let acked: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(10_000)
            .query(&mut primary)
            .expect("WAIT");
        assert_eq!(acked, 1, "{key}: the replica acknowledged the write");
        let replica = replicas
            .iter()
            .find(|r| r.primary.as_deref() == Some(addr.as_str()))
            .expect("the primary's replica");
        let mut conn = cluster.conn(&replica.addr);
        let () = redis::cmd("READONLY").query(&mut conn).expect("READONLY");
        let got: Option<String> = redis::cmd("GET").arg(key).query(&mut conn).expect("GET");
        assert_eq!(got.as_deref(), Some(format!("on {addr}").as_str()));
    }
}

#[test]
fn a_killed_primarys_replica_is_promoted_with_its_data() {
    let mut cluster = Cluster::start();
    let keys = one_key_per_primary(&cluster);
    for (key, addr) in &keys {
        let mut c = cluster.conn(addr);
        let () = redis::cmd("SET")
            .arg(key)
            .arg("before")
            .query(&mut c)
            .unwrap();
        let acked: i64 = redis::cmd("WAIT").arg(1).arg(10_000).query(&mut c).unwrap();
        assert_eq!(acked, 1, "{key} replicated before the kill");
    }
    let (key, dead) = keys[0].clone();
    let replica = cluster
        .replicas()
        .into_iter()
        .find(|r| r.primary.as_deref() == Some(dead.as_str()))
        .expect("the primary's replica");
    let slots = cluster
        .primaries()
        .into_iter()
        .find(|p| p.addr == dead)
        .unwrap()
        .slots;

    cluster.kill(&dead);
    // The other primaries serve their keys while the dead one's slots wait.
    for (k, addr) in &keys[1..] {
        let got: Option<String> = redis::cmd("GET")
            .arg(k)
            .query(&mut cluster.conn(addr))
            .unwrap();
        assert_eq!(got.as_deref(), Some("before"));
    }
    let promoted = cluster.wait_promoted(&dead);

    assert_eq!(
        promoted, replica.addr,
        "the dead primary's replica took over"
    );
    let primaries = cluster.primaries();
    assert_eq!(primaries.len(), 3, "{primaries:?}");
    let new = primaries
        .iter()
        .find(|p| p.addr == promoted)
        .expect("promoted primary");
    assert_eq!(
        new.slots, slots,
        "the promoted primary serves the dead one's slots"
    );
    assert_eq!(cluster.node_for_key(&key), promoted);
    assert_eq!(cluster.seeds().len(), 5);
    let mut c = cluster.conn(&promoted);
    let got: Option<String> = redis::cmd("GET").arg(&key).query(&mut c).unwrap();
    assert_eq!(
        got.as_deref(),
        Some("before"),
        "the replicated write survived"
    );
    let () = redis::cmd("SET")
        .arg(&key)
        .arg("after")
        .query(&mut c)
        .expect("writes resume");
}
