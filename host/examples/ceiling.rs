//! The ceiling `make bench` measures the hot GET against: a bare hyper 1
//! server in the gateway's runtime shape (one current-thread tokio runtime
//! per CPU, each on its own `SO_REUSEPORT` listener; HTTP/1.1 and HTTP/2
//! through hyper-util's auto builder, as the gateway serves) answering
//! every request with a fixed JSON body the size of the hot value, and
//! nothing else.
//!
//! `ceiling 127.0.0.1:PORT` serves plain HTTP (HTTP/1.1, h2c with prior
//! knowledge); `ceiling 127.0.0.1:PORT --tls DIR` serves HTTPS (ALPN h2,
//! http/1.1) with a self-signed certificate for 127.0.0.1 it writes to
//! `DIR/cert.pem` and `DIR/key.pem`, which the benchmark's HTTPS gateway
//! then serves with too: the same pair, the same handshake cost.

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// What the benchmark's hot GET answers, byte for byte in size.
const BODY: &[u8] = br#"{"asset":"BTC","price":64000.5}"#;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = args
        .get(1)
        .map_or("127.0.0.1:18081", String::as_str)
        .parse()
        .map_err(std::io::Error::other)?;
    let tls = match args.get(2).map(String::as_str) {
        Some("--tls") => {
            let dir = Path::new(args.get(3).map_or(".", String::as_str));
            Some(Arc::new(tls_config(dir)?))
        }
        _ => None,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let tls = tls.clone();
            std::thread::spawn(move || serve(addr, tls))
        })
        .collect();
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("ceiling listening on {scheme}://{addr}");
    for h in handles {
        h.join()
            .map_err(|_| std::io::Error::other("a thread panicked"))??;
    }
    Ok(())
}

/// A self-signed pair for 127.0.0.1 and localhost, written to `dir`, as
/// rustls serves it with ALPN h2 then http/1.1.
fn tls_config(dir: &Path) -> std::io::Result<rustls::ServerConfig> {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .map_err(std::io::Error::other)?;
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    std::fs::write(dir.join("cert.pem"), &cert_pem)?;
    std::fs::write(dir.join("key.pem"), &key_pem)?;
    let chain =
        vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(std::io::Error::other)?];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(std::io::Error::other)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(std::io::Error::other)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn serve(addr: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        let http = Arc::new(auto::Builder::new(TokioExecutor::new()));
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let (http, tls) = (http.clone(), tls.clone());
            tokio::spawn(async move {
                let service = service_fn(|_: Request<hyper::body::Incoming>| async {
                    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
                    resp.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(resp)
                });
                match tls {
                    None => {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                    Some(tls) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                }
            });
        }
    })
}
