//! Small HTTP clients for tests: one connection each, so a test controls
//! keep-alive and protocol exactly.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A keep-alive HTTP/1.1 connection.
pub async fn http1(addr: SocketAddr) -> Result<http1::SendRequest<Full<Bytes>>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn.with_upgrades());
    Ok(sender)
}

/// An HTTP/2 connection with prior knowledge (h2c).
pub async fn http2(addr: SocketAddr) -> Result<http2::SendRequest<Full<Bytes>>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// A GET request for `path` with `host` as Host (HTTP/1) or authority (HTTP/2).
pub fn get_request(host: &str, path: &str, http2: bool) -> Request<Full<Bytes>> {
    let b = Request::get(if http2 {
        format!("http://{host}{path}")
    } else {
        path.to_string()
    });
    let b = if http2 {
        b
    } else {
        b.header(header::HOST, host)
    };
    b.body(Full::new(Bytes::new())).expect("valid request")
}

/// GET over a keep-alive HTTP/1.1 connection; returns status and body text.
pub async fn get1(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    host: &str,
    path: &str,
) -> Result<(StatusCode, String), BoxError> {
    sender.ready().await?;
    let resp = sender.send_request(get_request(host, path, false)).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// GET over an HTTP/2 connection; returns status and body text.
pub async fn get2(
    sender: &mut http2::SendRequest<Full<Bytes>>,
    host: &str,
    path: &str,
) -> Result<(StatusCode, String), BoxError> {
    sender.ready().await?;
    let resp = sender.send_request(get_request(host, path, true)).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// One request on a fresh connection.
pub async fn get(
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> Result<(StatusCode, String), BoxError> {
    let mut s = http1(addr).await?;
    get1(&mut s, host, path).await
}

/// Writes `bytes` as is and returns what the server answered until it closed
/// the connection or `wait` passed without data: for malformed-input tests.
pub async fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(bytes).await?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(e)) if out.is_empty() => return Err(e),
            Ok(Err(_)) => break,
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The status code of the first response line of a raw answer, if any.
pub fn raw_status(answer: &str) -> Option<u16> {
    answer.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

/// Convenience for an empty-bodied request to an arbitrary client.
pub fn empty_get(host: &str, path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header(header::HOST, host)
        .body(Empty::new())
        .expect("valid request")
}
