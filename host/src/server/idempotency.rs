//! `Idempotency-Key` on writes (`PUT`/`DELETE /v1/cache/…`) and event
//! publishes: a retry within `server.idempotency_window_s` gets the first
//! response with `Idempotent-Replayed: true`, a duplicate sent while the
//! first is served gets 409, the key reused for another request 422.
//! The flow (claim, write and record together) is `Gateway::call_once`.

use super::codec::{self, Format};
use super::respond::{self, Body};
use crate::error::Error;
use crate::flow::{Answer, Call, Outcome};
use crate::generation::{Domain, Gateway};
use crate::store::StoreError;
#[cfg(test)]
use hyper::Method;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use sha2::{Digest, Sha256};

const KEY: &str = "idempotency-key";
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Longest key: a UUID or a client's own id fits well within it.
const MAX_KEY_BYTES: usize = 128;

/// What a served write answers.
#[derive(Clone, Copy)]
pub enum Reply {
    /// `204 No Content` (cache PUT and DELETE).
    Written,
    /// `201 {"ids": {...}}` (event publish).
    Published,
}

/// A request's `Idempotency-Key` and what the request was, so far: its
/// method, path and API key, hashed before the body is read (nothing of the
/// request is kept or copied); [`Once::finish`] adds the body.
pub struct Once {
    key: String,
    hash: Sha256,
}

impl Once {
    /// The request's key, if it sent one: 1 to 128 visible ASCII characters
    /// (it becomes part of a Redis key), sent once.
    pub fn of<B>(req: &hyper::Request<B>) -> Result<Option<Once>, Error> {
        let Some(key) = key(req.headers())? else {
            return Ok(None);
        };
        // A key sent again with another method, path, API key or body is
        // another request: one client cannot read another's first response
        // by guessing its key.
        let path = req.uri().path_and_query().map_or("", |p| p.as_str());
        let who = req.headers().get(hyper::header::AUTHORIZATION);
        let who = who.map_or(&b""[..], |v| v.as_bytes());
        let mut hash = Sha256::new();
        for part in [req.method().as_str().as_bytes(), path.as_bytes(), who] {
            add(&mut hash, part);
        }
        Ok(Some(Once { key, hash }))
    }

    /// The key and the request's fingerprint, its body included.
    pub fn finish(mut self, body: &[u8]) -> (String, String) {
        add(&mut self.hash, body);
        let fingerprint = self.hash.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (self.key, fingerprint)
    }
}

fn add(hash: &mut Sha256, part: &[u8]) {
    hash.update((part.len() as u64).to_be_bytes());
    hash.update(part);
}

/// The request's `Idempotency-Key`, if it sent one (see [`Once::of`]).
pub fn key(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let mut values = headers.get_all(KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if values.next().is_some()
        || bytes.is_empty()
        || bytes.len() > MAX_KEY_BYTES
        || !bytes.iter().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::BadRequest(format!(
            "Idempotency-Key is 1 to {MAX_KEY_BYTES} visible ASCII characters, sent once"
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// Serve `call` and answer as `reply` says; with a key (`once`: the client's
/// key and the request's fingerprint), at most once.
pub async fn serve(
    gateway: &Gateway,
    domain: &Domain,
    call: Call,
    once: Option<(String, String)>,
    (reply, format): (Reply, Format),
) -> Result<Response<Body>, Error> {
    let Some((key, fingerprint)) = once else {
        let answer = gateway.call(domain, call).await?;
        let (status, body) = reply.body(answer);
        return render(status, body, format);
    };
    // On a cluster the record is written in the write's transaction, so in
    // its hash slot: the policy's first key says which (a policy must plan a
    // retry as it planned the first request, as it does for a replay).
    let slot_of = match gateway.config().redis.cluster {
        true => gateway.first_key(domain, &call)?,
        false => None,
    };
    let once = gateway.once(domain, &key, fingerprint, slot_of.as_deref())?;
    let known = match reply {
        Reply::Written => Some((StatusCode::NO_CONTENT, &b""[..])),
        Reply::Published => None,
    };
    match gateway.call_once(domain, call, &once, known).await? {
        Outcome::Fresh(answer) => {
            let (status, body) = reply.body(answer);
            if known.is_none() {
                gateway
                    .record_response(&once, once.done(status.as_u16(), &body))
                    .await;
            }
            render(status, body, format)
        }
        Outcome::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut resp = if status.is_success() {
                render(status, body, format)?
            } else {
                let first = "the first request with this Idempotency-Key was refused by Redis; send a new key to try again";
                respond::problem(&Error::Store(StoreError::Command(first.into())), format)
            };
            respond::set(&mut resp, REPLAYED, HeaderValue::from_static("true"));
            Ok(resp)
        }
    }
}

impl Reply {
    /// The status and MessagePack body of a served call.
    fn body(self, answer: Answer) -> (StatusCode, Vec<u8>) {
        match self {
            Reply::Written => (StatusCode::NO_CONTENT, Vec::new()),
            Reply::Published => {
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
        }
    }
}

fn render(status: StatusCode, body: Vec<u8>, format: Format) -> Result<Response<Body>, Error> {
    if body.is_empty() {
        return Ok(respond::empty(status));
    }
    let body = codec::from_msgpack(body.into(), format)?;
    Ok(respond::bytes(status, format.content_type(), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(KEY, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn a_key_is_short_visible_ascii_sent_once() {
        assert_eq!(key(&headers(&[])).unwrap(), None);
        assert_eq!(
            key(&headers(&["7c1e-4b"])).unwrap().as_deref(),
            Some("7c1e-4b")
        );
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        for bad in [&["a b"][..], &[""], &[long.as_str()], &["a", "b"]] {
            assert!(
                matches!(key(&headers(bad)), Err(Error::BadRequest(_))),
                "{bad:?}"
            );
        }
    }

    fn fingerprint(method: Method, path: &str, api_key: Option<&str>, body: &[u8]) -> String {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(KEY, "k");
        if let Some(k) = api_key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        let req = req.body(()).unwrap();
        Once::of(&req).unwrap().unwrap().finish(body).1
    }

    #[test]
    fn the_fingerprint_tells_requests_and_clients_apart() {
        let put = fingerprint(Method::PUT, "/v1/cache/c/k", None, b"1");
        assert_eq!(put, fingerprint(Method::PUT, "/v1/cache/c/k", None, b"1"));
        assert_eq!(put.len(), 32);
        for other in [
            fingerprint(Method::PUT, "/v1/cache/c/k", None, b"2"),
            fingerprint(Method::DELETE, "/v1/cache/c/k", None, b"1"),
            fingerprint(Method::PUT, "/v1/cache/c/k1", None, b""),
            fingerprint(Method::PUT, "/v1/cache/c/k?ttl_s=5", None, b"1"),
            fingerprint(Method::PUT, "/v1/cache/c/k", Some("a"), b"1"),
        ] {
            assert_ne!(put, other);
        }
    }
}
