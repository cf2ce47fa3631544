//! `[redis.tls]`: whom the gateway trusts and what it shows when Redis
//! checks clients, and those files read and checked as redis-rs will use
//! them, each refused under its own key.

use super::ClientError;
use crate::tls::{FileError, pem_certificates, pem_private_key};
use redis::{ClientTlsConfig, TlsCertificates};
use rustls::RootCertStore;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `[redis.tls]`: whom to trust, and what to show when Redis checks clients
/// (`tls-auth-clients yes`). Paths are relative to the config file; their
/// contents are read when the gateway starts, never shown.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate(s) of the CA that signed Redis's certificate: the
    /// only ones trusted (not the system's store).
    pub ca_file: PathBuf,
    /// The gateway's PEM certificate (chain), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Its PEM private key, with `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// The paths, relative to the config file's folder `base`.
    pub(in crate::config) fn resolve(&mut self, base: &Path) {
        self.ca_file = base.join(&self.ca_file);
        for file in [&mut self.cert_file, &mut self.key_file]
            .into_iter()
            .flatten()
        {
            *file = base.join(&*file);
        }
    }

    /// The files, read and checked: each must hold what its key says, and
    /// the CA's certificates must be ones rustls takes as trust anchors
    /// (redis-rs builds its root store of them, and would refuse them there
    /// under no key).
    pub(in crate::config) fn certificates(&self) -> Result<TlsCertificates, ClientError> {
        let client_tls = match (&self.cert_file, &self.key_file) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(ClientTlsConfig {
                client_cert: pem_certificates("tls.cert_file", cert)?.0,
                client_key: pem_private_key("tls.key_file", key)?.0,
            }),
            _ => return Err(ClientError::HalfIdentity),
        };
        let (root_cert, roots) = pem_certificates("tls.ca_file", &self.ca_file)?;
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root).map_err(|e| FileError {
                field: "tls.ca_file",
                path: self.ca_file.clone(),
                reason: format!("not a CA certificate: {e}"),
            })?;
        }
        Ok(TlsCertificates {
            client_tls,
            root_cert: Some(root_cert),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{folder, refusal_at, tls_files};
    use crate::config::{Config, RedisConfig};
    use crate::secret::RedisUrl;

    fn parts(url: &str, tls: TlsConfig) -> Result<(), ClientError> {
        let config = RedisConfig {
            url: RedisUrl::new(url),
            tls: Some(tls),
            ..RedisConfig::default()
        };
        config.client_parts().map(drop)
    }

    #[test]
    fn tls_files_must_fit_a_rediss_url_and_hold_pem() {
        let (dir, tls) = tls_files();
        let e = parts("redis://db:6379", tls.clone()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[redis.tls] is for rediss:// URLs; this one is redis://"
        );
        let half = TlsConfig {
            key_file: None,
            ..tls.clone()
        };
        let e = parts("rediss://db", half).unwrap_err();
        assert!(matches!(e, ClientError::HalfIdentity), "{e}");
        let missing = TlsConfig {
            ca_file: dir.path().join("absent.pem"),
            ..tls.clone()
        };
        let e = parts("rediss://db", missing).unwrap_err();
        assert_eq!(e.field(), "tls.ca_file");
        assert!(e.to_string().contains("cannot read it"), "{e}");
        // A key where a certificate belongs, and a certificate where the key does.
        let swapped = TlsConfig {
            ca_file: tls.key_file.clone().unwrap(),
            ..tls.clone()
        };
        let e = parts("rediss://db", swapped).unwrap_err();
        assert_eq!(e.field(), "tls.ca_file");
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
        let key_text = std::fs::read_to_string(tls.key_file.as_ref().unwrap()).unwrap();
        let no_key = TlsConfig {
            key_file: tls.cert_file.clone(),
            ..tls
        };
        let e = parts("rediss://db", no_key).unwrap_err();
        assert_eq!(e.field(), "tls.key_file");
        let body: String = key_text.lines().nth(1).unwrap().to_owned();
        assert!(!format!("{e} {e:?}").contains(&body));
    }

    #[test]
    fn tls_files_are_read_relative_to_the_file_and_refused_on_their_lines() {
        let (dir, path) = folder(&[]);
        let ca = rcgen::generate_simple_self_signed(vec!["db".to_owned()]).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
        std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
        // PEM, but what it wraps is no certificate: only rustls can tell.
        let garbled = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        std::fs::write(dir.path().join("garbled.pem"), garbled).unwrap();
        let head =
            "[plugins]\ndir = \"plugins\"\n[redis]\nurl = \"rediss://db:6380\"\n\n[redis.tls]\n";
        let c = Config::parse(&format!("{head}ca_file = \"ca.pem\"\n"), &path).unwrap();
        let tls = c.redis.tls.unwrap();
        assert_eq!(tls.ca_file, dir.path().join("ca.pem"));
        let shown = |key: &str, file: &str| {
            format!(
                "{}:7: redis.tls.{key}: {}",
                path.display(),
                dir.path().join(file).display()
            )
        };
        for (file, why) in [
            ("absent.pem", "cannot read it"),
            ("junk.pem", "holds no PEM certificate"),
            ("garbled.pem", "not a CA certificate"),
        ] {
            let e = refusal_at(&format!("{head}ca_file = \"{file}\"\n"), &path);
            assert!(
                e.starts_with(&format!("{}: {why}", shown("ca_file", file))),
                "{e}"
            );
        }
        let e = refusal_at(
            &format!("{head}ca_file = \"ca.pem\"\ncert_file = \"ca.pem\"\n"),
            &path,
        );
        assert!(
            e.ends_with(":6: redis.tls: cert_file and key_file go together: give both or neither"),
            "{e}"
        );
        let e = refusal_at(
            &format!(
                "{head}cert_file = \"ca.pem\"\nkey_file = \"junk.pem\"\nca_file = \"ca.pem\"\n"
            ),
            &path,
        );
        assert!(
            e.contains(":8: redis.tls.key_file: ")
                && e.ends_with("holds no PEM private key (PKCS#8, PKCS#1 or SEC1)"),
            "{e}"
        );
        let plain = head.replace("rediss://", "redis://") + "ca_file = \"ca.pem\"\n";
        assert!(
            refusal_at(&plain, &path).ends_with(
                ":4: redis.url: [redis.tls] is for rediss:// URLs; this one is redis://"
            )
        );
    }
}
