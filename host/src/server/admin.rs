//! `/admin/*`: what is loaded and a reload on demand. Enabled only when
//! `SLUICE_ADMIN_TOKEN` is set; every call needs `Authorization: Bearer <token>`,
//! and every call, allowed or not, leaves one line in the log (target
//! `sluice::audit`: route, method, status, outcome; never the token).

use super::respond::{self, Body};
use super::route::{Admin, Route};
use crate::error::Error;
use crate::generation::Gateway;
use crate::reload::Live;
use hyper::header::AUTHORIZATION;
use hyper::{HeaderMap, Method, Response, StatusCode};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

/// An admin call from authorization to answer, and its audit line.
pub async fn call(
    live: &Arc<Live>,
    gateway: &Gateway,
    admin: Admin,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response<Body>, Error> {
    let result = match authorize(live, headers).and_then(|()| Route::Admin(admin).allows(method)) {
        Ok(()) => Ok(handle(live, gateway, admin).await),
        Err(e) => Err(e),
    };
    audit(admin, method, &result);
    result
}

/// One line per admin call: who may look for it in the log knows what was
/// asked and what came of it.
fn audit(admin: Admin, method: &Method, result: &Result<Response<Body>, Error>) {
    let (status, outcome) = match result {
        Ok(r) if r.status().is_success() => (r.status(), "done"),
        // A reload that was refused (the old configuration keeps serving).
        Ok(r) => (r.status(), "refused"),
        Err(Error::NoRoute) => (StatusCode::NOT_FOUND, "disabled"),
        Err(e @ Error::Unauthorized) => (e.status(), "unauthorized"),
        Err(e) => (e.status(), "rejected"),
    };
    let route = match admin {
        Admin::Plugins => "/admin/plugins",
        Admin::Reload => "/admin/reload",
        Admin::Config => "/admin/config",
    };
    tracing::info!(
        target: "sluice::audit",
        route,
        %method,
        status = status.as_u16(),
        outcome,
        "admin call"
    );
}

/// No token configured: the admin API does not exist (404); a wrong or
/// missing token: 401. The comparison takes the same time whatever was sent.
fn authorize(live: &Live, headers: &HeaderMap) -> Result<(), Error> {
    let Some(token) = &live.admin_token else {
        return Err(Error::NoRoute);
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| token.matches(g.as_bytes())) {
        return Err(Error::Unauthorized);
    }
    Ok(())
}

async fn handle(live: &Arc<Live>, gateway: &Gateway, admin: Admin) -> Response<Body> {
    match admin {
        Admin::Plugins => respond::json(StatusCode::OK, &plugins(live, gateway)),
        Admin::Reload => {
            let status = live.reload("admin").await;
            let code = if status.applied {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let body = serde_json::to_value(status).unwrap_or_default();
            respond::json(code, &body)
        }
        // The URL serializes without its password (`secret::RedisUrl`).
        Admin::Config => respond::json(
            StatusCode::OK,
            &serde_json::to_value(gateway.config()).unwrap_or_default(),
        ),
    }
}

fn plugins(live: &Live, gateway: &Gateway) -> serde_json::Value {
    let list: Vec<_> = gateway
        .domains()
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
