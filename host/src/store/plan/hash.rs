//! Objects as hashes: `HMGET`/`HGETALL`, `HSET` + `PEXPIRE`, `HDEL`, and
//! `HINCRBY`/`HINCRBYFLOAT` + `PEXPIRE`. Field values are MessagePack, so an
//! object read back keeps its types; a field added to holds Redis's number.

use super::{
    Ctx, Kind, PlanLimits, TtlBounds, added, amount, expire, finite, items, names, read_items,
    value,
};
use crate::plugin::bindings::{HashAdd, HashDelete, HashGet, HashSet, Number};
use crate::store::{StoreError, reply};
use redis::{Cmd, Value};

impl Kind for HashGet {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        false
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        read_items(self.fields.len(), limits)
    }
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = if self.fields.is_empty() {
            redis::cmd("HGETALL")
        } else {
            redis::cmd("HMGET")
        };
        cmd.arg(&self.key).arg(&self.fields);
        Ok(vec![cmd])
    }
    /// An object of the fields present; a miss when none is.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        let pairs: Vec<(Value, Value)> = match reply {
            // HMGET: values in the order asked, nil where absent.
            Value::Array(values) if !self.fields.is_empty() => self
                .fields
                .iter()
                .zip(values)
                .filter(|(_, v)| *v != Value::Nil)
                .map(|(name, v)| (Value::SimpleString(name.clone()), v))
                .collect(),
            // HGETALL: a RESP3 map, or a RESP2 flat array.
            Value::Map(pairs) => pairs,
            Value::Array(flat) => reply::pairs(flat),
            _ => Vec::new(),
        };
        (!pairs.is_empty()).then(|| reply::object(pairs))
    }
    fn cacheable(&self) -> bool {
        true
    }
}

impl Kind for HashSet {
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
        items(self.fields.len(), limits)?;
        self.fields.iter().try_for_each(|f| value(&f.value, limits))
    }
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&self.key);
        for f in &self.fields {
            cmd.arg(&f.name).arg(&f.value);
        }
        Ok(vec![cmd, expire(&self.key, ctx.ttl(self.ttl_ms))])
    }
}

impl Kind for HashDelete {
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn writes(&self) -> bool {
        true
    }
    fn check(&self, limits: &PlanLimits) -> Result<(), String> {
        names(&self.fields, limits)
    }
    /// No `PEXPIRE`: removing fields creates nothing that could outlive it.
    fn commands(&self, _: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(&self.key).arg(&self.fields);
        Ok(vec![cmd])
    }
}

impl Kind for HashAdd {
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
        finite("an amount", self.by)?;
        value(self.field.as_bytes(), limits)
    }
    /// Which kind of number a field holds is Redis's to judge: a float
    /// amount on a whole field makes it a float, a whole amount on a
    /// float field is an error reply that fails the plan.
    fn commands(&self, ctx: &Ctx) -> Result<Vec<Cmd>, StoreError> {
        let mut cmd = match self.by {
            Number::Int(_) => redis::cmd("HINCRBY"),
            Number::Float(_) => redis::cmd("HINCRBYFLOAT"),
        };
        cmd.arg(&self.key).arg(&self.field).arg(amount(self.by));
        Ok(vec![cmd, expire(&self.key, ctx.ttl(self.ttl_ms))])
    }
    /// The field's new value: an int, or a float for a float amount.
    fn shape(&self, reply: Value) -> Option<Vec<u8>> {
        Some(reply::msgpack(added(reply, self.by)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{check_one, describe_one, json, plan};
    use super::super::{shape, written_keys};
    use crate::plugin::bindings::{Action, HashAdd, HashDelete, Number};
    use redis::Value;

    fn hdel(n: usize) -> Action {
        Action::HashDelete(HashDelete {
            key: "cache:h".into(),
            fields: (0..n).map(|i| format!("f{i}")).collect(),
        })
    }

    fn hadd(by: Number) -> Action {
        Action::HashAdd(HashAdd {
            key: "cache:h".into(),
            field: "hits".into(),
            by,
            ttl_ms: None,
        })
    }

    #[test]
    fn hash_delete_removes_one_to_max_items_fields_and_answers_the_count() {
        assert_eq!(describe_one(hdel(2)), ["HDEL cache:h f0 f1"]);
        assert_eq!(check_one(hdel(1)), Ok(()));
        assert_eq!(
            check_one(hdel(0)).unwrap_err(),
            "an action with nothing to write"
        );
        assert!(check_one(hdel(1025)).unwrap_err().contains("1025 items"));
        assert_eq!(json(shape(&hdel(2), Value::Int(1))), 1);
        let p = plan(vec![hdel(1)]);
        assert_eq!(written_keys(&p).collect::<Vec<_>>(), ["cache:h"]);
    }

    #[test]
    fn hash_add_increments_a_field_and_expires_in_one_transaction() {
        assert_eq!(
            describe_one(hadd(Number::Int(-3))),
            [
                "MULTI",
                "HINCRBY cache:h hits -3",
                "PEXPIRE cache:h 60000",
                "EXEC"
            ]
        );
        assert_eq!(
            describe_one(hadd(Number::Float(0.25)))[1],
            "HINCRBYFLOAT cache:h hits 0.25"
        );
        // Never an exponent, which Redis would not read.
        assert_eq!(
            describe_one(hadd(Number::Float(1e21)))[1],
            "HINCRBYFLOAT cache:h hits 1000000000000000000000"
        );
        assert_eq!(check_one(hadd(Number::Float(1.5))), Ok(()));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = check_one(hadd(Number::Float(bad))).unwrap_err();
            assert!(e.contains("not a finite number"), "{e}");
        }
        let p = plan(vec![hadd(Number::Int(1))]);
        assert_eq!(written_keys(&p).collect::<Vec<_>>(), ["cache:h"]);
    }

    #[test]
    fn hash_add_answers_the_new_value_as_a_number_of_the_amounts_kind() {
        assert_eq!(json(shape(&hadd(Number::Int(1)), Value::Int(7))), 7);
        // HINCRBYFLOAT answers a bulk string (RESP2 and RESP3 alike): the
        // answer is a MessagePack float, not that string.
        let float = hadd(Number::Float(0.5));
        let body = shape(&float, Value::BulkString(b"10.5".to_vec())).unwrap();
        assert_eq!(body[0], 0xcb, "a float 64");
        assert_eq!(json(Some(body)), 10.5);
        assert_eq!(json(shape(&float, Value::BulkString(b"3".to_vec()))), 3.0);
    }
}
