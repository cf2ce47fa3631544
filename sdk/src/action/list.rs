//! Lists: `LPUSH`/`RPUSH` (with `LTRIM`), `LRANGE` and `LREM`.

use super::{Action, IntoAction, nothing, wit};
use crate::{Error, IntoValue, Value};

ttl_option!(ListPush<V>);

/// Which end of a list a [`ListPush`] pushes at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListEnd {
    /// The head: `LPUSH`, index 0.
    Head,
    /// The tail: `RPUSH`, index -1.
    Tail,
}

/// `LPUSH` or `RPUSH key value ...`, then with [`keep`](Self::keep) `LTRIM`
/// to the items nearest that end (a capped "most recent N"), then
/// `PEXPIRE`. The reply is the list's length after.
///
/// ```
/// use sluice_sdk::{Action, ListEnd, ListPush, Plan};
/// // The ten most recent, newest first.
/// let plan = Plan::new().then(ListPush::head("feed:ann", [&"hello"]).keep(10));
/// assert!(matches!(&plan.actions()[0], Action::ListPush(p)
///     if p.end == ListEnd::Head && p.keep == Some(10)
///         && p.values[0].decode::<String>().unwrap() == "hello"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ListPush<V = Value> {
    /// The key.
    pub key: String,
    /// The values, one at least (MessagePack once in a plan), pushed in
    /// order: at the head, the last of them ends up first.
    pub values: Vec<V>,
    /// Which end they go to.
    pub end: ListEnd,
    /// See [`ListPush::keep`].
    pub keep: Option<u32>,
    /// See [`ListPush::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl<V: IntoValue> ListPush<V> {
    /// Push `values` (each a [`Value`], or a reference to anything
    /// serializable) at the head of the list at `key`: the newest first.
    pub fn head(key: impl Into<String>, values: impl IntoIterator<Item = V>) -> Self {
        ListPush::at(ListEnd::Head, key.into(), values)
    }

    /// Push `values` at the tail of the list at `key`: in arrival order.
    pub fn tail(key: impl Into<String>, values: impl IntoIterator<Item = V>) -> Self {
        ListPush::at(ListEnd::Tail, key.into(), values)
    }

    fn at(end: ListEnd, key: String, values: impl IntoIterator<Item = V>) -> Self {
        ListPush {
            key,
            values: values.into_iter().collect(),
            end,
            keep: None,
            ttl_ms: None,
        }
    }

    /// Then keep only the `n` items nearest the end pushed at (at least 1):
    /// `head(..).keep(10)` is the ten newest.
    pub fn keep(mut self, n: u32) -> Self {
        self.keep = Some(n);
        self
    }
}

impl<V: IntoValue> IntoAction for ListPush<V> {
    fn into_action(self) -> Result<Action, Error> {
        if self.values.is_empty() {
            return Err(nothing("ListPush", &self.key, "values"));
        }
        if self.keep == Some(0) {
            return Err(Error::internal(format!(
                "ListPush of {:?} with .keep(0) would empty the list on every push",
                self.key
            )));
        }
        let values = self
            .values
            .into_iter()
            .map(IntoValue::into_value)
            .collect::<Result<_, _>>()?;
        Ok(Action::ListPush(ListPush {
            key: self.key,
            values,
            end: self.end,
            keep: self.keep,
            ttl_ms: self.ttl_ms,
        }))
    }
}

impl ListPush {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::ListPush(wit::ListPush {
            key: self.key,
            values: self.values.into_iter().map(Value::into_bytes).collect(),
            end: match self.end {
                ListEnd::Head => wit::ListEnd::Head,
                ListEnd::Tail => wit::ListEnd::Tail,
            },
            keep: self.keep,
            ttl_ms: self.ttl_ms,
        })
    }
}

/// `LRANGE`: up to `count` items from index `start` (0 is the head;
/// negative counts from the tail, -1 the last). The reply is an array of
/// the stored values; an empty range is a miss (404).
///
/// ```
/// use sluice_sdk::{ListRange, Plan};
/// assert_eq!(ListRange::first("feed:ann", 10), ListRange::new("feed:ann", 0, 10));
/// assert_eq!(ListRange::last("feed:ann", 10), ListRange::new("feed:ann", -10, 10));
/// let plan = Plan::new().respond_with(ListRange::first("feed:ann", 10));
/// assert!(plan.error().is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ListRange {
    /// The key.
    pub key: String,
    /// The first index; negative counts from the tail.
    pub start: i64,
    /// At most this many items.
    pub count: u32,
}

impl IntoAction for ListRange {
    fn into_action(self) -> Result<Action, Error> {
        match self.count {
            0 => Err(Error::internal(format!(
                "ListRange of {:?} with a count of 0 would always be a miss",
                self.key
            ))),
            _ => Ok(Action::ListRange(self)),
        }
    }
}

impl ListRange {
    /// Up to `count` items of the list at `key`, from index `start`.
    pub fn new(key: impl Into<String>, start: i64, count: u32) -> Self {
        ListRange {
            key: key.into(),
            start,
            count,
        }
    }

    /// The first `n` items: at the head, the `n` most recently pushed there.
    pub fn first(key: impl Into<String>, n: u32) -> Self {
        ListRange::new(key, 0, n)
    }

    /// The last `n` items, in list order.
    pub fn last(key: impl Into<String>, n: u32) -> Self {
        ListRange::new(key, -i64::from(n), n)
    }

    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::ListRange(wit::ListRange {
            key: self.key,
            start: self.start,
            count: self.count,
        })
    }
}

/// `LREM key count value`: remove items equal to `value`, `count` of them
/// from the head (0: all of them; negative: from the tail). The reply is
/// the number removed.
///
/// ```
/// use sluice_sdk::{ListRemove, Plan};
/// let plan = Plan::new().then(ListRemove::all("feed:ann", &"spam"));
/// assert!(plan.error().is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ListRemove<V = Value> {
    /// The key.
    pub key: String,
    /// The value to remove (MessagePack once in a plan), equal byte for byte.
    pub value: V,
    /// How many, and from which end: see [`ListRemove::new`].
    pub count: i64,
}

impl<V: IntoValue> ListRemove<V> {
    /// Remove up to `count` items equal to `value` from the list at `key`,
    /// from the head (`count` > 0) or the tail (`count` < 0); 0 removes all.
    pub fn new(key: impl Into<String>, value: V, count: i64) -> Self {
        ListRemove {
            key: key.into(),
            value,
            count,
        }
    }

    /// Remove every item equal to `value`.
    pub fn all(key: impl Into<String>, value: V) -> Self {
        ListRemove::new(key, value, 0)
    }
}

impl<V: IntoValue> IntoAction for ListRemove<V> {
    fn into_action(self) -> Result<Action, Error> {
        let value = self.value.into_value()?;
        Ok(Action::ListRemove(ListRemove {
            key: self.key,
            value,
            count: self.count,
        }))
    }
}

impl ListRemove {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::ListRemove(wit::ListRemove {
            key: self.key,
            value: self.value.into_bytes(),
            count: self.count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plan;

    #[test]
    fn a_push_encodes_each_value_and_reaches_the_contract_with_its_end() {
        let plan = Plan::new()
            .then(ListPush::head("d:l", [&1u8, &2u8]).keep(3).ttl_ms(4_000))
            .respond_with(ListPush::tail("d:l", [Value::encode(&"x").unwrap()]));
        match plan.actions() {
            [Action::ListPush(h), Action::ListPush(t)] => {
                assert_eq!(
                    (h.end, h.keep, h.ttl_ms),
                    (ListEnd::Head, Some(3), Some(4_000))
                );
                assert_eq!(h.values[1].decode::<u8>().unwrap(), 2);
                assert_eq!((t.end, t.keep, t.ttl_ms), (ListEnd::Tail, None, None));
            }
            other => panic!("{other:?}"),
        }
        let wit = plan.into_wit().unwrap();
        assert!(
            matches!(&wit.actions[..], [wit::Action::ListPush(h), wit::Action::ListPush(t)]
            if h.values == [vec![1], vec![2]] && matches!(h.end, wit::ListEnd::Head)
                && h.keep == Some(3) && h.ttl_ms == Some(4_000)
                && matches!(t.end, wit::ListEnd::Tail) && t.values.len() == 1)
        );
    }

    #[test]
    fn ranges_count_from_either_end_and_removals_encode_their_value() {
        assert_eq!(ListRange::first("d:l", 5), ListRange::new("d:l", 0, 5));
        assert_eq!(ListRange::last("d:l", 5), ListRange::new("d:l", -5, 5));
        let wit = Plan::new()
            .respond_with(ListRange::last("d:l", 5))
            .then(ListRemove::new("d:l", &"x", -2))
            .then(ListRemove::all("d:l", &7u8))
            .into_wit()
            .unwrap();
        assert!(matches!(&wit.actions[..], [
            wit::Action::ListRange(r),
            wit::Action::ListRemove(a),
            wit::Action::ListRemove(b),
        ] if (r.start, r.count) == (-5, 5) && a.value == [0xa1, b'x'] && a.count == -2
            && b.value == [7] && b.count == 0));
    }

    #[test]
    fn pushing_nothing_keeping_nothing_or_reading_nothing_fails_the_plan() {
        let none = Plan::new().then(ListPush::head("d:l", Vec::<Value>::new()));
        assert_eq!(
            none.error(),
            Some(&Error::internal(
                "ListPush of \"d:l\" with no values: it needs one at least"
            ))
        );
        let zero = Plan::new().then(ListPush::tail("d:l", [&1]).keep(0));
        assert!(matches!(zero.error(), Some(Error::Internal(m)) if m.contains("keep(0)")));
        let empty = Plan::new().respond_with(ListRange::first("d:l", 0));
        assert!(matches!(empty.error(), Some(Error::Internal(m)) if m.contains("count of 0")));
    }
}
