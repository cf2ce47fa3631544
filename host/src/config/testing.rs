//! What the config's tests (and `store::connect`'s) share: refusals read
//! from a fixed path, a config folder with plugin files, TLS files.

use super::{Config, TlsConfig};
use std::path::{Path, PathBuf};

pub(crate) const PATH: &str = "conf/sluice.toml";

/// The rendered refusal of `text`, read from `conf/sluice.toml`.
pub(crate) fn refusal(text: &str) -> String {
    refusal_at(text, Path::new(PATH))
}

pub(crate) fn refusal_at(text: &str, path: &Path) -> String {
    match Config::parse(text, path) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// A config folder with `plugins/NAME.wasm` (empty) for each name.
pub(crate) fn folder(plugins: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("plugins")).unwrap();
    for p in plugins {
        std::fs::write(dir.path().join("plugins").join(format!("{p}.wasm")), b"").unwrap();
    }
    let path = dir.path().join("sluice.toml");
    (dir, path)
}

/// A CA, and a certificate and key it signed, as PEM files in a temp dir.
pub(crate) fn tls_files() -> (tempfile::TempDir, TlsConfig) {
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
