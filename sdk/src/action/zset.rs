//! Sorted sets: `ZADD`, `ZINCRBY`, `ZRANGE`, `ZREMRANGEBYRANK`, `ZREM`,
//! `ZSCORE` and `ZCARD`.

use super::{Action, IntoAction, nothing, wit};
use crate::Error;

plain_actions!(ZsetAdd, ZsetIncr, ZsetTrim, ZsetScore, ZsetCount);
ttl_option!(ZsetAdd, ZsetIncr);

/// A sorted-set member and its score: what [`ZsetAdd`] adds and what a
/// [`ZsetRange`] answers (a list of `{"member": .., "score": ..}`), so a
/// request body of that shape decodes straight into it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoredMember {
    /// The member.
    pub member: String,
    /// Its score.
    pub score: f64,
}

impl ScoredMember {
    /// `member` with `score`.
    pub fn new(member: impl Into<String>, score: f64) -> Self {
        ScoredMember {
            member: member.into(),
            score,
        }
    }
}

/// When [`ZsetAdd`] changes a member that is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZsetCondition {
    /// Always: add new members, update existing scores.
    #[default]
    Always,
    /// `NX`: only add members that are not there yet.
    IfAbsent,
    /// `GT`: add new members; update a score only when the new one is greater.
    IfGreater,
    /// `LT`: add new members; update a score only when the new one is less.
    IfLess,
}

/// `ZADD key [NX|GT|LT] score member ...`, then `PEXPIRE`.
#[derive(Debug, Clone, PartialEq)]
pub struct ZsetAdd {
    /// The key.
    pub key: String,
    /// The members and their scores.
    pub members: Vec<ScoredMember>,
    /// See [`ZsetAdd::if_greater`] and the others.
    pub condition: ZsetCondition,
    /// See [`ZsetAdd::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl ZsetAdd {
    /// Add `member` with `score` to the sorted set at `key`.
    pub fn new(key: impl Into<String>, member: impl Into<String>, score: f64) -> Self {
        ZsetAdd::members(key, [ScoredMember::new(member, score)])
    }

    /// Add several members at once.
    pub fn members(
        key: impl Into<String>,
        members: impl IntoIterator<Item = ScoredMember>,
    ) -> Self {
        let members = members.into_iter().collect();
        ZsetAdd {
            key: key.into(),
            members,
            condition: ZsetCondition::Always,
            ttl_ms: None,
        }
    }

    /// `GT`: keep a member's best score (a high score table).
    pub fn if_greater(mut self) -> Self {
        self.condition = ZsetCondition::IfGreater;
        self
    }

    /// `LT`: keep a member's lowest score (a best time).
    pub fn if_less(mut self) -> Self {
        self.condition = ZsetCondition::IfLess;
        self
    }

    /// `NX`: never change a member that is there (first score wins).
    pub fn if_absent(mut self) -> Self {
        self.condition = ZsetCondition::IfAbsent;
        self
    }
}

/// `ZINCRBY key by member`, then `PEXPIRE`: the reply is the new score.
#[derive(Debug, Clone, PartialEq)]
pub struct ZsetIncr {
    /// The key.
    pub key: String,
    /// The member (added with score `by` when it is not there).
    pub member: String,
    /// How much to add (negative to subtract).
    pub by: f64,
    /// See [`ZsetIncr::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl ZsetIncr {
    /// Add `by` to the score of `member` in the sorted set at `key`.
    pub fn new(key: impl Into<String>, member: impl Into<String>, by: f64) -> Self {
        ZsetIncr {
            key: key.into(),
            member: member.into(),
            by,
            ttl_ms: None,
        }
    }
}

/// Which slice of a sorted set a [`ZsetRange`] reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ZsetBounds {
    /// By rank, inclusive; negative counts from the end (`0, -1` is all).
    /// Reversed, rank 0 is the highest score.
    Rank(i64, i64),
    /// By score, inclusive, always `(min, max)`, also reversed; infinities allowed.
    Score(f64, f64),
}

/// `ZRANGE key start stop [BYSCORE] [REV] [LIMIT 0 n] WITHSCORES`: the reply is
/// a list of `{member, score}`; an empty range is a miss (404).
#[derive(Debug, Clone, PartialEq)]
pub struct ZsetRange {
    /// The key.
    pub key: String,
    /// By rank or by score.
    pub bounds: ZsetBounds,
    /// Highest score first.
    pub reverse: bool,
    /// At most this many members (score ranges only).
    pub limit: Option<u32>,
}

impl ZsetRange {
    /// Members `start..=stop` by rank, lowest score first unless [`rev`](Self::rev):
    /// `rank(key, 0, 9).rev()` is the top ten.
    pub fn rank(key: impl Into<String>, start: i64, stop: i64) -> Self {
        ZsetRange {
            key: key.into(),
            bounds: ZsetBounds::Rank(start, stop),
            reverse: false,
            limit: None,
        }
    }

    /// Members scored `min..=max` (always in that order, also with [`rev`](Self::rev)).
    pub fn score(key: impl Into<String>, min: f64, max: f64) -> Self {
        ZsetRange {
            key: key.into(),
            bounds: ZsetBounds::Score(min, max),
            reverse: false,
            limit: None,
        }
    }

    /// Highest score first.
    pub fn rev(mut self) -> Self {
        self.reverse = true;
        self
    }

    /// At most `n` members (`LIMIT 0 n`). Score ranges only: a rank range is
    /// limited by its bounds, and Redis refuses `LIMIT` on one.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }
}

impl IntoAction for ZsetRange {
    fn into_action(self) -> Result<Action, Error> {
        match self.bounds {
            ZsetBounds::Rank(start, stop) if self.limit.is_some() => Err(Error::internal(format!(
                "ZsetRange::rank({start}, {stop}) with .limit(): a rank range is limited by its bounds; limit applies to score ranges"
            ))),
            ZsetBounds::Score(min, max) if min > max => Err(Error::internal(format!(
                "ZsetRange::score({min}, {max}): score bounds are (min, max), also with .rev()"
            ))),
            _ => Ok(Action::ZsetRange(self)),
        }
    }
}

/// `ZREMRANGEBYRANK key start stop`: drop members by rank, lowest score first.
#[derive(Debug, Clone, PartialEq)]
pub struct ZsetTrim {
    /// The key.
    pub key: String,
    /// First rank to remove (negative counts from the end).
    pub start: i64,
    /// Last rank to remove, inclusive.
    pub stop: i64,
}

impl ZsetTrim {
    /// Remove the members ranked `start..=stop` (0 is the lowest score).
    pub fn new(key: impl Into<String>, start: i64, stop: i64) -> Self {
        ZsetTrim {
            key: key.into(),
            start,
            stop,
        }
    }

    /// Keep only the `n` highest scores (`ZREMRANGEBYRANK key 0 -(n+1)`).
    pub fn keep_highest(key: impl Into<String>, n: u32) -> Self {
        ZsetTrim::new(key, 0, -i64::from(n) - 1)
    }

    /// Keep only the `n` lowest scores (`ZREMRANGEBYRANK key n -1`).
    pub fn keep_lowest(key: impl Into<String>, n: u32) -> Self {
        ZsetTrim::new(key, i64::from(n), -1)
    }
}

/// `ZREM key member ...`: the reply is the number of members removed.
///
/// ```
/// use sluice_sdk::{Plan, ZsetRemove};
/// let plan = Plan::new().then(ZsetRemove::new("board:w", ["cheater"]));
/// assert!(plan.error().is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ZsetRemove {
    /// The key.
    pub key: String,
    /// The members to remove: one at least.
    pub members: Vec<String>,
}

impl ZsetRemove {
    /// Remove `members` from the sorted set at `key`.
    pub fn new<S: Into<String>>(
        key: impl Into<String>,
        members: impl IntoIterator<Item = S>,
    ) -> Self {
        ZsetRemove {
            key: key.into(),
            members: members.into_iter().map(Into::into).collect(),
        }
    }

    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::ZsetRemove(wit::ZsetRemove {
            key: self.key,
            members: self.members,
        })
    }
}

impl IntoAction for ZsetRemove {
    fn into_action(self) -> Result<Action, Error> {
        match self.members.is_empty() {
            true => Err(nothing("ZsetRemove", &self.key, "members")),
            false => Ok(Action::ZsetRemove(self)),
        }
    }
}

/// `ZSCORE key member`: the reply is the member's score, a float; a miss
/// (404) when the member is not there.
///
/// ```
/// use sluice_sdk::{Plan, ZsetScore};
/// let plan = Plan::new().respond_with(ZsetScore::new("board:w", "ann"));
/// assert!(plan.response().is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ZsetScore {
    /// The key.
    pub key: String,
    /// The member asked about.
    pub member: String,
}

impl ZsetScore {
    /// The score of `member` in the sorted set at `key`.
    pub fn new(key: impl Into<String>, member: impl Into<String>) -> Self {
        ZsetScore {
            key: key.into(),
            member: member.into(),
        }
    }

    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::ZsetScore(wit::ZsetScore {
            key: self.key,
            member: self.member,
        })
    }
}

/// `ZCARD key`: the reply is the number of members, 0 when there is no key.
///
/// ```
/// use sluice_sdk::{Plan, ZsetCount};
/// let plan = Plan::new().respond_with(ZsetCount::new("board:w"));
/// assert!(plan.response().is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ZsetCount {
    /// The key.
    pub key: String,
}

impl ZsetCount {
    /// How many members the sorted set at `key` has.
    pub fn new(key: impl Into<String>) -> Self {
        ZsetCount { key: key.into() }
    }

    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::ZsetCount(wit::ZsetCount { key: self.key })
    }
}

impl ZsetAdd {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::ZsetAdd(wit::ZsetAdd {
            key: self.key,
            members: self
                .members
                .into_iter()
                .map(|m| wit::ScoredMember {
                    member: m.member,
                    score: m.score,
                })
                .collect(),
            condition: match self.condition {
                ZsetCondition::Always => wit::ZsetCondition::Always,
                ZsetCondition::IfAbsent => wit::ZsetCondition::IfAbsent,
                ZsetCondition::IfGreater => wit::ZsetCondition::IfGreater,
                ZsetCondition::IfLess => wit::ZsetCondition::IfLess,
            },
            ttl_ms: self.ttl_ms,
        })
    }
}

impl ZsetIncr {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::ZsetIncr(wit::ZsetIncr {
            key: self.key,
            member: self.member,
            by: self.by,
            ttl_ms: self.ttl_ms,
        })
    }
}

impl ZsetRange {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::ZsetRange(wit::ZsetRange {
            key: self.key,
            bounds: match self.bounds {
                ZsetBounds::Rank(start, stop) => wit::ZsetBounds::Rank((start, stop)),
                ZsetBounds::Score(min, max) => wit::ZsetBounds::Score((min, max)),
            },
            reverse: self.reverse,
            limit: self.limit,
        })
    }
}

impl ZsetTrim {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::ZsetTrim(wit::ZsetTrim {
            key: self.key,
            start: self.start,
            stop: self.stop,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plan;

    #[test]
    fn zset_removal_score_and_count_reach_the_contract() {
        let wit = Plan::new()
            .then(ZsetRemove::new("d:z", ["ann"]))
            .then(ZsetScore::new("d:z", "bob"))
            .respond_with(ZsetCount::new("d:z"))
            .into_wit()
            .unwrap();
        assert!(matches!(&wit.actions[..], [
            wit::Action::ZsetRemove(r),
            wit::Action::ZsetScore(s),
            wit::Action::ZsetCount(c),
        ] if r.members == ["ann"] && s.member == "bob" && c.key == "d:z"));
        let none = Plan::new().then(ZsetRemove::new("d:z", Vec::<String>::new()));
        assert!(matches!(none.error(), Some(Error::Internal(m)) if m.contains("no members")));
    }
}
