//! Lists (recent items, queues): `LPUSH`/`RPUSH` [+ `LTRIM`] + `PEXPIRE`,
//! `LRANGE` and `LREM`. Items are MessagePack, so a range read back keeps
//! each item's type.

use super::{Ctx, Kind, PlanLimits, TtlBounds, count, expire, items, value};
use crate::plugin::bindings::{ListEnd, ListPush, ListRange, ListRemove};
use crate::store::{StoreError, reply};
use redis::{Cmd, Value};

impl Kind for ListPush {
    fn ttl(&self, bounds: &TtlBounds, plan_ttl: Option<u64>) -> Option<u64> {
        Some(bounds.pick(self.ttl_ms, plan_ttl))
    }
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        items(self.values.len(), limits)?;
        if self.keep == Some(0) {
            return Err("keep 0 would empty the list on every push".into());
        }
        self.values.iter().try_for_each(|v| value(v, limits))
    }
    /// The push, the trim to the `keep` items nearest the end pushed to,
    /// and the expiry: in one transaction, so no list is left untrimmed or
    /// without its TTL.
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut push = match self.end {
            ListEnd::Head => redis::cmd("LPUSH"),
            ListEnd::Tail => redis::cmd("RPUSH"),
        };
        push.arg(&self.key).arg(&self.values);
        let mut cmds = vec![push];
        if let Some(keep) = self.keep {
            let keep = i64::from(keep);
            let (start, stop) = match self.end {
                ListEnd::Head => (0, keep - 1),
                ListEnd::Tail => (-keep, -1),
            };
            let mut trim = redis::cmd("LTRIM");
            trim.arg(&self.key).arg(start).arg(stop);
            cmds.push(trim);
        }
        cmds.push(expire(&self.key, ctx.ttl(self.ttl_ms)));
        Ok(cmds)
    }
    /// The list's length after: the push's reply, or `keep` when the trim
    /// cut it to that.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        let length = match (reply, self.keep) {
            (Value::Int(n), Some(keep)) => Value::Int(n.min(i64::from(keep))),
            (other, _) => other,
        };
        Some(reply::msgpack(length))
    }
}

impl Kind for ListRange {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        false
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        count(self.count, limits)
    }
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let stop = range_stop(self.start, self.count).ok_or_else(|| {
            StoreError::Internal("a list range of 0 items got past validation".into())
        })?;
        let mut cmd = redis::cmd("LRANGE");
        cmd.arg(&self.key).arg(self.start).arg(stop);
        Ok(vec![cmd])
    }
    /// The items, each the stored value itself; an empty range is a miss,
    /// as an absent key is.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        let (Value::Array(items) | Value::Set(items)) = reply else {
            return None;
        };
        (!items.is_empty()).then(|| reply::stored_array(items))
    }
    /// Not cacheable: near-cache copies are kept by Redis key, and this
    /// answer is one slice of the list, not the key's.
    fn cacheable(&self) -> bool {
        false
    }
}

/// `LRANGE`'s inclusive stop for `count` items from `start`; `None` for no
/// items (no stop reads nothing: `0, -1` would read everything). From a
/// negative start, a stop that would reach index 0 or past it is the
/// tail's `-1` instead: `-3, 10` is the last three items, where `-3, 6`
/// would read from the head's index 6, not past the tail.
fn range_stop(start: i64, count: u32) -> Option<i64> {
    let stop = start.saturating_add(i64::from(count.checked_sub(1)?));
    Some(if start < 0 && stop >= 0 { -1 } else { stop })
}

impl Kind for ListRemove {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        value(&self.value, limits)
    }
    /// No `PEXPIRE`: removing items creates nothing that could outlive it.
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("LREM");
        cmd.arg(&self.key).arg(self.count).arg(&self.value);
        Ok(vec![cmd])
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{check_one, describe_one, json, plan};
    use super::super::{cacheable_key, shape, written_keys};
    use super::*;
    use crate::plugin::bindings::Action;
    use serde_json::json as j;

    fn mp(v: serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec_named(&v).unwrap()
    }

    fn push(end: ListEnd, n: usize, keep: Option<u32>) -> Action {
        Action::ListPush(ListPush {
            key: "cache:l".into(),
            values: (0..n).map(|i| mp(j!(i))).collect(),
            end,
            keep,
            ttl_ms: None,
        })
    }

    fn range(start: i64, count: u32) -> Action {
        Action::ListRange(ListRange {
            key: "cache:l".into(),
            start,
            count,
        })
    }

    #[test]
    fn a_push_is_trimmed_to_keep_at_its_end_and_expires_in_one_transaction() {
        assert_eq!(
            describe_one(push(ListEnd::Head, 2, Some(100))),
            [
                "MULTI",
                "LPUSH cache:l 0 1",
                "LTRIM cache:l 0 99",
                "PEXPIRE cache:l 60000",
                "EXEC"
            ]
        );
        assert_eq!(
            describe_one(push(ListEnd::Tail, 1, Some(5)))[1..3],
            ["RPUSH cache:l 0", "LTRIM cache:l -5 -1"]
        );
        assert_eq!(
            describe_one(push(ListEnd::Tail, 1, None)),
            ["MULTI", "RPUSH cache:l 0", "PEXPIRE cache:l 60000", "EXEC"]
        );
        // The values are MessagePack, shown as JSON.
        let object = Action::ListPush(ListPush {
            key: "cache:l".into(),
            values: vec![mp(j!({"id": 7}))],
            end: ListEnd::Head,
            keep: None,
            ttl_ms: Some(5_000),
        });
        assert_eq!(describe_one(object)[1], r#"LPUSH cache:l {"id":7}"#);
        let p = plan(vec![push(ListEnd::Head, 1, None)]);
        assert_eq!(written_keys(&p).collect::<Vec<_>>(), ["cache:l"]);
    }

    #[test]
    fn a_push_needs_values_within_bounds_and_keeps_at_least_one() {
        assert_eq!(check_one(push(ListEnd::Head, 1, Some(1))), Ok(()));
        assert_eq!(
            check_one(push(ListEnd::Head, 0, None)).unwrap_err(),
            "an action with nothing to write"
        );
        assert!(
            check_one(push(ListEnd::Head, 1025, None))
                .unwrap_err()
                .contains("1025 items")
        );
        assert_eq!(
            check_one(push(ListEnd::Tail, 1, Some(0))).unwrap_err(),
            "keep 0 would empty the list on every push"
        );
        let big = Action::ListPush(ListPush {
            key: "cache:l".into(),
            values: vec![vec![0; (4 << 20) + 1]],
            end: ListEnd::Head,
            keep: None,
            ttl_ms: None,
        });
        assert!(
            check_one(big)
                .unwrap_err()
                .contains("value of 4194305 bytes")
        );
    }

    #[test]
    fn a_push_answers_the_length_after_its_trim() {
        let kept = push(ListEnd::Head, 1, Some(3));
        assert_eq!(json(shape(&kept, Value::Int(2))), 2);
        assert_eq!(json(shape(&kept, Value::Int(4))), 3, "trimmed to keep");
        let unkept = push(ListEnd::Head, 1, None);
        assert_eq!(json(shape(&unkept, Value::Int(4))), 4);
    }

    #[test]
    fn a_range_reads_count_items_from_start_never_wrapping_past_the_tail() {
        assert_eq!(describe_one(range(0, 10)), ["LRANGE cache:l 0 9"]);
        assert_eq!(describe_one(range(5, 1)), ["LRANGE cache:l 5 5"]);
        // The last ten: from -10 the stop would be index -1 anyway.
        assert_eq!(describe_one(range(-10, 10)), ["LRANGE cache:l -10 -1"]);
        assert_eq!(describe_one(range(-10, 3)), ["LRANGE cache:l -10 -8"]);
        // -3 with 10 would stop at 6 (from the head): the tail ends it.
        assert_eq!(describe_one(range(-3, 10)), ["LRANGE cache:l -3 -1"]);
        assert_eq!(
            describe_one(range(i64::MAX, 1024)),
            [format!("LRANGE cache:l {} {}", i64::MAX, i64::MAX)]
        );
        assert_eq!(range_stop(0, 0), None, "0, -1 would be everything");
    }

    #[test]
    fn a_range_asks_for_one_to_max_items() {
        assert_eq!(check_one(range(0, 1)), Ok(()));
        assert_eq!(check_one(range(-1024, 1024)), Ok(()));
        assert_eq!(
            check_one(range(0, 0)).unwrap_err(),
            "a count of 0 reads nothing"
        );
        assert_eq!(
            check_one(range(0, 1025)).unwrap_err(),
            "a count of 1025, at most 1024 allowed"
        );
        let mut p = plan(vec![range(0, 10)]);
        p.respond = Some(0);
        assert_eq!(written_keys(&p).count(), 0);
        assert_eq!(cacheable_key(&p), None, "a slice, not the key");
    }

    #[test]
    fn a_ranges_items_are_the_stored_values_and_an_empty_one_is_a_miss() {
        let r = range(0, 10);
        let reply = Value::Array(vec![
            Value::BulkString(mp(j!({"id": 7, "tags": ["a"]}))),
            Value::BulkString(mp(j!(2.5))),
            // Another client's plain text: a string, not malformed.
            Value::BulkString(b"plain text".to_vec()),
        ]);
        let body = shape(&r, reply).unwrap();
        assert_eq!(
            json(Some(body.clone())),
            j!([{"id": 7, "tags": ["a"]}, 2.5, "plain text"])
        );
        // The stored MessagePack is embedded as it is, not re-encoded.
        let stored = mp(j!({"id": 7, "tags": ["a"]}));
        assert_eq!(&body[1..1 + stored.len()], &stored[..]);
        assert_eq!(shape(&r, Value::Array(vec![])), None);
        assert_eq!(shape(&r, Value::Nil), None);
    }

    #[test]
    fn a_remove_is_lrem_of_the_value_and_answers_the_count() {
        let lrem = Action::ListRemove(ListRemove {
            key: "cache:l".into(),
            value: mp(j!("x")),
            count: -2,
        });
        assert_eq!(describe_one(lrem.clone()), [r#"LREM cache:l -2 "x""#]);
        assert_eq!(json(shape(&lrem, Value::Int(2))), 2);
        let p = plan(vec![lrem]);
        assert_eq!(written_keys(&p).collect::<Vec<_>>(), ["cache:l"]);
        let big = Action::ListRemove(ListRemove {
            key: "cache:l".into(),
            value: vec![0; (4 << 20) + 1],
            count: 0,
        });
        assert!(
            check_one(big)
                .unwrap_err()
                .contains("value of 4194305 bytes")
        );
    }
}
