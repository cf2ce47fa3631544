//! Streams: `XADD`.

use super::{Action, IntoAction, encode_fields, wit, wit_fields};
use crate::{Error, IntoValue, Value};

/// `XADD stream [MAXLEN ~ n] * field value ...`: append an entry to a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAdd<V = Value> {
    /// The stream's key.
    pub stream: String,
    /// The entry's fields (MessagePack once in a plan).
    pub fields: Vec<(String, V)>,
    /// See [`StreamAdd::max_len`].
    pub max_len: Option<u64>,
}

impl<V: IntoValue> StreamAdd<V> {
    /// Append an entry of these fields to `stream`.
    pub fn new<S: Into<String>>(
        stream: impl Into<String>,
        fields: impl IntoIterator<Item = (S, V)>,
    ) -> Self {
        let fields = fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
        StreamAdd {
            stream: stream.into(),
            fields,
            max_len: None,
        }
    }

    /// Keep the stream at about `n` entries (`MAXLEN ~ n`: Redis trims whole
    /// nodes, which is much cheaper than an exact cap).
    pub fn max_len(mut self, n: u64) -> Self {
        self.max_len = Some(n);
        self
    }
}

impl<V: IntoValue> IntoAction for StreamAdd<V> {
    fn into_action(self) -> Result<Action, Error> {
        let fields = encode_fields(self.fields)?;
        Ok(Action::StreamAdd(StreamAdd {
            stream: self.stream,
            fields,
            max_len: self.max_len,
        }))
    }
}

impl StreamAdd {
    pub(super) fn into_wit(self) -> wit::Action {
        wit::Action::StreamAdd(wit::StreamAdd {
            stream: self.stream,
            fields: wit_fields(self.fields),
            max_len: self.max_len,
        })
    }
}
