//! `POST /v1/ratelimit/{policy}/{subject}?cost=n`: a token bucket in Redis,
//! shared by every gateway, decided by one script call (EVALSHA).

use super::Body;
use super::router::query_pairs;
use crate::config::WhenUnavailable;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::store::scripts::RATE_LIMIT;
use crate::telemetry::METRICS;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use redis::Value;

pub async fn handle(
    gateway: &Gateway,
    req: Request<Incoming>,
    policy_name: &str,
    subject: &str,
) -> Result<Response<Body>, Error> {
    if req.method() != Method::POST {
        return Err(Error::MethodNotAllowed("POST"));
    }
    let policy = gateway
        .ratelimits
        .get(policy_name)
        .ok_or_else(|| Error::UnknownPolicy(policy_name.to_owned()))?;
    if subject.is_empty() || subject.len() > gateway.max_key_bytes {
        return Err(Error::BadRequest(format!(
            "subjects are 1 to {} bytes",
            gateway.max_key_bytes
        )));
    }
    let mut cost = 1u64;
    for (name, value) in query_pairs(req.uri().query())? {
        match name.as_str() {
            "cost" => {
                cost = value
                    .parse()
                    .ok()
                    .filter(|c| (1..=policy.capacity).contains(c))
                    .ok_or_else(|| {
                        Error::BadRequest(format!(
                            "cost={value:?}: a whole number from 1 to the bucket's capacity {}",
                            policy.capacity
                        ))
                    })?;
            }
            other => {
                return Err(Error::BadRequest(format!(
                    "unknown query parameter {other:?}; known: cost"
                )));
            }
        }
    }
    let key = format!("ratelimit:{policy_name}:{subject}");
    let args = [
        policy.capacity.to_string(),
        policy.refill_per_s.to_string(),
        cost.to_string(),
    ];
    let reply = match gateway.store.eval(RATE_LIMIT, &[key], &args).await {
        Ok(reply) => reply,
        Err(e) if e.is_unavailable() => {
            return match policy.when_unavailable {
                WhenUnavailable::FailOpen => {
                    METRICS
                        .ratelimit
                        .with_label_values(&[policy_name, "fail_open"])
                        .inc();
                    let body = serde_json::json!({"allowed": true, "degraded": "redis unavailable; policy fails open"});
                    Ok(json(StatusCode::OK, body, policy.capacity, None))
                }
                WhenUnavailable::FailClosed => {
                    METRICS
                        .ratelimit
                        .with_label_values(&[policy_name, "fail_closed"])
                        .inc();
                    Err(e.into())
                }
            };
        }
        Err(e) => return Err(e.into()),
    };
    let [allowed, remaining, to_full_ms, wait_ms] = numbers(&reply).ok_or_else(|| {
        Error::Store(crate::store::StoreError::Command(format!(
            "unexpected rate-limit reply {reply:?}"
        )))
    })?;
    let reset_s = (to_full_ms as u64).div_ceil(1000);
    let mut resp = if allowed == 1 {
        METRICS
            .ratelimit
            .with_label_values(&[policy_name, "allowed"])
            .inc();
        json(
            StatusCode::OK,
            serde_json::json!({"allowed": true, "remaining": remaining}),
            policy.capacity,
            None,
        )
    } else {
        METRICS
            .ratelimit
            .with_label_values(&[policy_name, "limited"])
            .inc();
        let retry_s = (wait_ms as u64).div_ceil(1000).max(1);
        let body = serde_json::json!({
            "type": "urn:sluice:problem:rate-limited",
            "title": "Too Many Requests",
            "status": 429,
            "detail": format!("rate limit {policy_name:?} exceeded for this subject; retry in {wait_ms} ms"),
            "retry_after_ms": wait_ms,
        });
        json(
            StatusCode::TOO_MANY_REQUESTS,
            body,
            policy.capacity,
            Some(retry_s),
        )
    };
    let h = resp.headers_mut();
    h.insert("ratelimit-remaining", remaining.max(0).into());
    h.insert("ratelimit-reset", reset_s.into());
    Ok(resp)
}

fn json(
    status: StatusCode,
    body: serde_json::Value,
    limit: u64,
    retry_s: Option<u64>,
) -> Response<Body> {
    let content_type = if status.is_success() {
        "application/json"
    } else {
        "application/problem+json"
    };
    let mut b = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, content_type)
        .header("ratelimit-limit", limit);
    if let Some(s) = retry_s {
        b = b.header(RETRY_AFTER, s);
    }
    b.body(Body::from(body.to_string())).unwrap_or_default()
}

/// The script's `{allowed, remaining, ms to full, ms to wait}`.
fn numbers(v: &Value) -> Option<[i64; 4]> {
    let Value::Array(items) = v else { return None };
    let mut out = [0i64; 4];
    for (slot, item) in out.iter_mut().zip(items) {
        *slot = match item {
            Value::Int(n) => *n,
            _ => return None,
        };
    }
    (items.len() == 4).then_some(out)
}
