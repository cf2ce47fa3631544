//! `[plugins]` and `[scripts]`: where the code the gateway runs for its
//! domains comes from, WebAssembly policies and the Lua scripts plans call.
//! A missing plugin file is refused with the domain that names it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// The folder holding `NAME.wasm` files, relative to the config file.
    pub dir: PathBuf,
    /// Reload when a plugin file or the config file changes.
    #[serde(default = "yes")]
    pub watch: bool,
    /// Keys whose access statistics the host keeps (domains with
    /// `track_access`); the least used are forgotten.
    #[serde(default = "default_access_stats_keys")]
    pub access_stats_keys: u64,
    /// Linear memory of every plugin instance alive, all domains together
    /// (warm ones and those serving a call). Past it no instance grows or
    /// is made: that call gets 503, idle instances are let go first. A
    /// plugin one instance of which needs more is refused at load.
    #[serde(default = "default_max_instance_memory_mb")]
    pub max_instance_memory_mb: u64,
    /// Where compiled plugins are kept (relative to the config file;
    /// created with mode 0700): a start or a reload then compiles each
    /// version of a plugin once. Unset: every load compiles.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

fn default_max_instance_memory_mb() -> u64 {
    1024
}

fn yes() -> bool {
    true
}

fn default_access_stats_keys() -> u64 {
    100_000
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScriptsConfig {
    /// A folder of `NAME.lua` scripts plans may call by name (relative to
    /// this file); the built-in ones are always there.
    pub dir: Option<PathBuf>,
}
