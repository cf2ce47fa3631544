//! Counters: `INCRBY`/`INCRBYFLOAT` with an optional cap, a read of one
//! as a number, and the number they (and hash fields) count in.

use super::{Action, IntoAction, wit};
use crate::Error;
use std::fmt;

plain_actions!(CounterGet);
ttl_option!(CounterAdd);

/// A number to count with: whole (`INCRBY`, `HINCRBY`) or floating
/// (`INCRBYFLOAT`, `HINCRBYFLOAT`). Integer literals and `i64`s become
/// `Int`, floats `Float`, so `CounterAdd::new(key, 1)` counts whole and
/// `CounterAdd::new(key, 0.5)` in floats. It (de)serializes as a plain
/// number, e.g. the `value` of a counter's answer.
///
/// ```
/// use sluice_sdk::{Number, Value};
/// assert_eq!(Number::from(3), Number::Int(3));
/// assert_eq!(Number::from(0.5), Number::Float(0.5));
/// assert_eq!(Value::encode(&2.5)?.decode::<Number>()?, Number::Float(2.5));
/// assert_eq!(Value::encode(&7u64)?.decode::<Number>()?, Number::Int(7));
/// # Ok::<(), sluice_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
}

impl From<i64> for Number {
    fn from(n: i64) -> Self {
        Number::Int(n)
    }
}

impl From<i32> for Number {
    fn from(n: i32) -> Self {
        Number::Int(n.into())
    }
}

impl From<f64> for Number {
    fn from(n: f64) -> Self {
        Number::Float(n)
    }
}

impl fmt::Display for Number {
    /// `3` for an int, `3.0` for a float, so the two read apart in messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(n) => write!(f, "{n}"),
            Number::Float(x) => write!(f, "{x:?}"),
        }
    }
}

impl serde::Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Number::Int(n) => s.serialize_i64(n),
            Number::Float(x) => s.serialize_f64(x),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Number, E> {
                Ok(Number::Int(n))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Number, E> {
                i64::try_from(n).map(Number::Int).map_err(|_| {
                    E::invalid_value(serde::de::Unexpected::Unsigned(n), &"a whole number")
                })
            }
            fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<Number, E> {
                Ok(Number::Float(x))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Number {
    /// Whether Redis can count with it: a float must be finite.
    fn is_finite(self) -> bool {
        match self {
            Number::Int(_) => true,
            Number::Float(x) => x.is_finite(),
        }
    }

    pub(super) fn into_wit(self) -> wit::Number {
        match self {
            Number::Int(n) => wit::Number::Int(n),
            Number::Float(x) => wit::Number::Float(x),
        }
    }

    /// `by` is an amount Redis takes, or why not (`what` names the action).
    pub(super) fn check_amount(self, what: &str) -> Result<(), Error> {
        match self.is_finite() {
            true => Ok(()),
            false => Err(Error::internal(format!(
                "{what} by {self}: Redis counts with finite numbers only"
            ))),
        }
    }
}

/// Add to a counter, one command (`INCRBY`, or `INCRBYFLOAT` for a
/// [`Number::Float`]): a counter the add creates expires after its TTL; an
/// existing one keeps its expiry, so the TTL is a fixed window. The reply
/// is `{"value": .., "added": ..}`: the counter after the add, and whether
/// the add was applied (see [`cap`](Self::cap)).
///
/// ```
/// use sluice_sdk::{Action, CounterAdd, Number, Plan};
/// // At most 100 calls a minute: the first add of a window starts it.
/// let plan = Plan::new().respond_with(CounterAdd::new("api:calls:ann", 1).cap(100).ttl_ms(60_000));
/// assert!(matches!(plan.response(), Some(Action::CounterAdd(c))
///     if c.by == Number::Int(1) && c.cap == Some(Number::Int(100))));
/// // An int counter caps at a whole number.
/// let wrong = Plan::new().then(CounterAdd::new("api:calls:ann", 1).cap(99.5));
/// assert!(wrong.error().is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CounterAdd {
    /// The key.
    pub key: String,
    /// How much to add; negative to subtract.
    pub by: Number,
    /// See [`CounterAdd::cap`].
    pub cap: Option<Number>,
    /// See [`CounterAdd::ttl_ms`]: the TTL of a counter the add creates.
    pub ttl_ms: Option<u64>,
}

impl CounterAdd {
    /// Add `by` (an integer, or a float for a float counter) to the counter at `key`.
    pub fn new(key: impl Into<String>, by: impl Into<Number>) -> Self {
        CounterAdd {
            key: key.into(),
            by: by.into(),
            cap: None,
            ttl_ms: None,
        }
    }

    /// Refuse an add that would take the counter past `cap` (above it for a
    /// positive amount, below it for a negative one): the counter stays as
    /// it is and the reply says `"added": false`. An int counter's cap is
    /// whole too.
    pub fn cap(mut self, cap: impl Into<Number>) -> Self {
        self.cap = Some(cap.into());
        self
    }

    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::CounterAdd(wit::CounterAdd {
            key: self.key,
            by: self.by.into_wit(),
            cap: self.cap.map(Number::into_wit),
            ttl_ms: self.ttl_ms,
        })
    }
}

impl IntoAction for CounterAdd {
    fn into_action(self) -> Result<Action, Error> {
        self.by.check_amount("CounterAdd")?;
        match (self.by, self.cap) {
            (_, Some(cap)) if !cap.is_finite() => Err(Error::internal(format!(
                "CounterAdd with .cap({cap}): a cap is a finite number"
            ))),
            (Number::Int(by), Some(cap @ Number::Float(_))) => Err(Error::internal(format!(
                "CounterAdd by {by} with .cap({cap}): an int counter's cap is whole; for a \
                 float counter, add a float"
            ))),
            _ => Ok(Action::CounterAdd(self)),
        }
    }
}

/// Read a counter [`CounterAdd`] keeps (`GET key`), as a number. A counter
/// is Redis's decimal text, not MessagePack, so [`Get`](crate::Get) would
/// misread it (`"5"` as the MessagePack integer 53, `"12"` as a string);
/// and unlike an add of 0 this creates no counter and starts no window.
/// The reply is the number: an int, or a float when the text has a point
/// or an exponent (a float counter whose sum is whole is stored, and read,
/// as an int: decode [`Number`] or `f64` to take either); a miss when there
/// is no counter. Text that is not a number reads as a string.
///
/// ```
/// use sluice_sdk::{Action, CounterGet, Plan, Value};
/// let plan = Plan::new().respond_with(CounterGet::new("api:calls:ann"));
/// assert!(plan.response().is_some_and(Action::is_read));
/// // A whole reply decodes as a float too.
/// assert_eq!(Value::encode(&2)?.decode::<f64>()?, 2.0);
/// # Ok::<(), sluice_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CounterGet {
    /// The key.
    pub key: String,
}

impl CounterGet {
    /// Read the counter at `key`.
    pub fn new(key: impl Into<String>) -> Self {
        CounterGet { key: key.into() }
    }

    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::CounterGet(wit::CounterGet { key: self.key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Plan, Value};

    #[test]
    fn a_counter_add_reaches_the_contract_with_its_cap_and_ttl() {
        let plan = Plan::new().respond_with(CounterAdd::new("d:c", -2).cap(-10).ttl_ms(5_000));
        let wit = plan.into_wit().unwrap();
        assert!(
            matches!(&wit.actions[..], [wit::Action::CounterAdd(c)] if c.key == "d:c"
            && matches!(c.by, wit::Number::Int(-2))
            && matches!(c.cap, Some(wit::Number::Int(-10)))
            && c.ttl_ms == Some(5_000))
        );
        let float = Plan::new().then(CounterAdd::new("d:c", 0.25).cap(1));
        assert!(
            matches!(&float.into_wit().unwrap().actions[..], [wit::Action::CounterAdd(c)]
            if matches!(c.by, wit::Number::Float(x) if x == 0.25) && c.cap.is_some())
        );
        let plain = CounterAdd::new("d:c", 1i64);
        assert_eq!((plain.cap, plain.ttl_ms), (None, None));
    }

    #[test]
    fn a_counter_get_reads_one_key() {
        let wit = Plan::new()
            .respond_with(CounterGet::new("d:c"))
            .into_wit()
            .unwrap();
        assert!(matches!(&wit.actions[..], [wit::Action::CounterGet(c)] if c.key == "d:c"));
        assert_eq!(wit.respond, Some(0));
    }

    #[test]
    fn contradictory_counters_fail_the_plan() {
        let err = |a: CounterAdd| match Plan::new().then(a).error() {
            Some(Error::Internal(m)) => m.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(CounterAdd::new("d:c", 1).cap(2.5)),
            "CounterAdd by 1 with .cap(2.5): an int counter's cap is whole; for a float \
             counter, add a float"
        );
        assert!(err(CounterAdd::new("d:c", f64::NAN)).contains("finite"));
        assert!(err(CounterAdd::new("d:c", 1.0).cap(f64::INFINITY)).contains("finite"));
    }

    #[test]
    fn numbers_read_as_plain_numbers() {
        assert_eq!(Number::from(1.0).to_string(), "1.0");
        assert_eq!(Number::from(-4).to_string(), "-4");
        assert_eq!(
            Value::encode(&Number::Int(5))
                .unwrap()
                .decode::<i64>()
                .unwrap(),
            5
        );
        assert_eq!(
            Value::encode(&u64::MAX)
                .unwrap()
                .decode::<Number>()
                .unwrap_err(),
            Error::bad_request(
                "the value must be a whole number for this domain, not 18446744073709551615"
            )
        );
        assert_eq!(
            Value::encode(&"5").unwrap().decode::<Number>().unwrap_err(),
            Error::bad_request(r#"the value must be a number for this domain, not a string ("5")"#)
        );
    }
}
