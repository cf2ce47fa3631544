//! `/admin/*`: what is loaded and a reload on demand. Enabled only when
//! `SLUICE_ADMIN_TOKEN` is set; every call needs `Authorization: Bearer <token>`.

use super::Body;
use crate::config::redact_url;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::reload::Live;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

pub async fn handle(
    live: &Arc<Live>,
    gateway: &Gateway,
    req: Request<Incoming>,
    path: &str,
) -> Result<Response<Body>, Error> {
    let Some(token) = &live.admin_token else {
        return Err(Error::NoRoute);
    };
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return Err(Error::Unauthorized);
    }
    match (req.method(), path) {
        (&Method::GET, "/admin/plugins") => Ok(json(StatusCode::OK, plugins(live, gateway))),
        (&Method::POST, "/admin/reload") => {
            let status = live.reload("admin").await;
            let code = if status.applied {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            Ok(json(code, serde_json::to_value(status).unwrap_or_default()))
        }
        (&Method::GET, "/admin/config") => {
            let mut config = serde_json::to_value(&gateway.config).unwrap_or_default();
            config["redis"]["url"] = redact_url(&gateway.config.redis.url).into();
            Ok(json(StatusCode::OK, config))
        }
        (_, "/admin/plugins" | "/admin/config") => Err(Error::MethodNotAllowed("GET")),
        (_, "/admin/reload") => Err(Error::MethodNotAllowed("POST")),
        _ => Err(Error::NoRoute),
    }
}

fn plugins(live: &Live, gateway: &Gateway) -> serde_json::Value {
    let mut domains: Vec<_> = gateway.domains.values().collect();
    domains.sort_by(|a, b| a.name.cmp(&b.name));
    let list: Vec<_> = domains
        .into_iter()
        .map(|d| {
            let c = d.plugin.compiled();
            let s = &d.plugin.stats;
            serde_json::json!({
                "domain": d.name,
                "plugin": &*c.name,
                "sha256": c.sha256,
                "loaded_at": c.loaded_at.duration_since(UNIX_EPOCH).map_or(0, |t| t.as_secs()),
                "calls": s.calls.load(Ordering::Relaxed),
                "traps": s.traps.load(Ordering::Relaxed),
                "timeouts": s.timeouts.load(Ordering::Relaxed),
                "last_error": *s.last_error.lock().unwrap_or_else(|p| p.into_inner()),
            })
        })
        .collect();
    let reload = live
        .status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    serde_json::json!({ "plugins": list, "last_reload": reload })
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

/// Comparing tokens in constant time: the time taken says nothing about how
/// much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
