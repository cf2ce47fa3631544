//! Keys whatever they hold: `DEL` and `PEXPIRE`.

use super::{Action, IntoAction, wit};
use crate::Error;

plain_actions!(Delete, Expire);

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
