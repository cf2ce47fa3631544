//! `GET/PUT/DELETE /v1/cache/{domain}/{key}`: one value through its
//! domain's policy.

use super::codec::{self, Format};
use super::idempotency::{self, IdempotencyKey, Respond};
use super::respond::{self, Body, CACHE_STATUS};
use crate::error::Error;
use crate::flow::{Answer, Call};
use crate::generation::{Domain, Gateway, Payload};
use hyper::body::Incoming;
use hyper::header::{AGE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

/// `?ttl_s=` (PUT) and `?fields=a,b` (GET); nothing else.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    ttl_s: Option<u64>,
    fields: Option<String>,
}

/// `client`: who sent it (`Caller::label`), for an `Idempotency-Key`.
pub async fn handle(
    gateway: &Gateway,
    req: Request<Incoming>,
    (domain, client): (&str, &str),
    key: String,
) -> Result<Response<Body>, Error> {
    let domain = gateway.domain(domain)?;
    let query: Query = codec::query(req.uri().query())?;
    let method = req.method().clone();
    let fields = match (&method, query.ttl_s, query.fields) {
        (&Method::PUT, ttl_s, None) => {
            return Box::pin(write(gateway, (domain, client), req, key, ttl_s)).await;
        }
        (&Method::DELETE, None, None) => {
            return Box::pin(write(gateway, (domain, client), req, key, None)).await;
        }
        (&Method::GET | &Method::HEAD, None, fields) => fields,
        _ => {
            return Err(Error::BadRequest(format!(
                "{method} takes no such query parameter; known: ttl_s (PUT), fields (GET)"
            )));
        }
    };
    let fields: Vec<String> = (fields.iter())
        .flat_map(|f| f.split(','))
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    let format = Format::for_response(req.headers())?;
    let call = Call::Get {
        key: key.clone(),
        fields: fields.clone(),
    };
    let (body, status, age) = match gateway.call(domain, call).await? {
        Answer::Fresh(value) => (codec::from_msgpack(value, format)?, "sluice; hit", None),
        // Answered in process: Redis was not asked; a hot key is rendered
        // as JSON once, not on every read.
        Answer::Near(copy) => {
            let body = match format {
                Format::Json => copy.json(|b| codec::from_msgpack(b.clone(), format))?,
                Format::Msgpack => copy.body.clone(),
            };
            (body, "sluice; hit; detail=near", None)
        }
        // RFC 9211: forwarding to Redis failed; this kept copy stands in.
        Answer::Stale { body, age } => (
            codec::from_msgpack(body, format)?,
            "sluice; fwd=stale",
            Some(age.as_secs()),
        ),
        Answer::Nothing => return Err(Error::Miss { key, fields }),
    };
    let mut resp = respond::bytes(StatusCode::OK, format.content_type(), body);
    respond::set(&mut resp, CACHE_STATUS, HeaderValue::from_static(status));
    if let Some(age) = age {
        respond::set(&mut resp, AGE, age.into());
    }
    Ok(resp)
}

/// A PUT (with the value and the TTL asked for; the value within the
/// domain's size and the key and value within the client's write budget)
/// or a DELETE: `204` once
/// Redis took it, or `200` with the policy's answer when its plan gives
/// one (whether a set-if-absent stored, a counter's value); with an
/// `Idempotency-Key`, at most once.
async fn write(
    gateway: &Gateway,
    (domain, client): (&Domain, &str),
    req: Request<Incoming>,
    key: String,
    ttl_s: Option<u64>,
) -> Result<Response<Body>, Error> {
    let once = IdempotencyKey::of(&req, client)?;
    let format = Format::for_response(req.headers()).unwrap_or(Format::Json);
    let (call, body) = match *req.method() {
        Method::PUT => {
            let (read, in_format) = codec::read_body(req, gateway.body_limits()).await?;
            let value = codec::to_msgpack(&read, in_format)?;
            gateway.fits(domain, Payload::Value, value.len())?;
            gateway
                .charge_write(client, key.len() + value.len())
                .await?;
            (Call::Put { key, value, ttl_s }, read)
        }
        _ => (Call::Delete { key }, bytes::Bytes::new()),
    };
    let Some(once) = once else {
        return match gateway.call(domain, call).await? {
            Answer::Fresh(body) => respond::packed(StatusCode::OK, body.to_vec(), format),
            _ => Ok(respond::empty(StatusCode::NO_CONTENT)),
        };
    };
    let respond = (Respond::Known(StatusCode::NO_CONTENT), format);
    idempotency::serve(gateway, domain, call, once.finish(&body), respond).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> Result<Query, Error> {
        codec::query(Some(q))
    }

    #[test]
    fn the_query_takes_ttl_and_fields_and_refuses_anything_else() {
        let q = query("ttl_s=30").unwrap();
        assert_eq!((q.ttl_s, q.fields), (Some(30), None));
        let q = query("fields=price%2Cts").unwrap();
        assert_eq!(q.fields.as_deref(), Some("price,ts"));
        assert!(codec::query::<Query>(None).is_ok_and(|q| q.ttl_s.is_none()));
        for bad in ["ttl=5", "ttl_s=soon", "ttl_s=-1", "ttl_s=1&ttl_s=2"] {
            let e = query(bad).err().unwrap_or_else(|| panic!("{bad} passed"));
            assert!(matches!(e, Error::BadRequest(_)), "{bad}");
        }
    }
}
