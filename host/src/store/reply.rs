//! Redis replies as MessagePack bodies (the server transcodes to JSON when
//! asked). Values the gateway wrote are MessagePack already and pass through
//! untouched; anything else (a key written by another client) is wrapped as
//! a string or binary rather than sent out malformed. How each action's reply
//! is shaped is the action's business (`plan/`); these are the pieces.

use redis::Value;
use rmp::encode;

/// Any reply, as the closest MessagePack value.
pub fn msgpack(v: Value) -> Vec<u8> {
    let mut out = Vec::new();
    generic(&mut out, v);
    out
}

/// Stored bytes: as they are when they are one MessagePack value, else as a
/// string (UTF-8) or binary.
pub fn stored(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 5);
    write_stored(&mut out, bytes);
    out
}

/// A map whose values are stored values (hash fields, stream entry fields).
pub fn object(pairs: Vec<(Value, Value)>) -> Vec<u8> {
    let mut out = Vec::new();
    write_object(&mut out, pairs);
    out
}

/// An array of stored values (a list's items), each read as [`stored`] reads
/// one: the gateway's MessagePack embedded as itself.
pub fn stored_array(items: Vec<Value>) -> Vec<u8> {
    let mut out = Vec::new();
    infallible(encode::write_array_len(&mut out, items.len() as u32));
    items.into_iter().for_each(|v| write_value(&mut out, v));
    out
}

/// A RESP2 flat `[k, v, k, v, ...]` as pairs.
pub fn pairs(flat: Vec<Value>) -> Vec<(Value, Value)> {
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

/// A score reply (RESP3 double, RESP2 bulk string) as a number.
pub fn score(v: Value) -> f64 {
    match v {
        Value::Double(d) => d,
        Value::Int(n) => n as f64,
        Value::BulkString(b) => std::str::from_utf8(&b)
            .ok()
            .and_then(|t| match t {
                "inf" | "+inf" => Some(f64::INFINITY),
                "-inf" => Some(f64::NEG_INFINITY),
                t => t.parse().ok(),
            })
            .unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// How deep a MessagePack value may nest. Reading one recurses once per
/// level: a client's `[[[[…]]]]` must not exhaust a worker's stack (JSON
/// bodies have serde_json's own limit of 128).
pub const MAX_DEPTH: usize = 128;

/// A MessagePack reader of `bytes` that refuses values nested past [`MAX_DEPTH`].
pub fn msgpack_reader(
    bytes: &[u8],
) -> rmp_serde::Deserializer<rmp_serde::decode::ReadRefReader<'_, [u8]>> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_DEPTH);
    de
}

/// Whether `bytes` hold exactly one well-formed MessagePack value, nested at
/// most [`MAX_DEPTH`] deep.
pub fn is_one_msgpack_value(bytes: &[u8]) -> bool {
    // A `&[u8]` reader advances as it reads: what is left is the trailer.
    let mut de = rmp_serde::Deserializer::new(bytes);
    de.set_max_depth(MAX_DEPTH);
    <serde::de::IgnoredAny as serde::Deserialize>::deserialize(&mut de).is_ok()
        && de.get_ref().is_empty()
}

fn write_object(out: &mut Vec<u8>, pairs: Vec<(Value, Value)>) {
    infallible(encode::write_map_len(out, pairs.len() as u32));
    for (k, v) in pairs {
        generic(out, k);
        write_value(out, v);
    }
}

/// A value as stored: bytes as [`stored`] reads them, anything else (a nil
/// in place) as the closest MessagePack value.
fn write_value(out: &mut Vec<u8>, v: Value) {
    match v {
        Value::BulkString(bytes) => write_stored(out, &bytes),
        other => generic(out, other),
    }
}

fn write_stored(out: &mut Vec<u8>, bytes: &[u8]) {
    if is_one_msgpack_value(bytes) {
        out.extend_from_slice(bytes);
    } else if let Ok(text) = std::str::from_utf8(bytes) {
        infallible(encode::write_str(out, text));
    } else {
        infallible(encode::write_bin(out, bytes));
    }
}

fn generic(out: &mut Vec<u8>, v: Value) {
    match v {
        Value::Nil => infallible(encode::write_nil(out)),
        Value::Int(n) => infallible(encode::write_sint(out, n)),
        Value::BulkString(b) => match std::str::from_utf8(&b) {
            Ok(text) => infallible(encode::write_str(out, text)),
            Err(_) => infallible(encode::write_bin(out, &b)),
        },
        Value::SimpleString(s) => infallible(encode::write_str(out, &s)),
        Value::Okay => infallible(encode::write_str(out, "OK")),
        Value::Double(d) => infallible(encode::write_f64(out, d)),
        Value::Boolean(b) => infallible(encode::write_bool(out, b)),
        Value::Array(items) | Value::Set(items) => {
            infallible(encode::write_array_len(out, items.len() as u32));
            items.into_iter().for_each(|i| generic(out, i));
        }
        Value::Map(pairs) => {
            infallible(encode::write_map_len(out, pairs.len() as u32));
            for (k, v) in pairs {
                generic(out, k);
                generic(out, v);
            }
        }
        other => infallible(encode::write_str(out, &format!("{other:?}"))),
    }
}

/// Writing MessagePack into a `Vec` cannot fail; this keeps that in one place.
fn infallible<T, E>(r: Result<T, E>) {
    let _ = r;
}

/// Stream entries (`[[id, [field, value, ...]], ...]`) as an array of
/// `{"id": .., "fields": {..}}`.
/// About how many bytes a reply carries (its strings' lengths): what a
/// gathering read counts against its bound.
pub fn size(v: &Value) -> usize {
    match v {
        Value::BulkString(b) => b.len(),
        Value::SimpleString(s) => s.len(),
        Value::VerbatimString { text, .. } => text.len(),
        Value::Array(items) | Value::Set(items) => items.iter().map(size).sum(),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| size(k) + size(v)).sum(),
        _ => 8,
    }
}

pub fn stream_entries(entries: Vec<Value>) -> Vec<u8> {
    let mut out = Vec::new();
    infallible(encode::write_array_len(&mut out, entries.len() as u32));
    for entry in entries {
        let (id, fields) = match entry {
            Value::Array(pair) if pair.len() == 2 => {
                let mut pair = pair.into_iter();
                (
                    pair.next().unwrap_or(Value::Nil),
                    pair.next().unwrap_or(Value::Nil),
                )
            }
            other => (other, Value::Nil),
        };
        infallible(encode::write_map_len(&mut out, 2));
        infallible(encode::write_str(&mut out, "id"));
        generic(&mut out, id);
        infallible(encode::write_str(&mut out, "fields"));
        match fields {
            Value::Array(flat) => write_object(&mut out, pairs(flat)),
            Value::Map(map) => write_object(&mut out, map),
            other => generic(&mut out, other),
        }
    }
    out
}

/// The entries of one stream in an `XREADGROUP` reply (RESP3 map or RESP2
/// array of `[stream, entries]`); empty on a timeout (nil).
pub fn read_group_entries(reply: Value) -> Vec<Value> {
    let streams = match reply {
        Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        Value::Array(items) => items
            .into_iter()
            .filter_map(|i| match i {
                Value::Array(mut pair) if pair.len() == 2 => pair.pop(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    streams
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(entries) => entries,
            _ => Vec::new(),
        })
        .collect()
}

/// A text reply (INFO's, a node's address): bulk, verbatim or simple string.
pub fn text(v: Value) -> Result<String, super::StoreError> {
    match v {
        Value::BulkString(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Value::VerbatimString { text, .. } | Value::SimpleString(text) => Ok(text),
        other => Err(super::StoreError::Command(format!(
            "expected text, got {other:?}"
        ))),
    }
}
