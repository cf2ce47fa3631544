//! The path, parsed once into a [`Route`]: which handler serves it, its
//! metric labels and the methods it allows. Handlers receive what the path
//! held (decoded); they never look at the path again.

use crate::auth::{Need, Right};
use crate::error::Error;
use crate::namespace::stream_domain;
use hyper::Method;
use percent_encoding::percent_decode_str;

/// Every route of the API (docs/api.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v1/cache/{domain}/{key}` (the key may contain `/`).
    Cache {
        domain: String,
        key: String,
    },
    /// `/v1/mget/{domain}`
    Mget {
        domain: String,
    },
    /// `/v1/mset/{domain}`
    Mset {
        domain: String,
    },
    /// `/v1/events/{domain}`
    Events {
        domain: String,
    },
    /// `/v1/streams/{stream}/groups/{group}[/messages|/ack|/claim]`
    Stream {
        stream: String,
        group: String,
        action: GroupAction,
    },
    /// `/v1/ratelimit/{policy}/{subject}`
    RateLimit {
        policy: String,
        subject: String,
    },
    Healthz,
    Readyz,
    Metrics,
    /// `/openapi.json`: docs/openapi.json, the API this router serves.
    OpenApi,
    /// `/admin/…`: the admin API and the status page.
    Admin(Admin),
}

/// What a stream route does with its consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAction {
    Create,
    Messages,
    Ack,
    Claim,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    Plugins,
    Reload,
    Config,
    /// `/admin/`: the status page (HTML) for a person with a browser.
    Status,
    /// `/admin/login`: the form that turns the token into a session cookie.
    Login,
    /// `/admin/logout`: ends the browser's session.
    Logout,
}

/// Every path the router knows, as a template, and the methods it answers
/// (as `Allow` spells them): the table docs/openapi.json is held against,
/// and that the parser is tested against (each template, filled in, parses
/// to a route of that template and those methods). Read by tests only.
#[cfg_attr(not(test), allow(dead_code))]
pub const TEMPLATES: &[(&str, &str)] = &[
    ("/v1/cache/{domain}/{key}", "GET, HEAD, PUT, DELETE"),
    ("/v1/mget/{domain}", "POST"),
    ("/v1/mset/{domain}", "POST"),
    ("/v1/events/{domain}", "POST"),
    ("/v1/streams/{stream}/groups/{group}", "POST"),
    ("/v1/streams/{stream}/groups/{group}/messages", "GET"),
    ("/v1/streams/{stream}/groups/{group}/ack", "POST"),
    ("/v1/streams/{stream}/groups/{group}/claim", "POST"),
    ("/v1/ratelimit/{policy}/{subject}", "POST"),
    ("/healthz", "GET, HEAD"),
    ("/readyz", "GET, HEAD"),
    ("/metrics", "GET, HEAD"),
    ("/openapi.json", "GET, HEAD"),
    ("/admin/plugins", "GET, HEAD"),
    ("/admin/reload", "POST"),
    ("/admin/config", "GET, HEAD"),
    ("/admin/", "GET, HEAD"),
    ("/admin/login", "GET, HEAD, POST"),
    ("/admin/logout", "POST"),
];

const GET: &[Method] = &[Method::GET, Method::HEAD];
/// A stream read moves entries to the consumer's pending list: never for a HEAD.
const GET_ONLY: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];
const CACHE: &[Method] = &[Method::GET, Method::HEAD, Method::PUT, Method::DELETE];
/// The login form is shown (GET) and sent (POST) at one address.
const FORM: &[Method] = &[Method::GET, Method::HEAD, Method::POST];

impl Route {
    /// Parse a request path; segments are percent-decoded (and must be UTF-8).
    pub fn parse(path: &str) -> Result<Route, Error> {
        if let Some(rest) = path.strip_prefix("/v1/") {
            let (family, rest) = rest.split_once('/').unwrap_or((rest, ""));
            return v1(family, rest);
        }
        Ok(match path {
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            "/metrics" => Route::Metrics,
            "/openapi.json" => Route::OpenApi,
            "/admin/plugins" => Route::Admin(Admin::Plugins),
            "/admin/reload" => Route::Admin(Admin::Reload),
            "/admin/config" => Route::Admin(Admin::Config),
            "/admin/" => Route::Admin(Admin::Status),
            "/admin/login" => Route::Admin(Admin::Login),
            "/admin/logout" => Route::Admin(Admin::Logout),
            _ => return Err(Error::NoRoute),
        })
    }

    /// The route's path template, as [`TEMPLATES`] and docs/openapi.json
    /// spell it (a span's `http.route`; the tests hold the two together).
    pub fn template(&self) -> &'static str {
        match self {
            Route::Cache { .. } => "/v1/cache/{domain}/{key}",
            Route::Mget { .. } => "/v1/mget/{domain}",
            Route::Mset { .. } => "/v1/mset/{domain}",
            Route::Events { .. } => "/v1/events/{domain}",
            Route::Stream { action, .. } => match action {
                GroupAction::Create => "/v1/streams/{stream}/groups/{group}",
                GroupAction::Messages => "/v1/streams/{stream}/groups/{group}/messages",
                GroupAction::Ack => "/v1/streams/{stream}/groups/{group}/ack",
                GroupAction::Claim => "/v1/streams/{stream}/groups/{group}/claim",
            },
            Route::RateLimit { .. } => "/v1/ratelimit/{policy}/{subject}",
            Route::Healthz => "/healthz",
            Route::Readyz => "/readyz",
            Route::Metrics => "/metrics",
            Route::OpenApi => "/openapi.json",
            Route::Admin(admin) => admin.path(),
        }
    }

    /// The route's name in metrics (a fixed set).
    pub fn label(&self) -> &'static str {
        match self {
            Route::Cache { .. } => "cache",
            Route::Mget { .. } => "mget",
            Route::Mset { .. } => "mset",
            Route::Events { .. } => "events",
            Route::Stream { .. } => "streams",
            Route::RateLimit { .. } => "ratelimit",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::OpenApi => "openapi",
            Route::Admin(_) => "admin",
        }
    }

    /// The domain (or rate-limit policy) the route names, for metric labels
    /// once checked against the configuration.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Route::Cache { domain, .. }
            | Route::Mget { domain }
            | Route::Mset { domain }
            | Route::Events { domain } => Some(domain),
            Route::Stream { stream, .. } => stream_domain(stream),
            Route::RateLimit { policy, .. } => Some(policy),
            _ => None,
        }
    }

    /// The right a client's key must hold for `method` here, and on what:
    /// `None` for the routes open to anyone (health, readiness, metrics) and
    /// the admin API (its own token). A stream belongs to the domain its
    /// name starts with (`{domain}:`), as `Gateway::group` decides.
    pub fn needs(&self, method: &Method) -> Option<Need<'_>> {
        let (right, subject) = match self {
            Route::Cache { domain, .. } if method == Method::GET || method == Method::HEAD => {
                (Right::Read, domain.as_str())
            }
            Route::Cache { domain, .. } | Route::Mset { domain } => (Right::Write, domain.as_str()),
            Route::Mget { domain } => (Right::Read, domain.as_str()),
            Route::Events { domain } => (Right::Events, domain.as_str()),
            // A stream in no domain's namespace needs a right on its whole
            // name, which no scope can hold (names have no ':').
            Route::Stream { stream, .. } => {
                (Right::Events, stream_domain(stream).unwrap_or(stream))
            }
            Route::RateLimit { policy, .. } => (Right::RateLimits, policy.as_str()),
            Route::Healthz | Route::Readyz | Route::Metrics | Route::OpenApi | Route::Admin(_) => {
                return None;
            }
        };
        Some(Need { right, subject })
    }

    /// The methods it answers, and how `Allow` spells them.
    pub fn methods(&self) -> (&'static [Method], &'static str) {
        match self {
            Route::Cache { .. } => (CACHE, "GET, HEAD, PUT, DELETE"),
            Route::Stream {
                action: GroupAction::Messages,
                ..
            } => (GET_ONLY, "GET"),
            Route::Healthz
            | Route::Readyz
            | Route::Metrics
            | Route::OpenApi
            | Route::Admin(Admin::Plugins | Admin::Config | Admin::Status) => (GET, "GET, HEAD"),
            Route::Admin(Admin::Login) => (FORM, "GET, HEAD, POST"),
            _ => (POST, "POST"),
        }
    }

    /// Whether `method` is allowed here; the 405 names those that are.
    pub fn allows(&self, method: &Method) -> Result<(), Error> {
        let (allowed, allow) = self.methods();
        if allowed.contains(method) {
            Ok(())
        } else {
            Err(Error::MethodNotAllowed(allow))
        }
    }
}

impl Admin {
    /// Its path, for the audit line and the route table.
    pub fn path(self) -> &'static str {
        match self {
            Admin::Plugins => "/admin/plugins",
            Admin::Reload => "/admin/reload",
            Admin::Config => "/admin/config",
            Admin::Status => "/admin/",
            Admin::Login => "/admin/login",
            Admin::Logout => "/admin/logout",
        }
    }
}

fn v1(family: &str, rest: &str) -> Result<Route, Error> {
    let two = |what: &str| -> Result<(String, String), Error> {
        let (a, b) = rest
            .split_once('/')
            .filter(|(a, b)| !a.is_empty() && !b.is_empty())
            .ok_or_else(|| Error::BadRequest(format!("expected /v1/{family}/{what}")))?;
        Ok((decode(a)?, decode(b)?))
    };
    let one = || -> Result<String, Error> {
        if rest.is_empty() || rest.contains('/') {
            return Err(Error::BadRequest(format!(
                "expected /v1/{family}/{{domain}}"
            )));
        }
        decode(rest)
    };
    Ok(match family {
        "cache" => {
            let (domain, key) = two("{domain}/{key}")?;
            Route::Cache { domain, key }
        }
        "mget" => Route::Mget { domain: one()? },
        "mset" => Route::Mset { domain: one()? },
        "events" => Route::Events { domain: one()? },
        "ratelimit" => {
            let (policy, subject) = two("{policy}/{subject}")?;
            Route::RateLimit { policy, subject }
        }
        "streams" => {
            let parts: Vec<&str> = rest.split('/').collect();
            let (stream, group, action) = match parts[..] {
                [s, "groups", g] => (s, g, GroupAction::Create),
                [s, "groups", g, "messages"] => (s, g, GroupAction::Messages),
                [s, "groups", g, "ack"] => (s, g, GroupAction::Ack),
                [s, "groups", g, "claim"] => (s, g, GroupAction::Claim),
                _ => ("", "", GroupAction::Create),
            };
            if stream.is_empty() || group.is_empty() {
                return Err(Error::BadRequest(
                    "expected /v1/streams/{stream}/groups/{group}[/messages|/ack|/claim]".into(),
                ));
            }
            Route::Stream {
                stream: decode(stream)?,
                group: decode(group)?,
                action,
            }
        }
        _ => return Err(Error::NoRoute),
    })
}

/// A percent-decoded path segment; it must be UTF-8.
fn decode(segment: &str) -> Result<String, Error> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::BadRequest(format!("{segment:?} is not UTF-8 once decoded")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str) -> Route {
        Route::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn cache_keys_are_decoded_and_may_hold_slashes() {
        assert_eq!(
            parse("/v1/cache/price/btc%3Ausd/2024"),
            Route::Cache {
                domain: "price".into(),
                key: "btc:usd/2024".into()
            }
        );
        assert!(matches!(
            Route::parse("/v1/cache/price"),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            Route::parse("/v1/cache/price/"),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            Route::parse("/v1/cache/d/%ff"),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn every_family_parses_to_its_route() {
        assert_eq!(
            parse("/v1/mget/cache"),
            Route::Mget {
                domain: "cache".into()
            }
        );
        assert_eq!(
            parse("/v1/mset/cache"),
            Route::Mset {
                domain: "cache".into()
            }
        );
        assert_eq!(
            parse("/v1/events/arb"),
            Route::Events {
                domain: "arb".into()
            }
        );
        assert_eq!(
            parse("/v1/ratelimit/global/client%207"),
            Route::RateLimit {
                policy: "global".into(),
                subject: "client 7".into()
            }
        );
        assert_eq!(parse("/healthz"), Route::Healthz);
        assert_eq!(parse("/readyz"), Route::Readyz);
        assert_eq!(parse("/metrics"), Route::Metrics);
        assert_eq!(parse("/admin/reload"), Route::Admin(Admin::Reload));
        assert!(matches!(
            Route::parse("/v1/mget/a/b"),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(Route::parse("/v2/cache/a/b"), Err(Error::NoRoute)));
        assert!(matches!(Route::parse("/v1/nothing/a"), Err(Error::NoRoute)));
        assert!(matches!(Route::parse("/admin/other"), Err(Error::NoRoute)));
    }

    #[test]
    fn stream_routes_name_their_group_action() {
        let stream = |action| Route::Stream {
            stream: "arb:opp".into(),
            group: "g".into(),
            action,
        };
        assert_eq!(
            parse("/v1/streams/arb:opp/groups/g"),
            stream(GroupAction::Create)
        );
        assert_eq!(
            parse("/v1/streams/arb:opp/groups/g/messages"),
            stream(GroupAction::Messages)
        );
        assert_eq!(
            parse("/v1/streams/arb:opp/groups/g/ack"),
            stream(GroupAction::Ack)
        );
        assert_eq!(
            parse("/v1/streams/arb:opp/groups/g/claim"),
            stream(GroupAction::Claim)
        );
        for bad in [
            "/v1/streams/arb:opp",
            "/v1/streams/arb:opp/groups",
            "/v1/streams/arb:opp/groups/g/other",
            "/v1/streams/arb:opp/groups/g/ack/more",
            "/v1/streams/arb:opp/members/g",
        ] {
            assert!(
                matches!(Route::parse(bad), Err(Error::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn routes_carry_labels_and_allowed_methods() {
        let cache = parse("/v1/cache/price/k");
        assert_eq!((cache.label(), cache.subject()), ("cache", Some("price")));
        assert!(cache.allows(&Method::DELETE).is_ok());
        assert!(matches!(
            cache.allows(&Method::POST),
            Err(Error::MethodNotAllowed("GET, HEAD, PUT, DELETE"))
        ));
        let read = parse("/v1/streams/arb:x/groups/g/messages");
        assert_eq!((read.label(), read.subject()), ("streams", Some("arb")));
        assert!(read.allows(&Method::GET).is_ok());
        assert!(read.allows(&Method::POST).is_err());
        assert!(
            read.allows(&Method::HEAD).is_err(),
            "a read has effects: no HEAD"
        );
        let mget = parse("/v1/mget/cache");
        assert!(matches!(
            mget.allows(&Method::GET),
            Err(Error::MethodNotAllowed("POST"))
        ));
        assert!(parse("/metrics").allows(&Method::HEAD).is_ok());
        assert_eq!(parse("/admin/plugins").subject(), None);
    }

    /// A path of `template` with sample segments (a stream of a domain).
    pub(crate) fn sample(template: &str) -> String {
        template
            .replace("{domain}", "cache")
            .replace("{key}", "a/b:c")
            .replace("{stream}", "cache:ev")
            .replace("{group}", "g")
            .replace("{policy}", "global")
            .replace("{subject}", "client-7")
    }

    #[test]
    fn every_template_parses_to_its_route_with_its_methods() {
        for (template, allow) in TEMPLATES {
            let route = parse(&sample(template));
            assert_eq!(route.template(), *template);
            let (methods, spelled) = route.methods();
            assert_eq!(spelled, *allow, "{template}");
            let listed: Vec<&str> = allow.split(", ").collect();
            assert_eq!(
                methods.iter().map(Method::as_str).collect::<Vec<_>>(),
                listed,
                "{template}: Allow and the methods disagree"
            );
        }
        let unique: std::collections::BTreeSet<_> = TEMPLATES.iter().map(|(t, _)| t).collect();
        assert_eq!(unique.len(), TEMPLATES.len(), "a template listed twice");
    }

    #[test]
    fn each_data_route_needs_one_right_on_its_domain_or_policy() {
        let need = |path: &str, method: Method| {
            let route = parse(path);
            route
                .needs(&method)
                .map(|n| (n.right, n.subject.to_owned()))
        };
        let on = |right, subject: &str| Some((right, subject.to_owned()));
        let cache = "/v1/cache/price/btc:usd";
        assert_eq!(need(cache, Method::GET), on(Right::Read, "price"));
        assert_eq!(need(cache, Method::HEAD), on(Right::Read, "price"));
        assert_eq!(need(cache, Method::PUT), on(Right::Write, "price"));
        assert_eq!(need(cache, Method::DELETE), on(Right::Write, "price"));
        assert_eq!(
            need("/v1/mget/cache", Method::POST),
            on(Right::Read, "cache")
        );
        assert_eq!(
            need("/v1/mset/cache", Method::POST),
            on(Right::Write, "cache")
        );
        assert_eq!(
            need("/v1/events/arbitrage", Method::POST),
            on(Right::Events, "arbitrage")
        );
        for action in ["", "/messages", "/ack", "/claim"] {
            let path = format!("/v1/streams/arbitrage:opp:btc/groups/g{action}");
            assert_eq!(
                need(&path, Method::POST),
                on(Right::Events, "arbitrage"),
                "{path}"
            );
        }
        assert_eq!(
            need("/v1/streams/nocolon/groups/g", Method::POST),
            on(Right::Events, "nocolon"),
            "no domain prefix: the whole name, which no scope lists as a domain"
        );
        assert_eq!(
            need("/v1/ratelimit/global/user%201", Method::POST),
            on(Right::RateLimits, "global")
        );
        for open in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/admin/reload",
            "/admin/",
        ] {
            assert_eq!(need(open, Method::GET), None, "{open}");
        }
    }
}
