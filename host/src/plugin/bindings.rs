//! The one `bindgen!` of the host: everything else imports the contract's
//! types from here, so `sdk/wit/policy.wit` is the single source of truth.

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "policy",
});

// Every type of the contract, for the executor, the validator and tests.
pub use self::sluice::policy::types::*;
