//! `/admin/*`: what is loaded, a reload on demand, and the status page.
//! Enabled only when `SLUICE_ADMIN_TOKEN` is set; the JSON routes need
//! `Authorization: Bearer <token>`, the status page that or the session
//! cookie its login form sets ([`login`]). Every call, allowed or not,
//! leaves one line in the log (target `sluice::audit`, `event="admin"`:
//! route, method, status, outcome; never the token), except the wrong
//! tokens after the first of a burst and the calls [`throttle`] shuts out,
//! which are counted instead.

use super::respond::{self, Body};
use super::route::{Admin, Route};
use super::{login, status, throttle};
use crate::error::Error;
use crate::generation::Gateway;
use crate::reload::Live;
use crate::secret::Secret;
use crate::telemetry::METRICS;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// An admin call from `peer`, from its throttle to its answer, and its
/// audit line.
pub async fn call(
    live: &Arc<Live>,
    gateway: &Gateway,
    admin: Admin,
    req: Request<Incoming>,
    peer: IpAddr,
) -> Result<Response<Body>, Error> {
    let method = req.method().clone();
    // What can be a guess: a token sent, in the header or the login form.
    // (A session cookie is an HMAC: no one guesses one.)
    let guess = match admin {
        Admin::Login => method == Method::POST,
        Admin::Logout => false,
        _ => req.headers().contains_key(AUTHORIZATION),
    };
    let throttle = &throttle::ADMIN;
    if guess
        && live.admin_token.is_some()
        && let Some(wait) = throttle.wait(peer, Instant::now())
    {
        METRICS.admin_throttled.inc();
        return Err(Error::Throttled(wait));
    }
    let result = serve(live, gateway, admin, req).await;
    let refused = matches!(
        &result,
        Ok((_, Outcome::Unauthorized)) | Err(Error::Unauthorized)
    );
    match (guess, refused) {
        (true, true) if !throttle.wrong(peer, Instant::now()) => METRICS.admin_throttled.inc(),
        (true, false) if result.is_ok() => {
            throttle.right(peer);
            audit(admin, &method, &result);
        }
        _ => audit(admin, &method, &result),
    }
    result.map(|(resp, _)| resp)
}

/// What an admin call answers, and its outcome for the audit line.
async fn serve(
    live: &Arc<Live>,
    gateway: &Gateway,
    admin: Admin,
    req: Request<Incoming>,
) -> Result<(Response<Body>, Outcome), Error> {
    // No token configured: the admin routes do not exist.
    let Some(token) = &live.admin_token else {
        return Err(Error::NoRoute);
    };
    let route = Route::Admin(admin);
    let https = gateway.config().server.tls.is_some();
    match admin {
        // The form is open; the token it carries is the check.
        Admin::Login => {
            route.allows(req.method())?;
            let (resp, right) = login::login(token, req, gateway.body_limits().1, https).await?;
            let outcome = if right {
                Outcome::Done
            } else {
                Outcome::Unauthorized
            };
            Ok((resp, outcome))
        }
        Admin::Logout => {
            route.allows(req.method())?;
            Ok((login::logout(token, req.headers(), https), Outcome::Done))
        }
        // A browser without a session is sent to the form.
        Admin::Status => {
            if !bearer(token, req.headers()) && !login::has_session(token, req.headers()) {
                return Ok((login::see_other("/admin/login"), Outcome::Unauthorized));
            }
            route.allows(req.method())?;
            Ok((status::page(live, gateway), Outcome::Done))
        }
        Admin::Plugins | Admin::Reload | Admin::Config => {
            if !bearer(token, req.headers()) {
                return Err(Error::Unauthorized);
            }
            route.allows(req.method())?;
            let resp = json(live, gateway, admin).await;
            let outcome = if resp.status().is_success() {
                Outcome::Done
            } else {
                // A reload that was refused (the old configuration keeps serving).
                Outcome::Refused
            };
            Ok((resp, outcome))
        }
    }
}

/// How an admin call ended, as the audit line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    Refused,
    Unauthorized,
}

/// One line per admin call: who may look for it in the log knows what was
/// asked and what came of it.
fn audit(admin: Admin, method: &Method, result: &Result<(Response<Body>, Outcome), Error>) {
    let (status, outcome) = match result {
        Ok((r, Outcome::Done)) => (r.status(), "done"),
        Ok((r, Outcome::Refused)) => (r.status(), "refused"),
        Ok((r, Outcome::Unauthorized)) => (r.status(), "unauthorized"),
        Err(Error::NoRoute) => (StatusCode::NOT_FOUND, "disabled"),
        Err(e @ Error::Unauthorized) => (e.status(), "unauthorized"),
        Err(e) => (e.status(), "rejected"),
    };
    tracing::info!(
        target: "sluice::audit",
        event = "admin",
        route = admin.path(),
        %method,
        status = status.as_u16(),
        outcome,
        "admin call"
    );
}

/// Whether the request carries `Authorization: Bearer <token>` (any case
/// of `Bearer`, parsed as the data API's keys are); the comparison takes
/// the same time whatever was sent.
fn bearer(token: &Secret, headers: &HeaderMap) -> bool {
    crate::auth::bearer(headers).is_ok_and(|g| token.matches(g.as_bytes()))
}

/// What every answer under `/admin` carries, whatever made it (a page,
/// JSON, a redirect, an error, a 404 when the admin side is off): no cache
/// keeps it, and no browser guesses another type than the one it says.
pub fn harden(resp: &mut Response<Body>) {
    respond::set(resp, CACHE_CONTROL, HeaderValue::from_static("no-store"));
    respond::set(
        resp,
        X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// Whether a request path is under `/admin` (what [`harden`] applies to).
pub fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

/// The JSON routes: `/admin/plugins`, `/admin/reload`, `/admin/config`.
async fn json(live: &Arc<Live>, gateway: &Gateway, admin: Admin) -> Response<Body> {
    match admin {
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
        // `/admin/plugins` (the page routes are served before this).
        _ => respond::json(StatusCode::OK, &plugins(live, gateway)),
    }
}

fn plugins(live: &Live, gateway: &Gateway) -> serde_json::Value {
    serde_json::json!({
        "plugins": gateway.plugin_rows(),
        "last_reload": live.last_reload(),
    })
}
