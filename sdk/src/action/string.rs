//! Plain values: `GET` and `SET`.

use super::{Action, IntoAction, wit};
use crate::{Error, IntoValue, Value};

plain_actions!(Get);
ttl_option!(Set<V>);

/// `GET key`: the reply is the stored value, a miss is a 404.
#[derive(Debug, Clone, PartialEq)]
pub struct Get {
    /// The key.
    pub key: String,
}

impl Get {
    /// Read `key`.
    pub fn new(key: impl Into<String>) -> Self {
        Get { key: key.into() }
    }
}

/// `SET key value PX ttl`: store a value as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Set<V = Value> {
    /// The key.
    pub key: String,
    /// The value (MessagePack once in a plan).
    pub value: V,
    /// See [`Set::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl<V: IntoValue> Set<V> {
    /// Store `value` (a [`Value`], or a reference to anything serializable) at `key`.
    pub fn new(key: impl Into<String>, value: V) -> Self {
        Set {
            key: key.into(),
            value,
            ttl_ms: None,
        }
    }
}

impl<V: IntoValue> IntoAction for Set<V> {
    fn into_action(self) -> Result<Action, Error> {
        let value = self.value.into_value()?;
        Ok(Action::Set(Set {
            key: self.key,
            value,
            ttl_ms: self.ttl_ms,
        }))
    }
}

impl Get {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::Get(wit::StringGet { key: self.key })
    }
}

impl Set {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::Set(wit::StringSet {
            key: self.key,
            value: self.value.into_bytes(),
            ttl_ms: self.ttl_ms,
        })
    }
}
