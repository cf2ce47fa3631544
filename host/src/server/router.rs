//! Path → handler, and the single place where a handler's error becomes a
//! problem response.

use super::{Body, cache, problem};
use crate::error::Error;
use crate::gateway::Gateway;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use percent_encoding::percent_decode_str;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

pub async fn route(
    gateway: Arc<Gateway>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = match dispatch(&gateway, req).await {
        Ok(response) => response,
        Err(e) => {
            if e.status().is_server_error() {
                tracing::warn!(%method, %path, status = e.status().as_u16(), error = %e, "request failed");
            }
            problem::render(&e)
        }
    };
    tracing::debug!(%method, %path, status = response.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    Ok(response)
}

async fn dispatch(gateway: &Gateway, req: Request<Incoming>) -> Result<Response<Body>, Error> {
    let path = req.uri().path();
    if path == "/healthz" {
        return match *req.method() {
            Method::GET | Method::HEAD => Ok(Response::new(Body::from("ok\n"))),
            _ => Err(Error::MethodNotAllowed("GET, HEAD")),
        };
    }
    if let Some(rest) = path.strip_prefix("/v1/cache/") {
        let (domain, key) = rest
            .split_once('/')
            .ok_or_else(|| Error::BadRequest("expected /v1/cache/{domain}/{key}".into()))?;
        let domain = decode(domain)?;
        let key = decode(key)?;
        return cache::handle(gateway, req, &domain, key).await;
    }
    Err(Error::NoRoute)
}

/// A percent-decoded path segment; it must be UTF-8.
fn decode(segment: &str) -> Result<String, Error> {
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
