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

/// The hash slot of a key: CRC16 (XMODEM) of its hash tag — what lies
/// between the first `{` and the next `}`, when not empty — or of the whole
/// key, modulo 16384.
pub fn slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hashed(key)) % 16384
}

/// The part of a key Redis hashes: its hash tag, or all of it.
pub fn hashed(key: &[u8]) -> &[u8] {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    tagged.unwrap_or(key)
}

/// A hash tag that puts another key in `key`'s slot (`{…}`), if one can:
/// a key hashed whole that holds a `}` has none.
pub fn tag_of(key: &str) -> Option<String> {
    let hashed = std::str::from_utf8(hashed(key.as_bytes())).ok()?;
    (!hashed.contains('}')).then(|| format!("{{{hashed}}}"))
}

/// Which primary serves each slot range, from `CLUSTER SLOTS`
/// (`[[start, end, [host, port, id], replica…], …]`).
pub fn slot_ranges(reply: redis::Value) -> Vec<(u16, u16, String)> {
    use redis::Value;
    let Value::Array(ranges) = reply else {
        return Vec::new();
    };
    ranges
        .into_iter()
        .filter_map(|range| {
            let Value::Array(parts) = range else {
                return None;
            };
            let mut parts = parts.into_iter();
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(primary))) =
                (parts.next(), parts.next(), parts.next())
            else {
                return None;
            };
            let mut primary = primary.into_iter();
            let host = match primary.next()? {
                Value::BulkString(b) => String::from_utf8(b).ok()?,
                Value::SimpleString(s) => s,
                _ => return None,
            };
            let Some(Value::Int(port)) = primary.next() else {
                return None;
            };
            Some((
                u16::try_from(start).ok()?,
                u16::try_from(end).ok()?,
                format!("{host}:{port}"),
            ))
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
    fn slots_follow_redis_including_hash_tags() {
        // The values Redis's cluster specification gives.
        assert_eq!(slot(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        // An empty tag hashes the whole key; only the first tag counts.
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"));
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    #[test]
    fn a_tag_puts_another_key_in_the_same_slot() {
        for key in ["cache:k", "arbitrage:{opportunity}:btc", "cache:a{b"] {
            let tag = tag_of(key).unwrap();
            let other = format!("idempotency:{tag}:cache:k1");
            assert_eq!(
                slot(other.as_bytes()),
                slot(key.as_bytes()),
                "{key} {other}"
            );
        }
        assert_eq!(tag_of("cache:a}b"), None);
        assert_eq!(tag_of("x{}y"), None);
    }

    #[test]
    fn slot_ranges_name_each_ranges_primary() {
        use redis::Value::{Array, BulkString, Int};
        let node = |host: &str, port| {
            Array(vec![
                BulkString(host.into()),
                Int(port),
                BulkString(b"id".to_vec()),
            ])
        };
        let reply = Array(vec![
            Array(vec![
                Int(0),
                Int(5460),
                node("127.0.0.1", 7001),
                node("127.0.0.1", 7004),
            ]),
            Array(vec![Int(5461), Int(16383), node("10.0.0.2", 7002)]),
            Int(3),
        ]);
        assert_eq!(
            slot_ranges(reply),
            [
                (0, 5460, "127.0.0.1:7001".to_owned()),
                (5461, 16383, "10.0.0.2:7002".to_owned())
            ]
        );
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
