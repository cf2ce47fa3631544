//! The status page's login: a browser cannot send `Authorization: Bearer`
//! by itself, so `GET /admin/login` shows a form, and `POST /admin/login`
//! with the admin token sets a session cookie. The cookie never holds the
//! token: it is a random session id, an expiry and an HMAC of both keyed by
//! the token, so a login needs no server-side state, works on every gateway
//! with the same token, and dies when the token changes. It is `HttpOnly`
//! (no script reads it), `SameSite=Strict` (no other site's page can make
//! the browser use it) and scoped to `/admin/`; it opens the status page
//! only, never the JSON admin API (which keeps its bearer token).
//!
//! Logout ends the session on this process, not only in the browser: its
//! id goes on a revocation list until the session would have expired
//! anyway ([`Sessions`]). The list is bounded: only a valid session can be
//! put on it (so only who has the token can grow it), expired entries are
//! dropped, and at [`MAX_REVOKED`] it is emptied and the process's session
//! generation moves on, which ends every session this process took.

use super::respond::{self, Body};
use super::{codec, html};
use crate::error::Error;
use crate::secret::Secret;
use hyper::body::Incoming;
use hyper::header::{COOKIE, HeaderMap, HeaderValue, LOCATION, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// The cookie's name.
const COOKIE_NAME: &str = "sluice_admin";
/// How long a login lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A login form is a token and a few bytes of encoding.
const MAX_FORM_BYTES: usize = 4096;
/// Sessions revoked by logout and not yet expired that one process keeps
/// (some 100 bytes each); one more ends every session of the process.
const MAX_REVOKED: usize = 1024;

/// The sessions this process has ended (one per process: [`SESSIONS`]).
#[derive(Default)]
struct Sessions(Mutex<Revoked>);

#[derive(Default)]
struct Revoked {
    /// Session id → when it would have expired (seconds since the epoch).
    ids: HashMap<String, u64>,
    /// Part of every MAC: moving it on ends every session at once.
    generation: u64,
}

/// This process's revocations.
static SESSIONS: std::sync::LazyLock<Sessions> = std::sync::LazyLock::new(Sessions::default);

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

/// The MAC of session `id` of `generation`, ending at `expires` (seconds
/// since the epoch).
fn mac(token: &Secret, generation: u64, id: &str, expires: u64) -> String {
    token
        .mac(
            format!("sluice admin session v2 generation {generation} id {id} until {expires}")
                .as_bytes(),
        )
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new session id, 16 bytes in hex: unique (the process, the time in
/// nanoseconds and a counter) and, keyed by the token, unguessable.
fn new_id(token: &Secret) -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("sluice admin session id {} {nanos} {n}", std::process::id());
    token.mac(seed.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Revoked> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A cookie value for session `id`, ending at `expires`: `v2.EXPIRES.ID.MAC`.
    fn session(&self, token: &Secret, id: &str, expires: u64) -> String {
        let generation = self.lock().generation;
        format!("v2.{expires}.{id}.{}", mac(token, generation, id, expires))
    }

    /// The id and expiry of `value` if it is a session made with `token`
    /// that has not expired nor been revoked. The MAC is compared in
    /// constant time.
    fn valid<'v>(&self, token: &Secret, value: &'v str, now: u64) -> Option<(&'v str, u64)> {
        let mut parts = value.splitn(4, '.');
        let (Some("v2"), Some(expires), Some(id), Some(given)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let expires = expires.parse::<u64>().ok()?;
        // Expired, or further out than a login gives: not one of ours.
        if expires <= now || expires > now + LIFETIME.as_secs() + 60 {
            return None;
        }
        let revoked = self.lock();
        let ours: bool = mac(token, revoked.generation, id, expires)
            .as_bytes()
            .ct_eq(given.as_bytes())
            .into();
        (ours && !revoked.ids.contains_key(id)).then_some((id, expires))
    }

    /// The valid sessions among the request's cookies.
    fn in_request<'h>(
        &self,
        token: &Secret,
        headers: &'h HeaderMap,
    ) -> impl Iterator<Item = (&'h str, u64)> {
        let now = now_s();
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('='))
            .filter_map(move |value| self.valid(token, value, now))
    }

    /// End session `id` (valid until `expires`) on this process.
    fn revoke(&self, id: &str, expires: u64) {
        let now = now_s();
        let mut revoked = self.lock();
        revoked.ids.retain(|_, until| *until > now);
        if revoked.ids.len() >= MAX_REVOKED {
            // Full of live sessions: end them all instead of forgetting one.
            revoked.ids.clear();
            revoked.generation += 1;
            return;
        }
        revoked.ids.insert(id.to_owned(), expires);
    }
}

/// Whether the request carries a session cookie made with `token` that has
/// neither expired nor been ended by a logout.
pub fn has_session(token: &Secret, headers: &HeaderMap) -> bool {
    SESSIONS.in_request(token, headers).next().is_some()
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
    https: bool,
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
    let bytes =
        codec::read_bytes(req, (MAX_FORM_BYTES, body_timeout), "the admin login form").await?;
    let given = serde_urlencoded::from_bytes::<Form>(&bytes)
        .map(|f| f.token)
        .unwrap_or_default();
    if !token.matches(given.as_bytes()) {
        let problem = "That is not the admin token.";
        return Ok((form(StatusCode::UNAUTHORIZED, Some(problem)), false));
    }
    let id = new_id(token);
    let expires = now_s() + LIFETIME.as_secs();
    let cookie = format!(
        "{COOKIE_NAME}={}; Path=/admin/; Max-Age={}; {}",
        SESSIONS.session(token, &id, expires),
        LIFETIME.as_secs(),
        attributes(https)
    );
    let mut resp = see_other("/admin/");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        respond::set(&mut resp, SET_COOKIE, value);
    }
    Ok((resp, true))
}

/// `POST /admin/logout`: the session ends on this process (a copy of the
/// cookie no longer opens the page) and the browser forgets it.
pub fn logout(token: &Secret, headers: &HeaderMap, https: bool) -> Response<Body> {
    let ended: Vec<_> = SESSIONS.in_request(token, headers).collect();
    for (id, expires) in ended {
        SESSIONS.revoke(id, expires);
    }
    let mut resp = see_other("/admin/login");
    let gone = format!(
        "{COOKIE_NAME}=; Path=/admin/; Max-Age=0; {}",
        attributes(https)
    );
    if let Ok(value) = HeaderValue::from_str(&gone) {
        respond::set(&mut resp, SET_COOKIE, value);
    }
    resp
}

/// The cookie's attributes: `Secure` when the gateway serves HTTPS, so a
/// browser never sends the session over a plain connection.
fn attributes(https: bool) -> &'static str {
    if https {
        "HttpOnly; SameSite=Strict; Secure"
    } else {
        "HttpOnly; SameSite=Strict"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(value).unwrap());
        h
    }

    fn valid(sessions: &Sessions, token: &Secret, value: &str, now: u64) -> bool {
        sessions.valid(token, value, now).is_some()
    }

    #[test]
    fn a_session_is_an_id_an_expiry_and_a_mac_never_the_token() {
        let token = Secret::new("s3cret-token");
        let (a, b) = (new_id(&token), new_id(&token));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b, "every login has its own id");
        let value = SESSIONS.session(&token, &a, now_s() + 60);
        assert!(!value.contains("s3cret"));
        assert!(value.starts_with("v2."));
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
        let (sessions, token) = (Sessions::default(), Secret::new("t"));
        let now = now_s();
        let expired = sessions.session(&token, "a1", now - 1);
        let far = sessions.session(&token, "a1", now + LIFETIME.as_secs() * 2);
        let ok = sessions.session(&token, "a1", now + 10);
        // The MAC's last digit changed (to another digit, whatever it was).
        let last = if ok.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &ok[..ok.len() - 1]);
        let moved = ok.replacen(&(now + 10).to_string(), &(now + 20).to_string(), 1);
        let other_id = ok.replacen(".a1.", ".a2.", 1);
        for bad in [
            expired,
            far,
            forged,
            moved,
            other_id,
            "v2.x.y.z".into(),
            String::new(),
        ] {
            assert!(!valid(&sessions, &token, &bad, now), "{bad}");
        }
        assert!(valid(&sessions, &token, &ok, now));
        assert!(!has_session(&token, &HeaderMap::new()));
    }

    #[test]
    fn a_revoked_session_is_refused_and_the_list_stays_bounded() {
        let (sessions, token) = (Sessions::default(), Secret::new("t"));
        let now = now_s();
        let until = now + 100;
        let value = |id: &str| sessions.session(&token, id, until);
        let (first, kept) = (value("first"), value("kept"));
        sessions.revoke("first", until);
        assert!(!valid(&sessions, &token, &first, now), "logged out");
        assert!(
            valid(&sessions, &token, &kept, now),
            "another login lives on"
        );

        // Expired revocations are dropped; the list never passes its cap.
        sessions.revoke("old", now - 1);
        for i in 1..MAX_REVOKED {
            sessions.revoke(&format!("s{i}"), until);
        }
        assert_eq!(sessions.lock().ids.len(), MAX_REVOKED);
        assert!(valid(&sessions, &token, &kept, now));
        // One more: every session of the process ends, the list is empty.
        sessions.revoke("one-more", until);
        assert!(sessions.lock().ids.is_empty());
        assert!(!valid(&sessions, &token, &kept, now));
        assert!(!valid(&sessions, &token, &first, now));
        assert!(
            valid(&sessions, &token, &value("new"), now),
            "a new login works"
        );
    }
}
