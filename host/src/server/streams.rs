//! Consumer groups over HTTP: `/v1/streams/{stream}/groups/{group}` —
//! create (`POST`), read (`GET …/messages`, XREADGROUP), acknowledge
//! (`POST …/ack`, XACK) and reclaim stale pending entries (`POST …/claim`,
//! XAUTOCLAIM). A stream belongs to a domain: its name starts with a
//! configured `{domain}:`. Blocking reads hold a connection of their own,
//! from the same budget as everything else.

use super::Body;
use super::codec::{self, Format};
use super::router::query_pairs;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::store::{pipeline, reply, reply_error};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use redis::Value;
use rmp::encode;
use std::time::Duration;

/// The longest a read may block: a client wanting longer reads again.
const MAX_BLOCK_MS: u64 = 30_000;
/// Messages in one read or claim.
const MAX_COUNT: u64 = 1_000;

/// `rest` is what follows `/v1/streams/`.
pub async fn handle(
    gateway: &Gateway,
    req: Request<Incoming>,
    rest: &str,
) -> Result<Response<Body>, Error> {
    let parts: Vec<String> = rest
        .split('/')
        .map(super::router::decode)
        .collect::<Result<_, _>>()?;
    let (stream, group, action) = match parts.as_slice() {
        [s, g, group] if g == "groups" => (s, group, None),
        [s, g, group, action] if g == "groups" => (s, group, Some(action.as_str())),
        _ => {
            return Err(Error::BadRequest(
                "expected /v1/streams/{stream}/groups/{group}[/messages|/ack|/claim]".into(),
            ));
        }
    };
    check_names(gateway, stream, group)?;
    let format = Format::for_response(req.headers())?;
    match (action, req.method()) {
        (None, &Method::POST) => create(gateway, req, stream, group, format).await,
        (Some("messages"), &Method::GET) => read(gateway, &req, stream, group, format).await,
        (Some("ack"), &Method::POST) => ack(gateway, req, stream, group, format).await,
        (Some("claim"), &Method::POST) => claim(gateway, &req, stream, group, format).await,
        (None, _) | (Some("ack" | "claim"), _) => Err(Error::MethodNotAllowed("POST")),
        (Some("messages"), _) => Err(Error::MethodNotAllowed("GET")),
        _ => Err(Error::NoRoute),
    }
}

fn check_names(gateway: &Gateway, stream: &str, group: &str) -> Result<(), Error> {
    let owned = stream
        .split_once(':')
        .is_some_and(|(d, rest)| !rest.is_empty() && gateway.domains.contains_key(d));
    if !owned || stream.len() > gateway.max_key_bytes {
        return Err(Error::BadRequest(format!(
            "stream {stream:?} is not inside a configured domain's namespace (`{{domain}}:...`)"
        )));
    }
    name("group", group)
}

fn name(what: &str, v: &str) -> Result<(), Error> {
    if v.is_empty() || v.len() > 128 {
        return Err(Error::BadRequest(format!(
            "{what} names are 1 to 128 bytes"
        )));
    }
    Ok(())
}

/// Query parameters as numbers, with bounds; unknown ones are refused.
fn params(
    req: &Request<Incoming>,
    known: &[(&str, u64, u64)],
) -> Result<(Vec<u64>, Option<String>), Error> {
    let mut values: Vec<u64> = known.iter().map(|k| k.1).collect();
    let mut consumer = None;
    for (k, v) in query_pairs(req.uri().query())? {
        if k == "consumer" {
            name("consumer", &v)?;
            consumer = Some(v);
            continue;
        }
        let Some(i) = known.iter().position(|(n, _, _)| *n == k) else {
            let names: Vec<&str> = known.iter().map(|k| k.0).collect();
            return Err(Error::BadRequest(format!(
                "unknown query parameter {k:?}; known: consumer, {}",
                names.join(", ")
            )));
        };
        values[i] = v.parse().ok().filter(|n| *n <= known[i].2).ok_or_else(|| {
            Error::BadRequest(format!("{k}={v:?}: a whole number up to {}", known[i].2))
        })?;
    }
    Ok((values, consumer))
}

async fn one(gateway: &Gateway, pipe: &redis::Pipeline) -> Result<Value, Error> {
    checked(gateway.store.query(pipe).await?.pop().unwrap_or(Value::Nil))
}

/// An error reply as the request's error; a missing group is a 404 that
/// says how to make one.
fn checked(reply: Value) -> Result<Value, Error> {
    match &reply {
        Value::ServerError(e) if e.code() == "NOGROUP" => Err(Error::UnknownGroup(format!(
            "no such consumer group on this stream; create it with POST /v1/streams/{{stream}}/groups/{{group}} ({})",
            e.details().unwrap_or("")
        ))),
        v => match reply_error(v) {
            Some(e) => Err(e.into()),
            None => Ok(reply),
        },
    }
}

async fn create(
    gateway: &Gateway,
    req: Request<Incoming>,
    stream: &str,
    group: &str,
    format: Format,
) -> Result<Response<Body>, Error> {
    // `?start=0` reads the stream from its beginning; the default `$` only new entries.
    let mut start = "$".to_owned();
    for (k, v) in query_pairs(req.uri().query())? {
        match k.as_str() {
            "start" => start = v,
            other => {
                return Err(Error::BadRequest(format!(
                    "unknown query parameter {other:?}; known: start"
                )));
            }
        }
    }
    let mut pipe = pipeline();
    pipe.cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg(&start)
        .arg("MKSTREAM");
    let reply = gateway
        .store
        .query(&pipe)
        .await?
        .pop()
        .unwrap_or(Value::Nil);
    let created = match &reply {
        Value::ServerError(e) if e.code() == "BUSYGROUP" => false,
        v => match reply_error(v) {
            Some(e) => return Err(e.into()),
            None => true,
        },
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    codec::respond_field(format, status, "created", |out| {
        let _ = encode::write_bool(out, created);
    })
}

async fn read(
    gateway: &Gateway,
    req: &Request<Incoming>,
    stream: &str,
    group: &str,
    format: Format,
) -> Result<Response<Body>, Error> {
    let (v, consumer) = params(
        req,
        &[("count", 10, MAX_COUNT), ("block_ms", 0, MAX_BLOCK_MS)],
    )?;
    let consumer = consumer.ok_or_else(|| Error::BadRequest("?consumer= is required".into()))?;
    let (count, block_ms) = (v[0].max(1), v[1]);
    let mut pipe = pipeline();
    let cmd = pipe
        .cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(&consumer)
        .arg("COUNT")
        .arg(count);
    if block_ms > 0 {
        cmd.arg("BLOCK").arg(block_ms);
    }
    cmd.arg("STREAMS").arg(stream).arg(">");
    let replies = if block_ms > 0 {
        gateway
            .store
            .query_exclusive(&pipe, Duration::from_millis(block_ms))
            .await?
    } else {
        gateway.store.query(&pipe).await?
    };
    let reply = checked(replies.into_iter().next().unwrap_or(Value::Nil))?;
    let entries = reply::read_group_entries(reply);
    messages(format, entries)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    ids: Vec<String>,
}

async fn ack(
    gateway: &Gateway,
    req: Request<Incoming>,
    stream: &str,
    group: &str,
    format: Format,
) -> Result<Response<Body>, Error> {
    let in_format = Format::of_request(req.headers())?;
    let (parts, body) = req.into_parts();
    let bytes = codec::read_body(body, &parts.headers, gateway.max_body_bytes).await?;
    let body: AckBody = codec::decode(&bytes, in_format)?;
    if body.ids.is_empty() || body.ids.len() > MAX_COUNT as usize {
        return Err(Error::BadRequest(format!(
            "ack 1 to {MAX_COUNT} ids at a time"
        )));
    }
    let mut pipe = pipeline();
    pipe.cmd("XACK").arg(stream).arg(group).arg(&body.ids);
    let acked = match one(gateway, &pipe).await? {
        Value::Int(n) => n,
        _ => 0,
    };
    codec::respond_field(format, StatusCode::OK, "acked", |out| {
        let _ = encode::write_sint(out, acked);
    })
}

async fn claim(
    gateway: &Gateway,
    req: &Request<Incoming>,
    stream: &str,
    group: &str,
    format: Format,
) -> Result<Response<Body>, Error> {
    let (v, consumer) = params(
        req,
        &[("count", 10, MAX_COUNT), ("min_idle_ms", 60_000, u64::MAX)],
    )?;
    let consumer = consumer.ok_or_else(|| Error::BadRequest("?consumer= is required".into()))?;
    let mut pipe = pipeline();
    pipe.cmd("XAUTOCLAIM")
        .arg(stream)
        .arg(group)
        .arg(&consumer)
        .arg(v[1])
        .arg("0-0")
        .arg("COUNT")
        .arg(v[0].max(1));
    let entries = match one(gateway, &pipe).await? {
        Value::Array(mut parts) if parts.len() >= 2 => match parts.swap_remove(1) {
            Value::Array(entries) => entries,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    messages(format, entries)
}

/// `{"messages": [{"id": .., "fields": {..}}, ...]}`
fn messages(format: Format, entries: Vec<Value>) -> Result<Response<Body>, Error> {
    codec::respond_field(format, StatusCode::OK, "messages", |out| {
        reply::stream_entries(out, entries);
    })
}
