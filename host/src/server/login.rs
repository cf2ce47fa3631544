//! The status page's login: a browser cannot send `Authorization: Bearer`
//! by itself, so `GET /admin/login` shows a form, and `POST /admin/login`
//! with the admin token sets a session cookie. The cookie never holds the
//! token: it is an expiry and an HMAC of it keyed by the token, so it needs
//! no server-side state, works on every gateway with the same token, and
//! dies when the token changes. It is `HttpOnly` (no script reads it),
//! `SameSite=Strict` (no other site's page can make the browser use it) and
//! scoped to `/admin/`; it opens the status page only, never the JSON admin
//! API (which keeps its bearer token).

use super::respond::{self, Body};
use super::{codec, html};
use crate::error::Error;
use crate::secret::Secret;
use hyper::body::Incoming;
use hyper::header::{COOKIE, HeaderMap, HeaderValue, LOCATION, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// The cookie's name.
const COOKIE_NAME: &str = "sluice_admin";
/// How long a login lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A login form is a token and a few bytes of encoding.
const MAX_FORM_BYTES: usize = 4096;

/// What `POST /admin/login` sends: `token=...`, form-encoded.
#[derive(serde::Deserialize)]
struct Form {
    token: String,
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The MAC of a session that ends at `expires` (seconds since the epoch).
fn mac(token: &Secret, expires: u64) -> String {
    token
        .mac(format!("sluice admin session v1 until {expires}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A cookie value for a session that ends at `expires`: `v1.EXPIRES.MAC`.
fn session(token: &Secret, expires: u64) -> String {
    format!("v1.{expires}.{}", mac(token, expires))
}

/// Whether the request carries a session cookie made with `token` that has
/// not expired. The MAC is compared in constant time.
pub fn has_session(token: &Secret, headers: &HeaderMap) -> bool {
    let now = now_s();
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('='))
        .any(|value| valid(token, value, now))
}

fn valid(token: &Secret, value: &str, now: u64) -> bool {
    let mut parts = value.splitn(3, '.');
    let (Some("v1"), Some(expires), Some(given)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(expires) = expires.parse::<u64>() else {
        return false;
    };
    // Expired, or further out than a login gives: not one of ours.
    if expires <= now || expires > now + LIFETIME.as_secs() + 60 {
        return false;
    }
    mac(token, expires)
        .as_bytes()
        .ct_eq(given.as_bytes())
        .into()
}

/// The form, with `problem` (a message for the person) above it.
fn form(status: StatusCode, problem: Option<&str>) -> Response<Body> {
    let problem = problem.map_or(String::new(), |p| {
        format!("<p class=\"err\">{}</p>", html::escape(p))
    });
    let body = format!(
        "<h1>Sluice</h1><p class=\"sub\">Sign in to the status page with the gateway's admin token \
         (<code>SLUICE_ADMIN_TOKEN</code>).</p>{problem}\
         <form method=\"post\" action=\"/admin/login\">\
         <label for=\"token\">Admin token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\">Sign in</button></form>"
    );
    html::page(status, "Sluice: sign in", &body)
}

/// `303 See Other` to `location`.
pub fn see_other(location: &'static str) -> Response<Body> {
    let mut resp = respond::empty(StatusCode::SEE_OTHER);
    respond::set(&mut resp, LOCATION, HeaderValue::from_static(location));
    respond::set(
        &mut resp,
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    resp
}

/// `GET /admin/login` (the form) or `POST /admin/login` (the token → a
/// session and on to the status page; a wrong one → the form again, 401).
/// Returns the answer and whether the token was right (for the audit line).
pub async fn login(
    token: &Secret,
    req: Request<Incoming>,
    body_timeout: Duration,
) -> Result<(Response<Body>, bool), Error> {
    if req.method() != Method::POST {
        return Ok((form(StatusCode::OK, None), true));
    }
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(Error::UnsupportedMediaType(format!(
            "{content_type}: send the login form as application/x-www-form-urlencoded"
        )));
    }
    let bytes = codec::read_bytes(req, (MAX_FORM_BYTES, body_timeout)).await?;
    let given = serde_urlencoded::from_bytes::<Form>(&bytes)
        .map(|f| f.token)
        .unwrap_or_default();
    if !token.matches(given.as_bytes()) {
        let problem = "That is not the admin token.";
        return Ok((form(StatusCode::UNAUTHORIZED, Some(problem)), false));
    }
    let expires = now_s() + LIFETIME.as_secs();
    let cookie = format!(
        "{COOKIE_NAME}={}; Path=/admin/; Max-Age={}; HttpOnly; SameSite=Strict",
        session(token, expires),
        LIFETIME.as_secs()
    );
    let mut resp = see_other("/admin/");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        respond::set(&mut resp, SET_COOKIE, value);
    }
    Ok((resp, true))
}

/// `POST /admin/logout`: the browser forgets its session.
pub fn logout() -> Response<Body> {
    let mut resp = see_other("/admin/login");
    let gone = format!("{COOKIE_NAME}=; Path=/admin/; Max-Age=0; HttpOnly; SameSite=Strict");
    if let Ok(value) = HeaderValue::from_str(&gone) {
        respond::set(&mut resp, SET_COOKIE, value);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn a_session_is_an_expiry_and_a_mac_never_the_token() {
        let token = Secret::new("s3cret-token");
        let value = session(&token, now_s() + 60);
        assert!(!value.contains("s3cret"));
        assert!(value.starts_with("v1."));
        assert!(has_session(
            &token,
            &cookie(&format!("theme=dark; {COOKIE_NAME}={value}"))
        ));
        assert!(
            !has_session(
                &Secret::new("other"),
                &cookie(&format!("{COOKIE_NAME}={value}"))
            ),
            "another token's gateway does not take it"
        );
    }

    #[test]
    fn expired_forged_or_far_future_sessions_are_refused() {
        let token = Secret::new("t");
        let now = now_s();
        let expired = session(&token, now - 1);
        let far = session(&token, now + LIFETIME.as_secs() * 2);
        let ok = session(&token, now + 10);
        // The MAC's last digit changed (to another digit, whatever it was).
        let last = if ok.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &ok[..ok.len() - 1]);
        let moved = ok.replacen(&(now + 10).to_string(), &(now + 20).to_string(), 1);
        for bad in [expired, far, forged, moved, "v1.x.y".into(), String::new()] {
            assert!(!valid(&token, &bad, now), "{bad}");
        }
        assert!(valid(&token, &ok, now));
        assert!(!has_session(&token, &HeaderMap::new()));
    }
}
