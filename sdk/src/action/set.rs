//! Sets: `SADD`, `SREM`, `SISMEMBER`, `SRANDMEMBER` and `SCARD`.

use super::{Action, IntoAction, nothing, wit};
use crate::Error;

plain_actions!(SetAdd, SetContains, SetCount);
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

/// `SREM key member ...`: the reply is the number of members removed.
///
/// ```
/// use sluice_sdk::{Plan, SetRemove};
/// let plan = Plan::new().then(SetRemove::new("tags:post:9", ["draft"]));
/// assert!(plan.error().is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SetRemove {
    /// The key.
    pub key: String,
    /// The members to remove: one at least.
    pub members: Vec<String>,
}

impl SetRemove {
    /// Remove `members` from the set at `key`.
    pub fn new<S: Into<String>>(
        key: impl Into<String>,
        members: impl IntoIterator<Item = S>,
    ) -> Self {
        SetRemove {
            key: key.into(),
            members: members.into_iter().map(Into::into).collect(),
        }
    }

    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::SetRemove(wit::SetRemove {
            key: self.key,
            members: self.members,
        })
    }
}

impl IntoAction for SetRemove {
    fn into_action(self) -> Result<Action, Error> {
        match self.members.is_empty() {
            true => Err(nothing("SetRemove", &self.key, "members")),
            false => Ok(Action::SetRemove(self)),
        }
    }
}

/// Up to `count` members of a set (`SRANDMEMBER key count`: all of them
/// when the set has no more; an arbitrary `count` of them when it has):
/// the reply is an array of strings, sorted; an empty set is a miss (404).
///
/// ```
/// use sluice_sdk::{Action, Plan, SetMembers};
/// let plan = Plan::new().respond_with(SetMembers::new("tags:post:9", 100));
/// assert!(matches!(plan.response(), Some(Action::SetMembers(m)) if m.count == 100));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SetMembers {
    /// The key.
    pub key: String,
    /// At most this many members, at least 1.
    pub count: u32,
}

impl SetMembers {
    /// Up to `count` members of the set at `key`.
    pub fn new(key: impl Into<String>, count: u32) -> Self {
        SetMembers {
            key: key.into(),
            count,
        }
    }

    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::SetMembers(wit::SetMembers {
            key: self.key,
            count: self.count,
        })
    }
}

impl IntoAction for SetMembers {
    fn into_action(self) -> Result<Action, Error> {
        match self.count {
            0 => Err(Error::internal(format!(
                "SetMembers of {:?} with a count of 0 would always be a miss",
                self.key
            ))),
            _ => Ok(Action::SetMembers(self)),
        }
    }
}

/// `SCARD key`: the reply is the number of members, 0 when there is no key.
///
/// ```
/// use sluice_sdk::{Plan, SetCount};
/// let plan = Plan::new().respond_with(SetCount::new("tags:post:9"));
/// assert!(plan.response().is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SetCount {
    /// The key.
    pub key: String,
}

impl SetCount {
    /// How many members the set at `key` has.
    pub fn new(key: impl Into<String>) -> Self {
        SetCount { key: key.into() }
    }

    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::SetCount(wit::SetCount { key: self.key })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plan;

    #[test]
    fn set_removal_members_and_count_reach_the_contract() {
        let wit = Plan::new()
            .then(SetRemove::new("d:s", ["a", "b"]))
            .then(SetMembers::new("d:s", 50))
            .respond_with(SetCount::new("d:s"))
            .into_wit()
            .unwrap();
        assert!(matches!(&wit.actions[..], [
            wit::Action::SetRemove(r),
            wit::Action::SetMembers(m),
            wit::Action::SetCount(c),
        ] if r.members == ["a", "b"] && m.count == 50 && c.key == "d:s"));
    }

    #[test]
    fn removing_nothing_or_listing_none_fails_the_plan() {
        let none = Plan::new().then(SetRemove::new("d:s", Vec::<&str>::new()));
        assert!(matches!(none.error(), Some(Error::Internal(m)) if m.contains("no members")));
        let zero = Plan::new().respond_with(SetMembers::new("d:s", 0));
        assert!(matches!(zero.error(), Some(Error::Internal(m)) if m.contains("count of 0")));
    }
}
