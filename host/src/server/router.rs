//! Path → handler; the single place where a handler's error becomes a
//! problem response and where every request is measured.

use super::{Body, admin, batch, cache, events, ops, problem, ratelimit, streams};
use crate::error::Error;
use crate::gateway::Gateway;
use crate::reload::Live;
use crate::telemetry::METRICS;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use percent_encoding::percent_decode_str;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

pub async fn route(live: Arc<Live>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    // This request works with the generation that is live now, to its end.
    let gateway = live.current();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let (route, domain) = labels(&gateway, &path);
    let result = if path.starts_with("/admin/") {
        admin::handle(&live, &gateway, req, &path).await
    } else {
        dispatch(&gateway, req, &path).await
    };
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            if e.status().is_server_error() {
                tracing::warn!(%method, %path, status = e.status().as_u16(), error = %e, "request failed");
            }
            problem::render(&e)
        }
    };
    let status = response.status();
    METRICS
        .requests
        .with_label_values(&[route, domain, status.as_str()])
        .observe(started.elapsed().as_secs_f64());
    tracing::debug!(%method, %path, status = status.as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    Ok(response)
}

/// Bounded metric labels: the route's name, and the domain (or rate-limit
/// policy) only when it is configured.
fn labels<'a>(gateway: &'a Gateway, path: &str) -> (&'static str, &'a str) {
    let mut parts = path.trim_start_matches('/').split('/');
    let (route, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some("cache"), d) => ("cache", d),
        (Some("v1"), Some("mget"), d) => ("mget", d),
        (Some("v1"), Some("mset"), d) => ("mset", d),
        (Some("v1"), Some("events"), d) => ("events", d),
        (Some("v1"), Some("ratelimit"), p) => ("ratelimit", p),
        (Some("v1"), Some("streams"), s) => ("streams", s.and_then(|s| s.split(':').next())),
        (Some("healthz"), None, _) => ("healthz", None),
        (Some("readyz"), None, _) => ("readyz", None),
        (Some("metrics"), None, _) => ("metrics", None),
        (Some("admin"), _, _) => ("admin", None),
        _ => ("other", None),
    };
    let known = name.and_then(|n| {
        gateway
            .domains
            .get_key_value(n)
            .map(|(k, _)| k.as_str())
            .or_else(|| gateway.ratelimits.get_key_value(n).map(|(k, _)| k.as_str()))
    });
    (route, known.unwrap_or("-"))
}

async fn dispatch(
    gateway: &Gateway,
    req: Request<Incoming>,
    path: &str,
) -> Result<Response<Body>, Error> {
    let get_only = |req: &Request<Incoming>| match *req.method() {
        Method::GET | Method::HEAD => Ok(()),
        _ => Err(Error::MethodNotAllowed("GET, HEAD")),
    };
    let post_only = |req: &Request<Incoming>| match *req.method() {
        Method::POST => Ok(()),
        _ => Err(Error::MethodNotAllowed("POST")),
    };
    match path {
        "/healthz" => return get_only(&req).map(|()| ops::healthz()),
        "/readyz" => {
            get_only(&req)?;
            return ops::readyz(gateway).await;
        }
        "/metrics" => return get_only(&req).map(|()| ops::metrics(gateway)),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/v1/cache/") {
        let (domain, key) = rest
            .split_once('/')
            .ok_or_else(|| Error::BadRequest("expected /v1/cache/{domain}/{key}".into()))?;
        let domain = decode(domain)?;
        let key = decode(key)?;
        return cache::handle(gateway, req, &domain, key).await;
    }
    if let Some(domain) = path.strip_prefix("/v1/mget/") {
        post_only(&req)?;
        return batch::mget(gateway, req, &decode(domain)?).await;
    }
    if let Some(domain) = path.strip_prefix("/v1/mset/") {
        post_only(&req)?;
        return batch::mset(gateway, req, &decode(domain)?).await;
    }
    if let Some(rest) = path.strip_prefix("/v1/ratelimit/") {
        let (policy, subject) = rest
            .split_once('/')
            .ok_or_else(|| Error::BadRequest("expected /v1/ratelimit/{policy}/{subject}".into()))?;
        return ratelimit::handle(gateway, req, &decode(policy)?, &decode(subject)?).await;
    }
    if let Some(domain) = path.strip_prefix("/v1/events/") {
        post_only(&req)?;
        return events::publish(gateway, req, &decode(domain)?).await;
    }
    if let Some(rest) = path.strip_prefix("/v1/streams/") {
        return streams::handle(gateway, req, rest).await;
    }
    Err(Error::NoRoute)
}

/// A percent-decoded path segment; it must be UTF-8.
pub fn decode(segment: &str) -> Result<String, Error> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::BadRequest(format!("{segment:?} is not UTF-8 once decoded")))
}

/// `a=1&b=2` → pairs, percent-decoded; `+` is a space as in HTML forms.
pub fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, Error> {
    let Some(query) = query else {
        return Ok(Vec::new());
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(&k.replace('+', " "))?, decode(&v.replace('+', " "))?))
        })
        .collect()
}
