//! Values cross the gateway as MessagePack: a client's JSON becomes MessagePack
//! before a policy sees it, and what a policy stores stays MessagePack (types
//! kept) until the gateway answers in the client's format.

use crate::Error;
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use std::collections::BTreeMap;

/// A MessagePack value: a request's body, a field of an object, a value to store.
///
/// ```
/// use sluice_sdk::Value;
/// let price = Value::encode(&[("asset", "btc"), ("fiat", "usd")].into_iter().collect::<std::collections::BTreeMap<_, _>>())?;
/// assert_eq!(price.field::<String>("asset")?, "btc");
/// assert_eq!(price.fields()?.len(), 2);
/// let err = price.decode::<f64>().unwrap_err();
/// assert_eq!(err.to_string(), "bad request: the value must be a number for this domain, not a map (an object)");
/// # Ok::<(), sluice_sdk::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Value(Vec<u8>);

impl Value {
    /// Encode any serde value (structs keep their field names, as maps).
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
        rmp_serde::to_vec_named(value).map(Value).map_err(|e| {
            Error::internal(format!("a value could not be encoded as MessagePack: {e}"))
        })
    }

    /// Bytes that already are MessagePack (not checked: a decode says what is wrong).
    pub fn from_msgpack(bytes: Vec<u8>) -> Value {
        Value(bytes)
    }

    /// The MessagePack bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The MessagePack bytes, without a copy.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Decode into `T`. A value of the wrong shape is a bad request whose
    /// message says, in a client's words, what was expected where:
    /// "`score` in the value must be a number, not a string ("high")".
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        decode_at(&self.0, "")
    }

    /// Split a map into its entries, each value still MessagePack (types
    /// kept), without knowing its shape: how an object becomes hash fields or
    /// stream entry fields. Entries keep the value's order.
    pub fn fields(&self) -> Result<Vec<(String, Value)>, Error> {
        Ok(self
            .entries()?
            .into_iter()
            .map(|(name, v)| (name.to_owned(), Value(v.to_vec())))
            .collect())
    }

    /// One field of a map, decoded. A missing field is `None` when `T` is an
    /// `Option`, else a bad request naming it.
    pub fn field<T: DeserializeOwned>(&self, name: &str) -> Result<T, Error> {
        match self.entries()?.into_iter().find(|(k, _)| *k == name) {
            Some((_, v)) => decode_at(v, name),
            // What `T` makes of "nothing": `None` for an `Option`.
            None => rmp_serde::from_slice(&[NIL])
                .map_err(|_| Error::bad_request(format!("the value needs a `{name}` field"))),
        }
    }

    /// The entries of a map, borrowed: keys and the MessagePack of each value.
    fn entries(&self) -> Result<Vec<(&str, &[u8])>, Error> {
        map_entries(&self.0).ok_or_else(|| {
            match decode_at::<BTreeMap<String, IgnoredAny>>(&self.0, "") {
                Err(e) => e,
                Ok(_) => Error::bad_request("the value must be a map (an object) with string keys"),
            }
        })
    }
}

const NIL: u8 = 0xc0;

fn map_entries(bytes: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    let mut rd = bytes;
    let len = rmp::decode::read_map_len(&mut rd).ok()?;
    let mut out = Vec::with_capacity(len.min(64) as usize);
    for _ in 0..len {
        let rmpv::ValueRef::String(key) = rmpv::decode::read_value_ref(&mut rd).ok()? else {
            return None;
        };
        let start = rd;
        rmpv::decode::read_value_ref(&mut rd).ok()?;
        out.push((key.into_str()?, &start[..start.len() - rd.len()]));
    }
    Some(out)
}

impl std::fmt::Debug for Value {
    /// As the value reads (`{"price": 64000.5}`), so a failed assertion shows it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match rmpv::decode::read_value(&mut self.as_bytes()) {
            Ok(v) => write!(f, "Value({v})"),
            Err(_) => write!(f, "Value(invalid MessagePack {:02x?})", self.0),
        }
    }
}

/// What a builder accepts where a value goes: a reference to anything
/// serde can serialize (encoded to MessagePack when the plan is built), or a
/// [`Value`] as it is (no re-encoding, e.g. the request's own value).
pub trait IntoValue {
    /// The MessagePack value; an error if it does not encode.
    fn into_value(self) -> Result<Value, Error>;
}

impl IntoValue for Value {
    fn into_value(self) -> Result<Value, Error> {
        Ok(self)
    }
}

impl IntoValue for &Value {
    fn into_value(self) -> Result<Value, Error> {
        Ok(self.clone())
    }
}

impl<T: Serialize + ?Sized> IntoValue for &T {
    fn into_value(self) -> Result<Value, Error> {
        Value::encode(self)
    }
}

/// Decode `bytes`, the value or its field `at`; a failure becomes a bad
/// request in plain words.
fn decode_at<T: DeserializeOwned>(bytes: &[u8], at: &str) -> Result<T, Error> {
    // The fast path; messages are worked out only for a value that failed.
    rmp_serde::from_slice(bytes).map_err(|e| {
        Error::bad_request(match explain::<T>(bytes, at) {
            Some((path, problem)) => problem.in_value(&path),
            None => format!("the value could not be read: {e}"),
        })
    })
}

/// Decode `bytes` that are not a client's (a reply Redis gave), saying what
/// went wrong of `subject`: "`owner` in reply 0 of the read must be a
/// string, not 5". The subject is worked out only for a failure.
pub(crate) fn decode_named<T: DeserializeOwned>(
    bytes: &[u8],
    subject: impl FnOnce() -> String,
) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|e| match explain::<T>(bytes, "") {
        Some((path, problem)) => problem.in_named(&subject(), &path),
        None => format!("{} could not be read: {e}", subject()),
    })
}

/// Decode the settings table of domain `domain` into `S`, refusing settings
/// that `S` does not read: a typo must not silently leave a default in place.
pub(crate) fn settings<S: DeserializeOwned>(domain: &str, bytes: &[u8]) -> Result<S, Error> {
    let table = format!("[domains.{domain}.settings]");
    let bytes = if bytes.is_empty() { &[0x80][..] } else { bytes };
    let tree = rmpv::decode::read_value(&mut &bytes[..])
        .map_err(|e| Error::bad_config(format!("{table} could not be read: {e}")))?;
    let mut ignored = Vec::new();
    let decoded = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
        tree,
        &mut |path: serde_ignored::Path| ignored.push(path.to_string()),
    ));
    match decoded {
        Err(e) => {
            let path = e.path().to_string();
            let rmpv::ext::Error::Syntax(msg) = e.into_inner();
            Err(Error::bad_config(
                Problem::of(&msg).in_settings(&table, &path),
            ))
        }
        Ok(_) if !ignored.is_empty() => Err(Error::bad_config(format!(
            "unknown setting {} in {table}: this policy does not read it (a typo?)",
            ignored
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Ok(s) => Ok(s),
    }
}

/// Decode again through a tree that tracks the path, to learn where and why
/// the decode failed. `None` when the bytes are not MessagePack at all.
fn explain<T: DeserializeOwned>(bytes: &[u8], at: &str) -> Option<(String, Problem)> {
    let tree = rmpv::decode::read_value(&mut &bytes[..]).ok()?;
    let err = serde_path_to_error::deserialize::<_, T>(tree).err()?;
    let path = match (at, err.path().to_string()) {
        (at, p) if p == "." || p == "?" => at.to_owned(),
        ("", p) => p,
        (at, p) if p.starts_with('[') => format!("{at}{p}"),
        (at, p) => format!("{at}.{p}"),
    };
    let rmpv::ext::Error::Syntax(msg) = err.into_inner();
    Some((path, Problem::of(&msg)))
}

/// A serde error, parsed back into its parts so it can be said plainly.
#[derive(Debug, PartialEq)]
enum Problem {
    /// Wrong type or value: what was expected and what was found, in plain words.
    Shape {
        expected: String,
        found: String,
    },
    Missing(String),
    Unknown {
        field: String,
        known: Option<String>,
    },
    Other(String),
}

impl Problem {
    fn of(msg: &str) -> Problem {
        let shape = |rest: &str| {
            rest.rsplit_once(", expected ")
                .map(|(found, exp)| Problem::Shape {
                    expected: expected(exp),
                    found: found_words(found),
                })
        };
        let known = |rest: &str| {
            rest.strip_prefix(", expected one of ")
                .or_else(|| rest.strip_prefix(", expected "))
                .map(str::to_owned)
        };
        let parsed = if let Some(rest) = msg.strip_prefix("invalid type: ") {
            shape(rest)
        } else if let Some(rest) = msg.strip_prefix("invalid value: ") {
            shape(rest)
        } else if let Some(rest) = msg.strip_prefix("invalid length ") {
            rest.split_once(", expected ")
                .map(|(n, exp)| Problem::Shape {
                    expected: expected(exp),
                    found: format!("{n} items"),
                })
        } else if let Some(rest) = msg.strip_prefix("missing field `") {
            rest.strip_suffix('`')
                .map(|f| Problem::Missing(f.to_owned()))
        } else if let Some(rest) = msg.strip_prefix("unknown field `") {
            rest.split_once('`').map(|(field, rest)| Problem::Unknown {
                field: field.to_owned(),
                known: known(rest),
            })
        } else if let Some(rest) = msg.strip_prefix("unknown variant `") {
            rest.split_once('`').map(|(v, rest)| Problem::Shape {
                expected: known(rest)
                    .map_or_else(|| "something else".into(), |k| format!("one of {k}")),
                found: format!("\"{v}\""),
            })
        } else {
            None
        };
        parsed.unwrap_or_else(|| Problem::Other(msg.to_owned()))
    }

    /// Said of a request's value (`path` empty: the value itself).
    fn in_value(&self, path: &str) -> String {
        let at = |what: &str| match path {
            "" => format!("the value {what}"),
            p => format!("`{p}` in the value {what}"),
        };
        match self {
            Problem::Shape { expected, found } if path.is_empty() => {
                format!("the value must be {expected} for this domain, not {found}")
            }
            Problem::Shape { expected, found } => at(&format!("must be {expected}, not {found}")),
            Problem::Missing(f) => at(&format!("needs a `{f}` field")),
            Problem::Unknown { field, known } => {
                let takes = known
                    .as_ref()
                    .map_or(String::new(), |k| format!(" (it takes {k})"));
                format!("the value has a field `{field}` this domain does not take{takes}")
            }
            Problem::Other(msg) => at(&format!("could not be read: {msg}")),
        }
    }

    /// Said of something that is not the client's, e.g. a reply (`path`
    /// empty: the thing itself).
    fn in_named(&self, subject: &str, path: &str) -> String {
        let at = |what: &str| match path {
            "" => format!("{subject} {what}"),
            p => format!("`{p}` in {subject} {what}"),
        };
        match self {
            Problem::Shape { expected, found } => at(&format!("must be {expected}, not {found}")),
            Problem::Missing(f) => at(&format!("needs a `{f}` field")),
            Problem::Unknown { field, .. } => at(&format!("has a field `{field}` it should not")),
            Problem::Other(msg) => at(&format!("could not be read: {msg}")),
        }
    }

    /// Said of a domain's settings table (`path` empty: the table itself).
    fn in_settings(&self, table: &str, path: &str) -> String {
        let at = |what: &str| match path {
            "" => format!("{table} {what}"),
            p => format!("setting `{p}` in {table} {what}"),
        };
        match self {
            Problem::Shape { expected, found } => at(&format!("must be {expected}, not {found}")),
            Problem::Missing(f) => at(&format!("needs `{f}`")),
            Problem::Unknown { known: None, .. } => {
                format!("unknown setting `{path}` in {table}: this policy takes no settings")
            }
            Problem::Unknown { known: Some(k), .. } => {
                format!("unknown setting `{path}` in {table}: this policy reads {k}")
            }
            Problem::Other(msg) => at(&format!("is wrong: {msg}")),
        }
    }
}

/// serde's name of an expected type, as a person who writes JSON or TOML says it.
fn expected(exp: &str) -> String {
    let words = match exp {
        "f32" | "f64" => "a number",
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "a boolean" => "true or false",
        "a string" | "a borrowed string" | "a character" | "char" => "a string",
        "a sequence" => "an array",
        "a map" | "map" => "a map (an object)",
        "unit" => "null",
        e if e.starts_with("struct ") && e.contains(" with ") => "an array",
        e if e.starts_with("struct ") => "a map (an object)",
        e if e.starts_with("tuple ") || e.starts_with("a tuple ") => "an array",
        e => return e.to_owned(),
    };
    words.to_owned()
}

/// serde's description of what it found (`string "x"`, `integer `5``), in plain words.
fn found_words(found: &str) -> String {
    let tick = |s: &str| s.trim_matches('`').to_owned();
    if let Some(s) = found.strip_prefix("string ") {
        let s = if s.len() > 40 {
            let cut = (0..=37).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
            format!("{}…\"", &s[..cut])
        } else {
            s.to_owned()
        };
        return format!("a string ({s})");
    }
    if let Some(n) = found
        .strip_prefix("integer ")
        .or_else(|| found.strip_prefix("floating point "))
    {
        return tick(n);
    }
    if let Some(b) = found.strip_prefix("boolean ") {
        return tick(b);
    }
    match found {
        "unit value" => "null",
        "sequence" => "an array",
        "map" => "a map (an object)",
        "byte array" => "binary data",
        f => f,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Score {
        member: String,
        score: f64,
    }

    fn err<T: DeserializeOwned + std::fmt::Debug>(v: impl Serialize) -> String {
        match Value::encode(&v).unwrap().decode::<T>().unwrap_err() {
            Error::BadRequest(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_value_of_the_wrong_shape_is_explained_in_plain_words() {
        assert_eq!(
            err::<Score>("test"),
            r#"the value must be a map (an object) for this domain, not a string ("test")"#
        );
        assert_eq!(
            err::<Score>(5),
            "the value must be a map (an object) for this domain, not 5"
        );
        assert_eq!(
            err::<Score>(BTreeMap::from([("member", "a"), ("score", "high")])),
            r#"`score` in the value must be a number, not a string ("high")"#
        );
        assert_eq!(
            err::<Score>(BTreeMap::from([("member", "a")])),
            "the value needs a `score` field"
        );
        assert_eq!(
            err::<u32>(-1),
            "the value must be a whole number from 0 to 4294967295 for this domain, not -1"
        );
        assert_eq!(
            err::<Vec<String>>(vec![1]),
            "`[0]` in the value must be a string, not 1"
        );
        assert_eq!(
            err::<bool>(()),
            "the value must be true or false for this domain, not null"
        );
        let long = "x".repeat(100);
        let cut = err::<u8>(long.as_str());
        assert!(cut.ends_with(r#"xxx…")"#) && cut.len() < 130, "{cut}");
    }

    #[test]
    fn garbage_is_not_explained_but_still_a_bad_request() {
        let e = Value::from_msgpack(vec![0x82])
            .decode::<Score>()
            .unwrap_err();
        assert!(matches!(e, Error::BadRequest(m) if m.starts_with("the value could not be read")));
    }

    #[test]
    fn fields_split_a_map_keeping_types_and_order() {
        #[derive(Serialize)]
        struct Price {
            price: f64,
            asset: &'static str,
        }
        let v = Value::encode(&Price {
            price: 64000.5,
            asset: "btc",
        })
        .unwrap();
        let fields = v.fields().unwrap();
        assert_eq!(fields[0].0, "price");
        assert_eq!(fields[0].1.decode::<f64>().unwrap(), 64000.5);
        assert_eq!(fields[1].1.decode::<String>().unwrap(), "btc");
        assert_eq!(
            Value::encode(&[1, 2]).unwrap().fields().unwrap_err(),
            Error::bad_request("the value must be a map (an object) for this domain, not an array")
        );
    }

    #[test]
    fn one_field_is_typed_and_optional_fields_may_be_missing() {
        let v = Value::encode(&BTreeMap::from([("by", "3")])).unwrap();
        assert_eq!(v.field::<Option<u8>>("nope").unwrap(), None);
        assert_eq!(v.field::<String>("by").unwrap(), "3");
        assert_eq!(
            v.field::<u8>("nope").unwrap_err(),
            Error::bad_request("the value needs a `nope` field")
        );
        assert_eq!(
            v.field::<f64>("by").unwrap_err(),
            Error::bad_request(r#"`by` in the value must be a number, not a string ("3")"#)
        );
    }

    #[test]
    fn values_read_as_themselves_in_debug_output() {
        let v = Value::encode(&BTreeMap::from([("a", 1)])).unwrap();
        assert_eq!(format!("{v:?}"), r#"Value({"a": 1})"#);
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Settings {
        maxlen: Option<u64>,
        streams: Option<Vec<String>>,
    }

    fn settings_err<S: DeserializeOwned + std::fmt::Debug>(v: impl Serialize) -> String {
        match settings::<S>("d", Value::encode(&v).unwrap().as_bytes()).unwrap_err() {
            Error::BadConfig(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn settings_errors_name_the_setting_and_its_table() {
        assert_eq!(
            settings_err::<Settings>(BTreeMap::from([("maxlen", "lots")])),
            r#"setting `maxlen` in [domains.d.settings] must be a whole number, 0 or more, not a string ("lots")"#
        );
        assert_eq!(
            settings_err::<Settings>(BTreeMap::from([("streams", [1])])),
            "setting `streams[0]` in [domains.d.settings] must be a string, not 1"
        );
        assert_eq!(
            settings_err::<Settings>(BTreeMap::from([("max_len", 5)])),
            "unknown setting `max_len` in [domains.d.settings]: this policy does not read it (a typo?)"
        );
        assert_eq!(
            settings_err::<crate::NoSettings>(BTreeMap::from([("ttl", 5)])),
            "unknown setting `ttl` in [domains.d.settings]: this policy takes no settings"
        );
    }

    #[test]
    fn absent_settings_are_an_empty_table() {
        let s: Settings = settings("d", &[]).unwrap();
        assert!(s.maxlen.is_none());
        settings::<crate::NoSettings>("d", &[0x80]).unwrap();
    }
}
