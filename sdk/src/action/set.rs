//! Sets: `SADD` and `SISMEMBER`.

use super::{Action, IntoAction, wit};
use crate::Error;

plain_actions!(SetAdd, SetContains);
ttl_option!(SetAdd);

/// `SADD key member ...`, then `PEXPIRE`.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAdd {
    /// The key.
    pub key: String,
    /// The members.
    pub members: Vec<String>,
    /// See [`SetAdd::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl SetAdd {
    /// Add `members` to the set at `key`.
    pub fn new<S: Into<String>>(
        key: impl Into<String>,
        members: impl IntoIterator<Item = S>,
    ) -> Self {
        let members = members.into_iter().map(Into::into).collect();
        SetAdd {
            key: key.into(),
            members,
            ttl_ms: None,
        }
    }
}

/// `SISMEMBER key member`: the reply is `true` or `false`.
#[derive(Debug, Clone, PartialEq)]
pub struct SetContains {
    /// The key.
    pub key: String,
    /// The member asked about.
    pub member: String,
}

impl SetContains {
    /// Whether `member` is in the set at `key`.
    pub fn new(key: impl Into<String>, member: impl Into<String>) -> Self {
        SetContains {
            key: key.into(),
            member: member.into(),
        }
    }
}

impl SetAdd {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::SetAdd(wit::SetAdd {
            key: self.key,
            members: self.members,
            ttl_ms: self.ttl_ms,
        })
    }
}

impl SetContains {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::SetContains(wit::SetContains {
            key: self.key,
            member: self.member,
        })
    }
}
