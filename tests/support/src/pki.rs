//! Certificates for the Redis-over-TLS tests, made inside the test.

use std::path::PathBuf;
use tempfile::TempDir;

/// A CA and the certificates it signed, as PEM files in a temp dir: Redis's
/// (for 127.0.0.1 and localhost) and a client's.
pub struct Pki {
    /// Where the files are; removed with the `Pki`.
    _dir: TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

impl Pki {
    /// A new CA, and a server and a client certificate it signed.
    pub fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sluice test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(names).expect("params");
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).expect("sign");
            (cert.pem(), key.serialize_pem())
        };
        let (server, server_key) = leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client, client_key) = leaf(vec!["sluice".into()], ExtendedKeyUsagePurpose::ClientAuth);
        Pki {
            ca: write("ca.pem", ca.pem()),
            server_cert: write("redis.pem", server),
            server_key: write("redis.key", server_key),
            client_cert: write("sluice.pem", client),
            client_key: write("sluice.key", client_key),
            _dir: dir,
        }
    }
}
