//! Errors as `application/problem+json` (RFC 9457), with the headers that
//! tell a client what to do next.

use super::Body;
use crate::error::Error;
use hyper::Response;
use hyper::header::{ALLOW, CONTENT_TYPE, RETRY_AFTER};

pub fn render(err: &Error) -> Response<Body> {
    let status = err.status();
    let body = serde_json::json!({
        "type": format!("urn:sluice:problem:{}", err.slug()),
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": err.to_string(),
    });
    let mut builder = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/problem+json");
    if let Error::Store(e) = err
        && e.is_unavailable()
    {
        let secs = e.retry_after().as_secs_f64().ceil().max(1.0) as u64;
        builder = builder.header(RETRY_AFTER, secs);
    }
    match err {
        Error::MethodNotAllowed(allow) => builder = builder.header(ALLOW, *allow),
        Error::Miss(_) => builder = builder.header("cache-status", "sluice; fwd=uri-miss"),
        _ => {}
    }
    builder
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::default()))
}
