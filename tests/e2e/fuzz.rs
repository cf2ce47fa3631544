//! A property-based fuzz suite over the whole HTTP surface (issue 9).
//!
//! ONE real redis-server and ONE gateway (the real binary, with the example
//! domains, two rate-limit policies and the admin API on) take thousands of
//! generated requests: every route family of docs/api.md with generated
//! methods, path segments (empty, very long, percent-encoded, invalid UTF-8,
//! dot segments, unicode), query strings (known, unknown, repeated, huge,
//! negative, non-numeric), `Content-Type`/`Accept`/`Authorization` headers
//! and bodies (JSON and MessagePack, valid or not: deep nesting to 10 000
//! levels, truncation, invalid UTF-8, huge numbers, arrays for objects).
//! Most go through reqwest; some (and every one reqwest would rewrite, such
//! as `..` segments) are written by hand on a raw TCP connection.
//!
//! Properties of every answer:
//! - it is a well-formed HTTP/1.1 response, within [`ANSWER_WITHIN`]; a
//!   kept-alive raw connection the answer did not close still serves a
//!   `GET /healthz`;
//! - every 4xx/5xx is a problem document (`application/problem+json`, or
//!   `+msgpack` only when `Accept` lets MessagePack in) whose `status` is
//!   the response's, with a `type`, a `title` and a `detail` that says
//!   something; 405 has `Allow`, 429 has `Retry-After`, a 406 is JSON (a
//!   request line hyper itself refuses may get its bare 400);
//! - no 5xx but the documented ones: 502 `redis-error` for a WRONGTYPE key
//!   clash, 503 `redis-unavailable`, 500 `plugin-failed` naming a plugin
//!   (the report lists each of these: they may still be bugs);
//! - a 2xx body is well-formed in the format it declares; 204 and HEAD
//!   answers have no body; cache reads and misses carry `Cache-Status`,
//!   rate-limit answers `RateLimit-Limit`; a 2xx request named only
//!   parameters its route takes, each once;
//! - what was PUT in the `cache` domain is what a GET returns (to the bit,
//!   floats too) until it expires, and a deleted key stays a miss;
//! - the gateway's log never says "panicked", and the process stays up (a
//!   request that kills it is reported, and a new gateway takes over so the
//!   run goes on).
//!
//! After the run `/healthz` answers 200 and the log is clean.
//!
//! Half the requests are well-formed but for their body (so plugins, Redis
//! and the stream code are reached), half have every part generated.
//!
//! Deterministic: a fixed ChaCha seed (`SLUICE_FUZZ_SEED` overrides it,
//! `SLUICE_FUZZ_CASES` the number of cases). A failing case proptest finds
//! is saved (as its seed) in `tests/fuzz-regressions/fuzz.txt` and replayed
//! first on every later run. Bugs found are also spelled out as plain
//! requests: fixed ones in [`regressions`] (replayed first, every run), open
//! ones as `#[ignore]`d `regression_*` tests; until they are fixed the run
//! counts them as "KNOWN BUG" ([`known_bug`], [`known_crash`]) instead of
//! failing (`SLUICE_FUZZ_STRICT=1` fails on them). See
//! `tests/fuzz-regressions/README.md`.

use sluice_test_support as support;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, RngSeed, TestCaseError, TestRunner,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};
use support::{Gateway, Redis, config};

/// Cases per run (a debug build runs them in well under a minute).
const CASES: u32 = 4000;
const SEED: u64 = 0x51CE_F022;
/// A request that gets no answer in this long is a hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);
const ADMIN_TOKEN: &str = "fuzz-admin-token";
/// Where proptest keeps the seeds of failing cases (replayed first).
const PERSISTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fuzz-regressions/fuzz.txt"
);
/// Bodies above this are refused by the config below (`max_body_bytes`).
const MAX_BODY: usize = 65536;

const EXTRA: &str = r#"
[domains.price]
plugin = "price-hash"
ttl_s = 5
max_ttl_s = 60

[domains.market_depth]
plugin = "adaptive-ttl"
ttl_s = 10
min_ttl_s = 2
max_ttl_s = 120
track_access = true
[domains.market_depth.settings]
hot_reads_per_min = 60
jitter_pct = 10

[domains.arbitrage]
plugin = "stream-router"
streams = true
[domains.arbitrage.settings]
maxlen = 50

[ratelimits.global]
capacity = 100
refill_per_s = 50
when_unavailable = "fail-open"

[ratelimits.strict]
capacity = 3
refill_per_s = 0.5
when_unavailable = "fail-closed"
"#;

// ---------------------------------------------------------------- tables
// The generators' vocabularies, kept compact (one table per line group).

#[rustfmt::skip]
const METHODS: &[&str] = &["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"];
#[rustfmt::skip]
const ODD_METHODS: &[&str] = &["TRACE", "get", "FOO", "M-SEARCH", "PROPFIND", "CONNECT"];
#[rustfmt::skip]
const SEGMENT_BITS: &[&str] = &[
    "%", "%G1", "%2", "..", ".", "%2e", "%2F", "%00", "%FF", "%C0%AF", "%ED%A0%80", "~", "+",
    "é", "🦀", "\u{202e}", "%F0%9F%A6%80", "%E2%82",
];
const DOMAINS: &[&str] = &["cache", "price", "market_depth", "arbitrage"];
#[rustfmt::skip]
const ODD_DOMAINS: &[&str] = &[
    "nope", "PRICE", "Cache", "%63ache", "cache%00", "price%2Fx", "%2e%2e", "ratelimit",
    "idempotency", "a-b_c", "%C3%A7a", "%FF", "global", "strict",
];
#[rustfmt::skip]
const KEYS: &[&str] = &["a", "b", "eth:usd", "btc:usd", "k/1", "hot", "1", "opp", "x y"];
#[rustfmt::skip]
const KEY_SEGMENTS: &[&str] = &[
    "a", "b", "eth:usd", "btc:usd", "k%2F1", "k/1", "hot", "1", "opp", "x%20y",
];
#[rustfmt::skip]
const ODD_KEY_SEGMENTS: &[&str] = &[
    "a/b/c", "a//b", "/", "a/", "%2e%2e/%2e%2e/healthz", "../../metrics", "..", ".", "%3F",
    "%23", "%25", "%", "%FF", "%C3%28", "%00", "price:btc:usd", "a%0D%0Ab",
];
#[rustfmt::skip]
const STREAMS: &[&str] = &[
    "arbitrage:opp", "arbitrage:opp:btc", "arbitrage:trade", "price:eth:usd", "cache:a",
    "market_depth:a", "ratelimit:global:x", "idempotency:x", "nope", "arbitrage", "arbitrage:",
    "arbitrage%3Aopp", "ARBITRAGE:opp",
];
#[rustfmt::skip]
const GROUP_ACTIONS: &[&str] = &[
    "", "/messages", "/messages", "/ack", "/claim", "/other", "/messages/x", "/",
];
#[rustfmt::skip]
const PARAMS: &[&str] = &[
    "ttl_s", "fields", "cost", "start", "consumer", "count", "block_ms", "min_idle_ms",
];
#[rustfmt::skip]
const ODD_PARAMS: &[&str] = &[
    "ttl", "TTL_S", "ttl_s%20", "", "%74tl_s", "fields[]", "a+b", "%FF", "x%3Dy",
];
#[rustfmt::skip]
const NUMBERS: &[&str] = &[
    "-1", "0", "1", "2", "3", "100", "1000", "1001", "3600", "3601", "30000", "30001", "65536",
    "4294967296", "9223372036854775807", "18446744073709551615", "18446744073709551616",
    "99999999999999999999999999", "-9223372036854775809",
];
#[rustfmt::skip]
const NOT_NUMBERS: &[&str] = &[
    "", "abc", "1.5", "1e3", "NaN", "%2B5", "+5", "%205", "0x10", "%FF", "%00", "%E2%82%AC",
    "true", "null", "[1]", "%C0%AF",
];
#[rustfmt::skip]
const STREAM_VALUES: &[&str] = &["$", "0-0", "%3E", "-", "1-1", "c", "consumer%201"];
#[rustfmt::skip]
const ODD_QUERIES: &[&str] = &[
    "", "&", "&&", "=", "==", "a", "ttl_s", "ttl_s=1&ttl_s=2", "fields=a&fields=b", "%FF=1",
    "ttl_s=%FF", "cost=1&cost=1", "consumer=c&consumer=d", "ttl_s=1;fields=a", "count=5&count=5",
    "start=0&start=$",
];
#[rustfmt::skip]
const FIELD_NAMES: &[&str] = &[
    "price", "ts", "asset", "type", "venues", "bids", "asks", "", " ", "🦀", "a:b", "$", "keys",
    "items", "ids", "ttl_s",
];
#[rustfmt::skip]
const EVENT_TYPES: &[&str] = &["opp", "trade", "", ":", "a:b", "*", "$", ">", "opp opp"];
#[rustfmt::skip]
const ASSETS: &[&str] = &["btc", "eth", "", "a:b", "🦀"];
#[rustfmt::skip]
const ENTRY_IDS: &[&str] = &[
    "0-0", "0-1", "1-0", "abc", "99999999999999999999-0",
    "18446744073709551615-18446744073709551615", "-1", "*", ">", "$", "", "0",
];
#[rustfmt::skip]
const BAD_BYTES: &[&[u8]] = &[
    b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\0", b"\"",
    b"\\", b"}", b"\xc1",
];
#[rustfmt::skip]
const TRAILERS: &[&[u8]] = &[b"garbage", b"\0", b" ", b"\n{}", b"\xc0", b"\x91"];

/// JSON texts a `Value` cannot hold: huge numbers, duplicate keys, lone
/// surrogates, trailing commas, and a few words that are not JSON.
#[rustfmt::skip]
const WEIRD_JSON: &[&str] = &[
    "1e400", "-1e400", "123456789012345678901234567890", "-0", "1e-400", "0.1e99999",
    "18446744073709551616", "-9223372036854775809", r#"{"keys":["a"],"keys":["b"]}"#,
    r#"{"items":{"a":1e400}}"#, r#"{"items":{"a":1,"a":2}}"#, r#"{"type":"t","n":1e999}"#,
    r#"{"ids":[1e400]}"#, r#""\ud800""#, r#""\udc00\ud800""#, r#"{"a":"\u0000"}"#, "[1,2,]",
    r#"{"a":1,}"#, "'a'", "NaN", "Infinity", "[", "]", "{", "}", "\"", "nul", "tru",
    r#"{"price":1e400}"#, r#"{"keys":null}"#, r#"{"items":null}"#, "null", "[]", "{}",
    r#"{"price":64000.5,"ts":1.7e308}"#, "\u{feff}{}", r#"{"keys":["a"]} {"keys":["b"]}"#,
    r#"{"type":"opp","asset":"btc","n":123456789012345678901234567890}"#, r#"{"ids":"0-1"}"#,
    r#"{"keys":"a"}"#, r#"{"items":["a",1]}"#, r#"{"items":{"a":1},"ttl_s":-1}"#,
    r#"{"items":{"a":1},"ttl_s":1e400}"#, r#"{"type":["opp"]}"#, r#"{"type":null}"#,
    "   ", "\t\n", r#"{"":""}"#, r#"{"type":"opp","":1}"#,
];

/// MessagePack that is odd or broken: reserved bytes, lengths past the end,
/// strings that are not UTF-8, non-string keys, extensions, NaN.
#[rustfmt::skip]
const WEIRD_MSGPACK: &[&[u8]] = &[
    b"\xc1", b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff",
    b"\xc6\xff\xff\xff\xff", b"\xa2\xff\xfe", b"\x81\x01\xa1a", b"\x81\xc0\xc0", b"\x81\x80\x01",
    b"\x81\x91\x01\x01", b"\xd4\x05\x01", b"\xd6\xff\x00\x00\x00\x00",
    b"\xc7\x0c\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00", b"\xca\x7f\xc0\x00\x00",
    b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00", b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00", b"\xc4\x03\x01\x02\x03",
    b"\x81\xa4keys\x91\xc4\x01\xff", b"\x81\xa4keys\x91\xa2\xff\xfe", b"\x81\xa4keys\x91\x01",
    b"\x81\xa4keys\xdd\xff\xff\xff\xff", b"\x81\xa5items\x81\xa1a\xd4\x05\x01",
    b"\x81\xa5items\x81\x01\x01", b"\x81\xa5items\x81\xa1a\xc4\x01\xff",
    b"\x81\xa5items\xdf\xff\xff\xff\xff", b"\x82\xa4type\xc4\x03opp\xa5asset\xa3btc",
    b"\x82\xa4type\xa3opp\xa1x\x81\x01\x02", b"\x82\xa4type\xa3opp\xa1x\xa2\xff\xfe",
    b"\x81\xa4type\xa2\xff\xfe", b"\x81\xa3ids\x91\xc4\x030-1", b"\x81\xa3ids\x91\xa2\xff\xfe",
    b"\x85\xa5price\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", b"\x81\xa5price\xd6\xff\x00\x00\x00\x00",
    b"\x81\xa1a\xc0\xc0", b"\xc0\xc0", b"",
];

#[rustfmt::skip]
const JSON_TYPES: &[&str] = &[
    "application/json", "application/json; charset=utf-8", "APPLICATION/JSON",
    " application/json ", "application/json;",
];
#[rustfmt::skip]
const MSGPACK_TYPES: &[&str] = &[
    "application/msgpack", "application/x-msgpack", "application/vnd.msgpack",
    "Application/MsgPack; x=y",
];
#[rustfmt::skip]
const ODD_TYPES: &[&str] = &[
    "text/plain", "", ";", "application/json;;;", "application/problem+json",
    "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "*/*",
    "application/msgpack, application/json", "application", "application/", "json",
    "application/jsonp",
];
#[rustfmt::skip]
const MEDIA: &[&str] = &[
    "application/json", "application/msgpack", "application/x-msgpack", "application/vnd.msgpack",
    "application/*", "*/*", "text/html", "text/*", "application/problem+json",
    "application/problem+msgpack", "", "*", "application", "APPLICATION/MSGPACK", "image/png",
];
#[rustfmt::skip]
const QS: &[&str] = &[
    "q=1", "q=0", "q=0.5", "q=0.001", "q=1.0", "q=NaN", "q=inf", "q=-inf", "q=-1", "q=2",
    "q=1e999", "q=", "q", "Q=0.9", "q=0.5;q=0.1", " q = 0.3 ", "level=1", "q=abc",
];
#[rustfmt::skip]
const ODD_ACCEPTS: &[&str] = &[
    ",,,", ";", "application/json;q=0, */*", "*/*;q=0", "application/*;q=0",
];
#[rustfmt::skip]
const ODD_AUTHS: &[&str] = &[
    "Bearer wrong", "bearer fuzz-admin-token", "Bearer  fuzz-admin-token", "Basic Zm9v", "Bearer",
    "Bearer ", "Bearer fuzz-admin-token ", "Bearer fuzz-admin-tokenX",
];
#[rustfmt::skip]
const POLICIES: &[&str] = &["nope", "GLOBAL", "cache", "", "%67lobal"];
#[rustfmt::skip]
const OPS: &[&str] = &[
    "/healthz", "/readyz", "/metrics", "/admin/plugins", "/admin/config", "/admin/reload",
    "/admin/other", "/admin", "/admin/", "/healthz/", "/HEALTHZ", "/metrics%00",
    "/admin/plugins/x", "/openapi.json", "/admin/login", "/admin/logout", "/openapi.json/",
];
/// Paths of a known family with a segment missing or extra, unknown
/// families, dot segments, other request-target forms.
#[rustfmt::skip]
const BROKEN_PATHS: &[&str] = &[
    "/", "//", "/v1", "/v1/", "/v1/cache", "/v1/cache/", "/v1/cache/price", "/v1/cache/price/",
    "/v1/cache//k", "/v1//cache/cache/a", "/v1/mget/", "/v1/mget", "/v1/mget/cache/x",
    "/v1/mset/", "/v1/events/", "/v1/events/a/b", "/v1/ratelimit/global",
    "/v1/ratelimit/global/", "/v1/ratelimit//c", "/v1/streams", "/v1/streams/arbitrage:opp",
    "/v1/streams/arbitrage:opp/groups", "/v1/streams/arbitrage:opp/groups/",
    "/v1/streams//groups/g", "/v1/streams/arbitrage:opp/nope/g", "/v2/cache/cache/a",
    "/v1/nothing/a", "/v1/cache/../healthz", "/v1/cache/cache/../../metrics", "/v1/./mget/cache",
    "/v1/%2e%2e/healthz", "/v1/cache/cache/a/..", "/V1/cache/cache/a", "/v1/cache%2Fcache/a",
    "/v1%2Fcache/cache/a", "*", "v1/cache/cache/a", "http://127.0.0.1/v1/cache/cache/a",
    "/v1/cache\\cache\\a", "/v1/cache/cache/a#f",
];

// ---------------------------------------------------------------- requests

/// One generated request. `path` and `query` are what goes on the wire
/// (already percent-encoded, or deliberately not).
#[derive(Clone)]
struct Req {
    family: &'static str,
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// Written by hand on a TCP connection rather than sent by reqwest.
    raw: bool,
}

impl Req {
    fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    fn accept(&self) -> String {
        let accept = self.header("accept").unwrap_or_default();
        String::from_utf8_lossy(accept).to_ascii_lowercase()
    }

    /// Whether `Accept` lets MessagePack in at all (by name or wildcard).
    fn accepts_msgpack(&self) -> bool {
        let accept = self.accept();
        accept.contains("msgpack") || accept.contains('*')
    }

    /// Whether the gateway sees the path and query as generated: a raw
    /// request line is cut at a `?` or `#` in the path, and an absolute
    /// form names the path after the authority.
    fn plain_target(&self) -> bool {
        !(self.raw && (self.path.contains(['?', '#']) || !self.path.starts_with('/')))
    }

    /// The domain and key of a cache route, decoded as the gateway does.
    fn cache_key(&self) -> Option<(String, String)> {
        let rest = self.path.strip_prefix("/v1/cache/")?;
        let (domain, key) = rest.split_once('/')?;
        Some((percent_decode(domain), percent_decode(key)))
    }

    /// Whether reqwest could not send this unchanged: its URL parser
    /// resolves dot segments and backslashes and takes no other target form.
    fn needs_raw(&self) -> bool {
        let dotty = self.path.split('/').any(|s| {
            let s = s.to_ascii_lowercase().replace("%2e", ".");
            s == "." || s == ".."
        });
        let bad_header = |(n, v): &(String, Vec<u8>)| {
            HeaderName::from_bytes(n.as_bytes()).is_err() || HeaderValue::from_bytes(v).is_err()
        };
        dotty
            || self.path.contains('\\')
            || !self.path.starts_with('/')
            || self.method == "CONNECT"
            || self.target().bytes().any(|b| !(0x21..0x7f).contains(&b))
            || self.headers.iter().any(bad_header)
    }

    /// A request line hyper may refuse before the gateway sees it (then a
    /// bare 4xx from hyper is fine).
    fn malformed(&self) -> bool {
        let ok = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b);
        !self.target().bytes().all(ok) || !self.path.starts_with('/') || self.method == "CONNECT"
    }
}

/// A short, readable form of bytes: escaped, long ones elided.
fn preview(body: &[u8]) -> String {
    if body.len() <= 240 {
        body.escape_ascii().to_string()
    } else {
        format!(
            "{}…[{} bytes]…{}",
            body[..160].escape_ascii(),
            body.len(),
            body[body.len() - 40..].escape_ascii()
        )
    }
}

impl fmt::Debug for Req {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = preview(self.target().as_bytes());
        let via = if self.raw { "raw TCP" } else { "reqwest" };
        write!(f, "{} {target} ({}, {via})", self.method, self.family)?;
        for (n, v) in &self.headers {
            write!(f, "\n  {n}: {}", preview(v))?;
        }
        if !self.body.is_empty() {
            write!(f, "\n  body: {}", preview(&self.body))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- strategies

fn pick(options: &'static [&'static str]) -> BoxedStrategy<String> {
    select(options).prop_map(String::from).boxed()
}

fn some_bytes(options: &'static [&'static str]) -> BoxedStrategy<Option<Vec<u8>>> {
    select(options)
        .prop_map(|s| Some(s.as_bytes().to_vec()))
        .boxed()
}

/// A path segment as sent: plain characters, percent escapes of any byte
/// (so invalid UTF-8 too), raw unicode, broken escapes and dots.
fn fuzz_segment() -> BoxedStrategy<String> {
    let token = prop_oneof![
        4 => "[a-z0-9_:-]{1,6}",
        2 => any::<u8>().prop_map(|b| format!("%{b:02X}")),
        1 => any::<char>().prop_map(|c| c.to_string()),
        1 => pick(SEGMENT_BITS),
    ];
    prop::collection::vec(token, 0..8)
        .prop_map(|v| v.concat())
        .boxed()
}

fn domain() -> BoxedStrategy<String> {
    prop_oneof![
        10 => pick(DOMAINS),
        2 => pick(ODD_DOMAINS),
        1 => Just("a".repeat(64)),
        1 => Just("a".repeat(65)),
        1 => fuzz_segment(),
    ]
    .boxed()
}

/// Keys as they appear decoded (in bodies): a small pool, so that requests
/// meet each other's keys, and odd ones.
fn key_text() -> BoxedStrategy<String> {
    prop_oneof![
        10 => pick(KEYS),
        2 => ".{0,12}",
        1 => select(&[127usize, 128, 129, 1000][..]).prop_map(|n| "k".repeat(n)),
        1 => (1usize..40).prop_map(|n| "🦀".repeat(n)),
        1 => Just(String::new()),
    ]
    .boxed()
}

/// Keys as path segments (percent-encoded, or deliberately not).
fn key_segment() -> BoxedStrategy<String> {
    prop_oneof![
        10 => pick(KEY_SEGMENTS),
        3 => fuzz_segment(),
        1 => select(&[127usize, 128, 129, 1000, 8000][..]).prop_map(|n| "k".repeat(n)),
        1 => (1usize..48).prop_map(|n| "%F0%9F%A6%80".repeat(n)),
        1 => pick(ODD_KEY_SEGMENTS),
    ]
    .boxed()
}

fn stream_name() -> BoxedStrategy<String> {
    prop_oneof![
        8 => pick(STREAMS),
        2 => (domain(), fuzz_segment()).prop_map(|(d, s)| format!("{d}:{s}")),
        1 => fuzz_segment(),
        1 => Just(format!("arbitrage:{}", "s".repeat(300))),
    ]
    .boxed()
}

fn group_name() -> BoxedStrategy<String> {
    prop_oneof![
        6 => pick(&["g", "g2", "workers"]),
        1 => fuzz_segment(),
        1 => Just("g".repeat(300)),
    ]
    .boxed()
}

fn method(main: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        10 => pick(main),
        3 => pick(METHODS),
        1 => pick(ODD_METHODS),
    ]
    .boxed()
}

fn qname(known: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        6 => pick(known),
        2 => pick(PARAMS),
        1 => pick(ODD_PARAMS),
        1 => "[a-z_]{1,12}",
    ]
    .boxed()
}

fn field_list(n: usize) -> String {
    (0..n)
        .map(|i| format!("f{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn qvalue() -> BoxedStrategy<String> {
    prop_oneof![
        3 => (0u64..=120).prop_map(|n| n.to_string()),
        3 => pick(NUMBERS),
        2 => pick(NOT_NUMBERS),
        2 => prop::collection::vec("[a-z_]{0,6}", 0..6).prop_map(|v| v.join(",")),
        1 => select(&[1024usize, 1025, 3000][..]).prop_map(field_list),
        1 => fuzz_segment(),
        1 => pick(STREAM_VALUES),
    ]
    .boxed()
}

fn query(known: &'static [&'static str]) -> BoxedStrategy<Option<String>> {
    let pairs = prop::collection::vec((qname(known), qvalue(), 0u8..12), 1..4).prop_map(|ps| {
        let parts: Vec<String> = ps
            .into_iter()
            .map(|(n, v, how)| match how {
                0 => n,
                _ => format!("{n}={v}"),
            })
            .collect();
        Some(parts.join("&"))
    });
    prop_oneof![
        4 => Just(None),
        6 => pairs,
        1 => pick(ODD_QUERIES).prop_map(Some),
    ]
    .boxed()
}

// Bodies.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Wire {
    Json,
    Msgpack,
}

const WIRES: &[Wire] = &[Wire::Json, Wire::Msgpack];

fn field_name() -> BoxedStrategy<String> {
    prop_oneof![4 => "[a-z]{1,6}", 2 => pick(FIELD_NAMES), 1 => ".{0,8}"].boxed()
}

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
        (0usize..4000).prop_map(|n| Value::from("v".repeat(n))),
    ]
    .boxed()
}

fn json_value() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(field_name(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

fn many_fields(n: usize) -> Value {
    Value::Object((0..n).map(|i| (format!("f{i}"), json!(i))).collect())
}

/// A value to store: anything, or the shapes the policies expect.
fn cache_value() -> BoxedStrategy<Value> {
    let price = (
        any::<f64>(),
        any::<u64>(),
        prop::collection::vec(".{0,4}", 0..3),
    )
        .prop_map(|(p, ts, venues)| {
            json!({"asset": "BTC", "fiat": "USD", "price": p, "ts": ts, "venues": venues})
        });
    let depth =
        (any::<f64>(), any::<f64>()).prop_map(|(a, b)| json!({"bids": [[a, b]], "asks": [[b, a]]}));
    prop_oneof![
        4 => json_value(),
        2 => price,
        1 => depth,
        1 => select(&[1024usize, 1025, 2000][..]).prop_map(many_fields),
    ]
    .boxed()
}

fn json_key() -> BoxedStrategy<Value> {
    prop_oneof![8 => key_text().prop_map(Value::from), 1 => json_leaf()].boxed()
}

fn mget_body() -> BoxedStrategy<Value> {
    let distinct = |n: usize| (0..n).map(|i| format!("k{i}")).collect::<Vec<_>>();
    prop_oneof![
        6 => prop::collection::vec(json_key(), 0..8).prop_map(|ks| json!({"keys": ks})),
        1 => select(&[1000usize, 1001][..]).prop_map(|n| json!({"keys": vec!["a"; n]})),
        1 => (0usize..1002).prop_map(move |n| json!({"keys": distinct(n)})),
        1 => json_value().prop_map(|v| json!({"keys": v})),
        1 => json_value().prop_map(|v| json!({"keys": ["a"], "extra": v})),
    ]
    .boxed()
}

fn ttl_json() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (0u64..4000).prop_map(Value::from),
        1 => select(&[-1i64, i64::MIN][..]).prop_map(Value::from),
        1 => Just(json!(u64::MAX)),
        1 => Just(json!(1.5)),
        1 => Just(json!("60")),
        1 => Just(Value::Null),
    ]
    .boxed()
}

fn mset_body() -> BoxedStrategy<Value> {
    let items = prop::collection::btree_map(key_text(), cache_value(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    prop_oneof![
        6 => (items, prop::option::of(ttl_json())).prop_map(|(items, ttl)| match ttl {
            Some(t) => json!({"items": items, "ttl_s": t}),
            None => json!({"items": items}),
        }),
        1 => select(&[1000usize, 1001][..]).prop_map(|n| json!({"items": many_fields(n)})),
        1 => json_value().prop_map(|v| json!({"items": v})),
        1 => json_value().prop_map(|v| json!({"items": {"a": 1}, "extra": v})),
    ]
    .boxed()
}

fn event_body() -> BoxedStrategy<Value> {
    let ty = prop_oneof![
        6 => pick(EVENT_TYPES).prop_map(Value::from),
        2 => ".{0,10}".prop_map(Value::from),
        1 => Just(Value::from("t".repeat(300))),
        1 => json_value(),
    ];
    let asset = prop_oneof![4 => pick(ASSETS).prop_map(Value::from), 1 => json_value()];
    let extra = prop::collection::btree_map(field_name(), json_value(), 0..4);
    (prop::option::of(ty), prop::option::of(asset), extra)
        .prop_map(|(ty, asset, extra)| {
            let mut m: Map<String, Value> = extra.into_iter().collect();
            if let Some(t) = ty {
                m.insert("type".into(), t);
            }
            if let Some(a) = asset {
                m.insert("asset".into(), a);
            }
            Value::Object(m)
        })
        .boxed()
}

fn ack_body() -> BoxedStrategy<Value> {
    let id = prop_oneof![6 => pick(ENTRY_IDS).prop_map(Value::from), 1 => json_leaf()];
    prop_oneof![
        6 => prop::collection::vec(id, 0..5).prop_map(|ids| json!({"ids": ids})),
        1 => Just(json!({"ids": vec!["0-1"; 1001]})),
        1 => json_value().prop_map(|v| json!({"ids": v})),
    ]
    .boxed()
}

/// Which body template suits a route family.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Value,
    Mget,
    Mset,
    Event,
    Ack,
    Anything,
}

fn template(shape: Shape) -> BoxedStrategy<Value> {
    match shape {
        Shape::Value => cache_value(),
        Shape::Mget => mget_body(),
        Shape::Mset => mset_body(),
        Shape::Event => event_body(),
        Shape::Ack => ack_body(),
        Shape::Anything => json_value(),
    }
}

fn encode(v: &Value, wire: Wire) -> Vec<u8> {
    match wire {
        Wire::Json => serde_json::to_vec(v).expect("JSON"),
        Wire::Msgpack => rmp_serde::to_vec(v).expect("MessagePack"),
    }
}

/// What may happen to an encoded body on its way.
#[derive(Clone, Debug)]
enum Mutation {
    None,
    Truncate(Index),
    SetByte(Index, u8),
    Insert(Index, &'static [u8]),
    Append(&'static [u8]),
    Bom,
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        14 => Just(Mutation::None),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        1 => (any::<Index>(), select(BAD_BYTES)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => select(TRAILERS).prop_map(Mutation::Append),
        1 => Just(Mutation::Bom),
    ]
    .boxed()
}

fn mutate(mut body: Vec<u8>, m: &Mutation) -> Vec<u8> {
    match m {
        Mutation::None => {}
        Mutation::Truncate(i) => {
            if !body.is_empty() {
                body.truncate(i.index(body.len()));
            }
        }
        Mutation::SetByte(i, b) => {
            if !body.is_empty() {
                let at = i.index(body.len());
                body[at] = *b;
            }
        }
        Mutation::Insert(i, bad) => {
            let at = i.index(body.len() + 1);
            body.splice(at..at, bad.iter().copied());
        }
        Mutation::Append(tail) => body.extend_from_slice(tail),
        Mutation::Bom => {
            body.splice(0..0, *b"\xef\xbb\xbf");
        }
    }
    body
}

#[derive(Clone, Copy, Debug)]
enum Nest {
    JsonArray,
    JsonObject,
    MsgArray,
    MsgMap,
}

/// A value nested `depth` levels, optionally inside the field a route reads.
fn deep(depth: usize, nest: Nest, wrap: Shape) -> (Vec<u8>, Wire) {
    let mut core = Vec::new();
    match nest {
        Nest::JsonArray => {
            core.extend(std::iter::repeat_n(b'[', depth));
            core.extend(std::iter::repeat_n(b']', depth));
        }
        Nest::JsonObject => {
            for _ in 0..depth {
                core.extend_from_slice(b"{\"a\":");
            }
            core.push(b'1');
            core.extend(std::iter::repeat_n(b'}', depth));
        }
        Nest::MsgArray => {
            core.extend(std::iter::repeat_n(0x91, depth));
            core.push(0xc0);
        }
        Nest::MsgMap => {
            for _ in 0..depth {
                core.extend_from_slice(&[0x81, 0xa1, b'a']);
            }
            core.push(0x01);
        }
    }
    if matches!(nest, Nest::JsonArray | Nest::JsonObject) {
        let (pre, post): (&[u8], &[u8]) = match wrap {
            Shape::Mget => (b"{\"keys\":", b"}"),
            Shape::Mset => (b"{\"items\":{\"k\":", b"}}"),
            Shape::Event => (b"{\"type\":\"t\",\"x\":", b"}"),
            Shape::Ack => (b"{\"ids\":", b"}"),
            Shape::Value | Shape::Anything => (b"", b""),
        };
        ([pre, &core, post].concat(), Wire::Json)
    } else {
        let pre: &[u8] = match wrap {
            Shape::Mget => b"\x81\xa4keys",
            Shape::Mset => b"\x81\xa5items\x81\xa1k",
            Shape::Event => b"\x82\xa4type\xa1t\xa1x",
            Shape::Ack => b"\x81\xa3ids",
            Shape::Value | Shape::Anything => b"",
        };
        ([pre, &core].concat(), Wire::Msgpack)
    }
}

fn deep_body(shape: Shape) -> BoxedStrategy<(Vec<u8>, Wire)> {
    let depths = &[32usize, 127, 128, 129, 512, 1000, 1024, 1025, 5000, 10_000][..];
    let nests = &[
        Nest::JsonArray,
        Nest::JsonObject,
        Nest::MsgArray,
        Nest::MsgMap,
    ][..];
    (select(depths), select(nests), any::<bool>())
        .prop_map(move |(d, n, wrapped)| deep(d, n, if wrapped { shape } else { Shape::Value }))
        .boxed()
}

/// A body and the format it is written in.
fn body(shape: Shape) -> BoxedStrategy<(Vec<u8>, Wire)> {
    let wire = prop_oneof![3 => Just(Wire::Json), 2 => Just(Wire::Msgpack)];
    let oversized = format!("[{}1]", "1,".repeat(MAX_BODY.div_ceil(2))).into_bytes();
    prop_oneof![
        12 => (template(shape), wire, mutation())
            .prop_map(|(v, w, m)| (mutate(encode(&v, w), &m), w)),
        2 => (json_value(), select(WIRES)).prop_map(|(v, w)| (encode(&v, w), w)),
        2 => deep_body(shape),
        2 => select(WEIRD_JSON).prop_map(|t| (t.as_bytes().to_vec(), Wire::Json)),
        2 => select(WEIRD_MSGPACK).prop_map(|b| (b.to_vec(), Wire::Msgpack)),
        1 => (prop::collection::vec(any::<u8>(), 0..64), select(WIRES)),
        1 => Just((Vec::new(), Wire::Json)),
        1 => Just((oversized, Wire::Json)),
    ]
    .boxed()
}

/// `Content-Type` for a body in `wire`: mostly one that says so, sometimes
/// none, the other format's, or nonsense.
fn content_type(wire: Wire) -> BoxedStrategy<Option<Vec<u8>>> {
    let (own, other) = match wire {
        Wire::Json => (JSON_TYPES, MSGPACK_TYPES),
        Wire::Msgpack => (MSGPACK_TYPES, JSON_TYPES),
    };
    prop_oneof![
        10 => some_bytes(own),
        2 => Just(None),
        1 => some_bytes(other),
        2 => some_bytes(ODD_TYPES),
        1 => Just(Some(b"application/json\xff".to_vec())),
        1 => Just(Some(b"application/msgpack\x80".to_vec())),
        1 => Just(Some(vec![b'a'; 5000])),
    ]
    .boxed()
}

fn accept() -> BoxedStrategy<Option<Vec<u8>>> {
    let ranges = prop::collection::vec((select(MEDIA), prop::option::of(select(QS))), 1..5)
        .prop_map(|rs| {
            let parts: Vec<String> = rs
                .into_iter()
                .map(|(m, q)| match q {
                    Some(q) => format!("{m};{q}"),
                    None => m.to_owned(),
                })
                .collect();
            Some(parts.join(", ").into_bytes())
        });
    prop_oneof![
        4 => Just(None),
        3 => some_bytes(MEDIA),
        4 => ranges,
        1 => some_bytes(ODD_ACCEPTS),
        1 => Just(Some(b"application/msgpack\xff".to_vec())),
    ]
    .boxed()
}

fn authorization() -> BoxedStrategy<Option<Vec<u8>>> {
    prop_oneof![
        2 => Just(None),
        3 => Just(Some(format!("Bearer {ADMIN_TOKEN}").into_bytes())),
        2 => some_bytes(ODD_AUTHS),
        1 => Just(Some(format!("Bearer {ADMIN_TOKEN}\u{e9}").into_bytes())),
    ]
    .boxed()
}

/// Headers beside the format ones: mostly none, now and then one a gateway
/// might trip over.
fn other_headers() -> BoxedStrategy<Vec<(String, Vec<u8>)>> {
    let h = |n: &str, v: &[u8]| Just((n.to_owned(), v.to_vec()));
    let one = prop_oneof![
        "[a-zA-Z0-9]{1,16}".prop_map(|k| ("Idempotency-Key".to_owned(), k.into_bytes())),
        h("Cache-Control", b"no-cache"),
        h("If-None-Match", b"*"),
        h("X-Fuzz", &[b'x'; 8000]),
        h("X-Fuzz", b"\xff\xfe obs-text"),
        h("Accept-Encoding", b"gzip, br"),
        h("Range", b"bytes=0-1"),
        h("Expect", b"100-continue"),
    ];
    prop_oneof![6 => Just(Vec::new()), 1 => prop::collection::vec(one, 1..3)].boxed()
}

/// Methods that rarely carry a body: most of their requests go without.
fn bodiless(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "DELETE" | "OPTIONS" | "TRACE" | "get" | "CONNECT"
    )
}

/// A stream read may block for `block_ms` (up to 30 s): keep real waits short.
fn tame_block_ms(query: &str) -> String {
    query
        .split('&')
        .map(|p| {
            match p
                .strip_prefix("block_ms=")
                .and_then(|v| v.parse::<u64>().ok())
            {
                Some(n) if (201..=30_000).contains(&n) => "block_ms=200".to_owned(),
                _ => p.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The request line of a request: path, method and query.
type Line = (String, String, Option<String>);

/// Headers and body of a request: body, Content-Type, Accept,
/// Authorization and any others.
type Dress = (
    Vec<u8>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Vec<u8>)>,
);

/// One route family's requests: half of them well-formed but for their
/// body's content (so that plugins, Redis and the stream code are reached),
/// half with every part generated.
struct Family {
    name: &'static str,
    path: BoxedStrategy<String>,
    method: BoxedStrategy<String>,
    query: BoxedStrategy<Option<String>>,
    /// Path, method and query of well-formed requests (taken together, as
    /// they depend on each other); `None` for a family of broken paths.
    sane: Option<BoxedStrategy<Line>>,
    shape: Shape,
    admin: bool,
}

impl Family {
    fn requests(self) -> BoxedStrategy<Req> {
        let name = self.name;
        let auth = if self.admin {
            authorization()
        } else {
            prop_oneof![9 => Just(None), 1 => authorization()].boxed()
        };
        let wild_dress = (
            body(self.shape).prop_flat_map(|(b, w)| (Just(b), content_type(w))),
            accept(),
            auth,
            other_headers(),
        )
            .prop_map(|((body, ct), accept, auth, extra)| (body, ct, accept, auth, extra))
            .boxed();
        let wild_line = (self.path, self.method, self.query).boxed();
        let wild = dress(name, wild_line, wild_dress);
        let Some(sane_line) = self.sane else {
            return wild;
        };
        let token = Some(format!("Bearer {ADMIN_TOKEN}").into_bytes());
        let auth = if self.admin { token } else { None };
        let sane_accept = prop_oneof![
            3 => Just(None),
            2 => some_bytes(&["application/json", "application/msgpack", "*/*"]),
            1 => some_bytes(&["application/msgpack, application/json;q=0.5", "application/*"]),
        ];
        let extra = prop_oneof![
            6 => Just(Vec::new()),
            1 => "[a-z0-9]{1,12}".prop_map(|k| vec![("Idempotency-Key".to_owned(), k.into_bytes())]),
        ];
        let sane_dress = (sane_body(self.shape), sane_accept, extra)
            .prop_map(move |((body, ct), accept, extra)| (body, ct, accept, auth.clone(), extra))
            .boxed();
        let sane = dress(name, sane_line, sane_dress);
        prop_oneof![1 => sane, 1 => wild].boxed()
    }
}

/// A well-formed body of the family's shape, in a format its Content-Type
/// names; now and then mutated.
fn sane_body(shape: Shape) -> BoxedStrategy<(Vec<u8>, Option<Vec<u8>>)> {
    let wire = prop_oneof![3 => Just(Wire::Json), 2 => Just(Wire::Msgpack)];
    let mutated = prop_oneof![8 => Just(Mutation::None), 1 => mutation()];
    (template(shape), wire, mutated, any::<Index>())
        .prop_map(|(v, w, m, i)| {
            let body = mutate(encode(&v, w), &m);
            let types = match w {
                Wire::Json => JSON_TYPES,
                Wire::Msgpack => MSGPACK_TYPES,
            };
            let ct =
                (w == Wire::Msgpack || i.index(3) > 0).then(|| i.get(types).as_bytes().to_vec());
            (body, ct)
        })
        .boxed()
}

/// A request from its line and its dress.
fn dress(
    family: &'static str,
    line: BoxedStrategy<Line>,
    dress: BoxedStrategy<Dress>,
) -> BoxedStrategy<Req> {
    (line, dress, 0u8..100, 0u8..10)
        .prop_map(move |((path, method, query), dress, raw, keep)| {
            let (body, ctype, accept, auth, extra) = dress;
            let (body, ctype) = if bodiless(&method) && keep < 8 {
                (Vec::new(), None)
            } else {
                (body, ctype)
            };
            let named = [
                ("Content-Type", ctype),
                ("Accept", accept),
                ("Authorization", auth),
            ];
            let mut headers: Vec<(String, Vec<u8>)> = named
                .into_iter()
                .filter_map(|(n, v)| Some((n.to_owned(), v?)))
                .collect();
            headers.extend(extra);
            let mut req = Req {
                family,
                method,
                path,
                query: query.map(|q| tame_block_ms(&q)),
                headers,
                body,
                raw: raw < 25,
            };
            // By hand what reqwest would change, and `Expect` (reqwest does
            // not wait for a 100 Continue).
            req.raw |= req.needs_raw() || req.header("expect").is_some();
            req
        })
        .boxed()
}

fn batch(name: &'static str, shape: Shape) -> BoxedStrategy<Req> {
    let sane_domain = if name == "events" {
        prop_oneof![4 => Just("arbitrage"), 1 => select(DOMAINS)].boxed()
    } else {
        select(DOMAINS).boxed()
    };
    Family {
        name,
        path: domain()
            .prop_map(move |d| format!("/v1/{name}/{d}"))
            .boxed(),
        method: method(&["POST"]),
        query: query(&["ttl_s"]),
        sane: Some(
            sane_domain
                .prop_map(move |d| (format!("/v1/{name}/{d}"), "POST".to_owned(), None))
                .boxed(),
        ),
        shape,
        admin: false,
    }
    .requests()
}

fn sane_cache() -> BoxedStrategy<Line> {
    let fields = prop_oneof![
        8 => prop::collection::vec(pick(&["price", "ts", "asset", "bids", "nope"]), 1..4),
        1 => Just((0..1025).map(|i| format!("f{i}")).collect::<Vec<_>>()),
    ];
    // Mostly `cache`, whose reads are checked against what was written.
    let domain = prop_oneof![3 => Just("cache"), 2 => select(DOMAINS)];
    (
        domain,
        select(KEY_SEGMENTS),
        select(&["GET", "GET", "PUT", "PUT", "DELETE", "HEAD"][..]),
        (0u8..3, 1u64..=60, fields),
    )
        .prop_map(|(d, k, m, (with, ttl, fields))| {
            let query = match (m, with) {
                ("PUT", 0) => Some(format!("ttl_s={ttl}")),
                ("GET", 0) => Some(format!("fields={}", fields.join(","))),
                _ => None,
            };
            (format!("/v1/cache/{d}/{k}"), m.to_owned(), query)
        })
        .boxed()
}

#[rustfmt::skip]
const SANE_STREAMS: &[&str] = &[
    "arbitrage:opp", "arbitrage:opp", "arbitrage:trade", "arbitrage:opp:btc", "arbitrage:opp:eth",
    "price:eth:usd", "cache:a",
];

fn sane_streams() -> BoxedStrategy<Line> {
    (
        select(SANE_STREAMS),
        select(&["g", "g2"][..]),
        0u8..4,
        (1u32..20, select(&["0", "$"][..]), select(&["c1", "c2"][..])),
    )
        .prop_map(|(stream, group, action, (count, start, consumer))| {
            let base = format!("/v1/streams/{stream}/groups/{group}");
            match action {
                0 => (base, "POST".into(), Some(format!("start={start}"))),
                1 => (
                    format!("{base}/messages"),
                    "GET".into(),
                    Some(format!("consumer={consumer}&count={count}&block_ms=0")),
                ),
                2 => (format!("{base}/ack"), "POST".into(), None),
                _ => (
                    format!("{base}/claim"),
                    "POST".into(),
                    Some(format!("consumer={consumer}&min_idle_ms=0&count={count}")),
                ),
            }
        })
        .boxed()
}

fn sane_ratelimit() -> BoxedStrategy<Line> {
    (
        select(&["global", "strict"][..]),
        select(&["c1", "c2", "client%207"][..]),
        prop::option::of(select(&["1", "2", "5", "50", "101"][..])),
    )
        .prop_map(|(p, s, cost)| {
            let query = cost.map(|c| format!("cost={c}"));
            (format!("/v1/ratelimit/{p}/{s}"), "POST".to_owned(), query)
        })
        .boxed()
}

#[rustfmt::skip]
const SANE_OPS: &[(&str, &str)] = &[
    ("/healthz", "GET"), ("/healthz", "HEAD"), ("/readyz", "GET"), ("/metrics", "GET"),
    ("/admin/plugins", "GET"), ("/admin/config", "GET"), ("/admin/plugins", "HEAD"),
    ("/admin/reload", "POST"), ("/openapi.json", "GET"), ("/admin/", "GET"),
    ("/admin/login", "GET"), ("/admin/logout", "POST"),
];

fn request() -> BoxedStrategy<Req> {
    let cache = Family {
        name: "cache",
        path: (domain(), key_segment())
            .prop_map(|(d, k)| format!("/v1/cache/{d}/{k}"))
            .boxed(),
        method: method(&["GET", "GET", "PUT", "PUT", "DELETE", "HEAD"]),
        query: query(&["ttl_s", "fields"]),
        sane: Some(sane_cache()),
        shape: Shape::Value,
        admin: false,
    };
    let streams = Family {
        name: "streams",
        path: (stream_name(), group_name(), select(GROUP_ACTIONS))
            .prop_map(|(s, g, action)| format!("/v1/streams/{s}/groups/{g}{action}"))
            .boxed(),
        method: method(&["POST", "GET"]),
        query: query(&["start", "consumer", "count", "block_ms", "min_idle_ms"]),
        sane: Some(sane_streams()),
        shape: Shape::Ack,
        admin: false,
    };
    let policy =
        prop_oneof![6 => pick(&["global", "strict"]), 1 => pick(POLICIES), 1 => fuzz_segment()];
    let subject = prop_oneof![4 => pick(&["c1", "c2", "client%207"]), 1 => key_segment()];
    let ratelimit = Family {
        name: "ratelimit",
        path: (policy, subject)
            .prop_map(|(p, s)| format!("/v1/ratelimit/{p}/{s}"))
            .boxed(),
        method: method(&["POST"]),
        query: query(&["cost"]),
        sane: Some(sane_ratelimit()),
        shape: Shape::Anything,
        admin: false,
    };
    let ops = Family {
        name: "ops",
        path: pick(OPS),
        method: method(&["GET", "GET", "HEAD", "POST"]),
        query: query(&["x"]),
        sane: Some(
            select(SANE_OPS)
                .prop_map(|(p, m)| (p.to_owned(), m.to_owned(), None))
                .boxed(),
        ),
        shape: Shape::Anything,
        admin: true,
    };
    let broken = Family {
        name: "broken",
        path: prop_oneof![
            4 => pick(BROKEN_PATHS),
            1 => prop::collection::vec(fuzz_segment(), 0..5).prop_map(|s| format!("/{}", s.join("/"))),
            1 => fuzz_segment().prop_map(|s| format!("/v1/{s}")),
        ]
        .boxed(),
        method: method(METHODS),
        query: query(PARAMS),
        sane: None,
        shape: Shape::Anything,
        admin: false,
    };
    prop_oneof![
        30 => cache.requests(),
        8 => batch("mget", Shape::Mget),
        8 => batch("mset", Shape::Mset),
        8 => batch("events", Shape::Event),
        12 => streams.requests(),
        8 => ratelimit.requests(),
        4 => ops.requests(),
        6 => broken.requests(),
    ]
    .boxed()
}

// ---------------------------------------------------------------- sending

/// An answer, however it came.
struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    fn media_type(&self) -> String {
        let ct = self.header("content-type").unwrap_or_default();
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }
}

impl fmt::Debug for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        for (n, v) in &self.headers {
            write!(f, "\n  {n}: {}", preview(v.as_bytes()))?;
        }
        write!(f, "\n  body: {}", preview(&self.body))
    }
}

/// How a request ended when it got no answer.
enum Failure {
    /// The connection broke while a body larger than the limit was still
    /// being sent (the gateway may answer 413 and close before reading it).
    ResetOnOversize,
    Broken(String),
    /// The answer came, but the gateway then closed the connection though
    /// the answer did not say `Connection: close` (what the next request on
    /// it got).
    SilentClose(Resp, String),
}

struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    addr: String,
}

impl Client {
    async fn send(&self, req: &Req) -> Result<Resp, Failure> {
        if req.raw {
            return self.raw(req).await;
        }
        self.reqwest(req).await.map_err(|e| {
            if req.body.len() > MAX_BODY {
                Failure::ResetOnOversize
            } else {
                Failure::Broken(e)
            }
        })
    }

    async fn reqwest(&self, req: &Req) -> Result<Resp, String> {
        let method =
            reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
        let mut url = self.base.clone();
        url.set_path(&req.path);
        url.set_query(req.query.as_deref());
        let mut rb = self.http.request(method, url.clone());
        for (n, v) in &req.headers {
            let name = HeaderName::from_bytes(n.as_bytes()).map_err(|e| e.to_string())?;
            let value = HeaderValue::from_bytes(v).map_err(|e| e.to_string())?;
            rb = rb.header(name, value);
        }
        if !req.body.is_empty() {
            rb = rb.body(req.body.clone());
        }
        let resp = rb.send().await.map_err(|e| format!("{url}: {e:?}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("{url}: reading the body: {e:?}"))?;
        Ok(Resp {
            status,
            headers,
            body: body.to_vec(),
        })
    }

    /// Write the request by hand on a new connection (kept alive), read one
    /// answer; then, unless the answer said `Connection: close`, check that
    /// the connection still serves a `GET /healthz`.
    async fn raw(&self, req: &Req) -> Result<Resp, Failure> {
        use tokio::io::AsyncWriteExt;
        let mut out = Vec::new();
        out.extend_from_slice(req.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(req.target().as_bytes());
        out.extend_from_slice(format!(" HTTP/1.1\r\nHost: {}\r\n", self.addr).as_bytes());
        for (n, v) in &req.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        if !req.body.is_empty() || matches!(req.method.as_str(), "PUT" | "POST" | "PATCH") {
            out.extend_from_slice(format!("Content-Length: {}\r\n", req.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&req.body);
        let broken = |e: String| {
            if req.body.len() > MAX_BODY {
                Failure::ResetOnOversize
            } else {
                Failure::Broken(e)
            }
        };
        let mut stream = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| Failure::Broken(format!("connect: {e}")))?;
        // The gateway may answer and close before reading everything.
        let _ = stream.write_all(&out).await;
        let mut buf = Vec::new();
        let resp = read_response(&mut stream, &mut buf, req.method == "HEAD")
            .await
            .map_err(broken)?;
        let closing = resp
            .header("connection")
            .is_some_and(|c| c.to_ascii_lowercase().contains("close"));
        let bare = resp.body.is_empty() && resp.header("content-type").is_none();
        if closing || (req.malformed() && bare) {
            return Ok(resp);
        }
        let probe = format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let next = match stream.write_all(probe.as_bytes()).await {
            Err(e) => Err(format!("writing: {e}")),
            Ok(()) => read_response(&mut stream, &mut buf, false).await,
        };
        match next {
            Ok(ok) if ok.status == 200 => Ok(resp),
            Ok(other) => Err(Failure::SilentClose(resp, format!("HTTP {}", other.status))),
            Err(e) => Err(Failure::SilentClose(resp, e)),
        }
    }
}

/// Read one response from `stream` (`buf` holds what was read beyond the
/// previous one).
async fn read_response(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    head: bool,
) -> Result<Resp, String> {
    use tokio::io::AsyncReadExt;
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let (n, eof) = match stream.read(&mut chunk).await {
            Ok(0) => (0, true),
            Ok(n) => (n, false),
            Err(e) if buf.is_empty() => return Err(format!("no answer: {e}")),
            Err(_) => (0, true),
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some((resp, used)) = parse_response(buf, head, eof)? {
            buf.drain(..used);
            return Ok(resp);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parse one response from the start of `whole`: interim 1xx answers, then
/// one whose body is exactly as long as it says. `None` while more is to
/// come; `eof` says nothing more will.
fn parse_response(whole: &[u8], head: bool, eof: bool) -> Result<Option<(Resp, usize)>, String> {
    let bad = |why: &str| format!("not a valid HTTP response ({why}): {}", preview(whole));
    let incomplete = |why: &str| if eof { Err(bad(why)) } else { Ok(None) };
    let mut at = 0;
    loop {
        let bytes = &whole[at..];
        let Some(end) = find(bytes, b"\r\n\r\n") else {
            return incomplete("no end of headers");
        };
        // Every line ends in CRLF, the last one too (then the empty line).
        let mut lines = bytes[..end + 2].split(|&b| b == b'\n');
        let status_line = lines.next().unwrap_or_default();
        let status_line = status_line.strip_suffix(b"\r").unwrap_or(status_line);
        let rest = status_line
            .strip_prefix(b"HTTP/1.1 ")
            .ok_or_else(|| bad("status line"))?;
        let status: u16 = rest
            .get(..3)
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse().ok())
            .filter(|s| (100..600).contains(s))
            .ok_or_else(|| bad("status code"))?;
        if rest.get(3).is_some_and(|&b| b != b' ') {
            return Err(bad("status line"));
        }
        let mut headers = HeaderMap::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r").ok_or_else(|| bad("bare LF"))?;
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or_else(|| bad("header without colon"))?;
            let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| bad("header name"))?;
            let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
                .map_err(|_| bad("header value"))?;
            headers.append(name, value);
        }
        at += end + 4;
        if status < 200 {
            continue;
        }
        let rest = &whole[at..];
        let chunked = headers
            .get("transfer-encoding")
            .is_some_and(|te| te.as_bytes().eq_ignore_ascii_case(b"chunked"));
        let (body, used) = if head || status == 204 || status == 304 {
            (Vec::new(), 0)
        } else if chunked {
            match dechunk(rest) {
                Some(done) => done,
                None => return incomplete("chunked body"),
            }
        } else if let Some(cl) = headers.get("content-length") {
            let cl: usize = cl
                .to_str()
                .ok()
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| bad("Content-Length"))?;
            if rest.len() < cl {
                return incomplete(&format!("Content-Length {cl}, body {} bytes", rest.len()));
            }
            (rest[..cl].to_vec(), cl)
        } else if eof {
            (rest.to_vec(), rest.len())
        } else {
            return Ok(None);
        };
        if eof && rest.len() > used {
            return Err(bad("bytes after the response"));
        }
        let resp = Resp {
            status,
            headers,
            body,
        };
        return Ok(Some((resp, at + used)));
    }
}

/// A chunked body and how many bytes it took.
fn dechunk(whole: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut bytes = whole;
    let mut out = Vec::new();
    loop {
        let eol = find(bytes, b"\r\n")?;
        let size = std::str::from_utf8(&bytes[..eol]).ok()?.split(';').next()?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        bytes = &bytes[eol + 2..];
        if size == 0 {
            let rest = bytes.strip_prefix(b"\r\n")?;
            return Some((out, whole.len() - rest.len()));
        }
        out.extend_from_slice(bytes.get(..size)?);
        bytes = bytes.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

// ---------------------------------------------------------------- checking

/// The problem document in a response, checked against the contract.
fn problem(req: &Req, resp: &Resp) -> Result<Value, String> {
    let mt = resp.media_type();
    let doc: Value = match mt.as_str() {
        "application/problem+json" => serde_json::from_slice(&resp.body)
            .map_err(|e| format!("a problem+json body that is not JSON: {e}"))?,
        "application/problem+msgpack" => {
            if !req.accepts_msgpack() {
                return Err(
                    "a MessagePack problem though Accept does not let MessagePack in".into(),
                );
            }
            rmp_serde::from_slice(&resp.body)
                .map_err(|e| format!("a problem+msgpack body that is not MessagePack: {e}"))?
        }
        other => {
            let status = resp.status;
            return Err(format!(
                "a {status} without a problem document (Content-Type {other:?})"
            ));
        }
    };
    if doc["status"] != json!(resp.status) {
        return Err(format!(
            "problem status {} in a {} answer",
            doc["status"], resp.status
        ));
    }
    if doc["detail"].as_str().is_none_or(|d| d.trim().is_empty()) {
        return Err("a problem without detail".into());
    }
    let typed = doc["type"].as_str();
    if !typed.is_some_and(|t| t.starts_with("urn:sluice:problem:")) {
        return Err(format!("a problem whose type is {}", doc["type"]));
    }
    if !doc["title"].is_string() {
        return Err("a problem without title".into());
    }
    if resp.status == 406 && mt != "application/problem+json" {
        return Err("a 406 not in JSON".into());
    }
    Ok(doc)
}

/// A well-formed body in the format its Content-Type names. Nesting past the
/// checker's own parsers' limits (serde_json stops at 128 levels) is let be.
fn well_formed(req: &Req, resp: &Resp) -> Result<(), String> {
    use serde::de::IgnoredAny;
    match resp.media_type().as_str() {
        "application/json" => match serde_json::from_slice::<IgnoredAny>(&resp.body) {
            Err(e) if !e.to_string().contains("recursion limit") => {
                Err(format!("a JSON body that is not JSON: {e}"))
            }
            _ => Ok(()),
        },
        "application/msgpack" => {
            if !req.accepts_msgpack() {
                return Err(
                    "a MessagePack answer though Accept does not let MessagePack in".into(),
                );
            }
            let mut de = rmp_serde::Deserializer::new(resp.body.as_slice());
            match <IgnoredAny as serde::Deserialize>::deserialize(&mut de) {
                Err(e) if !e.to_string().contains("depth") => {
                    Err(format!("a MessagePack body that is not MessagePack: {e}"))
                }
                Ok(_) if !de.get_ref().is_empty() => Err("MessagePack with trailing bytes".into()),
                _ => Ok(()),
            }
        }
        "text/plain" => Ok(()),
        other => Err(format!(
            "a {} answer with Content-Type {other:?}",
            resp.status
        )),
    }
}

/// A request answered 2xx named only parameters its route and method take,
/// each once (docs/api.md: unknown, repeated and other methods' parameters
/// are 400, "so a typo never goes unnoticed").
fn query_honoured(req: &Req) -> Result<(), String> {
    let Some(query) = req.query.as_ref().filter(|_| req.plain_target()) else {
        return Ok(());
    };
    let last = req.path.rsplit('/').next().unwrap_or("");
    let allowed: &[&str] = match (req.family, req.method.as_str(), last) {
        ("cache", "GET" | "HEAD", _) => &["fields"],
        ("cache", "PUT", _) => &["ttl_s"],
        ("ratelimit", _, _) => &["cost"],
        ("streams", _, "messages") => &["consumer", "count", "block_ms"],
        ("streams", _, "claim") => &["consumer", "min_idle_ms", "count"],
        ("streams", _, "ack") => &[],
        ("streams", _, _) => &["start"],
        ("ops", _, _) => return Ok(()),
        _ => &[],
    };
    let mut seen: Vec<String> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let raw = pair.split('=').next().unwrap_or("").replace('+', " ");
        let name = percent_decode(&raw);
        if !allowed.contains(&name.as_str()) {
            return Err(format!(
                "a 2xx though the query names {name:?}, which {} {} does not take",
                req.method, req.family
            ));
        }
        if seen.contains(&name) {
            return Err(format!("a 2xx though the query names {name:?} twice"));
        }
        seen.push(name);
    }
    Ok(())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.map(|h| u8::from_str_radix(h, 16)) {
            Some(Ok(b)) if bytes[i] == b'%' => {
                out.push(b);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a case's answer says, once it is known to keep the contract.
enum Verdict {
    Fine,
    /// Allowed, but listed in the report.
    Noteworthy(String),
}

/// A detail's first words, to group similar answers in the report.
fn first_words(detail: &str) -> String {
    let cut: String = detail.chars().take(90).collect();
    cut.split(|c: char| c.is_ascii_digit() || c == '"')
        .next()
        .unwrap_or("")
        .to_owned()
}

fn judge(req: &Req, resp: &Resp) -> Result<Verdict, String> {
    let status = resp.status;
    let head = req.method == "HEAD";
    if head && !resp.body.is_empty() {
        return Err("a HEAD answer with a body".into());
    }
    // hyper refuses some request lines before the gateway sees them, with a
    // bare 4xx: fine for a request that is not valid HTTP.
    let bare = resp.body.is_empty() && resp.header("content-type").is_none();
    if req.raw && req.malformed() && (400..500).contains(&status) && bare {
        return Ok(Verdict::Noteworthy(format!(
            "{status} from hyper itself (no problem document) for an invalid request line"
        )));
    }
    // The status page and its login form are HTML for a browser, or a 303
    // on to the form (and from it, docs/api.md, Admin): nowhere else.
    if req.plain_target()
        && matches!(
            req.path.as_str(),
            "/admin/" | "/admin/login" | "/admin/logout"
        )
    {
        let html = resp.media_type() == "text/html";
        match status {
            303 if resp
                .header("location")
                .is_some_and(|l| l.starts_with("/admin/")) =>
            {
                return Ok(Verdict::Fine);
            }
            200 | 401 if html => return Ok(Verdict::Fine),
            _ => {}
        }
    }
    match status {
        200 | 201 | 204 | 400 | 401 | 404 | 405 | 406 | 409 | 413 | 415 | 422 | 429 | 500 | 502
        | 503 => {}
        other => return Err(format!("an undocumented status {other}")),
    }
    if status >= 400 {
        if head {
            let mt = resp.media_type();
            if !mt.starts_with("application/problem+") {
                return Err(format!("a {status} to HEAD with Content-Type {mt:?}"));
            }
            return Ok(Verdict::Fine);
        }
        let doc = problem(req, resp)?;
        let kind = doc["type"].as_str().unwrap_or("");
        let kind = kind.trim_start_matches("urn:sluice:problem:");
        let detail = doc["detail"].as_str().unwrap_or("");
        let family = req.family;
        match (status, kind) {
            (405, _) if resp.header("allow").is_none_or(|a| a.is_empty()) => {
                return Err("a 405 without Allow".into());
            }
            (429, _)
                if resp.header("retry-after").is_none()
                    || resp.header("ratelimit-limit").is_none() =>
            {
                return Err("a 429 without Retry-After or RateLimit-Limit".into());
            }
            (502, "redis-error") if detail.contains("WRONGTYPE") => {
                let what = format!("502 redis-error (WRONGTYPE key clash) on {family}");
                return Ok(Verdict::Noteworthy(what));
            }
            (503, "redis-unavailable") => {
                let what = format!("503 redis-unavailable on {family}: {}", first_words(detail));
                return Ok(Verdict::Noteworthy(what));
            }
            (500, "plugin-failed") if detail.contains("plugin") => {
                let what = format!("500 plugin-failed on {family}: {}", first_words(detail));
                return Ok(Verdict::Noteworthy(what));
            }
            (500.., _) => return Err(format!("an undocumented {status} {kind}: {detail}")),
            _ => {}
        }
        let miss = family == "cache" && req.method == "GET" && kind == "not-found";
        if miss && resp.header("cache-status").is_none() {
            return Err("a cache miss without Cache-Status".into());
        }
        return Ok(Verdict::Fine);
    }
    // 2xx
    if status == 204 {
        if !resp.body.is_empty() {
            return Err("a 204 with a body".into());
        }
        return Ok(Verdict::Fine);
    }
    if req.family == "cache" && req.method == "GET" && resp.header("cache-status").is_none() {
        return Err("a cache read without Cache-Status".into());
    }
    query_honoured(req)?;
    if req.family == "ratelimit" && resp.header("ratelimit-limit").is_none() {
        return Err("a rate-limit answer without RateLimit-Limit".into());
    }
    if !head {
        well_formed(req, resp)?;
    }
    Ok(Verdict::Fine)
}

// ---------------------------------------------------------------- running

/// What the run saw, for the report.
#[derive(Default)]
struct Stats {
    cases: u64,
    raw: u64,
    statuses: BTreeMap<u16, u64>,
    families: BTreeMap<(&'static str, u16), u64>,
    /// Allowed but noteworthy answers (documented 5xx, hyper's own 4xx,
    /// broken connections on oversized bodies): count and one example.
    notes: BTreeMap<String, (u64, String)>,
    slowest: Vec<(Duration, String)>,
    /// Problem documents seen: (status, type, first words of the detail).
    problems: BTreeMap<(u16, String, String), u64>,
}

impl Stats {
    fn note(&mut self, what: String, req: &Req, resp: Option<&Resp>) {
        let example = match resp {
            Some(r) => format!("{req:?}\n  → {r:?}"),
            None => format!("{req:?}"),
        };
        self.notes.entry(what).or_insert((0, example)).0 += 1;
    }

    fn report(&self, elapsed: Duration) {
        let (cases, raw) = (self.cases, self.raw);
        println!("\n=== fuzz: {cases} requests in {elapsed:.1?} ({raw} over raw TCP)");
        let all: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        println!("statuses: {}", all.join(", "));
        let mut per_family: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for ((f, s), n) in &self.families {
            per_family.entry(f).or_default().push(format!("{s}×{n}"));
        }
        for (f, list) in per_family {
            println!("  {f:<10} {}", list.join(" "));
        }
        println!("noteworthy answers ({} kinds):", self.notes.len());
        for (what, (n, example)) in &self.notes {
            println!("- {n} × {what}\n  e.g. {example}");
        }
        let mut problems: Vec<_> = self.problems.iter().collect();
        problems.sort_by(|a, b| b.1.cmp(a.1));
        println!(
            "problem documents ({} kinds), most frequent:",
            problems.len()
        );
        for ((status, kind, detail), n) in problems.iter().take(env_or("SLUICE_FUZZ_PROBLEMS", 25))
        {
            println!("  {n:>5} × {status} {kind}: {detail}");
        }
        println!("slowest:");
        for (d, req) in &self.slowest {
            println!("- {d:.1?} {req}");
        }
    }
}

/// What a key of the `cache` domain (fixed-ttl: plain values) holds after
/// this run's writes: what was PUT is what a GET returns until it expires;
/// what was deleted is a miss.
#[derive(Default)]
struct Model {
    keys: std::collections::HashMap<String, Held>,
    /// Reads checked against a known value or a known deletion.
    checked: u64,
}

enum Held {
    /// The value, as serde_json (without `float_roundtrip`) would have
    /// read a JSON body, and until when it lives.
    Value(Value, Option<Value>, Instant),
    Nothing,
}

/// A read that did not return what was written.
struct Mismatch {
    what: String,
    /// Only the last digit of a float differs, as serde_json's fast float
    /// parsing would have it (a known bug).
    lossy_float: bool,
}

impl Model {
    fn check(&mut self, req: &Req, resp: &Resp) -> Result<(), Mismatch> {
        let now = Instant::now();
        if !req.plain_target() {
            // Which key it touched is not known here: forget them all.
            if resp.status < 300 && !matches!(req.method.as_str(), "GET" | "HEAD") {
                self.keys.clear();
            }
            return Ok(());
        }
        let mset = req.path.strip_prefix("/v1/mset/").map(percent_decode);
        if mset.as_deref() == Some("cache") && resp.status < 300 {
            // Which items landed is in the answer; forget them all.
            self.keys.clear();
            return Ok(());
        }
        let Some((domain, key)) = req.cache_key() else {
            return Ok(());
        };
        if domain != "cache" {
            return Ok(());
        }
        let fail = |what: String| {
            Err(Mismatch {
                what: format!("{what}\n  → {resp:?}"),
                lossy_float: false,
            })
        };
        match (req.method.as_str(), resp.status) {
            ("PUT", 204) => {
                let ttl = req
                    .query
                    .as_deref()
                    .unwrap_or("")
                    .split('&')
                    .filter_map(|p| p.split_once('='))
                    .find(|(n, _)| percent_decode(n) == "ttl_s")
                    .and_then(|(_, v)| percent_decode(v).parse::<u64>().ok())
                    .unwrap_or(60);
                // Half a second of slack before the expiry.
                let until = now
                    + Duration::from_millis(ttl * 1000).saturating_sub(Duration::from_millis(500));
                match decode_body(req) {
                    Some((v, lossy)) => self.keys.insert(key, Held::Value(v, lossy, until)),
                    None => self.keys.remove(&key),
                };
            }
            ("DELETE", 204) => {
                self.keys.insert(key, Held::Nothing);
            }
            ("PUT" | "DELETE", s) if s >= 500 => {
                self.keys.remove(&key);
            }
            ("GET" | "HEAD", 200 | 404) if req.query.is_none() => {
                let found = resp.status == 200;
                match self.keys.get(&key) {
                    Some(Held::Nothing) => {
                        self.checked += 1;
                        if found {
                            return fail(format!("key {key:?} was deleted, and is back"));
                        }
                    }
                    Some(Held::Value(want, lossy, until)) if now < *until => {
                        self.checked += 1;
                        if !found {
                            return fail(format!("key {key:?} was stored, and is gone"));
                        }
                        let got = decode_answer(resp);
                        if req.method == "GET"
                            && let Some(got) = got
                            && got != *want
                        {
                            return Err(Mismatch {
                                what: format!(
                                    "key {key:?} holds {got}, not what was stored: {want}\n  → {resp:?}"
                                ),
                                lossy_float: lossy.as_ref() == Some(&got),
                            });
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The value a request body holds, in the format its Content-Type names;
/// for JSON also as serde_json would read it.
fn decode_body(req: &Req) -> Option<(Value, Option<Value>)> {
    let ct = req.header("content-type").unwrap_or(b"application/json");
    if String::from_utf8_lossy(ct)
        .to_ascii_lowercase()
        .contains("msgpack")
    {
        Some((rmp_serde::from_slice(&req.body).ok()?, None))
    } else {
        Some((
            exact_json(&req.body)?,
            serde_json::from_slice(&req.body).ok(),
        ))
    }
}

/// A problem document, whichever its format.
fn decode_answer_any(resp: &Resp) -> Option<Value> {
    match resp.media_type().as_str() {
        "application/problem+msgpack" => rmp_serde::from_slice(&resp.body).ok(),
        "application/problem+json" => serde_json::from_slice(&resp.body).ok(),
        _ => None,
    }
}

/// The value in a 200 answer.
fn decode_answer(resp: &Resp) -> Option<Value> {
    match resp.media_type().as_str() {
        "application/msgpack" => rmp_serde::from_slice(&resp.body).ok(),
        _ => exact_json(&resp.body),
    }
}

/// JSON text → a `Value` whose floats are correctly rounded (serde_json
/// built without `float_roundtrip` may be one ULP off, and the checks must
/// not be). `None` when it is not JSON, or nests past 256 levels.
fn exact_json(text: &[u8]) -> Option<Value> {
    let mut p = JsonParser { s: text, at: 0 };
    let v = p.value(0)?;
    p.ws();
    (p.at == text.len()).then_some(v)
}

struct JsonParser<'a> {
    s: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> Option<()> {
        self.ws();
        self.s[self.at..]
            .starts_with(lit)
            .then(|| self.at += lit.len())
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > 256 {
            return None;
        }
        self.ws();
        Some(match *self.s.get(self.at)? {
            b'n' => self.eat(b"null").map(|()| Value::Null)?,
            b't' => self.eat(b"true").map(|()| Value::Bool(true))?,
            b'f' => self.eat(b"false").map(|()| Value::Bool(false))?,
            b'"' => Value::String(self.string()?),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b"]").is_none() {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b",").is_none() {
                            self.eat(b"]")?;
                            break;
                        }
                    }
                }
                Value::Array(items)
            }
            b'{' => {
                self.at += 1;
                let mut map = Map::new();
                if self.eat(b"}").is_none() {
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.eat(b":")?;
                        map.insert(k, self.value(depth + 1)?);
                        if self.eat(b",").is_none() {
                            self.eat(b"}")?;
                            break;
                        }
                    }
                }
                Value::Object(map)
            }
            _ => self.number()?,
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.s.get(self.at..self.at + 4)?).ok()?;
        self.at += 4;
        u32::from_str_radix(h, 16).ok()
    }

    fn string(&mut self) -> Option<String> {
        (self.s.get(self.at) == Some(&b'"')).then_some(())?;
        self.at += 1;
        let mut out = String::new();
        loop {
            match *self.s.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(out);
                }
                b'\\' => {
                    let e = *self.s.get(self.at + 1)?;
                    self.at += 2;
                    out.push(match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                self.s[self.at..].starts_with(b"\\u").then_some(())?;
                                self.at += 2;
                                let lo = self.hex4()?;
                                (0xDC00..0xE000).contains(&lo).then_some(())?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(c)?
                        }
                        _ => return None,
                    });
                }
                0x00..=0x1f => return None,
                _ => {
                    let start = self.at;
                    while let Some(&b) = self.s.get(self.at) {
                        if b == b'"' || b == b'\\' || b < 0x20 {
                            break;
                        }
                        self.at += 1;
                    }
                    out.push_str(std::str::from_utf8(&self.s[start..self.at]).ok()?);
                }
            }
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        while matches!(
            self.s.get(self.at),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).ok()?;
        if let Ok(n) = text.parse::<u64>() {
            return Some(n.into());
        }
        if let Ok(n) = text.parse::<i64>() {
            return Some(n.into());
        }
        let f: f64 = text.parse().ok()?;
        serde_json::Number::from_f64(f).map(Value::Number)
    }
}

struct Harness {
    config: String,
    gw: RefCell<Gateway>,
    /// Gateways that died (kept for their logs); each was replaced.
    dead: RefCell<Vec<Gateway>>,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    stats: RefCell<Stats>,
    /// Requests that killed the gateway (each failing the run at its end),
    /// with the last lines it logged.
    crashes: RefCell<Vec<String>>,
    /// Fail on known bugs too (`SLUICE_FUZZ_STRICT=1`).
    strict: bool,
    /// What the `cache` domain holds, as far as this run knows.
    model: RefCell<Model>,
}

impl Harness {
    fn start(redis: &Redis) -> Harness {
        let config = config(redis, EXTRA);
        // A new connection per request: cases stay independent of each other.
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(ANSWER_WITHIN)
            .build()
            .expect("client");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Harness {
            gw: RefCell::new(Self::gateway(&config)),
            config,
            dead: RefCell::default(),
            http,
            rt,
            stats: RefCell::default(),
            crashes: RefCell::default(),
            strict: env_or("SLUICE_FUZZ_STRICT", 1u8) == 1,
            model: RefCell::default(),
        }
    }

    fn gateway(config: &str) -> Gateway {
        Gateway::start_with_env(config, &[("SLUICE_ADMIN_TOKEN", ADMIN_TOKEN)])
    }

    fn client(&self) -> Client {
        let gw = self.gw.borrow();
        Client {
            http: self.http.clone(),
            base: reqwest::Url::parse(&gw.base).expect("base URL"),
            addr: gw.base.trim_start_matches("http://").to_owned(),
        }
    }

    /// Send one request; check its answer and the gateway's log.
    fn case(&self, req: &Req) -> Result<(), String> {
        if let Some(bug) = known_crash(req)
            && !self.strict
        {
            let mut stats = self.stats.borrow_mut();
            stats.note(format!("KNOWN BUG (request not sent): {bug}"), req, None);
            return Ok(());
        }
        let started = Instant::now();
        let within = ANSWER_WITHIN + Duration::from_secs(1);
        let client = self.client();
        let sent = self
            .rt
            .block_on(async { tokio::time::timeout(within, client.send(req)).await });
        let took = started.elapsed();
        let mut stats = self.stats.borrow_mut();
        stats.cases += 1;
        stats.raw += u64::from(req.raw);
        let summary = format!("{req:?}");
        let summary = summary.lines().next().unwrap_or_default().to_owned();
        stats.slowest.push((took, summary));
        stats
            .slowest
            .sort_by_key(|(took, _)| std::cmp::Reverse(*took));
        stats.slowest.truncate(5);
        let resp = match sent {
            Err(_) => return Err(format!("no answer within {within:?} (a hang)")),
            Ok(Err(failure)) if !self.alive() => {
                drop(stats);
                let Failure::Broken(e) = failure else {
                    return self.crashed(req, "the connection broke");
                };
                return self.crashed(req, &e);
            }
            Ok(Err(Failure::ResetOnOversize)) => {
                let what = "connection closed on an oversized body before a 413 was read";
                stats.note(what.into(), req, None);
                drop(stats);
                return self.log_clean();
            }
            Ok(Err(Failure::Broken(e))) => return Err(format!("no valid HTTP answer: {e}")),
            Ok(Err(Failure::SilentClose(resp, next))) => (resp, Some(next)),
            Ok(Ok(resp)) => (resp, None),
        };
        let (resp, silent_close) = resp;
        if let Ok(path) = std::env::var("SLUICE_FUZZ_TRACE") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("trace file");
            let _ = writeln!(f, "{req:?}\n  → {}", resp.status);
        }
        *stats.statuses.entry(resp.status).or_default() += 1;
        *stats.families.entry((req.family, resp.status)).or_default() += 1;
        if resp.status >= 400
            && let Some(doc) = decode_answer_any(&resp)
        {
            let kind = doc["type"]
                .as_str()
                .unwrap_or("?")
                .trim_start_matches("urn:sluice:problem:");
            let detail = first_words(doc["detail"].as_str().unwrap_or(""));
            let entry = (resp.status, kind.to_owned(), detail);
            *stats.problems.entry(entry).or_default() += 1;
        }
        let verdict =
            judge(req, &resp).or_else(|violation| match known_bug(req, &resp, &violation) {
                Some(bug) if !self.strict => Ok(Verdict::Noteworthy(format!("KNOWN BUG: {bug}"))),
                _ => Err(format!("{violation}\n  → {resp:?}")),
            })?;
        if let Verdict::Noteworthy(what) = verdict {
            stats.note(what, req, Some(&resp));
        }
        if resp.media_type().contains("msgpack") && !req.accept().contains("msgpack") {
            let what = "MessagePack chosen through a wildcard (Accept does not name it)";
            stats.note(what.into(), req, Some(&resp));
        }
        if let Some(next) = silent_close {
            if self.strict {
                return Err(format!("{SILENT_CLOSE}: {next}\n  → {resp:?}"));
            }
            stats.note(format!("KNOWN BUG: {SILENT_CLOSE}"), req, Some(&resp));
        }
        drop(stats);
        let checked = self.model.borrow_mut().check(req, &resp);
        if let Err(m) = checked {
            if !m.lossy_float || self.strict {
                return Err(m.what);
            }
            let mut stats = self.stats.borrow_mut();
            stats.note(format!("KNOWN BUG: {LOSSY_FLOAT}"), req, Some(&resp));
        }
        // A HEAD answer has no body to say what its 5xx was: ask with GET.
        if req.method == "HEAD" && resp.status >= 500 {
            let get = Req {
                method: "GET".into(),
                ..req.clone()
            };
            return self.case(&get);
        }
        self.log_clean()
    }

    /// Whether the gateway still takes connections (after a broken one).
    fn alive(&self) -> bool {
        std::thread::sleep(Duration::from_millis(50));
        let fatal = self.gw.borrow().log().contains("fatal runtime error");
        let addr = self.client().addr;
        !fatal && std::net::TcpStream::connect(addr).is_ok()
    }

    /// The gateway died on `req`: note it, start another, go on fuzzing (a
    /// dead gateway makes every later case fail, and shrinking useless).
    fn crashed(&self, req: &Req, error: &str) -> Result<(), String> {
        let tail = self.log_tail(4);
        let what = format!("{req:?}\n  → {error}\n  gateway log:\n{tail}");
        println!("\n!!! the gateway died on:\n{what}");
        let fresh = Self::gateway(&self.config);
        let old = self.gw.replace(fresh);
        self.dead.borrow_mut().push(old);
        self.crashes.borrow_mut().push(what);
        Ok(())
    }

    fn log_clean(&self) -> Result<(), String> {
        let log = self.gw.borrow().log();
        match log.lines().position(|l| l.contains("panicked")) {
            Some(at) => {
                let lines: Vec<&str> = log.lines().skip(at).take(8).collect();
                Err(format!("the gateway panicked:\n{}", lines.join("\n")))
            }
            None => Ok(()),
        }
    }

    fn log_tail(&self, n: usize) -> String {
        let log = self.gw.borrow().log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

const LOSSY_FLOAT: &str = "a JSON number with 17 significant digits is stored one ULP off (serde_json is built without `float_roundtrip`): what a GET returns is not what was PUT";
const SILENT_CLOSE: &str = "the connection is closed without `Connection: close` after an answer given before the body was read (the next request on it fails)";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    let value = std::env::var(name).ok();
    value.and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Bugs this suite found, each fixed and kept as a regression test below.
/// The suite is strict by default (`SLUICE_FUZZ_STRICT=0` would count a
/// match as "KNOWN BUG" instead of failing, for triage of a new one).
fn known_bug(req: &Req, resp: &Resp, violation: &str) -> Option<&'static str> {
    if req.family == "streams" && resp.status == 502 && violation.contains("Invalid stream ID") {
        return Some(
            "a malformed stream entry ID from the client (ack ids, a group's start) is a 502 redis-error, not a 400",
        );
    }
    let no_params = matches!(req.family, "mget" | "mset" | "events")
        || (req.family == "streams" && req.path.ends_with("/ack"));
    if no_params && violation.starts_with("a 2xx though the query names") {
        return Some(
            "mget, mset, events and stream acks ignore the query string: unknown or repeated parameters (e.g. `?ttl_s=5` on mset, which takes its TTL in the body) are not a 400",
        );
    }
    None
}

/// Requests known to kill the gateway (see [`known_bug`]). Unless strict,
/// they are not sent: a dead gateway takes seconds to replace.
fn known_crash(req: &Req) -> Option<&'static str> {
    (msgpack_depth(&req.body) >= DEEP_MSGPACK_CRASH).then_some(
        "a MessagePack body nested ~800 levels or more overflows the stack of a debug-built gateway (store::reply::is_one_msgpack_value) and aborts the process",
    )
}

/// From this depth on, a MessagePack body is taken for the known crash
/// (the debug build dies between 750 and 800 levels).
const DEEP_MSGPACK_CRASH: usize = 700;

/// How deeply the first MessagePack value in `bytes` nests arrays and maps
/// (read without recursion; as far as it goes when truncated).
fn msgpack_depth(bytes: &[u8]) -> usize {
    // Items still to read at each open level.
    let mut open: Vec<u64> = Vec::new();
    let (mut at, mut deepest) = (0usize, 0usize);
    let be = |from: usize, n: usize| -> Option<u64> {
        let b = bytes.get(from..from + n)?;
        Some(b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
    };
    loop {
        let Some(&m) = bytes.get(at) else {
            return deepest;
        };
        at += 1;
        // (bytes to skip after the marker, items this value opens)
        let (skip, items): (u64, u64) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(m & 0x0f)),
            0x90..=0x9f => (0, u64::from(m & 0x0f)),
            0xa0..=0xbf => (u64::from(m & 0x1f), 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xd4..=0xd8 => (1 + (1 << (m - 0xd4)), 0),
            0xc4 | 0xd9 => (1 + be(at, 1).unwrap_or(0), 0),
            0xc5 | 0xda => (2 + be(at, 2).unwrap_or(0), 0),
            0xc6 | 0xdb => (4 + be(at, 4).unwrap_or(0), 0),
            0xc7 => (2 + be(at, 1).unwrap_or(0), 0),
            0xc8 => (3 + be(at, 2).unwrap_or(0), 0),
            0xc9 => (5 + be(at, 4).unwrap_or(0), 0),
            0xdc => (2, be(at, 2).unwrap_or(0)),
            0xdd => (4, be(at, 4).unwrap_or(0)),
            0xde => (2, 2 * be(at, 2).unwrap_or(0)),
            0xdf => (4, 2 * be(at, 4).unwrap_or(0)),
            0xc1 => return deepest,
        };
        at = at.saturating_add(usize::try_from(skip).unwrap_or(usize::MAX));
        if items > 0 {
            open.push(items);
            deepest = deepest.max(open.len());
            continue;
        }
        // A scalar: it completes one item of each level it finishes.
        loop {
            match open.last_mut() {
                None => return deepest,
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                    open.pop();
                }
            }
        }
    }
}

/// A request written out by hand (regression cases).
fn plain(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8], raw: bool) -> Req {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };
    let family = match path.split('/').nth(2) {
        Some(f @ ("cache" | "mget" | "mset" | "events" | "streams" | "ratelimit")) => match f {
            "cache" => "cache",
            "mget" => "mget",
            "mset" => "mset",
            "events" => "events",
            "streams" => "streams",
            _ => "ratelimit",
        },
        _ => "broken",
    };
    Req {
        family,
        method: method.to_owned(),
        path,
        query,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body: body.to_vec(),
        raw,
    }
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const MSGPACK: (&str, &str) = ("Content-Type", "application/msgpack");

/// Requests the fuzzer found answered wrongly, since fixed, and the status
/// each must get now; replayed first, every run.
fn regressions() -> Vec<(Req, u16)> {
    let price: Value = many_fields(2000);
    vec![
        // Were 500 plugin-failed ("invalid plan: 1025 items in one action").
        (
            plain(
                "GET",
                &format!("/v1/cache/price/nokey?fields={}", field_list(1025)),
                &[],
                b"",
                false,
            ),
            400,
        ),
        (
            plain(
                "PUT",
                "/v1/cache/price/1",
                &[MSGPACK],
                &encode(&price, Wire::Msgpack),
                false,
            ),
            400,
        ),
    ]
}

/// Replay `cases` in strict mode on a gateway of their own: each must keep
/// every property, known bugs included, and the gateway must live.
fn replay_strictly(cases: &[Req]) {
    let redis = Redis::start();
    let mut h = Harness::start(&redis);
    h.strict = true;
    for req in cases {
        if let Err(e) = h.case(req) {
            panic!("{e}\nrequest: {req:?}");
        }
        let crashes = h.crashes.borrow();
        assert!(
            crashes.is_empty(),
            "the gateway died on: {}",
            crashes.join("\n")
        );
    }
}

#[test]
/// A regression found by this suite, fixed: a MessagePack body nested ~800 levels overflows the stack of a debug-built gateway (store::reply::is_one_msgpack_value) and aborts it.
fn regression_deeply_nested_messagepack_is_answered_and_the_gateway_lives() {
    let (value, _) = deep(900, Nest::MsgArray, Shape::Value);
    let (items, _) = deep(900, Nest::MsgMap, Shape::Mset);
    replay_strictly(&[
        plain("PUT", "/v1/cache/cache/deep", &[MSGPACK], &value, false),
        plain("POST", "/v1/mset/cache", &[MSGPACK], &items, false),
    ]);
}

#[test]
/// A regression found by this suite, fixed: an answer given before a large body is read leaves a kept-alive connection closed without `Connection: close`.
fn regression_a_connection_closed_after_an_early_answer_says_so() {
    let big = format!("[{}1]", "1,".repeat(30_000)).into_bytes();
    let form = ("Content-Type", "text/plain");
    replay_strictly(&[
        plain("POST", "/v1/mget/cache", &[form], &big, true),
        plain("PROPFIND", "/v1/mset/cache", &[JSON], &big, true),
        plain("POST", "/nothing", &[JSON], &big, true),
        plain("PUT", "/v1/cache/cache/a?bogus=1", &[JSON], &big, true),
    ]);
}

#[test]
/// A regression found by this suite, fixed: a malformed stream entry ID from the client is a 502 redis-error.
fn regression_malformed_stream_ids_are_400() {
    replay_strictly(&[
        plain(
            "POST",
            "/v1/streams/arbitrage:opp/groups/g",
            &[],
            b"",
            false,
        ),
        plain(
            "POST",
            "/v1/streams/arbitrage:opp/groups/g/ack",
            &[JSON],
            br#"{"ids":["-1"]}"#,
            false,
        ),
        plain(
            "POST",
            "/v1/streams/arbitrage:opp/groups/g/ack",
            &[JSON],
            br#"{"ids":["abc","0-1"]}"#,
            false,
        ),
        plain(
            "POST",
            "/v1/streams/arbitrage:opp/groups/g2?start=abc",
            &[],
            b"",
            false,
        ),
    ]);
}

#[test]
/// A regression found by this suite, fixed: mget, mset, events and acks ignore the query string (`?ttl_s=5` on mset is silently dropped).
fn regression_unknown_query_parameters_are_400_on_every_route() {
    replay_strictly(&[
        plain(
            "POST",
            "/v1/mset/cache?ttl_s=5",
            &[JSON],
            br#"{"items":{"q":1}}"#,
            false,
        ),
        plain(
            "POST",
            "/v1/mget/cache?bogus",
            &[JSON],
            br#"{"keys":["q"]}"#,
            false,
        ),
        plain(
            "POST",
            "/v1/events/arbitrage?ttl=60",
            &[JSON],
            br#"{"type":"opp"}"#,
            false,
        ),
        plain(
            "POST",
            "/v1/streams/arbitrage:opp/groups/g",
            &[],
            b"",
            false,
        ),
        plain(
            "POST",
            "/v1/streams/arbitrage:opp/groups/g/ack?bogus=1",
            &[JSON],
            br#"{"ids":["0-1"]}"#,
            false,
        ),
    ]);
}

#[test]
/// A regression found by this suite, fixed: serde_json without `float_roundtrip` stores some JSON numbers one ULP off.
fn regression_json_numbers_come_back_exactly_as_stored() {
    let body = br#"{"x":5.2319440068918905e+39,"y":[-2.1536182574045976e+59]}"#;
    replay_strictly(&[
        plain("PUT", "/v1/cache/cache/f", &[JSON], body, false),
        plain("GET", "/v1/cache/cache/f", &[], b"", false),
    ]);
}

#[test]
fn the_checker_reads_messagepack_depth_and_exact_json() {
    let (bytes, _) = deep(1000, Nest::MsgArray, Shape::Mset);
    assert_eq!(msgpack_depth(&bytes), 1002);
    let (bytes, _) = deep(10, Nest::MsgMap, Shape::Value);
    assert_eq!(msgpack_depth(&bytes), 10);
    assert_eq!(msgpack_depth(b"\xdd\xff\xff\xff\xff"), 1);
    assert_eq!(
        msgpack_depth(&encode(&json!({"a": [1, {"b": []}]}), Wire::Msgpack)),
        3
    );
    let exact = exact_json(b"{\"x\":5.2319440068918905e+39}").expect("JSON");
    assert_eq!(
        exact["x"].as_f64().map(f64::to_bits),
        Some(0x482e_c027_86aa_f4d0)
    );
    assert_eq!(
        exact_json(br#"{"a":[1,-2,"\u00e9\ud83e\udd80"],"b":null}"#),
        Some(json!({"a": [1, -2, "é🦀"], "b": null}))
    );
    assert_eq!(exact_json(b"[1,]"), None);
    let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let served = parse_response(wire, false, true);
    assert!(
        matches!(served, Ok(Some((ref r, n))) if r.status == 200 && r.body == b"ok" && n == wire.len())
    );
}

#[test]
fn generated_requests_get_documented_answers_and_the_gateway_survives() {
    let redis = Redis::start();
    let h = Harness::start(&redis);
    let started = Instant::now();

    for (req, status) in regressions() {
        let client = h.client();
        let resp = h.rt.block_on(client.send(&req));
        let got = resp.as_ref().map(|r| r.status).ok();
        assert_eq!(got, Some(status), "a kept regression case: {req:?}");
        if let Err(e) = h.case(&req) {
            panic!("a kept regression case fails again: {e}\nrequest: {req:?}");
        }
    }

    let cases = env_or("SLUICE_FUZZ_CASES", CASES);
    let seed = env_or("SLUICE_FUZZ_SEED", SEED);
    let config = Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(PERSISTED))),
        max_shrink_iters: 400,
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&request(), |req| h.case(&req).map_err(TestCaseError::fail));
    h.stats.borrow().report(started.elapsed());
    let checked = h.model.borrow().checked;
    println!("reads of the cache domain checked against what was written: {checked}");
    if let Err(e) = result {
        panic!("{e}\n(seed {seed}; gateway log tail:\n{})", h.log_tail(15));
    }

    let crashes = h.crashes.borrow();
    assert!(
        crashes.is_empty(),
        "the gateway died {} time(s); on:\n{}",
        crashes.len(),
        crashes.join("\n\n")
    );

    // Still alive and well after all that.
    let url = h.gw.borrow().url("/healthz");
    let (status, text) = h.rt.block_on(async {
        let resp = h.http.get(url).send().await;
        let resp = resp.expect("/healthz answers after the run");
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    });
    assert_eq!(status, 200, "/healthz after the run: {text}");
    h.log_clean().unwrap_or_else(|e| panic!("{e}"));
}
