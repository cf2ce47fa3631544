//! What the read round of a read-then-write found, handed to
//! [`Policy::after_read`](crate::Policy::after_read).

use crate::value;
use crate::{Error, Value};
use serde::de::DeserializeOwned;

/// The replies of a [`Plan::read`](crate::Plan::read)'s actions, in the
/// order they were added: each `None` for a miss, else the action's answer
/// exactly as a client would get it, as MessagePack:
///
/// | read | reply | a miss |
/// | --- | --- | --- |
/// | `Get` | the stored value | no key |
/// | `HashGet` | a map of field → value, of the fields present | no field present |
/// | `ZsetRange` | an array of `{member, score}` | an empty range |
/// | `ZsetScore` | the score, a float | no such member |
/// | `ZsetCount`, `SetCount` | the number of members, an integer (0 for no key) | — |
/// | `SetContains` | `true` or `false` | — |
/// | `SetMembers` | an array of strings, sorted | an empty set |
/// | `ListRange` | an array of stored values | an empty range |
/// | `KeyTtl` | the ms the key has left, an integer; nil when it never expires | no key |
/// | `CounterGet` | the counter, an integer, or a float when its text has a point or an exponent | no key |
///
/// Natively, a test builds the replies it wants `after_read` to see:
///
/// ```
/// use sluice_sdk::{Replies, Value};
/// use std::collections::BTreeMap;
/// let read = Replies::new(vec![Some(Value::encode(&BTreeMap::from([("owner", "ann")]))?), None]);
/// assert_eq!(read.len(), 2);
/// let owner: Option<BTreeMap<String, String>> = read.decode(0)?;
/// assert_eq!(owner.unwrap()["owner"], "ann");
/// assert_eq!(read.decode::<String>(1)?, None, "a miss");
/// let err = read.decode::<u32>(0).unwrap_err();
/// assert!(err.to_string().starts_with("internal: reply 0 of the read"), "{err}");
/// # Ok::<(), sluice_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replies(Vec<Option<Value>>);

impl Replies {
    /// The replies of a read plan's actions, in order (`None`: a miss).
    pub fn new(replies: Vec<Option<Value>>) -> Self {
        Replies(replies)
    }

    /// The reply of action `i` of the read plan; `None` for a miss, or for
    /// an `i` past the last action.
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.0.get(i).and_then(Option::as_ref)
    }

    /// The reply of action `i`, decoded into `T`; `Ok(None)` for a miss.
    /// A reply that does not decode, or an `i` the read plan did not have,
    /// is an internal error (a 500: Redis held something this policy did
    /// not write) whose message names `i`.
    pub fn decode<T: DeserializeOwned>(&self, i: usize) -> Result<Option<T>, Error> {
        let reply = self.0.get(i).ok_or_else(|| {
            Error::internal(format!(
                "reply {i} of the read: the read plan had {} actions",
                self.0.len()
            ))
        })?;
        let Some(reply) = reply else { return Ok(None) };
        value::decode_named(reply.as_bytes(), || format!("reply {i} of the read"))
            .map(Some)
            .map_err(Error::internal)
    }

    /// How many replies: as many as the read plan had actions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (the read plan had no actions).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The host's replies; moves every buffer, copies none.
    pub(crate) fn from_wit(replies: Vec<Option<Vec<u8>>>) -> Self {
        Replies(
            replies
                .into_iter()
                .map(|r| r.map(Value::from_msgpack))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_decodes_by_index_and_a_miss_is_none() {
        let read = Replies::from_wit(vec![None, Some(vec![0x2a]), Some(vec![0xc3])]);
        assert_eq!((read.len(), read.is_empty()), (3, false));
        assert_eq!(read.get(0), None);
        assert_eq!(read.get(1), Some(&Value::from_msgpack(vec![0x2a])));
        assert_eq!(read.decode::<u8>(0).unwrap(), None);
        assert_eq!(read.decode::<u8>(1).unwrap(), Some(42));
        assert_eq!(read.decode::<bool>(2).unwrap(), Some(true));
        assert!(Replies::default().is_empty());
    }

    #[test]
    fn a_field_of_a_reply_that_does_not_fit_is_named() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Owned {
            owner: String,
        }
        let read = Replies::new(vec![
            None,
            Some(Value::encode(&std::collections::BTreeMap::from([("owner", 5)])).unwrap()),
        ]);
        assert_eq!(
            read.decode::<Owned>(1).unwrap_err(),
            Error::internal("`owner` in reply 1 of the read must be a string, not 5")
        );
    }

    #[test]
    fn a_reply_that_does_not_fit_or_is_not_there_names_its_index() {
        let read = Replies::new(vec![Some(Value::encode(&"ann").unwrap())]);
        assert_eq!(
            read.decode::<u32>(0).unwrap_err(),
            Error::internal(
                "reply 0 of the read must be a whole number from 0 to 4294967295, not a string \
                 (\"ann\")"
            )
        );
        assert_eq!(
            read.decode::<u32>(3).unwrap_err(),
            Error::internal("reply 3 of the read: the read plan had 1 actions")
        );
        assert_eq!(read.get(3), None);
    }
}
