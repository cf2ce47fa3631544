//! Objects as hashes: `HGETALL`/`HMGET`, `HSET`, `HDEL` and `HINCRBY`.

use super::{Action, IntoAction, Number, encode_fields, nothing, wit, wit_fields};
use crate::{Error, IntoValue, Value};

plain_actions!(HashGet);
ttl_option!(HashSet<V>, HashAdd);

/// `HGETALL key`, or `HMGET key field ...`: the reply is an object.
#[derive(Debug, Clone, PartialEq)]
pub struct HashGet {
    /// The key.
    pub key: String,
    /// The fields to read; empty: all of them.
    pub fields: Vec<String>,
}

impl HashGet {
    /// Read the whole hash at `key`.
    pub fn new(key: impl Into<String>) -> Self {
        HashGet {
            key: key.into(),
            fields: Vec::new(),
        }
    }

    /// Read only these fields (all of them when the list is empty, as a
    /// request's `fields` is when the client named none).
    pub fn fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.fields = fields.into_iter().map(Into::into).collect();
        self
    }
}

/// `HSET key field value ...`, then `PEXPIRE`.
#[derive(Debug, Clone, PartialEq)]
pub struct HashSet<V = Value> {
    /// The key.
    pub key: String,
    /// Field names and values (MessagePack once in a plan).
    pub fields: Vec<(String, V)>,
    /// See [`HashSet::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl<V: IntoValue> HashSet<V> {
    /// Set these fields of the hash at `key`, e.g. an object's [`Value::fields`].
    pub fn new<S: Into<String>>(
        key: impl Into<String>,
        fields: impl IntoIterator<Item = (S, V)>,
    ) -> Self {
        let fields = fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
        HashSet {
            key: key.into(),
            fields,
            ttl_ms: None,
        }
    }
}

impl<V: IntoValue> IntoAction for HashSet<V> {
    fn into_action(self) -> Result<Action, Error> {
        let fields = encode_fields(self.fields)?;
        Ok(Action::HashSet(HashSet {
            key: self.key,
            fields,
            ttl_ms: self.ttl_ms,
        }))
    }
}

/// `HDEL key field ...`: remove fields of an object. The reply is the
/// number of fields removed.
///
/// ```
/// use sluice_sdk::{HashDelete, Plan};
/// let plan = Plan::new().then(HashDelete::new("users:ann", ["token", "token_ts"]));
/// assert!(plan.error().is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HashDelete {
    /// The key.
    pub key: String,
    /// The fields to remove: one at least.
    pub fields: Vec<String>,
}

impl HashDelete {
    /// Remove `fields` from the hash at `key`.
    pub fn new<S: Into<String>>(
        key: impl Into<String>,
        fields: impl IntoIterator<Item = S>,
    ) -> Self {
        HashDelete {
            key: key.into(),
            fields: fields.into_iter().map(Into::into).collect(),
        }
    }

    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::HashDelete(wit::HashDelete {
            key: self.key,
            fields: self.fields,
        })
    }
}

impl IntoAction for HashDelete {
    fn into_action(self) -> Result<Action, Error> {
        match self.fields.is_empty() {
            true => Err(nothing("HashDelete", &self.key, "fields")),
            false => Ok(Action::HashDelete(self)),
        }
    }
}

/// `HINCRBY key field by` (`HINCRBYFLOAT` for a [`Number::Float`]), then
/// `PEXPIRE`: count in one field of an object. The reply is the field's new
/// value.
///
/// ```
/// use sluice_sdk::{Action, HashAdd, Number, Plan};
/// let plan = Plan::new().respond_with(HashAdd::new("stats:2024-06-01", "visits", 1));
/// assert!(matches!(plan.response(), Some(Action::HashAdd(h)) if h.by == Number::Int(1)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HashAdd {
    /// The key.
    pub key: String,
    /// The field (created at `by` when it is not there).
    pub field: String,
    /// How much to add; negative to subtract.
    pub by: Number,
    /// See [`HashAdd::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl HashAdd {
    /// Add `by` (an integer, or a float) to `field` of the hash at `key`.
    pub fn new(key: impl Into<String>, field: impl Into<String>, by: impl Into<Number>) -> Self {
        HashAdd {
            key: key.into(),
            field: field.into(),
            by: by.into(),
            ttl_ms: None,
        }
    }

    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::HashAdd(wit::HashAdd {
            key: self.key,
            field: self.field,
            by: self.by.into_wit(),
            ttl_ms: self.ttl_ms,
        })
    }
}

impl IntoAction for HashAdd {
    fn into_action(self) -> Result<Action, Error> {
        self.by.check_amount("HashAdd")?;
        Ok(Action::HashAdd(self))
    }
}

impl HashGet {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::HashGet(wit::HashGet {
            key: self.key,
            fields: self.fields,
        })
    }
}

impl HashSet {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::HashSet(wit::HashSet {
            key: self.key,
            fields: wit_fields(self.fields),
            ttl_ms: self.ttl_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plan;

    #[test]
    fn hash_delete_and_add_reach_the_contract() {
        let plan = Plan::new()
            .then(HashDelete::new("d:h", ["a", "b"]))
            .respond_with(HashAdd::new("d:h", "n", 2.5).ttl_ms(9_000));
        assert!(matches!(&plan.actions()[1], Action::HashAdd(h) if h.by == Number::Float(2.5)));
        let wit = plan.into_wit().unwrap();
        assert!(matches!(&wit.actions[0], wit::Action::HashDelete(d)
            if d.key == "d:h" && d.fields == ["a", "b"]));
        assert!(matches!(&wit.actions[1], wit::Action::HashAdd(h)
            if h.field == "n" && matches!(h.by, wit::Number::Float(x) if x == 2.5)
                && h.ttl_ms == Some(9_000)));
    }

    #[test]
    fn deleting_no_field_or_adding_no_number_fails_the_plan() {
        let none = Plan::new().then(HashDelete::new("d:h", Vec::<String>::new()));
        assert_eq!(
            none.error(),
            Some(&Error::internal(
                "HashDelete of \"d:h\" with no fields: it needs one at least"
            ))
        );
        let nan = Plan::new().then(HashAdd::new("d:h", "n", f64::NAN));
        assert!(matches!(nan.error(), Some(Error::Internal(m)) if m.contains("finite")));
    }
}
