//! Wrong admin tokens, per address: past the first [`FREE`] (a person
//! mistypes), each one shuts that address out of `/admin/*` for twice as
//! long as the one before (0.1 s, 0.2 s, … up to five minutes), answered
//! `429` with `Retry-After`, so guessing the token goes from thousands of
//! tries a second to a handful an hour. A right token clears the address. Only the first wrong token of a burst
//! is audited; the rest are counted (`sluice_admin_throttled_total`).
//!
//! Addresses are IPv4 addresses or IPv6 /64 prefixes (one host usually
//! holds a whole /64). Behind a proxy every client shares the proxy's
//! address: a guesser there shuts the others out too, which is the safe
//! side for an admin door. At most [`ADDRESSES`] addresses are held, the
//! least recently seen dropped first; an address forgotten after
//! [`FORGET`] without a wrong token starts over.

use moka::sync::Cache;
use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

const FREE: u32 = 3;
const FIRST: Duration = Duration::from_millis(100);
const LONGEST: Duration = Duration::from_secs(300);
const ADDRESSES: u64 = 65_536;
const FORGET: Duration = Duration::from_secs(15 * 60);

/// Wrong tokens of one address so far, and until when it is shut out.
#[derive(Debug, Clone, Copy)]
struct Burst {
    wrong: u32,
    until: Instant,
}

pub struct Throttle {
    bursts: Cache<IpAddr, Burst>,
}

/// The process's throttle (shared by every HTTP thread).
pub static ADMIN: LazyLock<Throttle> = LazyLock::new(Throttle::new);

impl Throttle {
    fn new() -> Throttle {
        Throttle {
            bursts: Cache::builder()
                .max_capacity(ADDRESSES)
                .time_to_idle(FORGET)
                .build(),
        }
    }

    /// How long `ip` is still shut out at `now` (`None`: it may try).
    pub fn wait(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let burst = self.bursts.get(&key(ip))?;
        (burst.until > now).then(|| burst.until - now)
    }

    /// A wrong token from `ip` at `now`: whether it starts a burst (the
    /// one to audit).
    pub fn wrong(&self, ip: IpAddr, now: Instant) -> bool {
        let key = key(ip);
        let wrong = self.bursts.get(&key).map_or(0, |b| b.wrong) + 1;
        let shut = match wrong.checked_sub(FREE + 1) {
            None => Duration::ZERO,
            Some(n) => FIRST.saturating_mul(1u32 << n.min(16)).min(LONGEST),
        };
        self.bursts.insert(
            key,
            Burst {
                wrong,
                until: now + shut,
            },
        );
        wrong == 1
    }

    /// A right token from `ip`: its count starts over.
    pub fn right(&self, ip: IpAddr) {
        self.bursts.invalidate(&key(ip));
    }
}

/// The address a burst is counted under: IPv4 as it is, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wrong_token_shuts_the_address_out_twice_as_long_up_to_five_minutes() {
        let t = Throttle::new();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let other: IpAddr = "10.0.0.8".parse().unwrap();
        let now = Instant::now();
        assert_eq!(t.wait(ip, now), None);
        assert!(t.wrong(ip, now), "the first starts a burst");
        for _ in 1..FREE {
            assert!(!t.wrong(ip, now));
        }
        assert_eq!(t.wait(ip, now), None, "a person may mistype");
        assert!(!t.wrong(ip, now));
        assert_eq!(t.wait(ip, now), Some(FIRST));
        assert_eq!(t.wait(ip, now + FIRST), None, "free again after it");
        assert_eq!(t.wait(other, now), None, "another address is not shut out");
        let later = now + FIRST;
        assert!(!t.wrong(ip, later), "the second continues it");
        assert_eq!(t.wait(ip, later), Some(FIRST * 2));
        let mut at = later;
        for _ in 0..30 {
            at += LONGEST;
            t.wrong(ip, at);
        }
        assert_eq!(t.wait(ip, at), Some(LONGEST));
        t.right(ip);
        assert_eq!(t.wait(ip, at), None);
        assert!(t.wrong(ip, at), "a right token ends the burst");
        assert_eq!(t.wait(ip, at), None);
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(key(a), key(b));
        assert_ne!(key(a), key(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(key(mapped), "10.0.0.7".parse::<IpAddr>().unwrap());
    }
}
