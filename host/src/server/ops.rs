//! Operational endpoints: liveness, readiness, metrics.

use super::respond::{self, Body};
use crate::error::Error;
use crate::generation::Gateway;
use crate::telemetry::METRICS;
use hyper::{Response, StatusCode};

/// The process serves: nothing else is asked.
pub fn healthz() -> Response<Body> {
    respond::bytes(StatusCode::OK, "text/plain", "ok\n")
}

/// Ready when Redis runs a script (EVALSHA), not merely answers PING.
/// Config and plugins are loaded before the gateway serves at all.
pub async fn readyz(gateway: &Gateway) -> Result<Response<Body>, Error> {
    gateway.ready().await?;
    Ok(respond::bytes(StatusCode::OK, "text/plain", "ready\n"))
}

pub fn metrics(gateway: &Gateway) -> Response<Body> {
    let (open, idle) = gateway.pool_state();
    METRICS
        .pool_connections
        .with_label_values(&["in_use"])
        .set(i64::from(open.saturating_sub(idle)));
    METRICS
        .pool_connections
        .with_label_values(&["idle"])
        .set(i64::from(idle));
    respond::bytes(
        StatusCode::OK,
        "text/plain; version=0.0.4",
        METRICS.render(),
    )
}
