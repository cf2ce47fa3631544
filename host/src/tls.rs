//! TLS files and certificates, for both ends the gateway speaks TLS on.
//!
//! - Its own door (`[server.tls]`): the certificate, key and optional
//!   client CA, read and checked together into one [`Door`] that a
//!   generation carries. A reload that reads a new pair swaps it in whole
//!   for the next handshakes (open connections keep theirs); one that
//!   cannot read it refuses the reload, and the old pair keeps serving.
//! - The names a verified client certificate carries ([`PeerNames`]), which
//!   `auth` maps to clients (`[clients.NAME] cert_san`).
//! - The PEM readers `[redis.tls]` shares, which never quote a key.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// ALPN, in the server's order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A TLS file that cannot serve, under the config key that names it
/// (`tls.cert_file`, relative to its section).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct FileError {
    pub field: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

fn refused(field: &'static str, path: &Path, reason: impl Into<String>) -> FileError {
    FileError {
        field,
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(|e| refused(field, path, format!("cannot read it: {e}")))
}

/// A file of one or more PEM certificates: its bytes, and them.
pub fn pem_certificates(
    field: &'static str,
    path: &Path,
) -> Result<(Vec<u8>, Vec<CertificateDer<'static>>), FileError> {
    let pem = read(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refused(field, path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(refused(
            field,
            path,
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok((pem, certs))
}

/// A PEM private key: its bytes, and it. What is wrong with it is not
/// said: the message must not quote a key.
pub fn pem_private_key(
    field: &'static str,
    path: &Path,
) -> Result<(Vec<u8>, PrivateKeyDer<'static>), FileError> {
    let pem = read(field, path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok((pem, key)),
        Err(_) => Err(refused(
            field,
            path,
            "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
        )),
    }
}

/// `[server.tls]` loaded: what new handshakes use.
#[derive(Debug)]
pub struct Door {
    pub server: Arc<rustls::ServerConfig>,
    /// SHA-256 over the files' bytes: a reload that reads the same bytes
    /// has nothing to swap.
    pub digest: [u8; 32],
    /// The certificate's last valid second (since the Unix epoch).
    pub not_after: i64,
}

/// The files of `[server.tls]`.
#[derive(Debug, Clone, Copy)]
pub struct DoorFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub client_ca: Option<&'a Path>,
}

impl DoorFiles<'_> {
    /// Read and check the files at `now` (seconds since the epoch): a
    /// certificate rustls and the key agree on, valid now, and a CA whose
    /// certificates are trust anchors. ALPN offers `h2` then `http/1.1`.
    /// A client CA asks every client for a certificate without requiring
    /// one: a client without one still shows its bearer key.
    pub fn load(&self, now: i64) -> Result<Door, FileError> {
        let (cert_pem, chain) = pem_certificates("tls.cert_file", self.cert)?;
        let (key_pem, key) = pem_private_key("tls.key_file", self.key)?;
        let leaf = X509Certificate::from_der(&chain[0])
            .map(|(_, c)| c)
            .map_err(|e| {
                refused(
                    "tls.cert_file",
                    self.cert,
                    format!("its first certificate cannot be read: {e}"),
                )
            })?;
        let validity = leaf.validity();
        let (not_before, not_after) = (
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        );
        if now > not_after {
            return Err(refused(
                "tls.cert_file",
                self.cert,
                format!("its certificate expired on {}", validity.not_after),
            ));
        }
        if now < not_before {
            return Err(refused(
                "tls.cert_file",
                self.cert,
                format!(
                    "its certificate is not valid before {}",
                    validity.not_before
                ),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut digest = Sha256::new();
        digest.update(&cert_pem);
        digest.update(&key_pem);
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| refused("tls.cert_file", self.cert, e.to_string()))?;
        let builder = match self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let (ca_pem, anchors) = pem_certificates("tls.client_ca_file", ca)?;
                digest.update(&ca_pem);
                let mut roots = rustls::RootCertStore::empty();
                for anchor in anchors {
                    roots.add(anchor).map_err(|e| {
                        refused(
                            "tls.client_ca_file",
                            ca,
                            format!("not a CA certificate: {e}"),
                        )
                    })?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| refused("tls.client_ca_file", ca, e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder.with_single_cert(chain, key).map_err(|e| {
            let why = match e {
                rustls::Error::InconsistentKeys(_) => {
                    format!(
                        "is not the key of the certificate in {}",
                        self.cert.display()
                    )
                }
                other => format!("cannot serve with the certificate: {other}"),
            };
            refused("tls.key_file", self.key, why)
        })?;
        server.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Door {
            server: Arc::new(server),
            digest: digest.finalize().into(),
            not_after,
        })
    }

    /// The SHA-256 [`Door::digest`] would have for the files as they are
    /// now (`None`: one cannot be read).
    pub fn digest(&self) -> Option<[u8; 32]> {
        let mut digest = Sha256::new();
        for path in [Some(self.cert), Some(self.key), self.client_ca]
            .into_iter()
            .flatten()
        {
            digest.update(std::fs::read(path).ok()?);
        }
        Some(digest.finalize().into())
    }
}

/// The names a verified client certificate carries, each as
/// `[clients.NAME] cert_san` spells it: `uri:…` (a SPIFFE ID is one),
/// `dns:…`, and the subject's `cn:…`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerNames(pub Vec<String>);

impl PeerNames {
    /// The names of the end-entity certificate `der` (none if it cannot be
    /// read: rustls verified it, so that does not happen).
    pub fn of(der: &[u8]) -> PeerNames {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return PeerNames::default();
        };
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(uri) => names.push(format!("uri:{uri}")),
                    GeneralName::DNSName(dns) => {
                        names.push(format!("dns:{}", dns.to_ascii_lowercase()))
                    }
                    _ => {}
                }
            }
        }
        for cn in cert.subject().iter_common_name() {
            if let Ok(cn) = cn.as_str() {
                names.push(format!("cn:{cn}"));
            }
        }
        PeerNames(names)
    }
}

/// A `cert_san` value as [`PeerNames`] spells names: `spiffe://…` and
/// other URIs become `uri:…`; `dns:` names are case-insensitive. `None`:
/// not a name a certificate can carry.
pub fn cert_name(configured: &str) -> Option<String> {
    let (kind, rest) = configured.split_once(':')?;
    let name = match kind {
        "dns" => format!("dns:{}", rest.to_ascii_lowercase()),
        "cn" | "uri" => configured.to_owned(),
        _ if rest.len() > 2 && rest.starts_with("//") => format!("uri:{configured}"),
        _ => return None,
    };
    (!rest.is_empty()).then_some(name)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Certificates for tests: a CA, and a leaf it signs with given names.
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};

    pub struct Ca {
        pub pem: String,
        params: CertificateParams,
        key: KeyPair,
    }

    impl Ca {
        pub fn new() -> Ca {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let pem = params.self_signed(&key).unwrap().pem();
            Ca { pem, params, key }
        }

        /// A leaf (certificate PEM, key PEM) with these SANs and CN, valid
        /// from `from` to `to` (seconds since the epoch).
        pub fn leaf(&self, sans: &[SanType], cn: &str, from: i64, to: i64) -> (String, String) {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::default();
            params.subject_alt_names = sans.to_vec();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.not_before = time::OffsetDateTime::from_unix_timestamp(from).unwrap();
            params.not_after = time::OffsetDateTime::from_unix_timestamp(to).unwrap();
            let issuer = Issuer::from_params(&self.params, &self.key);
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::Ca;
    use super::*;
    use rcgen::SanType;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn files(dir: &Path, names: &[(&str, &str)]) {
        for (name, text) in names {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    #[test]
    fn a_pair_loads_offering_h2_then_http1_and_a_bad_one_is_refused_under_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new();
        let dns = [SanType::DnsName("gw".try_into().unwrap())];
        let (cert, key) = ca.leaf(&dns, "gw", NOW - DAY, NOW + DAY);
        let (_, other_key) = ca.leaf(&dns, "gw", NOW - DAY, NOW + DAY);
        let (old, old_key) = ca.leaf(&dns, "gw", NOW - 3 * DAY, NOW - DAY);
        let (early, early_key) = ca.leaf(&dns, "gw", NOW + DAY, NOW + 3 * DAY);
        files(
            dir.path(),
            &[
                ("cert.pem", &cert),
                ("key.pem", &key),
                ("other.key", &other_key),
                ("old.pem", &old),
                ("old.key", &old_key),
                ("early.pem", &early),
                ("early.key", &early_key),
                ("ca.pem", &ca.pem),
            ],
        );
        let p = |n: &str| dir.path().join(n);
        let (c, k, ca_path) = (p("cert.pem"), p("key.pem"), p("ca.pem"));
        let door = DoorFiles {
            cert: &c,
            key: &k,
            client_ca: Some(&ca_path),
        };
        let loaded = door.load(NOW).unwrap();
        assert_eq!(
            loaded.server.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert_eq!(Some(loaded.digest), door.digest());
        assert_eq!(loaded.not_after, NOW + DAY);

        let refusal = |cert: &str, key: &str| {
            let (c, k) = (p(cert), p(key));
            let e = DoorFiles {
                cert: &c,
                key: &k,
                client_ca: None,
            }
            .load(NOW)
            .unwrap_err();
            (e.field, e.reason)
        };
        let (field, why) = refusal("cert.pem", "other.key");
        assert_eq!(field, "tls.key_file");
        assert!(
            why.starts_with("is not the key of the certificate in"),
            "{why}"
        );
        let (field, why) = refusal("old.pem", "old.key");
        assert_eq!(field, "tls.cert_file");
        assert!(why.starts_with("its certificate expired on"), "{why}");
        let (field, why) = refusal("early.pem", "early.key");
        assert_eq!(field, "tls.cert_file");
        assert!(
            why.starts_with("its certificate is not valid before"),
            "{why}"
        );
        let (field, why) = refusal("absent.pem", "key.pem");
        assert_eq!(field, "tls.cert_file");
        assert!(why.starts_with("cannot read it"), "{why}");
        let (field, why) = refusal("cert.pem", "cert.pem");
        assert_eq!(field, "tls.key_file");
        assert!(!why.contains("PRIVATE"), "{why}");
        // The key's text appears in no refusal.
        let body = key.lines().nth(1).unwrap();
        let (_, why) = refusal("cert.pem", "other.key");
        assert!(!why.contains(body));
    }

    #[test]
    fn a_certificate_shows_its_uri_and_dns_names_and_its_common_name() {
        let ca = Ca::new();
        let (pem, _) = ca.leaf(
            &[
                SanType::URI("spiffe://prod/pricing".try_into().unwrap()),
                SanType::DnsName("Pricing.Internal".try_into().unwrap()),
            ],
            "pricing-svc",
            NOW - DAY,
            NOW + DAY,
        );
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(
            PeerNames::of(&der).0,
            [
                "uri:spiffe://prod/pricing",
                "dns:pricing.internal",
                "cn:pricing-svc"
            ]
        );
        assert_eq!(PeerNames::of(b"junk"), PeerNames::default());
    }

    #[test]
    fn configured_names_are_spelled_as_certificates_show_them() {
        assert_eq!(
            cert_name("spiffe://prod/pricing").as_deref(),
            Some("uri:spiffe://prod/pricing")
        );
        assert_eq!(
            cert_name("dns:Pricing.Internal").as_deref(),
            Some("dns:pricing.internal")
        );
        assert_eq!(
            cert_name("cn:pricing-svc").as_deref(),
            Some("cn:pricing-svc")
        );
        assert_eq!(cert_name("uri:urn:x").as_deref(), Some("uri:urn:x"));
        for bad in ["pricing", "dns:", "cn:", "email:a@b", "spiffe:x", ""] {
            assert_eq!(cert_name(bad), None, "{bad}");
        }
    }
}
