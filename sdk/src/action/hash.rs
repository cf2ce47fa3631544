//! Objects as hashes: `HGETALL`/`HMGET` and `HSET`.

use super::{Action, IntoAction, encode_fields, wit, wit_fields};
use crate::{Error, IntoValue, Value};

plain_actions!(HashGet);
ttl_option!(HashSet<V>);

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
