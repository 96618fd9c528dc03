//! The request as it goes to the origin: its head, written from the parts
//! hyper parsed, and its body, framed by length or chunked.

use std::io;
use std::io::Write as _;

use bytes::Bytes;
use http::header;
use http::request::Parts;
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::conn::Conn;
use crate::body::{ReqBody, ReqBodyError};

/// How the body is delimited on the wire to the origin.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Framing {
    /// No body, or one of the Content-Length the head carries.
    AsIs,
    /// A body of unknown length: `Transfer-Encoding: chunked` is added and
    /// any Content-Length left out.
    Chunked,
}

/// Body bytes gathered into one write with the head or with each other
/// when they are ready at once.
const COALESCE: usize = 64 * 1024;

/// The client's length is kept only when the body has exactly that length
/// (HTTP/1.1 with Content-Length, or an HTTP/2 stream that declared one);
/// anything else is sent chunked, so no stale length can desync the origin.
pub(super) fn framing(parts: &Parts, body: &ReqBody) -> Framing {
    if body.is_end_stream() {
        return Framing::AsIs;
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match (declared, body.size_hint().exact()) {
        (Some(d), Some(exact)) if d == exact => Framing::AsIs,
        _ => Framing::Chunked,
    }
}

/// Writes the request line and headers into `out` (cleared first).
pub(super) fn encode_head(out: &mut Vec<u8>, parts: &Parts, framing: Framing) {
    out.clear();
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let chunked = framing == Framing::Chunked;
    for (name, value) in &parts.headers {
        if chunked && name == header::CONTENT_LENGTH {
            continue;
        }
        put_header(out, name, value);
    }
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The head of a request without a body, in one write.
pub(super) async fn write_head(conn: &mut Conn, parts: &Parts, framing: Framing) -> io::Result<()> {
    let (stream, _, wbuf) = conn.parts();
    encode_head(wbuf, parts, framing);
    stream.write_all(wbuf).await
}

pub(super) enum SendError {
    Client(ReqBodyError),
    Io(io::Error),
}

impl From<io::Error> for SendError {
    fn from(e: io::Error) -> Self {
        SendError::Io(e)
    }
}

/// The head and the whole body. Frames that are ready together go out in
/// one write (the head with the first of them), so a small body costs one
/// write, as the head alone does.
pub(super) async fn send<W: AsyncWrite + Unpin>(
    writer: &mut W,
    out: &mut Vec<u8>,
    parts: &Parts,
    body: &mut ReqBody,
    framing: Framing,
) -> Result<(), SendError> {
    encode_head(out, parts, framing);
    let chunked = framing == Framing::Chunked;
    loop {
        let frame = match next_ready(body) {
            Some(frame) => frame,
            None => {
                // Nothing ready: send what is gathered, then wait.
                if !out.is_empty() {
                    writer.write_all(out).await?;
                    out.clear();
                }
                body.frame().await
            }
        };
        match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => put_data(out, &data, chunked),
                Err(frame) => {
                    if let (true, Ok(trailers)) = (chunked, frame.into_trailers()) {
                        out.extend_from_slice(b"0\r\n");
                        for (name, value) in &trailers {
                            put_header(out, name, value);
                        }
                        out.extend_from_slice(b"\r\n");
                        return finish(writer, out).await;
                    }
                }
            },
            Some(Err(e)) => return Err(SendError::Client(e)),
            None => {
                if chunked {
                    out.extend_from_slice(b"0\r\n\r\n");
                }
                return finish(writer, out).await;
            }
        }
        if out.len() >= COALESCE {
            writer.write_all(out).await?;
            out.clear();
        }
    }
}

async fn finish<W: AsyncWrite + Unpin>(writer: &mut W, out: &mut Vec<u8>) -> Result<(), SendError> {
    writer.write_all(out).await?;
    out.clear();
    Ok(())
}

/// The body's next frame if it is ready now (its waker registered if not).
fn next_ready(body: &mut ReqBody) -> Option<Option<Result<http_body::Frame<Bytes>, ReqBodyError>>> {
    use futures_util::FutureExt;
    body.frame().now_or_never()
}

fn put_header(out: &mut Vec<u8>, name: &http::HeaderName, value: &http::HeaderValue) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn put_data(out: &mut Vec<u8>, data: &[u8], chunked: bool) {
    if data.is_empty() {
        return;
    }
    if chunked {
        let _ = write!(out, "{:x}\r\n", data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::Request<()>) -> Parts {
        req.into_parts().0
    }

    #[test]
    fn the_head_is_the_request_line_and_the_headers_in_order() {
        let p = parts(
            http::Request::post("/a/b?x=1")
                .header("host", "app.test")
                .header("content-length", "3")
                .header("x-b", "2")
                .body(())
                .unwrap(),
        );
        let mut out = Vec::new();
        encode_head(&mut out, &p, Framing::AsIs);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "POST /a/b?x=1 HTTP/1.1\r\nhost: app.test\r\ncontent-length: 3\r\nx-b: 2\r\n\r\n"
        );
        encode_head(&mut out, &p, Framing::Chunked);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /a/b?x=1 HTTP/1.1\r\nhost: app.test\r\nx-b: 2\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn chunks_carry_their_length_in_hex() {
        let mut out = Vec::new();
        put_data(&mut out, &[b'z'; 26], true);
        put_data(&mut out, b"", true);
        assert_eq!(out, [&b"1a\r\n"[..], &[b'z'; 26], b"\r\n"].concat());
    }
}
