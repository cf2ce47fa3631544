//! `[tracing]`: request traces, exported as OpenTelemetry spans over
//! OTLP/HTTP (protobuf) to a collector. Off unless `otlp_endpoint` is set;
//! read at start (a change needs a restart, which a reload reports).

use super::ConfigError;
use super::lines::Checker;
use serde::{Deserialize, Serialize};

/// The longest `service_name` (it is sent with every batch of spans).
const MAX_SERVICE_NAME: usize = 128;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// The collector's OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`:
    /// spans are POSTed to `{otlp_endpoint}/v1/traces`. Unset: no traces,
    /// and requests pay nothing for them.
    pub otlp_endpoint: Option<String>,
    /// The share of new traces recorded (0.0–1.0). A request whose caller
    /// sent a `traceparent` follows the caller's sampled flag instead.
    pub sample_ratio: f64,
    /// `service.name` of every span.
    pub service_name: String,
    /// How often queued spans are sent (sooner when 512 are waiting).
    pub export_interval_ms: u64,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            otlp_endpoint: None,
            sample_ratio: 1.0,
            service_name: "sluice".into(),
            export_interval_ms: 1_000,
        }
    }
}

impl TracingConfig {
    /// Where spans go: the endpoint with `/v1/traces` (a trailing `/` of
    /// the endpoint dropped); `None` when tracing is off.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.as_deref()?;
        Some(format!("{}/v1/traces", base.trim_end_matches('/')))
    }

    pub(super) fn check(&self, at: &Checker) -> Result<(), ConfigError> {
        if let Some(endpoint) = &self.otlp_endpoint {
            endpoint_refusal(endpoint).map_or(Ok(()), |m| Err(at.invalid("otlp_endpoint", m)))?;
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(at.invalid("sample_ratio", "must be in [0, 1]"));
        }
        let name = &self.service_name;
        if name.is_empty() || name.len() > MAX_SERVICE_NAME || name.chars().any(|c| c.is_control())
        {
            return Err(at.invalid(
                "service_name",
                format!("must be 1 to {MAX_SERVICE_NAME} bytes without control characters"),
            ));
        }
        if !(10..=60_000).contains(&self.export_interval_ms) {
            return Err(at.invalid("export_interval_ms", "must be in 10..=60000"));
        }
        Ok(())
    }
}

/// What is wrong with an endpoint, if anything: an `http://` URL with a
/// host, no query, no credentials (spans go in clear to a collector beside
/// the gateway, as the collector's own default port 4318 serves).
fn endpoint_refusal(endpoint: &str) -> Option<String> {
    let Ok(uri) = endpoint.parse::<hyper::Uri>() else {
        return Some(format!("{endpoint:?} is not a URL"));
    };
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Some(
                "https is not supported: send spans to a collector (or its agent) over http, which forwards them with TLS".into(),
            );
        }
        _ => return Some(format!("{endpoint:?}: must start with http://")),
    }
    match uri.authority() {
        None => Some(format!("{endpoint:?} names no host")),
        Some(a) if a.as_str().contains('@') => {
            Some("must not hold credentials (use OTEL_EXPORTER_OTLP_HEADERS)".into())
        }
        Some(_) if uri.query().is_some() => Some(format!("{endpoint:?}: no query allowed")),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::super::testing::{PATH, refusal};
    use std::path::Path;

    fn parse(tracing: &str) -> Config {
        let text = format!("[plugins]\ndir = \"p\"\n[tracing]\n{tracing}");
        Config::parse(&text, Path::new(PATH)).unwrap()
    }

    #[test]
    fn tracing_is_off_by_default_and_its_defaults_hold() {
        let c = Config::parse("[plugins]\ndir = \"p\"\n", Path::new(PATH)).unwrap();
        let t = &c.tracing;
        assert_eq!(t.otlp_endpoint, None);
        assert_eq!(t.traces_url(), None);
        assert_eq!(
            (
                t.sample_ratio,
                t.service_name.as_str(),
                t.export_interval_ms
            ),
            (1.0, "sluice", 1_000)
        );
    }

    #[test]
    fn spans_go_to_the_endpoint_s_v1_traces() {
        for (endpoint, url) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            ("http://gw/otlp", "http://gw/otlp/v1/traces"),
        ] {
            let c = parse(&format!("otlp_endpoint = \"{endpoint}\"\n"));
            assert_eq!(c.tracing.traces_url().as_deref(), Some(url));
        }
        let c =
            parse("otlp_endpoint = \"http://c:4318\"\nsample_ratio = 0\nservice_name = \"edge\"\n");
        assert_eq!(
            (c.tracing.sample_ratio, c.tracing.service_name.as_str()),
            (0.0, "edge")
        );
    }

    #[test]
    fn each_bad_tracing_value_is_refused_on_its_line() {
        for (line, expected) in [
            (
                "otlp_endpoint = \"collector:4318\"",
                "otlp_endpoint: \"collector:4318\": must start with http://",
            ),
            (
                "otlp_endpoint = \"https://c:4318\"",
                "otlp_endpoint: https is not supported",
            ),
            (
                "otlp_endpoint = \"http://u:p@c:4318\"",
                "otlp_endpoint: must not hold credentials",
            ),
            (
                "otlp_endpoint = \"http://c:4318/?x=1\"",
                "otlp_endpoint: \"http://c:4318/?x=1\": no query allowed",
            ),
            (
                "otlp_endpoint = \"not a url\"",
                "otlp_endpoint: \"not a url\" is not a URL",
            ),
            ("sample_ratio = 1.5", "sample_ratio: must be in [0, 1]"),
            ("sample_ratio = -0.1", "sample_ratio: must be in [0, 1]"),
            ("sample_ratio = nan", "sample_ratio: must be in [0, 1]"),
            (
                "service_name = \"\"",
                "service_name: must be 1 to 128 bytes",
            ),
            (
                "export_interval_ms = 0",
                "export_interval_ms: must be in 10..=60000",
            ),
        ] {
            let text = format!("[plugins]\ndir = \"p\"\n[tracing]\n\n{line}\n");
            let e = refusal(&text);
            assert!(
                e.starts_with(&format!("{PATH}:5: tracing.{expected}")),
                "{line}: {e}"
            );
        }
        let text = "[plugins]\ndir = \"p\"\n[tracing]\nendpoint = \"http://c\"\n";
        assert!(refusal(text).contains("unknown field `endpoint`"));
    }
}
