//! A Redis Cluster's primaries as `CLUSTER NODES` tells them, for readiness:
//! a gateway on a cluster is ready when every primary that serves slots is
//! healthy in the cluster's eyes and answers it.

/// A primary that serves at least one slot.
#[derive(Debug, PartialEq)]
pub struct Primary {
    /// `host:port` (the client port, without the bus port).
    pub addr: String,
    /// Flagged `fail` or `fail?`: the cluster sees it down (or suspects so).
    pub failing: bool,
}

/// The primaries serving slots, from `CLUSTER NODES` (one node a line:
/// `id host:port@bus flags primary ping pong epoch link slot…`).
pub fn primaries(nodes: &str) -> Vec<Primary> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (addr, flags) = (fields.get(1)?, fields.get(2)?);
            let flags: Vec<&str> = flags.split(',').collect();
            // Slots are fields 9 on; a primary without any serves nothing.
            let serves = fields.len() > 8;
            (flags.contains(&"master") && serves).then(|| Primary {
                addr: addr.split('@').next().unwrap_or(addr).to_owned(),
                failing: flags.iter().any(|f| *f == "fail" || *f == "fail?"),
            })
        })
        .collect()
}

/// `host:port` split for routing by address (IPv6 hosts keep their colons).
pub fn host_port(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
07c37dfe 127.0.0.1:30004@31004 slave e7d1eecc 0 1426238317239 4 connected
67ed2db8 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b36 127.0.0.1:30003@31003 master,fail? - 0 1426238318243 3 connected 10923-16383
e7d1eecc 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460
6ec23923 127.0.0.1:30005@31005 master,fail - 0 1426238316232 5 disconnected
";

    #[test]
    fn primaries_serving_slots_with_their_health() {
        assert_eq!(
            primaries(NODES),
            [
                Primary {
                    addr: "127.0.0.1:30002".into(),
                    failing: false
                },
                Primary {
                    addr: "127.0.0.1:30003".into(),
                    failing: true
                },
                Primary {
                    addr: "127.0.0.1:30001".into(),
                    failing: false
                },
            ]
        );
        assert!(primaries("").is_empty());
        assert!(primaries("garbage\n").is_empty());
    }

    #[test]
    fn addresses_split_at_the_last_colon() {
        assert_eq!(
            host_port("127.0.0.1:7001"),
            Some(("127.0.0.1".into(), 7001))
        );
        assert_eq!(host_port("::1:7001"), Some(("::1".into(), 7001)));
        assert_eq!(host_port("nope"), None);
        assert_eq!(host_port("h:99999"), None);
    }
}
