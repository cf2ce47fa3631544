//! The one place a Redis client is made, so every connection the gateway
//! opens — the pool's shared lanes, exclusive connections for blocking reads,
//! and with them the client-tracking pushes of the near cache — speaks the
//! same way. What it is made from (the URL's user and password, RESP3, and
//! for `rediss://` `[redis.tls]`'s CA and client certificate) comes checked
//! from the config's `[redis]` section, which `check-config` asks too: a
//! file it accepts builds, and this module only builds.

pub use crate::config::ClientError;
use crate::config::{ReadFrom, RedisConfig};
use redis::cluster::ClusterClient;
use redis::cluster_read_routing::RoundRobinReplicaStrategy;
use redis::{Client, ConnectionAddr, ConnectionInfo, TlsCertificates};

/// A client for `config`, TLS when the URL is `rediss://`. Makes no
/// connection.
pub fn client(config: &RedisConfig) -> Result<Client, ClientError> {
    let (info, certificates) = config.client_parts()?;
    open(config, info, certificates)
}

/// A Redis Cluster client for `config` (`redis.cluster`): it learns the
/// topology from `url` and `seeds` (every one with the same credentials and
/// TLS), and gives up on a node within the command timeout, retrying a
/// redirected or refused command twice at most (a request should fail
/// fast, not wait out the client's default backoff).
///
/// With `reads` [`ReadFrom::Replica`] the client sends read-only commands
/// and pipelines to replicas (round robin), everything else to primaries.
pub fn cluster_client(config: &RedisConfig, reads: ReadFrom) -> Result<ClusterClient, ClientError> {
    install_crypto();
    let mut builder = config
        .cluster_builder()?
        .connection_timeout(config.connect_timeout())
        .response_timeout(config.command_timeout())
        .retries(2)
        .min_retry_wait(10)
        .max_retry_wait(100);
    if reads == ReadFrom::Replica {
        builder = builder.read_routing_strategy(RoundRobinReplicaStrategy::new());
    }
    builder
        .build()
        .map_err(|e| ClientError::url(&config.url, e))
}

/// A client for one node of the cluster (`host:port`), with `url`'s user,
/// password, TLS and `[redis.tls]`: for the commands that need a
/// connection of their own on the node that serves a key.
pub fn node_client(config: &RedisConfig, host: &str, port: u16) -> Result<Client, ClientError> {
    let (info, certificates) = config.client_parts()?;
    let addr = match info.addr() {
        ConnectionAddr::TcpTls { .. } => ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: false,
            tls_params: None,
        },
        _ => ConnectionAddr::Tcp(host.to_owned(), port),
    };
    open(config, info.set_addr(addr), certificates)
}

/// A client for `info`, trusting `[redis.tls]`'s CA when there is one.
fn open(
    config: &RedisConfig,
    info: ConnectionInfo,
    certificates: Option<TlsCertificates>,
) -> Result<Client, ClientError> {
    install_crypto();
    match certificates {
        None => Client::open(info).map_err(|e| ClientError::url(&config.url, e)),
        Some(certificates) => {
            Client::build_with_tls(info, certificates).map_err(|e| ClientError::Tls(e.to_string()))
        }
    }
}

/// rustls needs a process-wide crypto provider before a TLS connection;
/// this build has ring only. Installing twice is refused harmlessly.
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsConfig;
    use crate::config::testing::tls_files;
    use crate::secret::RedisUrl;

    fn config(url: &str, tls: Option<TlsConfig>) -> RedisConfig {
        RedisConfig {
            url: RedisUrl::new(url),
            tls,
            ..RedisConfig::default()
        }
    }

    #[test]
    fn urls_with_users_passwords_and_tls_build_clients() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis://app:pw@db:6379/2",
            "rediss://app:pw@db:6380",
            "redis+unix:///run/redis.sock?user=app&pass=pw",
        ] {
            let made = client(&config(url, None)).unwrap();
            let settings = made.get_connection_info().redis_settings();
            assert_eq!(settings.protocol(), redis::ProtocolVersion::RESP3, "{url}");
        }
        let (_dir, tls) = tls_files();
        assert!(client(&config("rediss://db:6380", Some(tls))).is_ok());
    }

    #[test]
    fn a_node_or_cluster_client_keeps_the_urls_user_and_tls() {
        let (_dir, tls) = tls_files();
        let secure = config("rediss://app:pw@db:6380", Some(tls));
        let node = node_client(&secure, "10.0.0.2", 7001).unwrap();
        let info = node.get_connection_info();
        assert!(
            matches!(info.addr(), ConnectionAddr::TcpTls { host, port: 7001, tls_params: Some(_), .. } if host == "10.0.0.2"),
            "{:?}",
            info.addr()
        );
        assert_eq!(info.redis_settings().username(), Some("app"));
        let plain = node_client(&config("redis://db", None), "10.0.0.2", 7001).unwrap();
        assert!(matches!(
            plain.get_connection_info().addr(),
            ConnectionAddr::Tcp(host, 7001) if host == "10.0.0.2"
        ));
        let cluster = RedisConfig {
            topology: crate::config::Topology::Cluster,
            seeds: vec![RedisUrl::new("rediss://app:pw@db2:6380")],
            ..secure
        };
        assert!(cluster_client(&cluster, ReadFrom::Replica).is_ok());
    }
}
