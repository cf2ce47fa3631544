//! `[near_cache]`: the memory the gateway gives to copies of reads (each
//! domain says how long it keeps them).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NearCacheConfig {
    /// Bytes of values the gateway keeps in process for stale reads.
    pub max_bytes: u64,
}

impl Default for NearCacheConfig {
    fn default() -> Self {
        NearCacheConfig {
            max_bytes: 64 << 20,
        }
    }
}
