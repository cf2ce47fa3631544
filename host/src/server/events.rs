//! `POST /v1/events/{domain}`: publish an event; the domain's policy picks
//! the stream(s), the host adds to all of them in one pipeline.

use super::codec::{self, Format};
use super::idempotency;
use super::respond::Body;
use crate::error::Error;
use crate::flow::Call;
use crate::generation::Gateway;
use crate::plugin::bindings::Operation;
use hyper::body::Incoming;
use hyper::{Request, Response};

/// `201 {"ids": {"stream": "entry id", ...}}` once Redis took the event;
/// with an `Idempotency-Key`, at most once.
pub async fn publish(
    gateway: &Gateway,
    req: Request<Incoming>,
    domain: &str,
) -> Result<Response<Body>, Error> {
    let domain = gateway.domain(domain)?;
    let _: codec::NoQuery = codec::query(req.uri().query())?;
    let out_format = Format::for_response(req.headers())?;
    let once = idempotency::Once::of(&req)?;
    let (bytes, in_format) = codec::read_body(req, gateway.body_limits()).await?;
    let mut call = Call::new(String::new(), Operation::Publish);
    call.value = Some(codec::to_msgpack(&bytes, in_format)?);
    let once = once.map(|o| o.finish(&bytes));
    let reply = (idempotency::Reply::Published, out_format);
    idempotency::serve(gateway, domain, call, once, reply).await
}
