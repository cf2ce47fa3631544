//! Keys whatever they hold: `DEL`, `PEXPIRE` and `PTTL`.

use super::{Action, IntoAction, wit};
use crate::Error;

plain_actions!(Delete, Expire, KeyTtl);

/// `DEL key`.
#[derive(Debug, Clone, PartialEq)]
pub struct Delete {
    /// The key.
    pub key: String,
}

impl Delete {
    /// Remove `key`, whatever it holds.
    pub fn new(key: impl Into<String>) -> Self {
        Delete { key: key.into() }
    }
}

/// `PEXPIRE key ttl`, e.g. to extend the life of a key that is read often.
#[derive(Debug, Clone, PartialEq)]
pub struct Expire {
    /// The key.
    pub key: String,
    /// Its new TTL (kept within the domain's bounds by the host).
    pub ttl_ms: u64,
}

impl Expire {
    /// Let `key` live `ttl_ms` from now.
    pub fn new(key: impl Into<String>, ttl_ms: u64) -> Self {
        Expire {
            key: key.into(),
            ttl_ms,
        }
    }
}

/// `PTTL key`: the reply is the ms the key has left, an integer; nil when
/// it never expires (only a key another client wrote: every write through
/// the gateway expires); a miss when there is no key.
///
/// ```
/// use sluice_sdk::{Action, KeyTtl, Plan};
/// let plan = Plan::new().respond_with(KeyTtl::new("sessions:ann"));
/// assert!(plan.response().is_some_and(Action::is_read));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct KeyTtl {
    /// The key.
    pub key: String,
}

impl KeyTtl {
    /// How long `key` has left.
    pub fn new(key: impl Into<String>) -> Self {
        KeyTtl { key: key.into() }
    }

    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::KeyTtl(wit::KeyTtl { key: self.key })
    }
}

impl Delete {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::Delete(wit::KeyDelete { key: self.key })
    }
}

impl Expire {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::Expire(wit::KeyExpire {
            key: self.key,
            ttl_ms: self.ttl_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plan;

    #[test]
    fn key_ttl_reads_one_key() {
        let wit = Plan::new()
            .respond_with(KeyTtl::new("d:k"))
            .into_wit()
            .unwrap();
        assert!(matches!(&wit.actions[..], [wit::Action::KeyTtl(t)] if t.key == "d:k"));
        assert_eq!(wit.respond, Some(0));
    }
}
