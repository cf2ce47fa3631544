//! The one place a Redis client is made, so every connection the gateway
//! opens — the pool's shared lanes, exclusive connections for blocking reads,
//! and with them the client-tracking pushes of the near cache — speaks the
//! same way: the URL's user and password (ACL), RESP3, and for `rediss://`
//! TLS with `[redis.tls]`'s CA and, when Redis asks for one, client
//! certificate. `check-config` calls it too: a file it accepts builds.

use crate::config::{ReadFrom, RedisConfig, TlsConfig};
use crate::secret::RedisUrl;
use crate::secret::redact_urls;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_read_routing::RoundRobinReplicaStrategy;
use redis::{Client, ClientTlsConfig, IntoConnectionInfo, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

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
    #[error("{}: {reason}", path.display())]
    File {
        field: &'static str,
        path: PathBuf,
        reason: String,
    },
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
            ClientError::File { field, .. } => field,
            ClientError::Tls(_) => "tls",
        }
    }
}

/// A client for `config`: RESP3 (the gateway learns at once when a
/// connection closes, and hears client-tracking invalidations), TLS when the
/// URL is `rediss://`. Makes no connection.
pub fn client(config: &RedisConfig) -> Result<Client, ClientError> {
    let (info, tls) = connection_info(&config.url)?;
    match (&config.tls, tls) {
        (None, _) => Client::open(info).map_err(|e| bad_url(&config.url, e)),
        (Some(_), false) => Err(ClientError::TlsWithoutRediss {
            scheme: config.url.scheme().to_owned(),
        }),
        (Some(files), true) => Client::build_with_tls(info, certificates(files)?)
            .map_err(|e| ClientError::Tls(e.to_string())),
    }
}

/// A Redis Cluster client for `config` (`redis.cluster`): it learns the
/// topology from `url` and `seeds` (TCP only; every one with the same
/// credentials and TLS), speaks RESP3, and gives up on a node within the
/// command timeout, retrying a redirected or refused command twice at most
/// (a request should fail fast, not wait out the client's default backoff).
///
/// With `reads` [`ReadFrom::Replica`] the client sends read-only commands
/// and pipelines to replicas (round robin), everything else to primaries.
pub fn cluster_client(config: &RedisConfig, reads: ReadFrom) -> Result<ClusterClient, ClientError> {
    let mut nodes = Vec::new();
    let mut tls = false;
    for url in std::iter::once(&config.url).chain(&config.seeds) {
        let (info, secure) = connection_info(url)?;
        if matches!(info.addr(), redis::ConnectionAddr::Unix(_)) {
            return Err(ClientError::Url {
                url: url.to_string(),
                reason: "a cluster is reached over TCP: redis:// or rediss://".into(),
            });
        }
        tls |= secure;
        nodes.push(info);
    }
    let mut builder = ClusterClientBuilder::new(nodes)
        .use_protocol(redis::ProtocolVersion::RESP3)
        .connection_timeout(config.connect_timeout())
        .response_timeout(config.command_timeout())
        .retries(2)
        .min_retry_wait(10)
        .max_retry_wait(100);
    if reads == ReadFrom::Replica {
        builder = builder.read_routing_strategy(RoundRobinReplicaStrategy::new());
    }
    match (&config.tls, tls) {
        (None, _) => {}
        (Some(_), false) => {
            return Err(ClientError::TlsWithoutRediss {
                scheme: config.url.scheme().to_owned(),
            });
        }
        (Some(files), true) => builder = builder.certs(certificates(files)?),
    }
    builder.build().map_err(|e| bad_url(&config.url, e))
}

/// A client for one node of the cluster (`host:port`), with `url`'s user,
/// password, TLS and `[redis.tls]`: for the commands that need a
/// connection of their own on the node that serves a key.
pub fn node_client(config: &RedisConfig, host: &str, port: u16) -> Result<Client, ClientError> {
    let (info, tls) = connection_info(&config.url)?;
    let addr = match tls {
        true => redis::ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: false,
            tls_params: None,
        },
        false => redis::ConnectionAddr::Tcp(host.to_owned(), port),
    };
    let info = info.set_addr(addr);
    match &config.tls {
        Some(files) if tls => Client::build_with_tls(info, certificates(files)?)
            .map_err(|e| ClientError::Tls(e.to_string())),
        _ => Client::open(info).map_err(|e| bad_url(&config.url, e)),
    }
}

/// Why a URL is not a Redis URL, without its password.
fn bad_url(url: &RedisUrl, e: redis::RedisError) -> ClientError {
    ClientError::Url {
        url: url.to_string(),
        reason: match url.scheme() {
            "redis" | "rediss" | "redis+unix" | "unix" | "valkey" | "valkeys" | "valkey+unix" => {
                redact_urls(&e.to_string())
            }
            _ => "expected redis://, rediss:// (TLS) or redis+unix://".into(),
        },
    }
}

/// A URL's connection info with RESP3, and whether it asks for TLS.
fn connection_info(url: &RedisUrl) -> Result<(redis::ConnectionInfo, bool), ClientError> {
    let info = url
        .expose()
        .into_connection_info()
        .map_err(|e| bad_url(url, e))?;
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    let info = info.set_redis_settings(resp3);
    let tls = match info.addr() {
        redis::ConnectionAddr::TcpTls { insecure: true, .. } => return Err(ClientError::Insecure),
        redis::ConnectionAddr::TcpTls { .. } => true,
        _ => false,
    };
    if tls {
        // rustls needs a process-wide crypto provider; this build has ring
        // only. Installing twice is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    Ok((info, tls))
}

/// `[redis.tls]`'s files, read and checked: each must hold what its key says.
fn certificates(tls: &TlsConfig) -> Result<TlsCertificates, ClientError> {
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: pem_certificates("tls.cert_file", cert)?,
            client_key: pem_private_key(key)?,
        }),
        _ => return Err(ClientError::HalfIdentity),
    };
    Ok(TlsCertificates {
        client_tls,
        root_cert: Some(pem_certificates("tls.ca_file", &tls.ca_file)?),
    })
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| ClientError::File {
        field,
        path: path.to_owned(),
        reason: format!("cannot read it: {e}"),
    })
}

/// A file of one or more PEM certificates.
fn pem_certificates(field: &'static str, path: &Path) -> Result<Vec<u8>, ClientError> {
    let pem = read(field, path)?;
    let not = |reason: String| ClientError::File {
        field,
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(not(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(pem)
}

/// A PEM private key. What is wrong with it is not said: the message must
/// not quote a key.
fn pem_private_key(path: &Path) -> Result<Vec<u8>, ClientError> {
    let pem = read("tls.key_file", path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(_) => Ok(pem),
        Err(_) => Err(ClientError::File {
            field: "tls.key_file",
            path: path.to_owned(),
            reason: "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::RedisUrl;

    fn config(url: &str, tls: Option<TlsConfig>) -> RedisConfig {
        RedisConfig {
            url: RedisUrl::new(url),
            tls,
            ..RedisConfig::default()
        }
    }

    /// A CA, and a certificate and key it signed, as PEM files in a temp dir.
    fn files() -> (tempfile::TempDir, TlsConfig) {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&params, &ca_key);
        let cert = rcgen::CertificateParams::new(vec!["client".into()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let tls = TlsConfig {
            ca_file: write("ca.pem", ca.pem()),
            cert_file: Some(write("client.pem", cert.pem())),
            key_file: Some(write("client.key", key.serialize_pem())),
        };
        (dir, tls)
    }

    #[test]
    fn urls_with_users_passwords_and_tls_build_clients() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis://app:pw@db:6379/2",
            "rediss://app:pw@db:6380",
            "redis+unix:///run/redis.sock?user=app&pass=pw",
        ] {
            assert!(client(&config(url, None)).is_ok(), "{url}");
        }
        let (_dir, tls) = files();
        assert!(client(&config("rediss://db:6380", Some(tls))).is_ok());
    }

    #[test]
    fn a_bad_url_is_refused_without_its_password() {
        let e = client(&config("http://u:planted@x", None)).unwrap_err();
        assert_eq!(e.field(), "url");
        assert_eq!(
            e.to_string(),
            "\"http://u:***@x\" is not a Redis URL: expected redis://, rediss:// (TLS) or redis+unix://"
        );
        let e = client(&config("rediss://db:6380#insecure", None)).unwrap_err();
        assert!(matches!(e, ClientError::Insecure), "{e}");
    }

    #[test]
    fn tls_files_must_fit_a_rediss_url_and_hold_pem() {
        let (dir, tls) = files();
        let e = client(&config("redis://db:6379", Some(tls.clone()))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[redis.tls] is for rediss:// URLs; this one is redis://"
        );
        let half = TlsConfig {
            key_file: None,
            ..tls.clone()
        };
        let e = client(&config("rediss://db", Some(half))).unwrap_err();
        assert!(matches!(e, ClientError::HalfIdentity), "{e}");
        let missing = TlsConfig {
            ca_file: dir.path().join("absent.pem"),
            ..tls.clone()
        };
        let e = client(&config("rediss://db", Some(missing))).unwrap_err();
        assert_eq!(e.field(), "tls.ca_file");
        assert!(e.to_string().contains("cannot read it"), "{e}");
        // A key where a certificate belongs, and a certificate where the key does.
        let swapped = TlsConfig {
            ca_file: tls.key_file.clone().unwrap(),
            ..tls.clone()
        };
        let e = client(&config("rediss://db", Some(swapped))).unwrap_err();
        assert_eq!(e.field(), "tls.ca_file");
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
        let key_text = std::fs::read_to_string(tls.key_file.as_ref().unwrap()).unwrap();
        let no_key = TlsConfig {
            key_file: tls.cert_file.clone(),
            ..tls
        };
        let e = client(&config("rediss://db", Some(no_key))).unwrap_err();
        assert_eq!(e.field(), "tls.key_file");
        let body: String = key_text.lines().nth(1).unwrap().to_owned();
        assert!(!format!("{e} {e:?}").contains(&body));
    }
}
