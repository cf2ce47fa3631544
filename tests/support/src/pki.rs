//! Certificates for the TLS tests (Redis's and the gateway's own door),
//! made inside the test.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use std::path::PathBuf;
use tempfile::TempDir;

/// A CA and the certificates it signed, as PEM files in a temp dir: Redis's
/// (for 127.0.0.1 and localhost) and a client's.
pub struct Pki {
    /// Where the files are; removed with the `Pki`.
    dir: TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

impl Pki {
    /// A new CA, and a server and a client certificate it signed.
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sluice test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        let ca_pem = write("ca.pem", ca.pem());
        let mut pki = Pki {
            ca: ca_pem,
            server_cert: PathBuf::new(),
            server_key: PathBuf::new(),
            client_cert: PathBuf::new(),
            client_key: PathBuf::new(),
            dir,
            ca_params,
            ca_key,
        };
        (pki.server_cert, pki.server_key) = pki.write_leaf(
            "redis",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        (pki.client_cert, pki.client_key) =
            pki.write_leaf("sluice", &["sluice"], ExtendedKeyUsagePurpose::ClientAuth);
        pki
    }

    /// A server certificate for 127.0.0.1 and localhost, and its key, as
    /// `NAME.pem` and `NAME.key` beside the others (a rotation's new pair).
    pub fn server(&self, name: &str) -> (PathBuf, PathBuf) {
        self.write_leaf(
            name,
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate with these DNS names, and its key, as
    /// `NAME.pem` and `NAME.key`.
    pub fn client(&self, name: &str, dns: &[&str]) -> (PathBuf, PathBuf) {
        self.write_leaf(name, dns, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn write_leaf(
        &self,
        name: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.extended_key_usages = vec![usage];
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("sign");
        let (cert_path, key_path) = (
            self.dir.path().join(format!("{name}.pem")),
            self.dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("write PEM");
        std::fs::write(&key_path, key.serialize_pem()).expect("write PEM");
        (cert_path, key_path)
    }
}
