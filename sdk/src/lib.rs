//! Write Sluice domain policies in a few lines of Rust.
//!
//! A policy is a pure function from a [`Request`] to a [`Plan`]: the gateway
//! asks it what to do with one request and then does it — validates the plan,
//! runs it on Redis as one pipeline, keeps metrics. The policy never holds a
//! connection, never blocks, and sees no clock or randomness except what the
//! request carries, so it is trivially testable on the host target:
//!
//! ```
//! use sluice_sdk::{Error, Operation, Plan, Policy, Request};
//!
//! struct FixedTtl;
//!
//! impl Policy for FixedTtl {
//!     fn plan(req: Request) -> Result<Plan, Error> {
//!         let key = req.namespaced_key();
//!         Ok(match req.operation {
//!             Operation::Get => Plan::new().get(key).respond_with_last(),
//!             Operation::Put => Plan::new().set(key, req.value_bytes()?.to_vec(), req.ttl_ms),
//!             Operation::Delete => Plan::new().delete(key),
//!             Operation::Publish => return Err(Error::bad_request("this domain takes no events")),
//!         })
//!     }
//! }
//! // In the plugin crate: sluice_sdk::export_policy!(FixedTtl);
//!
//! let req = Request::new("cache", "user:1", Operation::Get);
//! let plan = FixedTtl::plan(req).unwrap();
//! assert_eq!(plan.actions().len(), 1);
//! ```
//!
//! Build a plugin with `cargo build --target wasm32-wasip2 --release`; the
//! resulting `.wasm` is a component the gateway loads from its plugin folder.
#![deny(missing_docs)]

extern crate self as sluice_sdk;

mod plan;
mod request;

pub use plan::{Action, CacheHint, Plan, ZsetBounds};
pub use request::{AccessStats, Config, Operation, Request};

/// The generated bindings of the `sluice:policy` world. Not part of the API:
/// use the typed wrappers of this crate.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "policy",
        pub_export_macro: true,
        export_macro_name: "__export_policy_world",
        default_bindings_module: "sluice_sdk::bindings",
        runtime_path: "sluice_sdk::__wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// serde, as the SDK uses it: values are (de)serialised with it.
pub use serde;

/// Why a policy refused a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The request does not make sense for this policy; the client gets a 4xx.
    BadRequest(String),
    /// The domain's settings are wrong; the gateway refuses to load the policy.
    BadConfig(String),
    /// Anything else; the client gets a 500 naming the plugin.
    Internal(String),
}

impl Error {
    /// A request this policy cannot serve.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    /// A setting of the domain that is missing or malformed.
    pub fn bad_config(msg: impl Into<String>) -> Self {
        Error::BadConfig(msg.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::BadRequest(m) => write!(f, "bad request: {m}"),
            Error::BadConfig(m) => write!(f, "bad config: {m}"),
            Error::Internal(m) => write!(f, "internal: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for bindings::sluice::policy::types::PolicyError {
    fn from(e: Error) -> Self {
        use bindings::sluice::policy::types::PolicyError as P;
        match e {
            Error::BadRequest(m) => P::BadRequest(m),
            Error::BadConfig(m) => P::BadConfig(m),
            Error::Internal(m) => P::Internal(m),
        }
    }
}

/// A domain policy. Implement it on a unit struct and export it with
/// [`export_policy!`].
pub trait Policy {
    /// Decide what to do with one request.
    fn plan(req: Request) -> Result<Plan, Error>;

    /// Check the domain's settings once per instance, before the policy
    /// serves (at load and at every reload); an error refuses the domain. The
    /// default accepts everything.
    fn check_config(domain: &str, config: &Config) -> Result<(), Error> {
        let _ = (domain, config);
        Ok(())
    }
}

/// Export a [`Policy`] as the plugin's implementation of the `sluice:policy` world.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[doc(hidden)]
        pub struct __SluiceExport;

        impl $crate::bindings::Guest for __SluiceExport {
            fn plan(
                request: $crate::bindings::sluice::policy::types::Request,
            ) -> ::core::result::Result<
                $crate::bindings::sluice::policy::types::Plan,
                $crate::bindings::sluice::policy::types::PolicyError,
            > {
                <$policy as $crate::Policy>::plan($crate::Request::from_host(request))
                    .map($crate::Plan::into_raw)
                    .map_err(::core::convert::Into::into)
            }

            fn configure(
                domain: ::std::string::String,
                config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::core::result::Result<(), $crate::bindings::sluice::policy::types::PolicyError>
            {
                $crate::__panics_to_log();
                let config = $crate::Config::from(config);
                let checked: ::core::result::Result<(), $crate::Error> =
                    <$policy as $crate::Policy>::check_config(&domain, &config);
                if let ::core::result::Result::Err(e) = checked {
                    return ::core::result::Result::Err(e.into());
                }
                $crate::__configure(domain, config);
                ::core::result::Result::Ok(())
            }
        }

        // The component's exports exist only in the WebAssembly build: natively
        // (tests, benchmarks) several policies link into one binary.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_policy_world!(__SluiceExport);
    };
}

std::thread_local! {
    /// The domain and settings this instance serves, from `configure`.
    static DOMAIN: std::cell::RefCell<(String, Config)> = std::cell::RefCell::default();
}

#[doc(hidden)]
pub fn __configure(domain: String, config: Config) {
    DOMAIN.with(|d| *d.borrow_mut() = (domain, config));
}

/// A policy has no stderr: route panic messages to the gateway's log, so a
/// plugin that panics says why before its call fails.
#[doc(hidden)]
pub fn __panics_to_log() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            log(LogLevel::Error, &format!("panic: {info}"))
        }));
    });
}

/// Write a line to the gateway's log, tagged with the plugin's name. On the
/// host target (native tests) the line goes to standard error.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::sluice::policy::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// The level of a [`log`] line.
pub use bindings::sluice::policy::log::Level as LogLevel;

/// MessagePack helpers: values cross the gateway as MessagePack, so a policy
/// that looks inside a value decodes it here.
pub mod msgpack {
    use crate::Error;

    /// Decode MessagePack into any serde type.
    pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
        rmp_serde::from_slice(bytes).map_err(|e| Error::bad_request(format!("value: {e}")))
    }

    /// Encode any serde type as MessagePack (maps keep their field names).
    pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
        rmp_serde::to_vec_named(value).map_err(|e| Error::Internal(format!("encode: {e}")))
    }

    /// Split a MessagePack map into its entries, each value still MessagePack
    /// (types kept), without knowing its shape: how an object becomes hash
    /// fields or stream entry fields.
    ///
    /// ```
    /// let obj = sluice_sdk::msgpack::encode(&serde_json_like()).unwrap();
    /// # fn serde_json_like() -> std::collections::BTreeMap<&'static str, f64> {
    /// #     [("price", 64000.5)].into_iter().collect()
    /// # }
    /// let fields = sluice_sdk::msgpack::fields(&obj).unwrap();
    /// assert_eq!(fields[0].0, "price");
    /// assert_eq!(sluice_sdk::msgpack::decode::<f64>(&fields[0].1).unwrap(), 64000.5);
    /// ```
    pub fn fields(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let map: std::collections::BTreeMap<String, Raw> = rmp_serde::from_slice(bytes)
            .map_err(|e| Error::bad_request(format!("expected an object with string keys: {e}")))?;
        Ok(map.into_iter().map(|(k, Raw(v))| (k, v)).collect())
    }

    /// Any value, re-encoded as MessagePack while it is read.
    struct Raw(Vec<u8>);

    impl<'de> serde::Deserialize<'de> for Raw {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let mut out = Vec::new();
            serde_transcode::transcode(d, &mut rmp_serde::Serializer::new(&mut out))
                .map_err(serde::de::Error::custom)?;
            Ok(Raw(out))
        }
    }
}
