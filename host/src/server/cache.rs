//! `GET/PUT/DELETE /v1/cache/{domain}/{key}`: one value through its
//! domain's policy.

use super::codec::{self, Format};
use super::idempotency;
use super::respond::{self, Body, CACHE_STATUS};
use crate::error::Error;
use crate::flow::{Answer, Call};
use crate::generation::Gateway;
use crate::plugin::bindings::Operation;
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

pub async fn handle(
    gateway: &Gateway,
    req: Request<Incoming>,
    domain: &str,
    key: String,
) -> Result<Response<Body>, Error> {
    let domain = gateway.domain(domain)?;
    let operation = match *req.method() {
        Method::PUT => Operation::Put,
        Method::DELETE => Operation::Delete,
        _ => Operation::Get,
    };
    let query: Query = codec::query(req.uri().query())?;
    let mut call = Call::new(key, operation);
    match (operation, query.ttl_s, query.fields) {
        (Operation::Put, ttl_s, None) => call.ttl_s = ttl_s,
        (Operation::Get, None, fields) => {
            call.fields = fields
                .iter()
                .flat_map(|f| f.split(','))
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect();
        }
        (Operation::Delete, None, None) => {}
        _ => {
            return Err(Error::BadRequest(format!(
                "{} takes no such query parameter; known: ttl_s (PUT), fields (GET)",
                req.method()
            )));
        }
    }
    if operation != Operation::Get {
        let once = idempotency::Once::of(&req)?;
        let format = Format::for_response(req.headers()).unwrap_or(Format::Json);
        let mut bytes = bytes::Bytes::new();
        if operation == Operation::Put {
            let (read, in_format) = codec::read_body(req, gateway.body_limits()).await?;
            call.value = Some(codec::to_msgpack(&read, in_format)?);
            bytes = read;
        }
        let once = once.map(|o| o.finish(&bytes));
        let reply = (idempotency::Reply::Written, format);
        return idempotency::serve(gateway, domain, call, once, reply).await;
    }
    let format = Format::for_response(req.headers())?;
    let key = call.key.clone();
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
        Answer::Nothing => return Err(Error::Miss(key)),
    };
    let mut resp = respond::bytes(StatusCode::OK, format.content_type(), body);
    respond::set(&mut resp, CACHE_STATUS, HeaderValue::from_static(status));
    if let Some(age) = age {
        respond::set(&mut resp, AGE, age.into());
    }
    Ok(resp)
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
