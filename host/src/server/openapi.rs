//! `GET /openapi.json`: the OpenAPI 3.1 document of this API,
//! docs/openapi.json, compiled into the binary so that what a gateway serves
//! describes that gateway. The JSON file is the source (no YAML crate, no
//! build step); a test holds its paths and methods against the router's
//! [`TEMPLATES`](super::route::TEMPLATES). Open like `/healthz`: it says
//! nothing the README does not.

use super::respond::{self, Body};
use hyper::{Response, StatusCode};

/// The document, as docs/openapi.json holds it.
pub const DOCUMENT: &str = include_str!("../../../docs/openapi.json");

pub fn document() -> Response<Body> {
    respond::bytes(StatusCode::OK, "application/json", DOCUMENT)
}

#[cfg(test)]
mod tests {
    use super::super::route::{Route, TEMPLATES};
    use super::*;
    use std::collections::BTreeSet;

    fn document() -> serde_json::Value {
        serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON")
    }

    /// (template, METHOD) pairs.
    type Operations = BTreeSet<(String, String)>;

    #[test]
    fn the_document_describes_every_route_and_method_and_nothing_else() {
        let doc = document();
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1."))
        );
        let mut documented = Operations::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                if method != "parameters" {
                    documented.insert((path.clone(), method.to_uppercase()));
                }
            }
        }
        let mut routed = Operations::new();
        for (template, allow) in TEMPLATES {
            for method in allow.split(", ") {
                routed.insert((template.to_string(), method.to_owned()));
            }
        }
        let missing: Vec<_> = routed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routed).collect();
        assert!(
            missing.is_empty(),
            "routed, not in docs/openapi.json: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "in docs/openapi.json, not routed: {extra:?}"
        );
        // Every documented path is one the parser takes as that template.
        for (path, _) in &documented {
            let filled = path
                .replace("{domain}", "d")
                .replace("{key}", "k")
                .replace("{stream}", "d:s")
                .replace("{group}", "g")
                .replace("{policy}", "p")
                .replace("{subject}", "s");
            let route = Route::parse(&filled).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(route.template(), path);
        }
    }

    /// The problem types the document lists are those docs/api.md's
    /// table of errors names.
    #[test]
    fn the_problem_types_are_the_documented_ones() {
        let doc = document();
        let listed: BTreeSet<String> =
            doc["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
                .as_array()
                .expect("an enum of problem types")
                .iter()
                .filter_map(|v| v.as_str()?.strip_prefix("urn:sluice:problem:"))
                .map(str::to_owned)
                .collect();
        let api = include_str!("../../../docs/api.md");
        let table = api
            .split("## Errors")
            .nth(1)
            .expect("docs/api.md has Errors");
        let table = table.split("\n## ").next().unwrap_or(table);
        let named: BTreeSet<String> = table
            .lines()
            .filter_map(|l| l.split('|').nth(2))
            .flat_map(|kinds| kinds.split(','))
            .filter_map(|k| Some(k.trim().strip_prefix('`')?.strip_suffix('`')?.to_owned()))
            .collect();
        assert!(named.len() > 20, "{named:?}");
        assert_eq!(listed, named);
    }
}
