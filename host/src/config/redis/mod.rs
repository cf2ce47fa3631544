//! `[redis]`: where Redis is and how the gateway talks to it, and what a
//! valid `[redis]` is: the parts every client is made from (the URL as
//! redis-rs' connection info with RESP3, `[redis.tls]`'s files read, a
//! cluster's nodes), checked here, so `check-config` refuses exactly what
//! `store::connect`, which only builds clients from them, could not.

mod tls;

pub use tls::TlsConfig;

use super::ConfigError;
use super::lines::Checker;
use crate::secret::{RedisUrl, redact_urls};
use redis::cluster::ClusterClientBuilder;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, TlsCertificates};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db`, `rediss://...` (TLS) or
    /// `redis+unix:///path/to/socket`. Shown everywhere without its password.
    pub url: RedisUrl,
    /// For a `rediss://` URL: the CA that signed Redis's certificate and,
    /// when Redis asks for one, the gateway's own certificate.
    pub tls: Option<TlsConfig>,
    /// Connections the gateway holds to Redis, all subsystems together.
    pub pool_size: u32,
    /// Of those, how many the request path shares (multiplexed); the rest
    /// serve commands that need a connection of their own.
    pub shared_connections: u32,
    /// How long to wait for a new connection to Redis.
    pub connect_timeout_ms: u64,
    /// How long any command or pipeline may take before the request gets 503.
    pub command_timeout_ms: u64,
    /// `cluster = true`: talk to a Redis Cluster (`url` names any node,
    /// `seeds` may name more); a single Redis otherwise.
    #[serde(rename = "cluster")]
    pub topology: Topology,
    /// More nodes of the cluster to learn its topology from, like `url`.
    pub seeds: Vec<RedisUrl>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: RedisUrl::new("redis://127.0.0.1:6379"),
            tls: None,
            pool_size: 8,
            shared_connections: 2,
            connect_timeout_ms: 2_000,
            command_timeout_ms: 1_000,
            topology: Topology::Single,
            seeds: Vec::new(),
        }
    }
}

/// What Redis is: one server, or a Redis Cluster. Spelled `cluster = true`
/// or `false` in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(from = "bool", into = "bool")]
pub enum Topology {
    #[default]
    Single,
    Cluster,
}

impl From<bool> for Topology {
    fn from(clustered: bool) -> Topology {
        match clustered {
            true => Topology::Cluster,
            false => Topology::Single,
        }
    }
}

impl From<Topology> for bool {
    fn from(t: Topology) -> bool {
        t == Topology::Cluster
    }
}

/// Which nodes of a Redis Cluster serve a domain's reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    #[default]
    Primary,
    Replica,
}

/// Why no client can be made from `[redis]`. Each names the key at fault
/// ([`ClientError::field`]) so the config check can point at its line. No
/// message carries the URL's password or a key file's contents.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("{url:?} is not a Redis URL: {reason}")]
    Url {
        /// Shown without its password.
        url: String,
        reason: String,
    },
    #[error(
        "`#insecure` (no certificate check) is not supported: give Redis's CA in [redis.tls] ca_file"
    )]
    Insecure,
    #[error("[redis.tls] is for rediss:// URLs; this one is {scheme}://")]
    TlsWithoutRediss { scheme: String },
    #[error("cert_file and key_file go together: give both or neither")]
    HalfIdentity,
    #[error(transparent)]
    File(#[from] crate::tls::FileError),
    #[error("the TLS settings were refused: {0}")]
    Tls(String),
}

impl ClientError {
    /// The `[redis]` key the error is about, e.g. `url` or `tls.ca_file`.
    pub fn field(&self) -> &'static str {
        match self {
            ClientError::Url { .. }
            | ClientError::Insecure
            | ClientError::TlsWithoutRediss { .. } => "url",
            ClientError::HalfIdentity => "tls",
            ClientError::File(e) => e.field,
            ClientError::Tls(_) => "tls",
        }
    }

    /// redis-rs' refusal of `url` (or of what was made from it), without
    /// its password.
    pub fn url(url: &RedisUrl, e: redis::RedisError) -> ClientError {
        ClientError::Url {
            url: url.to_string(),
            reason: match url.scheme() {
                "redis" | "rediss" | "redis+unix" | "unix" | "valkey" | "valkeys"
                | "valkey+unix" => url.scrub(&redact_urls(&e.to_string())),
                _ => "expected redis://, rediss:// (TLS) or redis+unix://".into(),
            },
        }
    }
}

impl RedisConfig {
    /// Shared lanes: at least one, never more than the budget.
    pub fn shared_connections(&self) -> usize {
        self.shared_connections.clamp(1, self.pool_size.max(1)) as usize
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }

    /// What a client for `url` is made from: its connection info (user,
    /// password, database; RESP3, so the gateway learns at once when a
    /// connection closes and hears client-tracking invalidations), and
    /// `[redis.tls]`'s certificates when the file gives them.
    pub fn client_parts(&self) -> Result<(ConnectionInfo, Option<TlsCertificates>), ClientError> {
        let info = connection_info(&self.url)?;
        let certificates = self.certificates(uses_tls(&info))?;
        Ok((info, certificates))
    }

    /// A Redis Cluster client's builder: `url` and `seeds` (TCP only: the
    /// cluster names its nodes by IP and port), RESP3, and `[redis.tls]`'s
    /// certificates. The caller adds timeouts and read routing, which
    /// cannot fail; building it makes no connection, and is what checks
    /// what redis-rs alone knows (seeds that differ from `url` in user,
    /// password, database or TLS).
    pub fn cluster_builder(&self) -> Result<ClusterClientBuilder, ClientError> {
        let mut nodes = Vec::new();
        for url in std::iter::once(&self.url).chain(&self.seeds) {
            let info = connection_info(url)?;
            if matches!(info.addr(), ConnectionAddr::Unix(_)) {
                return Err(ClientError::Url {
                    url: url.to_string(),
                    reason: "a cluster is reached over TCP: redis:// or rediss://".into(),
                });
            }
            nodes.push(info);
        }
        let certificates = self.certificates(nodes.iter().any(uses_tls))?;
        let builder = ClusterClientBuilder::new(nodes).use_protocol(redis::ProtocolVersion::RESP3);
        Ok(match certificates {
            Some(certificates) => builder.certs(certificates),
            None => builder,
        })
    }

    /// `[redis.tls]`'s certificates for connections that do (`tls`) or do
    /// not use TLS: none without the table, refused with a URL that is not
    /// `rediss://` (the files would silently go unused).
    fn certificates(&self, tls: bool) -> Result<Option<TlsCertificates>, ClientError> {
        match (&self.tls, tls) {
            (None, _) => Ok(None),
            (Some(_), false) => Err(ClientError::TlsWithoutRediss {
                scheme: self.url.scheme().to_owned(),
            }),
            (Some(files), true) => files.certificates().map(Some),
        }
    }

    /// The parts every client is made from, and a pool of at least one.
    pub(super) fn check(&self, at: &Checker) -> Result<(), ConfigError> {
        let refused = |e: ClientError| at.invalid(e.field(), e.to_string());
        self.client_parts().map_err(refused)?;
        if self.topology == Topology::Cluster {
            self.cluster_builder()
                .and_then(|b| b.build().map_err(|e| ClientError::url(&self.url, e)))
                .map_err(refused)?;
        }
        if self.pool_size == 0 {
            return Err(at.invalid("pool_size", "must be at least 1"));
        }
        Ok(())
    }
}

/// What the gateway says of `url` when it is refused (empty when it is
/// taken): for the property test that no mistyped URL shows its password.
#[cfg(test)]
pub(crate) fn url_refusal(url: &RedisUrl) -> String {
    connection_info(url)
        .err()
        .map_or(String::new(), |e| e.to_string())
}

/// `url`'s connection info with RESP3; `#insecure` refused.
fn connection_info(url: &RedisUrl) -> Result<ConnectionInfo, ClientError> {
    let info = url
        .expose()
        .into_connection_info()
        .map_err(|e| ClientError::url(url, e))?;
    if matches!(info.addr(), ConnectionAddr::TcpTls { insecure: true, .. }) {
        return Err(ClientError::Insecure);
    }
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    Ok(info.set_redis_settings(resp3))
}

fn uses_tls(info: &ConnectionInfo) -> bool {
    matches!(info.addr(), ConnectionAddr::TcpTls { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::config::testing::{PATH, refusal};
    use std::path::Path;

    fn config(url: &str) -> RedisConfig {
        RedisConfig {
            url: RedisUrl::new(url),
            ..RedisConfig::default()
        }
    }

    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        let e = config("http://u:planted@x").client_parts().unwrap_err();
        assert_eq!(e.field(), "url");
        assert_eq!(
            e.to_string(),
            "\"http://u:***@x\" is not a Redis URL: expected redis://, rediss:// (TLS) or redis+unix://"
        );
        let e = config("rediss://db:6380#insecure")
            .client_parts()
            .unwrap_err();
        assert!(matches!(e, ClientError::Insecure), "{e}");
    }

    #[test]
    fn an_invalid_redis_url_is_refused_on_its_line() {
        let text = "[plugins]\ndir = \"plugins\"\n\n[redis]\n# url = \"redis://x\"\npool_size = 4\nurl = \"http://x\"\n";
        assert_eq!(
            refusal(text),
            "conf/sluice.toml:7: redis.url: \"http://x\" is not a Redis URL: expected redis://, rediss:// (TLS) or redis+unix://"
        );
    }

    #[test]
    fn a_rediss_url_with_a_user_is_a_redis_url() {
        let text = "[plugins]\ndir = \"p\"\n[redis]\nurl = \"rediss://app:pw@db:6380/0\"\n";
        let c = Config::parse(text, Path::new(PATH)).unwrap();
        assert_eq!(c.redis.url.to_string(), "rediss://app:***@db:6380/0");
    }

    #[test]
    fn replica_reads_and_a_cluster_over_a_unix_socket_are_refused() {
        let domain =
            "[plugins]\ndir = \"p\"\n[domains.d]\nplugin = \"x\"\nread_from = \"replica\"\n";
        let single = format!("[redis]\nurl = \"redis://127.0.0.1\"\n{domain}");
        assert_eq!(
            refusal(&single),
            "conf/sluice.toml:7: domains.d.read_from: reads from replicas need a Redis Cluster (redis.cluster = true)"
        );
        let cluster = format!("[redis]\nurl = \"redis://127.0.0.1\"\ncluster = true\n{domain}");
        // On a cluster the line passes (what stops this file is its missing plugin).
        let on_cluster = refusal(&cluster);
        assert!(!on_cluster.contains("read_from"), "{on_cluster}");
        let unix =
            "[redis]\nurl = \"redis+unix:///tmp/r.sock\"\ncluster = true\n[plugins]\ndir = \"p\"\n";
        let e = refusal(unix);
        assert!(e.contains("redis.url") && e.contains("over TCP"), "{e}");
    }

    #[test]
    fn a_clusters_seeds_share_the_urls_credentials() {
        // What redis-rs refuses when the cluster client is built.
        let text = "[plugins]\ndir = \"p\"\n[redis]\nurl = \"redis://app:pw@a:7000\"\ncluster = true\nseeds = [\"redis://app:other@b:7000\"]\n";
        let e = refusal(text);
        assert!(e.starts_with(&format!("{PATH}:4: redis.url: ")), "{e}");
        assert!(
            e.contains("different password") && !e.contains("other"),
            "{e}"
        );
    }

    #[test]
    fn a_zero_pool_is_refused() {
        let text =
            "[redis]\nurl = \"redis://127.0.0.1\"\npool_size = 0\n\n[plugins]\ndir = \"p\"\n";
        assert_eq!(
            refusal(text),
            "conf/sluice.toml:3: redis.pool_size: must be at least 1"
        );
    }

    #[test]
    fn shared_connections_stay_within_the_pool() {
        let redis = |pool_size, shared_connections| RedisConfig {
            pool_size,
            shared_connections,
            ..RedisConfig::default()
        };
        assert_eq!(redis(8, 0).shared_connections(), 1);
        assert_eq!(redis(4, 9).shared_connections(), 4);
        assert_eq!(redis(8, 3).shared_connections(), 3);
    }
}
