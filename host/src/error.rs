//! Every error a request can end in, and the one place each becomes an HTTP
//! status. Handlers return `Result<_, Error>`; `server::respond::problem`
//! renders it as a problem document (RFC 9457).

use crate::auth::AuthError;
use crate::plugin::PluginError;
use crate::store::StoreError;
use hyper::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no domain named {0:?} is configured")]
    UnknownDomain(String),
    #[error("no rate-limit policy named {0:?} is configured")]
    UnknownPolicy(String),
    /// A read found nothing: no value, or (asked for `fields` of a
    /// hash-stored object) none of them.
    #[error("{}", miss(key, fields))]
    Miss { key: String, fields: Vec<String> },
    #[error("{0}")]
    BadRequest(String),
    /// A body, or a value or event in it, over a configured limit: 413
    /// naming the setting.
    #[error("the {what} is larger than the limit of {limit} bytes ({setting})")]
    BodyTooLarge {
        what: &'static str,
        limit: usize,
        setting: std::borrow::Cow<'static, str>,
    },
    #[error("the body was not sent in full within {0:?}")]
    BodyTimeout(std::time::Duration),
    #[error(
        "the answer would be larger than the limit of {0} bytes (server.max_response_bytes): ask for fewer or smaller values"
    )]
    ResponseTooLarge(usize),
    /// Load shedding: the named limit (`server.max_in_flight`,
    /// `server.max_buffered_bytes`) is reached.
    #[error("the gateway is at its limit ({0}); retry shortly")]
    Overloaded(&'static str),
    #[error("unsupported media type {0:?}: send application/json or application/msgpack")]
    UnsupportedMediaType(String),
    /// The client's `Accept` rules out every format the answer can take.
    #[error("{0}")]
    NotAcceptable(String),
    #[error("no route for this path; see docs/api.md")]
    NoRoute,
    #[error("this needs `Authorization: Bearer <SLUICE_ADMIN_TOKEN>`")]
    Unauthorized,
    /// Wrong admin tokens from this address: shut out a while (429).
    #[error("too many wrong admin tokens from this address; retry in {} ms", .0.as_millis())]
    Throttled(std::time::Duration),
    /// The data API refused the caller's key or scopes (401, 403).
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("method not allowed here; allowed: {0}")]
    MethodNotAllowed(&'static str),
    /// A token bucket refused — a rate-limit policy's, or a client's write
    /// budget: a 429 with `Retry-After` and `RateLimit-*`.
    #[error("{bucket}; retry in {wait_ms} ms")]
    RateLimited {
        bucket: Limited,
        limit: u64,
        remaining: u64,
        /// Seconds until the bucket is full again.
        reset_s: u64,
        /// Until the request's cost would fit.
        wait_ms: u64,
    },
    /// A client holds as many long-polls as it may: 429 with `Retry-After`,
    /// for it alone (the gateway-wide limit is `busy`, a 503).
    #[error(
        "client {client:?} holds its {max} long-polls on this gateway (clients.{client}.max_long_polls); retry when one ends, or read without block_ms"
    )]
    LongPolls { client: String, max: usize },
    /// An `Idempotency-Key` that cannot be served now or with this request.
    #[error("{0}")]
    Idempotency(Conflict),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Fields a miss names at most: a client may ask for a thousand, and the
/// answer need not echo them all back.
const MISS_FIELDS_SHOWN: usize = 8;

/// What a miss says: the key, and the fields asked for when there were
/// some (a hash may exist without any of them: one read cannot tell).
fn miss(key: &str, fields: &[String]) -> String {
    let shown = &fields[..fields.len().min(MISS_FIELDS_SHOWN)];
    let more = match fields.len() - shown.len() {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    match fields {
        [] => format!("no value is stored for key {key:?}"),
        [field] => format!("key {key:?} holds no field {field:?} (or no value at all)"),
        _ => format!("key {key:?} holds none of the fields {shown:?}{more} (or no value at all)"),
    }
}

/// Whose token bucket refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limited {
    /// A rate-limit policy's (`/v1/ratelimit/{policy}/…`).
    Policy(String),
    /// A client's write budget (`clients.NAME.write_bytes_per_s`).
    WriteBytes { client: String },
}

impl std::fmt::Display for Limited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limited::Policy(policy) => write!(f, "rate limit {policy:?} exceeded for this subject"),
            Limited::WriteBytes { client } => write!(
                f,
                "client {client:?} has written its budget of bytes (clients.{client}.write_bytes_per_s)"
            ),
        }
    }
}

/// Why a request with an `Idempotency-Key` was not served.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum Conflict {
    #[error("a request with this Idempotency-Key is being served; retry once it has finished")]
    InFlight,
    #[error(
        "a request with this Idempotency-Key was applied but its response was not recorded; it will not be applied again"
    )]
    Unrecorded,
    #[error("this Idempotency-Key was used for a different request (method, path or body)")]
    Reused,
}

impl Error {
    /// A refusal by `bucket`, of capacity `limit`, from what its script said.
    pub fn limited(bucket: Limited, limit: u64, said: &crate::store::Bucket) -> Error {
        Error::RateLimited {
            bucket,
            limit,
            remaining: said.remaining,
            reset_s: said.ms_to_full.div_ceil(1000),
            wait_ms: said.ms_to_wait,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::UnknownDomain(_)
            | Error::UnknownPolicy(_)
            | Error::Miss { .. }
            | Error::NoRoute
            | Error::Store(StoreError::NoGroup(_)) => StatusCode::NOT_FOUND,
            Error::RateLimited { .. } | Error::LongPolls { .. } | Error::Throttled(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Error::BadRequest(_) | Error::Plugin(PluginError::Refused { .. }) => {
                StatusCode::BAD_REQUEST
            }
            Error::BodyTooLarge { .. } | Error::ResponseTooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Error::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::Overloaded(_) | Error::Plugin(PluginError::NoMemory { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Unauthorized | Error::Auth(AuthError::Unauthenticated(_)) => {
                StatusCode::UNAUTHORIZED
            }
            Error::Auth(_) => StatusCode::FORBIDDEN,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Error::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Error::Idempotency(Conflict::Reused) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Idempotency(_) | Error::Store(StoreError::Contended(_)) => StatusCode::CONFLICT,
            Error::Plugin(_) | Error::Store(StoreError::Internal(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Error::Store(StoreError::Command(_)) => StatusCode::BAD_GATEWAY,
            Error::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable, short name for the kind of problem (the `type` URN's tail).
    pub fn slug(&self) -> &'static str {
        match self {
            Error::UnknownDomain(_) => "unknown-domain",
            Error::UnknownPolicy(_) => "unknown-policy",
            Error::Store(StoreError::NoGroup(_)) => "unknown-group",
            Error::Store(StoreError::Busy(_)) => "busy",
            Error::Throttled(_) => "throttled",
            Error::RateLimited {
                bucket: Limited::Policy(_),
                ..
            } => "rate-limited",
            Error::RateLimited { .. } => "write-quota-exceeded",
            Error::LongPolls { .. } => "long-poll-quota-exceeded",
            Error::Miss { .. } => "not-found",
            Error::BadRequest(_) => "bad-request",
            Error::BodyTooLarge { .. } => "body-too-large",
            Error::BodyTimeout(_) => "body-timeout",
            Error::ResponseTooLarge(_) => "response-too-large",
            Error::Overloaded(_) | Error::Plugin(PluginError::NoMemory { .. }) => "overloaded",
            Error::UnsupportedMediaType(_) => "unsupported-media-type",
            Error::NotAcceptable(_) => "not-acceptable",
            Error::NoRoute => "no-route",
            Error::Unauthorized | Error::Auth(AuthError::Unauthenticated(_)) => "unauthorized",
            Error::Auth(_) => "forbidden",
            Error::MethodNotAllowed(_) => "method-not-allowed",
            Error::Idempotency(Conflict::InFlight) => "idempotency-in-flight",
            Error::Idempotency(Conflict::Unrecorded) => "idempotency-unrecorded",
            Error::Idempotency(Conflict::Reused) => "idempotency-key-reused",
            Error::Plugin(PluginError::Refused { .. }) => "plugin-refused",
            Error::Plugin(_) => "plugin-failed",
            Error::Store(StoreError::Internal(_)) => "internal",
            Error::Store(StoreError::Contended(_)) => "conflict",
            Error::Store(StoreError::Command(_)) => "redis-error",
            Error::Store(_) => "redis-unavailable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miss_names_the_fields_it_was_asked_for() {
        let miss = |fields: &[&str]| {
            let fields = fields.iter().map(|f| f.to_string()).collect();
            Error::Miss {
                key: "btc".into(),
                fields,
            }
            .to_string()
        };
        assert_eq!(miss(&[]), "no value is stored for key \"btc\"");
        assert_eq!(
            miss(&["nope"]),
            "key \"btc\" holds no field \"nope\" (or no value at all)"
        );
        assert!(miss(&["a", "b"]).contains("none of the fields [\"a\", \"b\"] (or"));
        let many: Vec<String> = (0..1024).map(|i| format!("f{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let shown = miss(&many);
        assert!(
            shown.contains("\"f7\"] and 1016 more (or no value"),
            "{shown}"
        );
        assert!(!shown.contains("\"f8\""), "{shown}");
        assert_eq!(
            Error::Miss {
                key: "k".into(),
                fields: vec![]
            }
            .status(),
            404
        );
    }
}
