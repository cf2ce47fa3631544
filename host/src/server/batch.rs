//! `POST /v1/mget/{domain}` and `POST /v1/mset/{domain}`: many keys through
//! the domain's policy, one pipeline, an answer or error per key.

use super::codec::{self, Format, Packed};
use super::idempotency;
use super::respond::{self, Body};
use crate::error::Error;
use crate::flow::{Answer, Call};
use crate::generation::{Gateway, Payload};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use rmp::encode;
use std::collections::BTreeMap;

/// Keys in one batch: enough to amortise the round trip, small enough that
/// one request cannot monopolise the connection it shares.
pub const MAX_BATCH: usize = 1000;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MgetBody {
    keys: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MsetBody {
    items: BTreeMap<String, Packed>,
    #[serde(default)]
    ttl_s: Option<u64>,
}

async fn read<T: serde::de::DeserializeOwned>(
    gateway: &Gateway,
    req: Request<Incoming>,
) -> Result<(T, Format), Error> {
    let _: codec::NoQuery = codec::query(req.uri().query())?;
    let out_format = Format::for_response(req.headers())?;
    let (bytes, in_format) = codec::read_body(req, gateway.body_limits()).await?;
    Ok((codec::decode(&bytes, in_format)?, out_format))
}

fn check_size(n: usize) -> Result<(), Error> {
    if n > MAX_BATCH {
        return Err(Error::BadRequest(format!(
            "{n} keys in one batch; at most {MAX_BATCH}"
        )));
    }
    Ok(())
}

/// `{"keys":[...]}` → `{"values":{"k": value or null}, "errors":{"k":"..."}, "stale":["k"]}`
/// (`errors` and `stale` only when not empty).
pub async fn mget(
    gateway: &Gateway,
    req: Request<Incoming>,
    domain: &str,
) -> Result<Response<Body>, Error> {
    let domain = gateway.domain(domain)?;
    let (mut body, format): (MgetBody, _) = read(gateway, req).await?;
    check_size(body.keys.len())?;
    // A key asked for twice is read once: the answer is a map by key anyway.
    let mut seen = std::collections::HashSet::with_capacity(body.keys.len());
    body.keys.retain(|k| seen.insert(k.clone()));
    // Rounds bounded in bytes: an mget of many large values stops at the
    // first round that passes the limit, before reading the rest.
    let gather = gateway.gather(MAX_BATCH);
    let mut answers = Vec::with_capacity(body.keys.len());
    let mut answered = 0;
    // What the answer will take in memory, reserved round by round: the
    // values, the MessagePack answer, and its JSON form when asked for.
    let copies = if format == Format::Json { 3 } else { 2 };
    let mut share = respond::Share::default();
    for keys in body.keys.chunks(gather.per_round) {
        let calls = keys.iter().map(|k| Call::get(k.clone())).collect();
        let round = gateway.call_many(domain, calls).await;
        if let Some(e) = unavailable(&round) {
            return Err(e);
        }
        let round_bytes = round.iter().map(answer_len).sum::<usize>();
        answered += round_bytes;
        if answered > gather.max_bytes {
            return Err(Error::ResponseTooLarge(gather.max_bytes));
        }
        share.grow(round_bytes * copies)?;
        answers.extend(round);
    }
    let mut values = Vec::new();
    let mut errors = Vec::new();
    let mut stale = Vec::new();
    for (key, answer) in body.keys.iter().zip(answers) {
        match answer {
            Ok(Answer::Fresh(v)) => values.push((key, Some(v))),
            Ok(Answer::Near(copy)) => values.push((key, Some(copy.body.clone()))),
            Ok(Answer::Stale { body, .. }) => {
                stale.push(key);
                values.push((key, Some(body)));
            }
            Ok(Answer::Nothing) => values.push((key, None)),
            Err(e) => errors.push((key, e.to_string())),
        }
    }
    let build = |out: &mut Vec<u8>| {
        let sections = 1 + usize::from(!errors.is_empty()) + usize::from(!stale.is_empty());
        let _ = encode::write_map_len(out, sections as u32);
        let _ = encode::write_str(out, "values");
        let _ = encode::write_map_len(out, values.len() as u32);
        for (k, v) in &values {
            let _ = encode::write_str(out, k);
            match v {
                Some(v) => out.extend_from_slice(v),
                None => {
                    let _ = encode::write_nil(out);
                }
            }
        }
        write_errors(out, &errors);
        if !stale.is_empty() {
            let _ = encode::write_str(out, "stale");
            let _ = encode::write_array_len(out, stale.len() as u32);
            for k in &stale {
                let _ = encode::write_str(out, k);
            }
        }
    };
    respond::msgpack_within(format, StatusCode::OK, build, share)
}

/// `{"items":{"k": value}, "ttl_s": n}` → `{"stored": n, "errors":{"k":"..."}}`.
/// Every value within the domain's size and all keys and values together
/// within `client`'s write budget, or nothing is written.
pub async fn mset(
    gateway: &Gateway,
    req: Request<Incoming>,
    domain: &str,
    client: &str,
) -> Result<Response<Body>, Error> {
    let domain = gateway.domain(domain)?;
    if idempotency::key(req.headers())?.is_some() {
        // Its items are separate writes: one record could not land with all.
        return Err(Error::BadRequest(
            "Idempotency-Key is taken by single writes (PUT, DELETE) and event publishes, not by mset".into(),
        ));
    }
    let (body, format): (MsetBody, _) = read(gateway, req).await?;
    check_size(body.items.len())?;
    let mut cost = 0;
    for (key, Packed(value)) in &body.items {
        gateway.fits(domain, Payload::Value, value.len())?;
        cost += key.len() + value.len();
    }
    gateway.charge_write(client, cost).await?;
    let keys: Vec<String> = body.items.keys().cloned().collect();
    let calls = body
        .items
        .into_iter()
        .map(|(key, Packed(value))| Call::Put {
            key,
            value,
            ttl_s: body.ttl_s,
        })
        .collect();
    let answers = gateway.call_many(domain, calls).await;
    if let Some(e) = unavailable(&answers) {
        return Err(e);
    }
    let mut stored = 0u64;
    let mut errors = Vec::new();
    for (key, answer) in keys.iter().zip(answers) {
        match answer {
            Ok(_) => stored += 1,
            Err(e) => errors.push((key, e.to_string())),
        }
    }
    respond::msgpack(format, StatusCode::OK, |out| {
        let _ = encode::write_map_len(out, 1 + u32::from(!errors.is_empty()));
        let _ = encode::write_str(out, "stored");
        let _ = encode::write_uint(out, stored);
        write_errors(out, &errors);
    })
}

fn write_errors(out: &mut Vec<u8>, errors: &[(&String, String)]) {
    if errors.is_empty() {
        return;
    }
    let _ = encode::write_str(out, "errors");
    let _ = encode::write_map_len(out, errors.len() as u32);
    for (k, e) in errors {
        let _ = encode::write_str(out, k);
        let _ = encode::write_str(out, e);
    }
}

/// The bytes of a value an answer carries.
fn answer_len(answer: &Result<Answer, Error>) -> usize {
    match answer {
        Ok(Answer::Fresh(v)) | Ok(Answer::Stale { body: v, .. }) => v.len(),
        Ok(Answer::Near(copy)) => copy.body.len(),
        _ => 0,
    }
}

/// When Redis could not be reached for the batch (and no key had a stale
/// stand-in), the whole batch is a 503, not a page of per-key errors.
fn unavailable(answers: &[Result<Answer, Error>]) -> Option<Error> {
    let all_down = !answers.is_empty()
        && answers
            .iter()
            .all(|a| matches!(a, Err(Error::Store(e)) if e.is_unavailable()));
    match answers.first() {
        Some(Err(Error::Store(e))) if all_down => Some(Error::Store(e.clone())),
        _ => None,
    }
}
