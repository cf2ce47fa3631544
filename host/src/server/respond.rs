//! Every response is built here, by constructors that cannot fail: a body
//! in the negotiated format, a JSON document, or a problem (RFC 9457) with
//! the headers that tell a client what to do next. No builder `unwrap`s, no
//! empty 200 when something went wrong.

use super::codec::{self, Format};
use crate::auth::AuthError;
use crate::error::Error;
use crate::telemetry::METRICS;
use bytes::Bytes;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use std::sync::{Arc, OnceLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The body type of every response: small, fully built bodies.
pub type Body = http_body_util::Full<Bytes>;

pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// Bodies at least this large count against `server.max_buffered_bytes`.
const COUNTED_BYTES: usize = 64 << 10;

/// The budget of large response bodies not yet sent, in KiB (unset: none).
static BUFFERED: OnceLock<Arc<Semaphore>> = OnceLock::new();

/// Bound the bytes of large response bodies alive at once; set at start.
pub fn bound_buffered(max_bytes: usize) {
    let _ = BUFFERED.set(Arc::new(Semaphore::new(max_bytes / 1024)));
}

/// A body that gives its share of the budget back when its last reference
/// is dropped: after hyper has written it, or when the client went away.
struct Held {
    body: Bytes,
    _share: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

/// A request's share of the budget, taken as it gathers values (before it
/// builds a large answer) and handed on to the answer's body.
#[derive(Default)]
pub struct Share(Option<OwnedSemaphorePermit>);

impl Share {
    /// Take `bytes` more; a 503 when the budget has no room for them.
    pub fn grow(&mut self, bytes: usize) -> Result<(), Error> {
        let Some(budget) = BUFFERED.get() else {
            return Ok(());
        };
        let more = u32::try_from(bytes.div_ceil(1024))
            .ok()
            .and_then(|kib| budget.clone().try_acquire_many_owned(kib).ok())
            .ok_or_else(shed)?;
        match &mut self.0 {
            Some(held) => held.merge(more),
            None => self.0 = Some(more),
        }
        Ok(())
    }
}

fn shed() -> Error {
    METRICS.shed.with_label_values(&["memory"]).inc();
    Error::Overloaded("server.max_buffered_bytes")
}

/// `body`, holding `share` or, when that is empty and the body large, its
/// own share of the budget (a 503 when the budget has no room for it: slow
/// readers cannot pile up bodies).
fn hold(body: Bytes, share: Share) -> Result<Bytes, Error> {
    let share = match share.0 {
        // What the body needs goes on with it; what building it took, back.
        Some(mut held) => {
            let needed = body.len().div_ceil(1024);
            held.split(needed).unwrap_or(held)
        }
        None if body.len() < COUNTED_BYTES => return Ok(body),
        None => {
            let mut own = Share::default();
            own.grow(body.len())?;
            match own.0 {
                Some(held) => held,
                None => return Ok(body),
            }
        }
    };
    Ok(Bytes::from_owner(Held {
        body,
        _share: share,
    }))
}

/// A response with `status`, `content_type` and `body`.
pub fn bytes(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    bytes_within(status, content_type, body.into(), Share::default())
}

/// [`bytes`], the body holding a share already taken.
fn bytes_within(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    share: Share,
) -> Response<Body> {
    let body = match hold(body, share) {
        Ok(body) => body,
        Err(e) => return problem(&e, Format::Json),
    };
    let mut resp = Response::new(Body::new(body));
    *resp.status_mut() = status;
    set(
        &mut resp,
        CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    resp
}

/// A response without body (`204 No Content` for writes).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(Body::default());
    *resp.status_mut() = status;
    resp
}

/// Set a header on a response.
pub fn set(resp: &mut Response<Body>, name: HeaderName, value: HeaderValue) {
    resp.headers_mut().insert(name, value);
}

/// A MessagePack body (`build` writes it), sent in `format`.
pub fn msgpack(
    format: Format,
    status: StatusCode,
    build: impl FnOnce(&mut Vec<u8>),
) -> Result<Response<Body>, Error> {
    msgpack_within(format, status, build, Share::default())
}

/// [`msgpack`] for an answer whose memory `share` already covers.
pub fn msgpack_within(
    format: Format,
    status: StatusCode,
    build: impl FnOnce(&mut Vec<u8>),
    share: Share,
) -> Result<Response<Body>, Error> {
    let mut out = Vec::new();
    build(&mut out);
    let body = codec::from_msgpack(Bytes::from(out), format)?;
    Ok(bytes_within(status, format.content_type(), body, share))
}

/// A status and a MessagePack body made earlier (none: an empty response),
/// sent in `format`.
pub fn packed(status: StatusCode, body: Vec<u8>, format: Format) -> Result<Response<Body>, Error> {
    if body.is_empty() {
        return Ok(empty(status));
    }
    let body = codec::from_msgpack(body.into(), format)?;
    Ok(bytes(status, format.content_type(), body))
}

/// A body `{name: value}` in `format`; `value` writes the MessagePack value.
pub fn field(
    format: Format,
    status: StatusCode,
    name: &str,
    value: impl FnOnce(&mut Vec<u8>),
) -> Result<Response<Body>, Error> {
    msgpack(format, status, |out| {
        let _ = rmp::encode::write_map_len(out, 1);
        let _ = rmp::encode::write_str(out, name);
        value(out);
    })
}

/// A JSON document (the admin API's answers).
pub fn json(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    bytes(status, "application/json", body.to_string())
}

/// An error as a problem document: JSON (`application/problem+json`), or
/// MessagePack (`application/problem+msgpack`) for a client whose `Accept`
/// prefers it, with `Allow`, `Retry-After`, `RateLimit-*`, `Cache-Status` or
/// `WWW-Authenticate` where the error calls for them.
pub fn problem(err: &Error, format: Format) -> Response<Body> {
    let status = err.status();
    let mut doc = serde_json::json!({
        "type": format!("urn:sluice:problem:{}", err.slug()),
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": err.to_string(),
    });
    if let Error::RateLimited { wait_ms, .. } = err {
        doc["retry_after_ms"] = (*wait_ms).into();
    }
    let mut resp = match format {
        Format::Msgpack => match rmp_serde::to_vec_named(&doc) {
            Ok(body) => bytes(status, "application/problem+msgpack", body),
            Err(_) => bytes(status, "application/problem+json", doc.to_string()),
        },
        Format::Json => bytes(status, "application/problem+json", doc.to_string()),
    };
    match err {
        Error::Store(e) if e.is_unavailable() => retry_after(&mut resp, e.retry_after()),
        Error::Throttled(wait) => retry_after(&mut resp, *wait),
        Error::Overloaded(_)
        | Error::LongPolls { .. }
        | Error::Plugin(crate::plugin::PluginError::NoMemory { .. }) => {
            retry_after(&mut resp, std::time::Duration::ZERO)
        }
        Error::MethodNotAllowed(allow) => set(&mut resp, ALLOW, HeaderValue::from_static(allow)),
        Error::Miss { .. } => set(
            &mut resp,
            CACHE_STATUS,
            HeaderValue::from_static("sluice; fwd=uri-miss"),
        ),
        Error::Unauthorized | Error::Auth(AuthError::Unauthenticated(_)) => set(
            &mut resp,
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        ),
        Error::RateLimited {
            limit,
            remaining,
            reset_s,
            wait_ms,
            ..
        } => {
            rate_limit_headers(&mut resp, *limit, *remaining, *reset_s);
            set(&mut resp, RETRY_AFTER, wait_ms.div_ceil(1000).max(1).into());
        }
        _ => {}
    }
    resp
}

/// `Retry-After: wait`, in whole seconds rounded up, at least 1.
fn retry_after(resp: &mut Response<Body>, wait: std::time::Duration) {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    set(resp, RETRY_AFTER, secs.into());
}

/// `RateLimit-Limit`, `-Remaining` and `-Reset` (seconds until full).
pub fn rate_limit_headers(resp: &mut Response<Body>, limit: u64, remaining: u64, reset_s: u64) {
    set(
        resp,
        HeaderName::from_static("ratelimit-limit"),
        limit.into(),
    );
    set(
        resp,
        HeaderName::from_static("ratelimit-remaining"),
        remaining.into(),
    );
    set(
        resp,
        HeaderName::from_static("ratelimit-reset"),
        reset_s.into(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;
    use http_body_util::BodyExt;
    use std::time::Duration;

    fn header<'a>(resp: &'a Response<Body>, name: &str) -> Option<&'a str> {
        resp.headers().get(name).and_then(|v| v.to_str().ok())
    }

    async fn json_body(resp: Response<Body>) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_problem_is_json_with_status_type_and_detail() {
        let resp = problem(&Error::UnknownDomain("nope".into()), Format::Json);
        assert_eq!(resp.status(), 404);
        assert_eq!(
            header(&resp, "content-type"),
            Some("application/problem+json")
        );
        let body = json_body(resp).await;
        assert_eq!(body["type"], "urn:sluice:problem:unknown-domain");
        assert_eq!(body["title"], "Not Found");
        assert_eq!(body["status"], 404);
        assert!(body["detail"].as_str().unwrap().contains("nope"));
    }

    #[tokio::test]
    async fn a_problem_honours_a_msgpack_accept() {
        let resp = problem(&Error::NoRoute, Format::Msgpack);
        assert_eq!(
            header(&resp, "content-type"),
            Some("application/problem+msgpack")
        );
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let doc: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(doc["status"], 404);
    }

    #[tokio::test]
    async fn a_bucket_refusal_is_a_429_problem_with_its_headers() {
        use crate::error::Limited;
        let client = "svc".to_owned();
        for (bucket, slug) in [
            (Limited::Policy("global".into()), "rate-limited"),
            (Limited::WriteBytes { client }, "write-quota-exceeded"),
        ] {
            let err = Error::RateLimited {
                bucket,
                limit: 100,
                remaining: 0,
                reset_s: 2,
                wait_ms: 1_500,
            };
            let resp = problem(&err, Format::Json);
            assert_eq!(resp.status(), 429);
            assert_eq!(header(&resp, "retry-after"), Some("2"));
            assert_eq!(header(&resp, "ratelimit-limit"), Some("100"));
            assert_eq!(header(&resp, "ratelimit-remaining"), Some("0"));
            assert_eq!(header(&resp, "ratelimit-reset"), Some("2"));
            let body = json_body(resp).await;
            assert_eq!(body["type"], format!("urn:sluice:problem:{slug}"));
            assert_eq!(body["retry_after_ms"], 1_500);
        }
        let polls = Error::LongPolls {
            client: "svc".into(),
            max: 2,
        };
        let resp = problem(&polls, Format::Json);
        assert_eq!(
            (resp.status(), header(&resp, "retry-after")),
            (StatusCode::TOO_MANY_REQUESTS, Some("1"))
        );
        let body = json_body(resp).await;
        assert_eq!(body["type"], "urn:sluice:problem:long-poll-quota-exceeded");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("clients.svc.max_long_polls")
        );
    }

    #[test]
    fn problems_carry_the_headers_their_errors_call_for() {
        let open = Error::Store(StoreError::CircuitOpen {
            retry_after: Duration::from_millis(2_500),
        });
        assert_eq!(
            header(&problem(&open, Format::Json), "retry-after"),
            Some("3")
        );
        let down = Error::Store(StoreError::Unavailable("refused".into()));
        assert_eq!(
            header(&problem(&down, Format::Json), "retry-after"),
            Some("1")
        );
        let refused = Error::Store(StoreError::Command("WRONGTYPE".into()));
        let resp = problem(&refused, Format::Json);
        assert_eq!(resp.status(), 502);
        assert_eq!(header(&resp, "retry-after"), None);
        let resp = problem(&Error::MethodNotAllowed("GET, HEAD"), Format::Json);
        assert_eq!(header(&resp, "allow"), Some("GET, HEAD"));
        let miss = Error::Miss {
            key: "k".into(),
            fields: Vec::new(),
        };
        let resp = problem(&miss, Format::Json);
        assert_eq!(header(&resp, "cache-status"), Some("sluice; fwd=uri-miss"));
        let resp = problem(&Error::Unauthorized, Format::Json);
        assert_eq!(header(&resp, "www-authenticate"), Some("Bearer"));
        let key = Error::from(AuthError::Unauthenticated(crate::auth::KeyProblem::Unknown));
        let resp = problem(&key, Format::Json);
        assert_eq!(resp.status(), 401);
        assert_eq!(header(&resp, "www-authenticate"), Some("Bearer"));
        let scope = Error::from(AuthError::Forbidden {
            client: "c".into(),
            right: crate::auth::Right::Write,
            subject: "price".into(),
        });
        let resp = problem(&scope, Format::Json);
        assert_eq!(resp.status(), 403);
        assert_eq!(header(&resp, "www-authenticate"), None);
    }

    #[tokio::test]
    async fn a_body_is_transcoded_to_the_negotiated_format() {
        let resp = field(Format::Json, StatusCode::CREATED, "acked", |out| {
            let _ = rmp::encode::write_uint(out, 3);
        })
        .unwrap();
        assert_eq!(resp.status(), 201);
        assert_eq!(header(&resp, "content-type"), Some("application/json"));
        assert_eq!(json_body(resp).await, serde_json::json!({"acked": 3}));
    }
}
