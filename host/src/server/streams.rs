//! Consumer groups over HTTP: `/v1/streams/{stream}/groups/{group}` —
//! create (`POST`), read (`GET …/messages`), acknowledge (`POST …/ack`) and
//! reclaim stale pending entries (`POST …/claim`). A stream belongs to a
//! domain: its name starts with a configured `{domain}:`.

use super::codec::{self, Format};
use super::respond::{self, Body};
use crate::error::Error;
use crate::generation::Gateway;
use crate::store::Group;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::time::Duration;

/// The longest a read may block: a client wanting longer reads again.
const MAX_BLOCK_MS: u64 = 30_000;
/// Messages in one read, claim or acknowledgement.
const MAX_COUNT: u64 = 1_000;
/// The longest idle time a claim may ask for (30 days): Redis refuses more
/// than an i64 of ms, and no entry of a stream that expires with its
/// domain's TTL sits pending that long.
const MAX_IDLE_MS: u64 = 30 * 24 * 3_600_000;
/// Group and consumer names.
const MAX_NAME_BYTES: usize = 128;

/// Which group action the route named.
pub use super::route::GroupAction as Action;

/// `?start=` for create: `$` (new entries only, the default) or an id (`0`: all).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateQuery {
    #[serde(default = "new_only")]
    start: String,
}

fn new_only() -> String {
    "$".into()
}

/// `?consumer=c&count=n&block_ms=t` (read) or `?consumer=c&count=n&min_idle_ms=t` (claim).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadQuery {
    consumer: String,
    #[serde(default = "ten")]
    count: u64,
    #[serde(default)]
    block_ms: Option<u64>,
    #[serde(default)]
    min_idle_ms: Option<u64>,
}

fn ten() -> u64 {
    10
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    ids: Vec<String>,
}

/// `client`: who asks (a long-poll counts against its `max_long_polls`).
pub async fn handle(
    gateway: &Gateway,
    req: Request<Incoming>,
    (stream, group, action): (&str, &str, Action),
    client: &str,
) -> Result<Response<Body>, Error> {
    name("group", group)?;
    let group = gateway.group(stream, group)?;
    let format = Format::for_response(req.headers())?;
    match action {
        Action::Create => {
            let q: CreateQuery = codec::query(req.uri().query())?;
            if q.start != "$" && !entry_id(&q.start) {
                return Err(Error::BadRequest(format!(
                    "start={:?}: `$` (new entries only) or an entry id such as `0` or `1700000000000-0`",
                    q.start
                )));
            }
            let created = group.create(&q.start).await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            respond::field(format, status, "created", |out| {
                let _ = rmp::encode::write_bool(out, created);
            })
        }
        Action::Messages | Action::Claim => {
            read(gateway, (&group, client), &req, action, format).await
        }
        Action::Ack => {
            let _: codec::NoQuery = codec::query(req.uri().query())?;
            let (bytes, in_format) = codec::read_body(req, gateway.body_limits()).await?;
            let body: AckBody = codec::decode(&bytes, in_format)?;
            if body.ids.is_empty() || body.ids.len() > MAX_COUNT as usize {
                return Err(Error::BadRequest(format!(
                    "ack 1 to {MAX_COUNT} ids at a time"
                )));
            }
            if let Some(bad) = body.ids.iter().find(|id| !entry_id(id)) {
                return Err(Error::BadRequest(format!(
                    "{bad:?} is not an entry id (`1700000000000-0`)"
                )));
            }
            let acked = group.ack(&body.ids).await?;
            respond::field(format, StatusCode::OK, "acked", |out| {
                let _ = rmp::encode::write_sint(out, acked);
            })
        }
    }
}

/// A read (`block_ms` up to 30 s) or a claim (`min_idle_ms`, default a minute):
/// `{"messages": [{"id": .., "fields": {..}}, ...]}`, at most `count` and
/// no further round once `server.max_response_bytes` are gathered. A read
/// that blocks is one of `client`'s long-polls until it ends or is dropped.
async fn read(
    gateway: &Gateway,
    (group, client): (&Group<'_>, &str),
    req: &Request<Incoming>,
    action: Action,
    format: Format,
) -> Result<Response<Body>, Error> {
    let gather = gateway.gather(MAX_COUNT as usize);
    let q: ReadQuery = codec::query(req.uri().query())?;
    name("consumer", &q.consumer)?;
    if !(1..=MAX_COUNT).contains(&q.count) {
        return Err(Error::BadRequest(format!("count is 1 to {MAX_COUNT}")));
    }
    let messages = match (action, q.block_ms, q.min_idle_ms) {
        (Action::Messages, block_ms, None) => {
            let block_ms = block_ms.unwrap_or(0);
            if block_ms > MAX_BLOCK_MS {
                return Err(Error::BadRequest(format!(
                    "block_ms is at most {MAX_BLOCK_MS}; read again to wait longer"
                )));
            }
            let block = Duration::from_millis(block_ms);
            let _long_poll = match block.is_zero() {
                true => None,
                false => gateway.long_poll(client)?,
            };
            group.read(&q.consumer, q.count, block, gather).await?
        }
        (Action::Claim, None, min_idle_ms) => {
            let min_idle_ms = min_idle_ms.unwrap_or(60_000);
            if min_idle_ms > MAX_IDLE_MS {
                return Err(Error::BadRequest(format!(
                    "min_idle_ms is at most {MAX_IDLE_MS} (30 days)"
                )));
            }
            group
                .claim(&q.consumer, min_idle_ms, q.count, gather)
                .await?
        }
        _ => {
            return Err(Error::BadRequest(
                "block_ms is for reads (…/messages), min_idle_ms for claims (…/claim)".into(),
            ));
        }
    };
    respond::field(format, StatusCode::OK, "messages", |out| {
        out.extend_from_slice(&messages)
    })
}

/// A stream entry id as Redis takes it: `ms` or `ms-seq`, both whole
/// numbers that fit in 64 bits (a larger one Redis refuses: that is the
/// client's mistake, a 400, not Redis's 502).
fn entry_id(id: &str) -> bool {
    let number = |s: &str| s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u64>().is_ok();
    match id.split_once('-') {
        Some((ms, seq)) => number(ms) && number(seq),
        None => number(id),
    }
}

fn name(what: &str, v: &str) -> Result<(), Error> {
    if v.is_empty() || v.len() > MAX_NAME_BYTES {
        return Err(Error::BadRequest(format!(
            "{what} names are 1 to {MAX_NAME_BYTES} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_need_a_consumer_and_default_to_ten_without_blocking() {
        let q: ReadQuery = codec::query(Some("consumer=c1")).unwrap();
        assert_eq!((q.consumer.as_str(), q.count, q.block_ms), ("c1", 10, None));
        let q: ReadQuery = codec::query(Some("consumer=c&count=5&block_ms=300")).unwrap();
        assert_eq!((q.count, q.block_ms), (5, Some(300)));
        assert!(
            codec::query::<ReadQuery>(Some("count=5")).is_err(),
            "no consumer"
        );
        assert!(codec::query::<ReadQuery>(Some("consumer=c&wait=1")).is_err());
        let q: CreateQuery = codec::query(None).unwrap();
        assert_eq!(q.start, "$", "new entries only by default");
        assert!(name("group", "").is_err() && name("group", &"g".repeat(129)).is_err());
        assert!(name("group", "g").is_ok());
        for ok in ["0", "1700000000000-0", "5-12"] {
            assert!(entry_id(ok), "{ok}");
        }
        assert!(entry_id("18446744073709551615-18446744073709551615"));
        for bad in [
            "",
            "-1",
            "+1",
            "abc",
            "1-",
            "-",
            "1-2-3",
            "1.5",
            &"9".repeat(21),
            "242-71240285073631507245",
            "18446744073709551616",
        ] {
            assert!(!entry_id(bad), "{bad}");
        }
    }
}
