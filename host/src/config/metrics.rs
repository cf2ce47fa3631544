//! `[metrics]`: how often Redis's own figures are read.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// How often Redis's INFO is read into `redis_*` metrics.
    pub info_interval_ms: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            info_interval_ms: 5_000,
        }
    }
}
