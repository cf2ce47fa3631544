//! Operational endpoints: liveness, readiness, metrics.

use super::Body;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::store::scripts::READY;
use crate::telemetry::METRICS;
use hyper::Response;
use hyper::header::CONTENT_TYPE;

/// The process serves: nothing else is asked.
pub fn healthz() -> Response<Body> {
    Response::new(Body::from("ok\n"))
}

/// Ready when Redis runs a script (EVALSHA), not merely answers PING: a
/// gateway whose scripts fail is not ready. Config and plugins are loaded
/// before the gateway serves at all.
pub async fn readyz(gateway: &Gateway) -> Result<Response<Body>, Error> {
    gateway.store.eval(READY, &[], &[] as &[String]).await?;
    Ok(Response::new(Body::from("ready\n")))
}

pub fn metrics(gateway: &Gateway) -> Response<Body> {
    let (open, idle) = gateway.store.pool().state();
    METRICS
        .pool_connections
        .with_label_values(&["in_use"])
        .set(i64::from(open.saturating_sub(idle)));
    METRICS
        .pool_connections
        .with_label_values(&["idle"])
        .set(i64::from(idle));
    Response::builder()
        .header(CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(Body::from(METRICS.render()))
        .unwrap_or_default()
}
