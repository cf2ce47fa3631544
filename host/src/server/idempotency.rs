//! `Idempotency-Key` on writes (`PUT`/`DELETE /v1/cache/…`) and event
//! publishes: a retry within `server.idempotency_window_s` gets the first
//! response with `Idempotent-Replayed: true`, a duplicate sent while the
//! first is served gets 409, the key reused for another request 422.
//! The flow (plan, claim, write and record together) is
//! `Gateway::call_once`; a write without a key never comes here.

use super::codec::Format;
use super::respond::{self, Body};
use crate::error::Error;
use crate::flow::{Answer, Call, Idempotent, Outcome};
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

/// How a served write answers.
#[derive(Clone, Copy)]
pub enum Respond {
    /// With this status and no body whatever the write came to (PUT and
    /// DELETE: 204): recorded in the write's own transaction.
    Known(StatusCode),
    /// With a status and MessagePack body made from the answer (a publish's
    /// ids): recorded once made.
    From(fn(Answer) -> (StatusCode, Vec<u8>)),
}

/// A request's `Idempotency-Key` and what the request was, so far: its
/// method, path and client, hashed before the body is read (nothing of the
/// request is kept or copied); [`IdempotencyKey::finish`] adds the body.
pub struct IdempotencyKey {
    key: String,
    client: String,
    hash: Sha256,
}

impl IdempotencyKey {
    /// The request's key, if it sent one: 1 to 128 visible ASCII characters
    /// (it becomes part of a Redis key), sent once. `client` is who sent it
    /// (`Caller::label`: the configured client, `-` when the API is open):
    /// its keys are its own, and its fingerprint holds its name, not the
    /// spelling of its `Authorization` header.
    pub fn of<B>(req: &hyper::Request<B>, client: &str) -> Result<Option<IdempotencyKey>, Error> {
        let Some(key) = key(req.headers())? else {
            return Ok(None);
        };
        // A key sent again with another method, path or body is another
        // request. The client is in the record's key and, in case, here too.
        let path = req.uri().path_and_query().map_or("", |p| p.as_str());
        let mut hash = Sha256::new();
        for part in [req.method().as_str(), path, client] {
            add(&mut hash, part.as_bytes());
        }
        Ok(Some(IdempotencyKey {
            key,
            client: client.to_owned(),
            hash,
        }))
    }

    /// The key and the request's fingerprint, its body included.
    pub fn finish(mut self, body: &[u8]) -> Idempotent {
        add(&mut self.hash, body);
        let fingerprint = self.hash.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Idempotent {
            key: self.key,
            client: self.client,
            fingerprint,
        }
    }
}

fn add(hash: &mut Sha256, part: &[u8]) {
    hash.update((part.len() as u64).to_be_bytes());
    hash.update(part);
}

/// The request's `Idempotency-Key`, if it sent one (see [`IdempotencyKey::of`]).
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

/// Serve `call` at most once for the client's key and fingerprint
/// (`once`), and answer as `respond` says (a replay with
/// `Idempotent-Replayed: true`).
pub async fn serve(
    gateway: &Gateway,
    domain: &Domain,
    call: Call,
    once: Idempotent,
    (respond, format): (Respond, Format),
) -> Result<Response<Body>, Error> {
    let known = match respond {
        Respond::Known(status) => Some((status, &b""[..])),
        Respond::From(_) => None,
    };
    match gateway.call_once(domain, call, once, known).await? {
        Outcome::Fresh {
            answer,
            record,
            recorded,
        } => {
            let (status, body) = match (respond, answer) {
                // A write whose plan answers: that answer, not the usual 204.
                (Respond::Known(_), Answer::Fresh(body)) => (StatusCode::OK, body.to_vec()),
                (Respond::Known(status), _) => (status, Vec::new()),
                (Respond::From(made), answer) => made(answer),
            };
            if !recorded {
                gateway.answered(&record, status, &body).await;
            }
            respond::packed(status, body, format)
        }
        Outcome::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut resp = if status.is_success() {
                respond::packed(status, body, format)?
            } else {
                let first = "the first request with this Idempotency-Key was refused by Redis; send a new key to try again";
                respond::problem(&Error::Store(StoreError::Command(first.into())), format)
            };
            respond::set(&mut resp, REPLAYED, HeaderValue::from_static("true"));
            Ok(resp)
        }
    }
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

    fn once(method: Method, path: &str, client: &str, auth: &str, body: &[u8]) -> Idempotent {
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(KEY, "k")
            .header("authorization", auth)
            .body(())
            .unwrap();
        IdempotencyKey::of(&req, client)
            .unwrap()
            .unwrap()
            .finish(body)
    }

    fn fingerprint(method: Method, path: &str, client: &str, body: &[u8]) -> String {
        once(method, path, client, "Bearer a-key", body).fingerprint
    }

    #[test]
    fn the_fingerprint_tells_requests_and_clients_apart() {
        let put = fingerprint(Method::PUT, "/v1/cache/c/k", "a", b"1");
        assert_eq!(put, fingerprint(Method::PUT, "/v1/cache/c/k", "a", b"1"));
        assert_eq!(put.len(), 32);
        for other in [
            fingerprint(Method::PUT, "/v1/cache/c/k", "a", b"2"),
            fingerprint(Method::DELETE, "/v1/cache/c/k", "a", b"1"),
            fingerprint(Method::PUT, "/v1/cache/c/k1", "a", b""),
            fingerprint(Method::PUT, "/v1/cache/c/k?ttl_s=5", "a", b"1"),
            fingerprint(Method::PUT, "/v1/cache/c/k", "b", b"1"),
            fingerprint(Method::PUT, "/v1/cache/c/k", "-", b"1"),
        ] {
            assert_ne!(put, other);
        }
    }

    #[test]
    fn the_fingerprint_holds_the_client_not_how_its_header_is_spelled() {
        let path = "/v1/cache/c/k";
        let first = once(Method::PUT, path, "a", "Bearer a-key", b"1");
        assert_eq!(first.client, "a");
        for retry in ["bearer a-key", "BEARER  a-key"] {
            let again = once(Method::PUT, path, "a", retry, b"1");
            assert_eq!(first.fingerprint, again.fingerprint, "{retry}");
        }
    }
}
