//! The request a policy decides on.

use crate::Error;
use crate::bindings::sluice::policy::types as wit;

pub use wit::AccessStats;
pub use wit::Operation;

/// One request as the gateway hands it to a policy.
#[derive(Debug, Clone)]
pub struct Request {
    /// The domain; every key the plan touches must live under `{domain}:`.
    pub domain: String,
    /// The client's key (empty for events).
    pub key: String,
    /// What the client asked for.
    pub operation: Operation,
    /// The value as MessagePack, for puts and events.
    pub value: Option<Vec<u8>>,
    /// Fields the client asked for (`?fields=a,b`); empty means all.
    pub fields: Vec<String>,
    /// The domain's settings.
    pub config: Config,
    /// A TTL the client asked for, in ms, already within the domain's bounds.
    pub ttl_ms: Option<u64>,
    /// The gateway's clock, ms since the Unix epoch.
    pub now_ms: u64,
    /// Fresh random bits, e.g. for TTL jitter.
    pub entropy: u64,
    /// How the key has been used lately.
    pub stats: AccessStats,
}

impl Request {
    /// A request with no value, settings or history: the start of a native test.
    pub fn new(domain: &str, key: &str, operation: Operation) -> Self {
        Request {
            domain: domain.to_owned(),
            key: key.to_owned(),
            operation,
            value: None,
            fields: Vec::new(),
            config: Config::default(),
            ttl_ms: None,
            now_ms: 0,
            entropy: 0,
            stats: AccessStats {
                hits: 0,
                misses: 0,
                writes: 0,
                last_read_ms: 0,
                read_rate: 0.0,
            },
        }
    }

    /// A read, for native tests: `Request::get("cache", "k")`.
    pub fn get(domain: &str, key: &str) -> Self {
        Request::new(domain, key, Operation::Get)
    }

    /// A write of `value` (encoded as MessagePack, as the gateway would), for
    /// native tests:
    ///
    /// ```
    /// use sluice_sdk::{Config, Request};
    /// let req = Request::put("price", "btc:usd", &[("price", 64000.5)])
    ///     .with_config(Config::default().with("ttl_s", 5));
    /// assert_eq!(req.config.get::<u64>("ttl_s").unwrap(), Some(5));
    /// ```
    pub fn put<T: serde::Serialize + ?Sized>(domain: &str, key: &str, value: &T) -> Self {
        let mut req = Request::new(domain, key, Operation::Put);
        req.value = crate::msgpack::encode(value).ok();
        req
    }

    /// An event, for native tests.
    pub fn publish<T: serde::Serialize + ?Sized>(domain: &str, event: &T) -> Self {
        let mut req = Request::put(domain, "", event);
        req.operation = Operation::Publish;
        req
    }

    /// The same request with these domain settings.
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The same request as if the key had been read `reads_per_min` times a
    /// minute lately (for adaptive policies).
    pub fn with_read_rate(mut self, reads_per_min: f64) -> Self {
        self.stats.read_rate = reads_per_min;
        self
    }

    /// `{domain}:{key}`, the Redis key a simple policy stores the value at.
    pub fn namespaced_key(&self) -> String {
        format!("{}:{}", self.domain, self.key)
    }

    /// The value's MessagePack bytes, or a bad-request error when there is none.
    pub fn value_bytes(&self) -> Result<&[u8], Error> {
        self.value
            .as_deref()
            .ok_or_else(|| Error::bad_request("this operation needs a value"))
    }

    /// The value decoded into a serde type.
    pub fn value<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        crate::msgpack::decode(self.value_bytes()?)
    }
}

impl Request {
    /// The host's request, completed with the domain and settings this
    /// instance was configured with.
    #[doc(hidden)]
    pub fn from_host(r: wit::Request) -> Self {
        let (domain, config) = crate::DOMAIN.with(|d| d.borrow().clone());
        Request {
            domain,
            key: r.key,
            operation: r.operation,
            value: r.value,
            fields: r.fields,
            config,
            ttl_ms: r.ttl_ms,
            now_ms: r.now_ms,
            entropy: r.entropy,
            stats: r.stats,
        }
    }
}

/// The domain's settings from the gateway's configuration, as written there.
/// Cloning is cheap (shared).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config(std::rc::Rc<Vec<(String, String)>>);

impl Config {
    /// The raw text of a setting.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A setting parsed into `T`; `None` when absent, a bad-config error when malformed.
    pub fn get<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Error> {
        self.raw(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    Error::bad_config(format!("setting `{name}` = {v:?} is malformed"))
                })
            })
            .transpose()
    }

    /// Set a setting (for native tests).
    pub fn with(mut self, name: &str, value: impl ToString) -> Self {
        let settings = std::rc::Rc::make_mut(&mut self.0);
        settings.retain(|(k, _)| k != name);
        settings.push((name.to_owned(), value.to_string()));
        self
    }
}

impl From<Vec<(String, String)>> for Config {
    fn from(v: Vec<(String, String)>) -> Self {
        Config(std::rc::Rc::new(v))
    }
}
