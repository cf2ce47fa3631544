//! The request a policy decides on.

use crate::bindings::sluice::policy::types as wit;
use crate::{Error, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `GET /v1/cache/{domain}/{key}`, and each key of an mget.
    Get,
    /// `PUT /v1/cache/{domain}/{key}`, and each item of an mset.
    Put,
    /// `DELETE /v1/cache/{domain}/{key}`.
    Delete,
    /// `POST /v1/events/{domain}`.
    Publish,
}

/// How a key has been used lately, as the gateway saw it. All zeros unless
/// the domain has `track_access = true` (and for keys it has forgotten).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AccessStats {
    /// Reads that found a value.
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Writes through the gateway.
    pub writes: u64,
    /// When the key was last read, ms since the Unix epoch; 0 if never.
    pub last_read_ms: u64,
    /// Reads per minute, exponentially decayed.
    pub read_rate: f64,
}

/// One request as the gateway hands it to a policy. The domain is not here:
/// an instance serves one domain and gets it once, in
/// [`Policy::configure`](crate::Policy::configure).
///
/// Natively, tests build requests with [`Request::get`], [`Request::put`],
/// [`Request::delete`] and [`Request::publish`] and the `with_*` methods:
///
/// ```
/// use sluice_sdk::{Operation, Request};
/// let req = Request::put("btc:usd", &[("price", 64000.5)]).with_ttl_ms(5_000);
/// assert_eq!(req.operation, Operation::Put);
/// assert_eq!(req.ttl_ms, Some(5_000));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The client's key (empty for events).
    pub key: String,
    /// What the client asked for.
    pub operation: Operation,
    /// The value, for puts and events.
    pub value: Option<Value>,
    /// Fields the client asked for (`?fields=a,b`); empty means all.
    pub fields: Vec<String>,
    /// A TTL the client asked for (`?ttl_s=`), in ms, already within the
    /// domain's bounds (the host refuses one outside them).
    pub ttl_ms: Option<u64>,
    /// The gateway's clock, ms since the Unix epoch: a policy has no clock.
    pub now_ms: u64,
    /// Fresh random bits, e.g. for TTL jitter: a policy has no randomness.
    pub entropy: u64,
    /// How the key has been used lately.
    pub stats: AccessStats,
}

impl Request {
    /// A request for `key` with no value, fields or history.
    pub fn new(key: impl Into<String>, operation: Operation) -> Self {
        Request {
            key: key.into(),
            operation,
            value: None,
            fields: Vec::new(),
            ttl_ms: None,
            now_ms: 0,
            entropy: 0,
            stats: AccessStats::default(),
        }
    }

    /// A read of `key`.
    pub fn get(key: impl Into<String>) -> Self {
        Request::new(key, Operation::Get)
    }

    /// A write of `value` at `key`, encoded as MessagePack as the gateway
    /// would encode a client's JSON.
    ///
    /// # Panics
    /// When `value` does not encode (a test's mistake).
    pub fn put<T: Serialize + ?Sized>(key: impl Into<String>, value: &T) -> Self {
        Request::new(key, Operation::Put).with_value(value)
    }

    /// A removal of `key`.
    pub fn delete(key: impl Into<String>) -> Self {
        Request::new(key, Operation::Delete)
    }

    /// An event (`POST /v1/events/{domain}`), encoded like [`put`](Self::put)'s value.
    pub fn publish<T: Serialize + ?Sized>(event: &T) -> Self {
        Request::new("", Operation::Publish).with_value(event)
    }

    /// The same request with this value.
    ///
    /// # Panics
    /// When `value` does not encode (a test's mistake).
    pub fn with_value<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match Value::encode(value) {
            Ok(v) => self.value = Some(v),
            Err(e) => panic!("a test value must encode: {e}"),
        }
        self
    }

    /// The same request asking only for these fields (`?fields=a,b`).
    pub fn with_fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// The same request with a client's TTL (`?ttl_s=`), in ms.
    pub fn with_ttl_ms(mut self, ttl_ms: u64) -> Self {
        self.ttl_ms = Some(ttl_ms);
        self
    }

    /// The same request as if the key had been read `reads_per_min` times a
    /// minute lately.
    pub fn with_read_rate(mut self, reads_per_min: f64) -> Self {
        self.stats.read_rate = reads_per_min;
        self
    }

    /// The same request with these random bits.
    pub fn with_entropy(mut self, entropy: u64) -> Self {
        self.entropy = entropy;
        self
    }

    /// The same request at this time, ms since the Unix epoch.
    pub fn with_now_ms(mut self, now_ms: u64) -> Self {
        self.now_ms = now_ms;
        self
    }

    /// The value, or a bad request when the operation came without one.
    pub fn value(&self) -> Result<&Value, Error> {
        self.value
            .as_ref()
            .ok_or_else(|| Error::bad_request("this operation needs a value"))
    }

    /// The value decoded into `T`; see [`Value::decode`] for the messages a
    /// client gets when it does not fit.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.value()?.decode()
    }

    /// One field of the value (an object), decoded; see [`Value::field`].
    pub fn field<T: DeserializeOwned>(&self, name: &str) -> Result<T, Error> {
        self.value()?.field(name)
    }

    /// The host's request; moves every buffer, copies none.
    pub(crate) fn from_wit(r: wit::Request) -> Self {
        let s = r.stats;
        Request {
            key: r.key,
            operation: match r.operation {
                wit::Operation::Get => Operation::Get,
                wit::Operation::Put => Operation::Put,
                wit::Operation::Delete => Operation::Delete,
                wit::Operation::Publish => Operation::Publish,
            },
            value: r.value.map(Value::from_msgpack),
            fields: r.fields,
            ttl_ms: r.ttl_ms,
            now_ms: r.now_ms,
            entropy: r.entropy,
            stats: AccessStats {
                hits: s.hits,
                misses: s.misses,
                writes: s.writes,
                last_read_ms: s.last_read_ms,
                read_rate: s.read_rate,
            },
        }
    }
}
