//! Bodies in and out: JSON or MessagePack, chosen by `Content-Type` and
//! `Accept` (JSON when absent). Values are stored as MessagePack; JSON is
//! transcoded on the way in and out without building a document tree.

use crate::error::Error;
use crate::store::reply::is_one_msgpack_value;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::HeaderMap;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};

/// A wire format the gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Msgpack,
}

const MSGPACK: [&str; 3] = [
    "application/msgpack",
    "application/x-msgpack",
    "application/vnd.msgpack",
];

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Msgpack => "application/msgpack",
        }
    }

    fn of_media_type(mt: &str) -> Option<Format> {
        let mt = mt.trim().to_ascii_lowercase();
        if mt == "application/json" {
            Some(Format::Json)
        } else if MSGPACK.contains(&mt.as_str()) {
            Some(Format::Msgpack)
        } else {
            None
        }
    }

    /// The format of a request body, from `Content-Type`.
    pub fn of_request(headers: &HeaderMap) -> Result<Format, Error> {
        let Some(ct) = headers.get(CONTENT_TYPE) else {
            return Ok(Format::Json);
        };
        let text = ct.to_str().unwrap_or("");
        let media_type = text.split(';').next().unwrap_or("");
        Format::of_media_type(media_type)
            .ok_or_else(|| Error::UnsupportedMediaType(text.to_owned()))
    }

    /// The format of the answer: the supported type with the highest `q` in
    /// `Accept`; JSON for `*/*`, `application/*` or no header.
    pub fn for_response(headers: &HeaderMap) -> Result<Format, Error> {
        let Some(accept) = headers.get(ACCEPT) else {
            return Ok(Format::Json);
        };
        let text = accept.to_str().unwrap_or("");
        if text.trim().is_empty() {
            return Ok(Format::Json);
        }
        let mut best: Option<(f32, Format)> = None;
        for range in text.split(',') {
            let mut parts = range.split(';');
            let mt = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let format = match mt {
                "*/*" | "application/*" => Some(Format::Json),
                mt => Format::of_media_type(mt),
            };
            if let Some(f) = format
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, f));
            }
        }
        best.map(|(_, f)| f).ok_or_else(|| {
            Error::NotAcceptable(format!(
                "cannot answer as {text:?}: accept application/json or application/msgpack"
            ))
        })
    }
}

/// Read a whole request body, refusing more than `limit` bytes (before
/// reading, when `Content-Length` already says so).
pub async fn read_body(body: Incoming, headers: &HeaderMap, limit: usize) -> Result<Bytes, Error> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Error::BodyTooLarge(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Error::BodyTooLarge(limit)),
        Err(e) => Err(Error::BadRequest(format!("cannot read the body: {e}"))),
    }
}

/// A request body in `format` → one MessagePack value.
pub fn to_msgpack(body: &[u8], format: Format) -> Result<Vec<u8>, Error> {
    if body.is_empty() {
        return Err(Error::BadRequest("the body is empty; send a value".into()));
    }
    match format {
        Format::Msgpack => {
            if is_one_msgpack_value(body) {
                Ok(body.to_vec())
            } else {
                Err(Error::BadRequest(
                    "the body is not one well-formed MessagePack value".into(),
                ))
            }
        }
        Format::Json => {
            let mut out = Vec::with_capacity(body.len());
            let mut de = serde_json::Deserializer::from_slice(body);
            serde_transcode::transcode(&mut de, &mut rmp_serde::Serializer::new(&mut out))
                .and_then(|()| de.end().map_err(serde::ser::Error::custom))
                .map_err(|e: rmp_serde::encode::Error| {
                    Error::BadRequest(format!("the body is not valid JSON: {e}"))
                })?;
            Ok(out)
        }
    }
}

/// A stored MessagePack value → a response body in `format`.
pub fn from_msgpack(value: Bytes, format: Format) -> Result<Bytes, Error> {
    match format {
        Format::Msgpack => Ok(value),
        Format::Json => {
            let mut out = Vec::with_capacity(value.len() + value.len() / 2);
            let mut de = rmp_serde::Deserializer::from_read_ref(&value);
            serde_transcode::transcode(&mut de, &mut serde_json::Serializer::new(&mut out))
                .map_err(|e| {
                    Error::NotAcceptable(format!(
                        "the stored value has no JSON form ({e}); ask for application/msgpack"
                    ))
                })?;
            Ok(Bytes::from(out))
        }
    }
}

/// Decode a whole request body of `format` into `T`.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8], format: Format) -> Result<T, Error> {
    match format {
        Format::Json => serde_json::from_slice(body)
            .map_err(|e| Error::BadRequest(format!("the body is not the expected JSON: {e}"))),
        Format::Msgpack => rmp_serde::from_slice(body).map_err(|e| {
            Error::BadRequest(format!("the body is not the expected MessagePack: {e}"))
        }),
    }
}

/// Any value inside a request body, transcoded into MessagePack as it is read
/// (from JSON or MessagePack alike).
pub struct Packed(pub Vec<u8>);

impl<'de> serde::Deserialize<'de> for Packed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = Vec::new();
        serde_transcode::transcode(d, &mut rmp_serde::Serializer::new(&mut out))
            .map_err(serde::de::Error::custom)?;
        Ok(Packed(out))
    }
}

/// A response body built as MessagePack (`build`), sent in `format`.
pub fn respond(
    format: Format,
    status: hyper::StatusCode,
    build: impl FnOnce(&mut Vec<u8>),
) -> Result<hyper::Response<super::Body>, Error> {
    let mut out = Vec::new();
    build(&mut out);
    let body = from_msgpack(Bytes::from(out), format)?;
    Ok(hyper::Response::builder()
        .status(status)
        .header(CONTENT_TYPE, format.content_type())
        .body(super::Body::from(body))
        .unwrap_or_default())
}

/// A response body `{name: value}` in `format`; `value` writes the MessagePack value.
pub fn respond_field(
    format: Format,
    status: hyper::StatusCode,
    name: &str,
    value: impl FnOnce(&mut Vec<u8>),
) -> Result<hyper::Response<super::Body>, Error> {
    respond(format, status, |out| {
        let _ = rmp::encode::write_map_len(out, 1);
        let _ = rmp::encode::write_str(out, name);
        value(out);
    })
}
