//! `/admin/*`: what is loaded and a reload on demand. Enabled only when
//! `SLUICE_ADMIN_TOKEN` is set; every call needs `Authorization: Bearer <token>`.

use super::respond::{self, Body};
use super::route::Admin;
use crate::config::redact_url;
use crate::error::Error;
use crate::generation::Gateway;
use crate::reload::Live;
use hyper::header::AUTHORIZATION;
use hyper::{HeaderMap, Response, StatusCode};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::UNIX_EPOCH;

/// No token configured: the admin API does not exist (404); a wrong or
/// missing token: 401.
pub fn authorize(live: &Live, headers: &HeaderMap) -> Result<(), Error> {
    let Some(token) = &live.admin_token else {
        return Err(Error::NoRoute);
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
        return Err(Error::Unauthorized);
    }
    Ok(())
}

pub async fn handle(live: &Arc<Live>, gateway: &Gateway, admin: Admin) -> Response<Body> {
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
        Admin::Config => {
            let mut config = serde_json::to_value(gateway.config()).unwrap_or_default();
            config["redis"]["url"] = redact_url(&gateway.config().redis.url).into();
            respond::json(StatusCode::OK, &config)
        }
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

/// Comparing tokens in constant time: the time taken says nothing about how
/// much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
