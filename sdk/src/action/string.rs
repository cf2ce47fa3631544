//! Plain values: `GET`, `SET` and `SET NX`.

use super::{Action, IntoAction, wit};
use crate::{Error, IntoValue, Value};

plain_actions!(Get);
ttl_option!(Set<V>, SetIfAbsent<V>);

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

/// `SET key value NX PX ttl`: store a value only when the key is absent: a
/// lock, a de-duplication mark, a first-writer-wins. The reply is `true`
/// when it was stored, `false` when the key was already there (and is left
/// as it was, TTL included).
///
/// ```
/// use sluice_sdk::{Action, Plan, SetIfAbsent};
/// let plan = Plan::new().respond_with(SetIfAbsent::new("jobs:lock:42", &"worker-7").ttl_ms(30_000));
/// assert!(matches!(plan.response(), Some(Action::SetIfAbsent(s))
///     if s.value.decode::<String>().unwrap() == "worker-7" && s.ttl_ms == Some(30_000)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SetIfAbsent<V = Value> {
    /// The key.
    pub key: String,
    /// The value (MessagePack once in a plan).
    pub value: V,
    /// See [`SetIfAbsent::ttl_ms`].
    pub ttl_ms: Option<u64>,
}

impl<V: IntoValue> SetIfAbsent<V> {
    /// Store `value` (a [`Value`], or a reference to anything serializable)
    /// at `key` unless the key holds something.
    pub fn new(key: impl Into<String>, value: V) -> Self {
        SetIfAbsent {
            key: key.into(),
            value,
            ttl_ms: None,
        }
    }
}

impl<V: IntoValue> IntoAction for SetIfAbsent<V> {
    fn into_action(self) -> Result<Action, Error> {
        let value = self.value.into_value()?;
        Ok(Action::SetIfAbsent(SetIfAbsent {
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

impl SetIfAbsent {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::SetIfAbsent(wit::SetIfAbsent {
            key: self.key,
            value: self.value.into_bytes(),
            ttl_ms: self.ttl_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plan;

    #[test]
    fn set_if_absent_encodes_its_value_and_keeps_its_ttl() {
        let plan = Plan::new()
            .respond_with(SetIfAbsent::new("d:lock", &7u8).ttl_ms(1_000))
            .then(SetIfAbsent::new("d:mark", Value::encode(&true).unwrap()));
        match plan.actions() {
            [Action::SetIfAbsent(a), Action::SetIfAbsent(b)] => {
                assert_eq!(
                    (a.value.decode::<u8>().unwrap(), a.ttl_ms),
                    (7, Some(1_000))
                );
                assert_eq!((b.value.decode::<bool>().unwrap(), b.ttl_ms), (true, None));
            }
            other => panic!("{other:?}"),
        }
        let wit = plan.into_wit().unwrap();
        assert!(matches!(&wit.actions[0], wit::Action::SetIfAbsent(s)
            if s.key == "d:lock" && s.value == [7] && s.ttl_ms == Some(1_000)));
    }
}
