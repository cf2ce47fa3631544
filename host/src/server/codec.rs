//! Bodies in and out: JSON or MessagePack, chosen by `Content-Type` and
//! `Accept` (JSON when absent). Values are stored as MessagePack; JSON is
//! transcoded on the way in and out without building a document tree.

use crate::error::Error;
use crate::store::reply::{is_one_msgpack_value, msgpack_reader};
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

    /// The format of the answer (RFC 9110 §12.5.1): each format takes the
    /// `q` of the most specific range in `Accept` that matches it (its own
    /// type, then `application/*`, then `*/*`), so `application/json;q=0,
    /// */*` rules JSON out; the highest `q` above 0 wins, a tie goes to the
    /// range listed first, and JSON to a wildcard. JSON when there is no header.
    pub fn for_response(headers: &HeaderMap) -> Result<Format, Error> {
        let Some(accept) = headers.get(ACCEPT) else {
            return Ok(Format::Json);
        };
        let text = accept.to_str().unwrap_or("");
        if text.trim().is_empty() {
            return Ok(Format::Json);
        }
        // Per format: (specificity, q, position) of its best-matching range.
        let mut matched: [Option<(u8, f32, usize)>; 2] = [None, None];
        for (position, range) in text.split(',').enumerate() {
            let mut parts = range.split(';');
            let mt = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| {
                    let (name, value) = p.split_once('=')?;
                    name.trim().eq_ignore_ascii_case("q").then(|| value.trim())
                })
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            for (slot, format) in [Format::Json, Format::Msgpack].into_iter().enumerate() {
                let specificity = match mt.as_str() {
                    "*/*" => 0,
                    "application/*" => 1,
                    mt if Format::of_media_type(mt) == Some(format) => 2,
                    _ => continue,
                };
                // Of two ranges as specific (two msgpack spellings), the higher q.
                if matched[slot]
                    .is_none_or(|(s, mq, _)| specificity > s || (specificity == s && q > mq))
                {
                    matched[slot] = Some((specificity, q, position));
                }
            }
        }
        let mut best: Option<(f32, usize, Format)> = None;
        for (m, format) in matched.into_iter().zip([Format::Json, Format::Msgpack]) {
            if let Some((_, q, position)) = m
                && q > 0.0
                && best.is_none_or(|(bq, bp, _)| q > bq || (q == bq && position < bp))
            {
                best = Some((q, position, format));
            }
        }
        best.map(|(_, _, f)| f).ok_or_else(|| {
            Error::NotAcceptable(format!(
                "cannot answer as {text:?}: accept application/json or application/msgpack"
            ))
        })
    }
}

/// Read a whole request body, and the format its `Content-Type` says it is
/// in; refusing more than `limit` bytes (before reading, when
/// `Content-Length` already says so) or one that takes longer than `timeout`
/// to arrive.
pub async fn read_body(
    req: hyper::Request<Incoming>,
    limits: (usize, std::time::Duration),
) -> Result<(Bytes, Format), Error> {
    let format = Format::of_request(req.headers())?;
    Ok((
        read_bytes(req, limits, "server.max_body_bytes").await?,
        format,
    ))
}

/// A request's body whatever its type: 413 past `limit` (declared or
/// counted; the answer names `setting`), 408 when not in full within
/// `timeout`.
pub async fn read_bytes(
    req: hyper::Request<Incoming>,
    (limit, timeout): (usize, std::time::Duration),
    setting: &'static str,
) -> Result<Bytes, Error> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || Error::BodyTooLarge {
        what: "body",
        limit,
        setting: setting.into(),
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(timeout, Limited::new(req.into_body(), limit).collect());
    match read.await.map_err(|_| Error::BodyTimeout(timeout))? {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
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
            let mut de = msgpack_reader(&value);
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
        Format::Msgpack => T::deserialize(&mut msgpack_reader(body)).map_err(|e| {
            Error::BadRequest(format!("the body is not the expected MessagePack: {e}"))
        }),
    }
}

/// A query string as `T` (a struct that refuses unknown parameters with
/// `#[serde(deny_unknown_fields)]`); no query is an empty one.
pub fn query<T: serde::de::DeserializeOwned>(query: Option<&str>) -> Result<T, Error> {
    serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| Error::BadRequest(format!("query string: {e}")))
}

/// A route that takes no query string: any parameter is refused.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

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

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn with(name: hyper::header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    fn accept(value: &str) -> Result<Format, Error> {
        Format::for_response(&with(ACCEPT, value))
    }

    fn answer(value: &str) -> Format {
        accept(value).unwrap_or_else(|e| panic!("{value:?}: {e}"))
    }

    fn content(value: &str) -> Result<Format, Error> {
        Format::of_request(&with(CONTENT_TYPE, value))
    }

    #[test]
    fn a_body_without_content_type_is_json() {
        assert_eq!(Format::of_request(&HeaderMap::new()).unwrap(), Format::Json);
        assert_eq!(content("application/json").unwrap(), Format::Json);
        assert_eq!(
            content("application/json; charset=utf-8").unwrap(),
            Format::Json
        );
    }

    #[test]
    fn the_three_msgpack_spellings_in_any_case_are_msgpack() {
        for ct in [
            "application/msgpack",
            "application/x-msgpack",
            "application/vnd.msgpack",
            "Application/MsgPack",
            "APPLICATION/X-MSGPACK ; foo=bar",
        ] {
            assert_eq!(content(ct).unwrap(), Format::Msgpack, "{ct}");
        }
        assert_eq!(content("APPLICATION/JSON").unwrap(), Format::Json);
    }

    #[test]
    fn an_unsupported_content_type_is_refused_with_415() {
        for ct in ["text/plain", "application/xml", "application/json-seq", ""] {
            match content(ct) {
                Err(e @ Error::UnsupportedMediaType(_)) => {
                    assert_eq!(e.status(), hyper::StatusCode::UNSUPPORTED_MEDIA_TYPE);
                    assert!(e.to_string().contains(&format!("{ct:?}")), "{e}");
                }
                other => panic!("{ct:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn no_accept_or_a_wildcard_answers_json() {
        assert_eq!(
            Format::for_response(&HeaderMap::new()).unwrap(),
            Format::Json
        );
        for a in [
            "",
            "  ",
            "*/*",
            "application/*",
            "Application/*",
            "text/html, */*;q=0.1",
        ] {
            assert_eq!(answer(a), Format::Json, "{a:?}");
        }
    }

    #[test]
    fn the_highest_q_wins() {
        assert_eq!(answer("application/msgpack"), Format::Msgpack);
        assert_eq!(
            answer("application/json;q=0.5, application/msgpack"),
            Format::Msgpack
        );
        assert_eq!(
            answer("application/msgpack;q=0.8, application/json;q=0.9"),
            Format::Json
        );
        assert_eq!(answer("*/*;q=0.1, application/x-msgpack"), Format::Msgpack);
        // Two msgpack spellings: the higher of their weights counts.
        assert_eq!(
            answer(
                "application/x-msgpack;q=0.1, application/json;q=0.5, application/msgpack;q=0.9"
            ),
            Format::Msgpack
        );
        assert_eq!(
            answer("application/msgpack;q=0.2, */*;q=0.3"),
            Format::Json,
            "*/* at 0.3 beats msgpack at 0.2 for JSON"
        );
    }

    #[test]
    fn q_is_read_whatever_its_spelling_and_spacing() {
        for a in [
            "application/json;q=0.5,application/msgpack;q=0.6",
            "application/json ; q=0.5 , application/msgpack ; q=0.6",
            "application/json;q=0.50, application/msgpack;q=0.600",
            "application/json;Q=0.5, application/msgpack;Q=0.6",
            "application/json;q = 0.5, application/msgpack;q= 0.6",
        ] {
            assert_eq!(answer(a), Format::Msgpack, "{a:?}");
        }
    }

    #[test]
    fn other_parameters_do_not_confuse_it() {
        assert_eq!(
            answer("application/json;charset=utf-8;q=0.1, application/msgpack;v=2;q=0.9"),
            Format::Msgpack
        );
        assert_eq!(
            answer("application/msgpack;v=2, application/json;charset=utf-8;q=0.5"),
            Format::Msgpack
        );
        // A parameter whose name merely ends in q is not the weight.
        assert_eq!(
            answer("application/msgpack;seq=0, application/json;q=0.5"),
            Format::Msgpack
        );
    }

    #[test]
    fn ties_keep_the_first_listed() {
        assert_eq!(
            answer("application/msgpack;q=0.5, application/json;q=0.50"),
            Format::Msgpack
        );
        assert_eq!(
            answer("application/json;q=0.5, application/msgpack;q=0.5"),
            Format::Json
        );
        assert_eq!(
            answer("application/msgpack, application/json"),
            Format::Msgpack
        );
    }

    #[test]
    fn q_zero_excludes_even_under_a_wildcard() {
        assert_eq!(answer("application/json;q=0, */*"), Format::Msgpack);
        assert_eq!(answer("*/*, application/json;q=0"), Format::Msgpack);
        assert_eq!(
            answer("application/msgpack;q=0, application/*;q=0.2"),
            Format::Json
        );
        assert!(matches!(
            accept("application/json;q=0, application/msgpack;q=0"),
            Err(Error::NotAcceptable(_))
        ));
    }

    #[test]
    fn an_accept_without_our_formats_is_406() {
        for a in [
            "text/html",
            "text/*",
            "application/json;q=0",
            "image/png, text/html;q=0.9",
        ] {
            match accept(a) {
                Err(e @ Error::NotAcceptable(_)) => {
                    assert_eq!(e.status(), hyper::StatusCode::NOT_ACCEPTABLE);
                    assert!(e.to_string().contains("application/msgpack"), "{e}");
                }
                other => panic!("{a:?}: {other:?}"),
            }
        }
    }

    fn bad_request(result: Result<Vec<u8>, Error>) -> String {
        match result {
            Err(Error::BadRequest(m)) => m,
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_body_is_refused_in_either_format() {
        for f in [Format::Json, Format::Msgpack] {
            assert!(bad_request(to_msgpack(b"", f)).contains("empty"));
        }
    }

    #[test]
    fn json_bodies_become_one_msgpack_value() {
        assert_eq!(
            to_msgpack(br#"{"a":1}"#, Format::Json).unwrap(),
            [0x81, 0xa1, b'a', 0x01]
        );
        assert_eq!(
            to_msgpack(b" [true, null] \n", Format::Json).unwrap(),
            [0x92, 0xc3, 0xc0]
        );
        assert!(bad_request(to_msgpack(b"{\"a\":", Format::Json)).contains("not valid JSON"));
        assert!(bad_request(to_msgpack(b"nope", Format::Json)).contains("not valid JSON"));
        // Trailing garbage after one value is not ignored.
        assert!(bad_request(to_msgpack(br#"{"a":1} x"#, Format::Json)).contains("not valid JSON"));
        assert!(bad_request(to_msgpack(b"1 2", Format::Json)).contains("not valid JSON"));
    }

    #[test]
    fn msgpack_bodies_must_be_exactly_one_value() {
        let one = [0x92, 0x01, 0xa1, b'x'];
        assert_eq!(to_msgpack(&one, Format::Msgpack).unwrap(), one);
        // Two values, a truncated one, a reserved marker.
        for bad in [&[0x01, 0x02][..], &[0x92, 0x01][..], &[0xc1][..]] {
            assert!(
                bad_request(to_msgpack(bad, Format::Msgpack)).contains("one well-formed"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn values_round_trip_through_msgpack() {
        let json = r#"{"name":"ü ✓","n":-42,"big":18446744073709551615,"x":1.5,"ok":true,"none":null,"list":[1,"a",{"b":[]}]}"#;
        let packed = to_msgpack(json.as_bytes(), Format::Json).unwrap();
        let back = from_msgpack(Bytes::from(packed.clone()), Format::Json).unwrap();
        let (a, b): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(json).unwrap(),
            serde_json::from_slice(&back).unwrap(),
        );
        assert_eq!(a, b);
        // As MessagePack, the stored bytes go out untouched.
        assert_eq!(
            from_msgpack(Bytes::from(packed.clone()), Format::Msgpack).unwrap(),
            packed
        );
    }

    #[test]
    fn a_stored_value_without_a_json_form_is_406() {
        // A map with an array as key: fine in MessagePack, not in JSON.
        let array_key = Bytes::from_static(&[0x81, 0x90, 0x02]);
        for stored in [array_key.clone(), Bytes::from_static(&[0xc1])] {
            match from_msgpack(stored, Format::Json) {
                Err(e @ Error::NotAcceptable(_)) => {
                    assert!(e.to_string().contains("application/msgpack"), "{e}")
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            from_msgpack(array_key.clone(), Format::Msgpack).unwrap(),
            array_key
        );
        // An integer key is written as a JSON string key.
        let int_key = Bytes::from_static(&[0x81, 0x01, 0x02]);
        assert_eq!(from_msgpack(int_key, Format::Json).unwrap(), r#"{"1":2}"#);
    }
}
