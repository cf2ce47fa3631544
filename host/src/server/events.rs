//! `POST /v1/events/{domain}`: publish an event; the domain's policy picks
//! the stream(s), the host adds to all of them in one pipeline.

use super::codec::{self, Format};
use super::idempotency::{self, IdempotencyKey, Respond};
use super::respond::{self, Body};
use crate::error::Error;
use crate::flow::{Answer, Call};
use crate::generation::{Gateway, Payload};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

/// `201 {"ids": {"stream": "entry id", ...}}` once Redis took the event
/// (within the domain's `max_event_bytes` and `client`'s write budget);
/// with an `Idempotency-Key`, at most once for `client` (who sent it).
pub async fn publish(
    gateway: &Gateway,
    req: Request<Incoming>,
    domain: &str,
    client: &str,
) -> Result<Response<Body>, Error> {
    let domain = gateway.domain(domain)?;
    let _: codec::NoQuery = codec::query(req.uri().query())?;
    let format = Format::for_response(req.headers())?;
    let once = IdempotencyKey::of(&req, client)?;
    let (bytes, in_format) = codec::read_body(req, gateway.body_limits()).await?;
    let event = codec::to_msgpack(&bytes, in_format)?;
    gateway.fits(domain, Payload::Event, event.len())?;
    gateway.charge_write(client, event.len()).await?;
    let call = Call::Publish { event };
    let Some(once) = once else {
        let (status, body) = created(gateway.call(domain, call).await?);
        return respond::packed(status, body, format);
    };
    let respond = (Respond::From(created), format);
    idempotency::serve(gateway, domain, call, once.finish(&bytes), respond).await
}

/// The answer to a publish: `201` and `{"ids": …}`, MessagePack.
fn created(answer: Answer) -> (StatusCode, Vec<u8>) {
    let ids = match answer {
        Answer::Fresh(ids) => ids.to_vec(),
        _ => vec![0x80],
    };
    let mut out = Vec::with_capacity(ids.len() + 5);
    let _ = rmp::encode::write_map_len(&mut out, 1);
    let _ = rmp::encode::write_str(&mut out, "ids");
    out.extend_from_slice(&ids);
    (StatusCode::CREATED, out)
}
