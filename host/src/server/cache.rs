//! `GET/PUT/DELETE /v1/cache/{domain}/{key}`: one value through its
//! domain's policy.

use super::Body;
use super::codec::{self, Format};
use super::router::query_pairs;
use crate::error::Error;
use crate::gateway::{Answer, Call, Gateway};
use crate::plugin::bindings::Operation;
use hyper::body::Incoming;
use hyper::header::{AGE, CONTENT_TYPE, HeaderName};
use hyper::{Method, Request, Response, StatusCode};

const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

pub async fn handle(
    gateway: &Gateway,
    req: Request<Incoming>,
    domain: &str,
    key: String,
) -> Result<Response<Body>, Error> {
    let domain = gateway.domain(domain)?;
    let operation = match *req.method() {
        Method::GET => Operation::Get,
        Method::PUT => Operation::Put,
        Method::DELETE => Operation::Delete,
        _ => return Err(Error::MethodNotAllowed("GET, PUT, DELETE")),
    };
    let mut call = Call::new(key, operation);
    for (name, value) in query_pairs(req.uri().query())? {
        match name.as_str() {
            "ttl_s" if operation == Operation::Put => {
                call.ttl_s = Some(value.parse().map_err(|_| {
                    Error::BadRequest(format!("ttl_s={value:?} is not a whole number of seconds"))
                })?);
            }
            "fields" if operation == Operation::Get => {
                call.fields = value
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            other => {
                return Err(Error::BadRequest(format!(
                    "unknown query parameter {other:?} for {}; known: ttl_s (PUT), fields (GET)",
                    req.method()
                )));
            }
        }
    }
    match operation {
        Operation::Get => {
            let format = Format::for_response(req.headers())?;
            let key = call.key.clone();
            let builder = Response::builder().header(CONTENT_TYPE, format.content_type());
            let (value, builder) = match gateway.call(domain, call).await? {
                Answer::Fresh(value) => (value, builder.header(CACHE_STATUS, "sluice; hit")),
                // Answered in process: Redis was not asked; a hot key is
                // rendered as JSON once, not on every read.
                Answer::Near(copy) => {
                    let body = match format {
                        Format::Json => copy.json(|b| codec::from_msgpack(b.clone(), format))?,
                        Format::Msgpack => copy.body.clone(),
                    };
                    let builder = builder.header(CACHE_STATUS, "sluice; hit; detail=near");
                    return Ok(builder.body(Body::from(body)).unwrap_or_default());
                }
                // RFC 9211: forwarding to Redis failed; this kept copy stands in.
                Answer::Stale { body, age } => (
                    body,
                    builder
                        .header(CACHE_STATUS, "sluice; fwd=stale")
                        .header(AGE, age.as_secs()),
                ),
                Answer::Nothing => return Err(Error::Miss(key)),
            };
            Ok(builder
                .body(Body::from(codec::from_msgpack(value, format)?))
                .unwrap_or_default())
        }
        _ => {
            if operation == Operation::Put {
                let format = Format::of_request(req.headers())?;
                let (parts, body) = req.into_parts();
                let bytes = codec::read_body(body, &parts.headers, gateway.max_body_bytes).await?;
                call.value = Some(codec::to_msgpack(&bytes, format)?);
            }
            gateway.call(domain, call).await?;
            Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Body::default())
                .unwrap_or_default())
        }
    }
}
