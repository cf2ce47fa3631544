//! The ceiling `make bench` measures the hot GET against: a bare hyper 1
//! server in the gateway's runtime shape (one current-thread tokio runtime
//! per CPU, each on its own `SO_REUSEPORT` listener; HTTP/1.1) answering
//! every request with a fixed JSON body the size of the hot value, and
//! nothing else. `ceiling 127.0.0.1:PORT`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;

/// What the benchmark's hot GET answers, byte for byte in size.
const BODY: &[u8] = br#"{"asset":"BTC","price":64000.5}"#;

fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into())
        .parse()
        .map_err(std::io::Error::other)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let handles: Vec<_> = (0..threads)
        .map(|_| std::thread::spawn(move || serve(addr)))
        .collect();
    println!("ceiling listening on http://{addr}");
    for h in handles {
        h.join()
            .map_err(|_| std::io::Error::other("a thread panicked"))??;
    }
    Ok(())
}

fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(1024)?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_: Request<hyper::body::Incoming>| async {
                    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
                    resp.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(resp)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
