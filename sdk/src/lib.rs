//! Write Sluice domain policies in a few lines of Rust.
//!
//! A policy decides, the gateway does. An instance is built once from its
//! domain and the domain's `[settings]` table ([`Policy::configure`]), then
//! answers each [`Request`] with a [`Plan`]: a few Redis actions, which one's
//! reply is the response, and hints. The gateway validates the plan, runs it as
//! one pipeline and keeps the metrics. A policy never holds a connection, never
//! blocks, and sees no clock or randomness except what the request carries, so
//! it is tested natively, as plain Rust:
//!
//! ```
//! use sluice_sdk::prelude::*;
//!
//! /// `[domains.NAME.settings]`: `sliding = true` renews a key's TTL on every read.
//! #[derive(Deserialize)]
//! pub struct Settings {
//!     #[serde(default)]
//!     sliding: bool,
//! }
//!
//! pub struct Sessions {
//!     domain: Domain,
//!     settings: Settings,
//! }
//!
//! impl Policy for Sessions {
//!     type Settings = Settings;
//!
//!     fn configure(domain: Domain, settings: Settings) -> Result<Self, Error> {
//!         Ok(Sessions { domain, settings })
//!     }
//!
//!     fn plan(&self, req: &Request) -> Result<Plan, Error> {
//!         let key = self.domain.key(&req.key); // "{domain}:{key}"
//!         Ok(match req.operation {
//!             Operation::Get if self.settings.sliding => Plan::new()
//!                 .respond_with(Get::new(&key))
//!                 .then(Expire::new(key, self.domain.ttl_ms)),
//!             Operation::Get => Plan::new().respond_with(Get::new(key)),
//!             Operation::Put => Plan::new().then(Set::new(key, req.value()?).ttl_ms(req.ttl_ms)),
//!             Operation::Delete => Plan::new().then(Delete::new(key)),
//!             Operation::Publish => return Err(Error::bad_request("this domain takes no events")),
//!         })
//!     }
//! }
//!
//! sluice_sdk::export_policy!(Sessions);
//!
//! // A test builds the policy as the gateway would, and reads its plans.
//! let settings = std::collections::BTreeMap::from([("sliding", true)]);
//! let sessions = Sessions::from_settings(Domain::named("sessions"), &settings)?;
//! let plan = sessions.plan(&Request::get("ann"))?;
//! assert!(matches!(plan.actions(), [Action::Get(g), Action::Expire(e)]
//!     if g.key == "sessions:ann" && e.ttl_ms == 60_000));
//! assert_eq!(plan.response(), plan.actions().first());
//!
//! let typo = std::collections::BTreeMap::from([("slidin", true)]);
//! let refused = Sessions::from_settings(Domain::named("sessions"), &typo).err().unwrap();
//! assert_eq!(refused.to_string(), "bad config: unknown setting `slidin` in \
//!     [domains.sessions.settings]: this policy does not read it (a typo?)");
//! # Ok::<(), Error>(())
//! ```
//!
//! A plan runs as it is ([`Plan::new`]), or only reads ([`Plan::read`]): then
//! the gateway runs the reads and asks [`Policy::after_read`], with their
//! [`Replies`], for the plan that writes, and runs that one as a transaction
//! under `WATCH` of what was read, so no other writer slips in between. An
//! mget or mset crosses into the plugin once, through [`Policy::plan_batch`].
//! [`Action`] lists what a plan can do; [`Action::is_read`] says which
//! actions only read. The contract is `sluice:policy@0.3.0`
//! (`sdk/wit/policy.wit`); this crate's version follows it.
//!
//! A plugin crate has `crate-type = ["cdylib", "rlib"]` (the component, and
//! the library its tests link) and builds with
//! `cargo build --profile plugin --target wasm32-wasip2`; in the Sluice
//! repository `make plugins` does that and copies each component to
//! `build/plugins/NAME.wasm`. `sluice plugin new NAME` writes such a crate;
//! `docs/plugin-guide.md` goes from there to a live domain.
#![deny(missing_docs)]

extern crate self as sluice_sdk;

mod action;
mod plan;
mod replies;
mod request;
mod value;

pub use action::{
    Action, CounterAdd, CounterGet, Delete, Expire, Get, HashAdd, HashDelete, HashGet, HashSet,
    IntoAction, KeyTtl, ListEnd, ListPush, ListRange, ListRemove, Number, ScoredMember, Script,
    Set, SetAdd, SetContains, SetCount, SetIfAbsent, SetMembers, SetRemove, StreamAdd, ZsetAdd,
    ZsetBounds, ZsetCondition, ZsetCount, ZsetIncr, ZsetRange, ZsetRemove, ZsetScore, ZsetTrim,
};
pub use plan::{CacheHint, Plan, Step};
pub use replies::Replies;
pub use request::{AccessStats, Operation, Request};
pub use value::{IntoValue, Value};

/// The plugin guide's Rust blocks, compiled and run as this crate's doctests
/// so the guide cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../docs/plugin-guide.md")]
mod plugin_guide {}

/// serde, as the SDK uses it: settings and values are (de)serialized with it.
pub use serde;

/// Everything a policy usually names: `use sluice_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Action, CacheHint, CounterAdd, CounterGet, Delete, Domain, Error, Expire, Get, HashAdd,
        HashDelete, HashGet, HashSet, KeyTtl, ListPush, ListRange, ListRemove, NoSettings, Number,
        Operation, Plan, Policy, Replies, Request, ScoredMember, Script, Set, SetAdd, SetContains,
        SetCount, SetIfAbsent, SetMembers, SetRemove, StreamAdd, Value, ZsetAdd, ZsetCount,
        ZsetIncr, ZsetRange, ZsetRemove, ZsetScore, ZsetTrim,
    };
    /// The trait and its derive (the plugin crate depends on `serde` for the derive).
    pub use serde::Deserialize;
}

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

use bindings::sluice::policy::types as wit;

/// A domain policy: built once per instance from the domain and its typed
/// settings, then asked for a plan per request. Export it with [`export_policy!`].
pub trait Policy: Sized + 'static {
    /// The policy's own settings, deserialized from the domain's
    /// `[domains.NAME.settings]` table, whole (arrays and tables intact).
    /// A setting the type does not read is refused, so a typo is an error at
    /// load rather than a default silently kept. [`NoSettings`] for none.
    type Settings: serde::de::DeserializeOwned;

    /// Build the instance, once, before it serves (at load and at every
    /// reload). An error (e.g. [`Error::bad_config`] for a setting out of
    /// range) refuses the domain and the old version keeps serving.
    fn configure(domain: Domain, settings: Self::Settings) -> Result<Self, Error>;

    /// Decide what to do with one request: a plan that runs
    /// ([`Plan::new`]), or one that reads first ([`Plan::read`]), after which
    /// [`after_read`](Self::after_read) decides the writes.
    fn plan(&self, req: &Request) -> Result<Plan, Error>;

    /// The second round of a read-then-write: `plan` answered `req` with a
    /// [`Plan::read`], the gateway ran it, and `read` holds each of its
    /// actions' replies, in order. The plan returned runs (it may not read
    /// again: at most two rounds) as one transaction under `WATCH` of the
    /// keys read; when another writer changed one of them in between, both
    /// rounds run again, so this may be called more than once per request.
    ///
    /// The default refuses: only a policy that plans reads needs this.
    fn after_read(&self, req: &Request, read: &Replies) -> Result<Plan, Error> {
        let _ = (req, read);
        Err(Error::internal(
            "this policy planned a read (Plan::read) but has no after_read to plan the writes",
        ))
    }

    /// [`plan`](Self::plan) for each request of a batch (an mget's keys, an
    /// mset's items), answered in one call across the boundary: one result
    /// per request, in order. The default asks `plan` for each; a policy may
    /// work something out once per batch instead.
    fn plan_batch(&self, reqs: &[Request]) -> Vec<Result<Plan, Error>> {
        reqs.iter().map(|req| self.plan(req)).collect()
    }

    /// Build the instance as the gateway does: `settings` (a table: a map or
    /// struct, or the gateway's MessagePack as a [`Value`]) is decoded into
    /// [`Self::Settings`], with errors that name the setting, then
    /// [`configure`](Self::configure) runs. For tests and benchmarks.
    fn from_settings(domain: Domain, settings: impl IntoValue) -> Result<Self, Error> {
        let settings = settings.into_value()?;
        let settings = value::settings(&domain.name, settings.as_bytes())?;
        Self::configure(domain, settings)
    }
}

/// The domain an instance serves, as the gateway's configuration names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// `[a-z0-9_-]{1,64}`; the domain's keys live under `{name}:`.
    pub name: String,
    /// The TTL of a write that names none (`ttl_s`), ms.
    pub ttl_ms: u64,
    /// The least TTL the host lets a key have (`min_ttl_s`), ms.
    pub min_ttl_ms: u64,
    /// The most TTL the host lets a key have (`max_ttl_s`), ms.
    pub max_ttl_ms: u64,
}

impl Domain {
    /// A domain with the gateway's default TTLs (60 s, within 1 s..=86 400 s),
    /// for native tests.
    pub fn named(name: impl Into<String>) -> Self {
        Domain {
            name: name.into(),
            ttl_ms: 60_000,
            min_ttl_ms: 1_000,
            max_ttl_ms: 86_400_000,
        }
    }

    /// The same domain with `ttl_s`, `min_ttl_s` and `max_ttl_s` as a
    /// configuration would write them, in seconds.
    pub fn with_ttl_s(self, ttl_s: u64, min_ttl_s: u64, max_ttl_s: u64) -> Self {
        let ms = |s: u64| s.saturating_mul(1000);
        Domain {
            ttl_ms: ms(ttl_s),
            min_ttl_ms: ms(min_ttl_s),
            max_ttl_ms: ms(max_ttl_s),
            ..self
        }
    }

    /// `{name}:{key}`: the Redis key of a client's key in this domain's
    /// namespace (the only keys the host lets a plan touch, with the
    /// domain's declared `prefixes`).
    pub fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.name.len() + 1 + key.len());
        k.push_str(&self.name);
        k.push(':');
        k.push_str(key);
        k
    }
}

/// The settings of a policy that has none: a `[settings]` table with anything
/// in it is refused at load, naming the first setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// Why a policy refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The request does not make sense for this policy; the client gets a 400
    /// with this message, so say what to send instead.
    BadRequest(String),
    /// The domain's settings are wrong: the domain is refused at load.
    BadConfig(String),
    /// Anything else; the client gets a 500 naming the plugin.
    Internal(String),
}

impl Error {
    /// A request this policy cannot serve.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    /// A setting of the domain that is missing or out of range.
    pub fn bad_config(msg: impl Into<String>) -> Self {
        Error::BadConfig(msg.into())
    }

    /// A failure that is neither the client's nor the configuration's.
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
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

impl From<Error> for wit::PolicyError {
    fn from(e: Error) -> Self {
        match e {
            Error::BadRequest(m) => wit::PolicyError::BadRequest(m),
            Error::BadConfig(m) => wit::PolicyError::BadConfig(m),
            Error::Internal(m) => wit::PolicyError::Internal(m),
        }
    }
}

/// Export a [`Policy`] as the plugin's implementation of the `sluice:policy`
/// world. Only the WebAssembly build exports it, so natively (tests,
/// benchmarks) several policies link into one binary.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        ::std::thread_local! {
            /// The instance `configure` built; every `plan` borrows it.
            static __SLUICE_POLICY: ::core::cell::RefCell<::core::option::Option<$policy>> =
                const { ::core::cell::RefCell::new(::core::option::Option::None) };
        }

        #[doc(hidden)]
        pub struct __SluiceExport;

        impl $crate::bindings::Guest for __SluiceExport {
            fn configure(
                domain: $crate::bindings::sluice::policy::types::Domain,
            ) -> ::core::result::Result<(), $crate::bindings::sluice::policy::types::PolicyError>
            {
                $crate::__export::configure(&__SLUICE_POLICY, domain)
            }

            fn plan(
                request: $crate::bindings::sluice::policy::types::Request,
            ) -> ::core::result::Result<
                $crate::bindings::sluice::policy::types::Decision,
                $crate::bindings::sluice::policy::types::PolicyError,
            > {
                $crate::__export::plan(&__SLUICE_POLICY, request)
            }

            fn plan_after_read(
                request: $crate::bindings::sluice::policy::types::Request,
                replies: ::std::vec::Vec<::core::option::Option<::std::vec::Vec<u8>>>,
            ) -> ::core::result::Result<
                $crate::bindings::sluice::policy::types::Plan,
                $crate::bindings::sluice::policy::types::PolicyError,
            > {
                $crate::__export::plan_after_read(&__SLUICE_POLICY, request, replies)
            }

            fn plan_batch(
                requests: ::std::vec::Vec<$crate::bindings::sluice::policy::types::Request>,
            ) -> ::std::vec::Vec<
                ::core::result::Result<
                    $crate::bindings::sluice::policy::types::Decision,
                    $crate::bindings::sluice::policy::types::PolicyError,
                >,
            > {
                $crate::__export::plan_batch(&__SLUICE_POLICY, requests)
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_policy_world!(__SluiceExport);
    };
}

/// What [`export_policy!`] expands to call. Not part of the API.
#[doc(hidden)]
pub mod __export {
    use super::*;
    use std::cell::RefCell;
    use std::thread::LocalKey;

    /// Where a plugin keeps its one instance (a WebAssembly instance has one thread).
    pub type Slot<P> = LocalKey<RefCell<Option<P>>>;

    pub fn configure<P: Policy>(
        slot: &'static Slot<P>,
        d: wit::Domain,
    ) -> Result<(), wit::PolicyError> {
        panics_to_log();
        let domain = Domain {
            name: d.name,
            ttl_ms: d.ttl_ms,
            min_ttl_ms: d.min_ttl_ms,
            max_ttl_ms: d.max_ttl_ms,
        };
        slot.set(Some(P::from_settings(
            domain,
            Value::from_msgpack(d.settings),
        )?));
        Ok(())
    }

    pub fn plan<P: Policy>(
        slot: &'static Slot<P>,
        r: wit::Request,
    ) -> Result<wit::Decision, wit::PolicyError> {
        let req = Request::from_wit(r);
        let decided = slot.with_borrow(|policy| match policy {
            Some(policy) => policy.plan(&req)?.into_decision(),
            None => Err(before_configure("plan")),
        });
        Ok(decided?)
    }

    pub fn plan_after_read<P: Policy>(
        slot: &'static Slot<P>,
        r: wit::Request,
        replies: Vec<Option<Vec<u8>>>,
    ) -> Result<wit::Plan, wit::PolicyError> {
        let req = Request::from_wit(r);
        let read = Replies::from_wit(replies);
        let planned = slot.with_borrow(|policy| match policy {
            Some(policy) => match policy.after_read(&req, &read)? {
                plan if plan.is_read() => Err(Error::internal(
                    "after_read answered with a read plan (Plan::read): a read-then-write has \
                     at most two rounds, so the plan after a read runs (Plan::new)",
                )),
                plan => plan.into_wit(),
            },
            None => Err(before_configure("plan_after_read")),
        });
        Ok(planned?)
    }

    /// A batch costs one crossing and one borrow of the instance; per
    /// request, only what `plan` itself allocates: requests and plans are
    /// moved into and out of the contract's types, never copied.
    pub fn plan_batch<P: Policy>(
        slot: &'static Slot<P>,
        rs: Vec<wit::Request>,
    ) -> Vec<Result<wit::Decision, wit::PolicyError>> {
        let reqs: Vec<Request> = rs.into_iter().map(Request::from_wit).collect();
        let planned = slot.with_borrow(|policy| policy.as_ref().map(|p| p.plan_batch(&reqs)));
        // The host needs one answer per request, in order.
        let plans = match planned {
            Some(plans) if plans.len() == reqs.len() => plans,
            Some(plans) => {
                let why = Error::internal(format!(
                    "plan_batch answered {} plans for {} requests: one each, in order",
                    plans.len(),
                    reqs.len()
                ));
                return vec![Err(why.into()); reqs.len()];
            }
            None => return vec![Err(before_configure("plan_batch").into()); reqs.len()],
        };
        plans
            .into_iter()
            .map(|p| Ok(p.and_then(Plan::into_decision)?))
            .collect()
    }

    fn before_configure(what: &str) -> Error {
        Error::internal(format!("{what} was called before configure"))
    }

    /// A policy has no stderr: route panic messages to the gateway's log, so
    /// a plugin that panics says why before its call fails.
    fn panics_to_log() {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                log(LogLevel::Error, &format!("panic: {info}"))
            }))
        });
    }
}

/// The level of a [`log`] line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Write a line to the gateway's log, tagged with the plugin's name (a
/// policy has no stdio). Natively (tests) the line goes to standard error.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use bindings::sluice::policy::log::{Level, log};
        let level = match level {
            LogLevel::Trace => Level::Trace,
            LogLevel::Debug => Level::Debug,
            LogLevel::Info => Level::Info,
            LogLevel::Warn => Level::Warn,
            LogLevel::Error => Level::Error,
        };
        log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The glue `export_policy!` expands to, driven natively with the
    /// contract's types: settings decoded once, requests moved in, plans
    /// out, one by one or as a batch, and a read's replies back in.
    #[test]
    fn the_export_configures_once_and_plans_with_the_instance() {
        struct Echo(Domain, u32);
        #[derive(serde::Deserialize)]
        struct Settings {
            n: u32,
        }
        impl Policy for Echo {
            type Settings = Settings;
            fn configure(domain: Domain, s: Settings) -> Result<Self, Error> {
                Ok(Echo(domain, s.n))
            }
            fn plan(&self, req: &Request) -> Result<Plan, Error> {
                let key = self.0.key(&req.key);
                Ok(match req.operation {
                    // Delete only what holds 42: read first.
                    Operation::Delete => Plan::read().respond_with(Get::new(key)),
                    // Misplaced writes, refused at the boundary.
                    Operation::Publish if req.key == "write" => Plan::read().then(Delete::new(key)),
                    Operation::Publish => Plan::read().then(Get::new(key)),
                    _ => Plan::new()
                        .respond_with(Set::new(key, req.value()?).ttl_ms(u64::from(self.1))),
                })
            }
            fn after_read(&self, req: &Request, read: &Replies) -> Result<Plan, Error> {
                let key = self.0.key(&req.key);
                Ok(match read.decode::<u8>(0)? {
                    _ if req.operation == Operation::Publish => Plan::read(),
                    Some(42) => Plan::new().then(Delete::new(key)).atomic(),
                    _ => Plan::new(),
                })
            }
        }
        std::thread_local!(static SLOT: std::cell::RefCell<Option<Echo>> = const { std::cell::RefCell::new(None) });
        let domain = |settings: Vec<u8>| wit::Domain {
            name: "d".into(),
            ttl_ms: 60_000,
            min_ttl_ms: 1_000,
            max_ttl_ms: 86_400_000,
            settings,
        };
        let request = |key: &str, operation, value: Option<Vec<u8>>| wit::Request {
            key: key.into(),
            operation,
            value,
            fields: Vec::new(),
            ttl_ms: None,
            now_ms: 0,
            entropy: 0,
            stats: wit::AccessStats {
                hits: 0,
                misses: 0,
                writes: 0,
                last_read_ms: 0,
                read_rate: 0.0,
            },
        };
        let put = || request("k", wit::Operation::Put, Some(vec![0x2a]));
        let delete = || request("k", wit::Operation::Delete, None);
        assert!(matches!(
            __export::plan(&SLOT, put()),
            Err(wit::PolicyError::Internal(_))
        ));
        assert!(matches!(
            &__export::plan_batch(&SLOT, vec![put()])[..],
            [Err(wit::PolicyError::Internal(m))] if m.contains("before configure")
        ));
        let typo = Value::encode(&std::collections::BTreeMap::from([("m", 1)])).unwrap();
        assert!(matches!(
            __export::configure(&SLOT, domain(typo.into_bytes())),
            Err(wit::PolicyError::BadConfig(m)) if m.contains("[domains.d.settings] needs `n`")
        ));
        let ok = Value::encode(&std::collections::BTreeMap::from([("n", 7)])).unwrap();
        __export::configure(&SLOT, domain(ok.into_bytes())).unwrap();
        let Ok(wit::Decision::Run(plan)) = __export::plan(&SLOT, put()) else {
            panic!("a put runs")
        };
        assert_eq!(plan.respond, Some(0));
        assert!(matches!(&plan.actions[..],
            [wit::Action::Set(s)] if s.key == "d:k" && s.value == [0x2a] && s.ttl_ms == Some(7)));

        // A batch: one answer per request, in order, each on its own.
        let batch = __export::plan_batch(
            &SLOT,
            vec![
                put(),
                request("j", wit::Operation::Get, None),
                delete(),
                request("write", wit::Operation::Publish, None),
            ],
        );
        assert!(matches!(&batch[..], [
            Ok(wit::Decision::Run(a)),
            Err(wit::PolicyError::BadRequest(_)),
            Ok(wit::Decision::Read(c)),
            Err(wit::PolicyError::Internal(m)),
        ] if a.actions.len() == 1 && c.actions.len() == 1
            && m.contains("action 0 (delete \"d:write\") writes")));
        assert!(__export::plan_batch(&SLOT, Vec::new()).is_empty());

        // Read, then write with what was read.
        let Ok(wit::Decision::Read(read)) = __export::plan(&SLOT, delete()) else {
            panic!("a delete reads first")
        };
        assert!(matches!(&read.actions[..], [wit::Action::Get(g)] if g.key == "d:k"));
        let write = __export::plan_after_read(&SLOT, delete(), vec![Some(vec![0x2a])]).unwrap();
        assert!(write.atomic);
        assert!(matches!(&write.actions[..], [wit::Action::Delete(d)] if d.key == "d:k"));
        let nothing = __export::plan_after_read(&SLOT, delete(), vec![None]).unwrap();
        assert!(nothing.actions.is_empty());
        assert!(matches!(
            __export::plan_after_read(&SLOT, delete(), vec![Some(vec![0xa1])]),
            Err(wit::PolicyError::Internal(m)) if m.starts_with("reply 0 of the read")
        ));
        let again = request("k", wit::Operation::Publish, None);
        assert!(matches!(
            __export::plan_after_read(&SLOT, again, vec![None]),
            Err(wit::PolicyError::Internal(m)) if m.contains("at most two rounds")
        ));
    }

    #[test]
    fn a_policy_that_plans_no_reads_needs_no_after_read() {
        struct Plain;
        impl Policy for Plain {
            type Settings = NoSettings;
            fn configure(_: Domain, _: NoSettings) -> Result<Self, Error> {
                Ok(Plain)
            }
            fn plan(&self, req: &Request) -> Result<Plan, Error> {
                Ok(Plan::new().respond_with(Get::new(&req.key)))
            }
        }
        let err = Plain.after_read(&Request::get("k"), &Replies::default());
        assert!(matches!(err, Err(Error::Internal(m)) if m.contains("no after_read")));
        let plans = Plain.plan_batch(&[Request::get("a"), Request::get("b")]);
        assert!(matches!(&plans[..], [Ok(a), Ok(b)]
            if a.response().map(Action::key) == Some("a") && b.response().map(Action::key) == Some("b")));
    }

    #[test]
    fn a_domain_names_its_keys_and_keeps_ttls_in_ms() {
        let d = Domain::named("cache").with_ttl_s(5, 1, 60);
        assert_eq!(d.key("user:1"), "cache:user:1");
        assert_eq!(
            (d.ttl_ms, d.min_ttl_ms, d.max_ttl_ms),
            (5_000, 1_000, 60_000)
        );
    }
}
