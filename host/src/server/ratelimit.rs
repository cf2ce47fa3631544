//! `POST /v1/ratelimit/{policy}/{subject}?cost=n`: a token bucket in Redis,
//! shared by every gateway, decided by one script call (EVALSHA). A refusal
//! is an error (429) rendered by the one problem renderer.

use super::codec::{self, Format};
use super::respond::{self, Body};
use crate::error::{Error, Limited};
use crate::generation::Gateway;
use crate::telemetry::METRICS;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    #[serde(default = "one")]
    cost: u64,
}

fn one() -> u64 {
    1
}

pub async fn handle(
    gateway: &Gateway,
    req: Request<Incoming>,
    policy: &str,
    subject: &str,
) -> Result<Response<Body>, Error> {
    let limit = gateway.ratelimit(policy)?.capacity;
    let format = Format::for_response(req.headers())?;
    if subject.is_empty() || subject.len() > gateway.max_key_bytes() {
        return Err(Error::BadRequest(format!(
            "subjects are 1 to {} bytes",
            gateway.max_key_bytes()
        )));
    }
    let Query { cost } = codec::query(req.uri().query())?;
    if !(1..=limit).contains(&cost) {
        return Err(Error::BadRequest(format!(
            "cost={cost}: a whole number from 1 to the bucket's capacity {limit}"
        )));
    }
    let count = |result| METRICS.ratelimit.with_label_values(&[policy, result]).inc();
    let bucket = match gateway.take_tokens(policy, subject, cost).await {
        Ok(Some(bucket)) => bucket,
        Ok(None) => {
            count("fail_open");
            return respond::msgpack(format, StatusCode::OK, |out| {
                let _ = rmp::encode::write_map_len(out, 2);
                let _ = rmp::encode::write_str(out, "allowed");
                let _ = rmp::encode::write_bool(out, true);
                let _ = rmp::encode::write_str(out, "degraded");
                let _ = rmp::encode::write_str(out, "redis unavailable; policy fails open");
            })
            .map(|mut resp| {
                let name = hyper::header::HeaderName::from_static("ratelimit-limit");
                respond::set(&mut resp, name, limit.into());
                resp
            });
        }
        Err(e) => {
            if matches!(&e, Error::Store(s) if s.is_unavailable()) {
                count("fail_closed");
            }
            return Err(e);
        }
    };
    if !bucket.allowed {
        count("limited");
        return Err(Error::limited(
            Limited::Policy(policy.into()),
            limit,
            &bucket,
        ));
    }
    count("allowed");
    let mut resp = respond::msgpack(format, StatusCode::OK, |out| {
        let _ = rmp::encode::write_map_len(out, 2);
        let _ = rmp::encode::write_str(out, "allowed");
        let _ = rmp::encode::write_bool(out, true);
        let _ = rmp::encode::write_str(out, "remaining");
        let _ = rmp::encode::write_uint(out, bucket.remaining);
    })?;
    let reset_s = bucket.ms_to_full.div_ceil(1000);
    respond::rate_limit_headers(&mut resp, limit, bucket.remaining, reset_s);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_defaults_to_one_and_nothing_else_is_taken() {
        let q: Query = codec::query(None).unwrap();
        assert_eq!(q.cost, 1);
        let q: Query = codec::query(Some("cost=7")).unwrap();
        assert_eq!(q.cost, 7);
        assert!(codec::query::<Query>(Some("cost=0.5")).is_err());
        assert!(codec::query::<Query>(Some("weight=2")).is_err());
    }
}
