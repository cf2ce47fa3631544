//! Redis replies become response bodies (MessagePack; the server transcodes
//! to JSON when asked). Values the gateway wrote are MessagePack already and
//! pass through untouched; anything else (a key written by another client) is
//! wrapped as a string or binary rather than sent out malformed.

use crate::plugin::bindings::{Action, ZsetBounds};
use redis::Value;
use rmp::encode;

/// The body for the reply to `action`, or `None` when Redis had nothing.
pub fn shape(action: &Action, reply: Value) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match (action, reply) {
        (_, Value::Nil) => return None,
        (Action::Get(_), Value::BulkString(bytes)) => {
            if is_one_msgpack_value(&bytes) {
                return Some(bytes);
            }
            stored(&mut out, &bytes);
        }
        (Action::HashGet(h), Value::Array(values)) if !h.fields.is_empty() => {
            if values.iter().all(|v| matches!(v, Value::Nil)) {
                return None;
            }
            let present = h
                .fields
                .iter()
                .zip(values)
                .filter(|(_, v)| *v != Value::Nil);
            let pairs: Vec<_> = present.collect();
            infallible(encode::write_map_len(&mut out, pairs.len() as u32));
            for (name, v) in pairs {
                infallible(encode::write_str(&mut out, name));
                field(&mut out, v);
            }
        }
        (Action::HashGet(_), Value::Map(pairs)) => {
            if pairs.is_empty() {
                return None;
            }
            infallible(encode::write_map_len(&mut out, pairs.len() as u32));
            for (k, v) in pairs {
                generic(&mut out, k);
                field(&mut out, v);
            }
        }
        (Action::HashGet(_), Value::Array(flat)) => {
            if flat.is_empty() {
                return None;
            }
            infallible(encode::write_map_len(&mut out, (flat.len() / 2) as u32));
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                generic(&mut out, k);
                field(&mut out, v);
            }
        }
        (Action::ZsetRange(z), Value::Array(flat)) => {
            let mut members: Vec<(Value, Value)> = Vec::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let Some(item) = it.next() {
                // RESP3 nests [member, score]; RESP2 interleaves them.
                match item {
                    Value::Array(mut pair) if pair.len() == 2 => {
                        let s = pair.pop().unwrap_or(Value::Nil);
                        let m = pair.pop().unwrap_or(Value::Nil);
                        members.push((m, s));
                    }
                    m => members.push((m, it.next().unwrap_or(Value::Nil))),
                }
            }
            if let (ZsetBounds::Rank(_), Some(n)) = (&z.bounds, z.limit) {
                members.truncate(n as usize);
            }
            infallible(encode::write_array_len(&mut out, members.len() as u32));
            for (m, s) in members {
                infallible(encode::write_map_len(&mut out, 2));
                infallible(encode::write_str(&mut out, "member"));
                generic(&mut out, m);
                infallible(encode::write_str(&mut out, "score"));
                let score = match s {
                    Value::Double(d) => d,
                    Value::BulkString(b) => std::str::from_utf8(&b)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(f64::NAN),
                    _ => f64::NAN,
                };
                infallible(encode::write_f64(&mut out, score));
            }
        }
        (Action::SetContains(_), Value::Int(n)) => {
            infallible(encode::write_bool(&mut out, n == 1));
        }
        (_, other) => generic(&mut out, other),
    }
    Some(out)
}

/// A hash field the gateway wrote is one MessagePack value.
fn field(out: &mut Vec<u8>, v: Value) {
    match v {
        Value::BulkString(bytes) => stored(out, &bytes),
        other => generic(out, other),
    }
}

/// Stored bytes: as they are when they are one MessagePack value, else as a
/// string (UTF-8) or binary.
fn stored(out: &mut Vec<u8>, bytes: &[u8]) {
    if is_one_msgpack_value(bytes) {
        out.extend_from_slice(bytes);
    } else if let Ok(text) = std::str::from_utf8(bytes) {
        infallible(encode::write_str(out, text));
    } else {
        infallible(encode::write_bin(out, bytes));
    }
}

/// Whether `bytes` hold exactly one well-formed MessagePack value.
pub fn is_one_msgpack_value(bytes: &[u8]) -> bool {
    // A `&[u8]` reader advances as it reads: what is left is the trailer.
    let mut de = rmp_serde::Deserializer::new(bytes);
    <serde::de::IgnoredAny as serde::Deserialize>::deserialize(&mut de).is_ok()
        && de.get_ref().is_empty()
}

/// Any reply, as the closest MessagePack value.
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
/// `{"id": .., "fields": {..}}`; returns how many.
pub fn stream_entries(out: &mut Vec<u8>, entries: Vec<Value>) -> usize {
    infallible(encode::write_array_len(out, entries.len() as u32));
    let n = entries.len();
    for entry in entries {
        let (id, fields) = match entry {
            Value::Array(mut pair) if pair.len() == 2 => {
                let fields = pair.pop().unwrap_or(Value::Nil);
                (pair.pop().unwrap_or(Value::Nil), fields)
            }
            other => (other, Value::Nil),
        };
        infallible(encode::write_map_len(out, 2));
        infallible(encode::write_str(out, "id"));
        generic(out, id);
        infallible(encode::write_str(out, "fields"));
        match fields {
            Value::Array(flat) => {
                infallible(encode::write_map_len(out, (flat.len() / 2) as u32));
                let mut it = flat.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    generic(out, k);
                    field(out, v);
                }
            }
            Value::Map(pairs) => {
                infallible(encode::write_map_len(out, pairs.len() as u32));
                for (k, v) in pairs {
                    generic(out, k);
                    field(out, v);
                }
            }
            other => generic(out, other),
        }
    }
    n
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

/// The answer to a publish: `{stream: entry id}` for each stream added to.
pub fn stream_ids(actions: &[Action], replies: Vec<Value>) -> Vec<u8> {
    let added: Vec<(&str, Value)> = actions
        .iter()
        .zip(replies)
        .filter_map(|(a, v)| match a {
            Action::StreamAdd(s) => Some((s.stream.as_str(), v)),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    infallible(encode::write_map_len(&mut out, added.len() as u32));
    for (stream, id) in added {
        infallible(encode::write_str(&mut out, stream));
        generic(&mut out, id);
    }
    out
}
