//! The origin's response head: read, parsed with httparse, and its body's
//! framing decided (RFC 9112 §6.3).

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::body::{BodyFraming, UpstreamBody};
use super::conn::Conn;
use super::Failure;
use crate::proxy::connection_has;
use crate::websocket::is_disconnect;

/// The longest response head accepted: 8× nginx's default
/// `proxy_buffer_size`, which answers 502 past it too.
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// Header lines accepted in one response head.
const MAX_HEADERS: usize = 128;

/// A parsed response head and what it says of its body.
pub(super) struct Head {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    framing: BodyFraming,
    /// The connection may carry another request once this body ends.
    keep_alive: bool,
}

/// Why no head was read.
#[derive(Debug)]
pub(super) enum HeadError {
    /// The connection closed (or was reset) before any byte of a response.
    Closed(String),
    /// It failed later, or the head is not HTTP/1.x.
    Bad(String),
}

impl HeadError {
    /// `replay`: the request may go out again if nothing was answered.
    pub(super) fn failure(self, replay: bool) -> Failure {
        match self {
            HeadError::Closed(e) if replay => Failure::Retry(e),
            HeadError::Closed(e) | HeadError::Bad(e) => Failure::Upstream(e),
        }
    }
}

pub(super) async fn read_head(conn: &mut Conn, method: &Method) -> Result<Head, HeadError> {
    let (stream, buf, _) = conn.parts();
    read_head_from(stream, buf, method).await
}

/// Reads until a whole head is in `buf`, skipping interim 1xx responses
/// other than 101, and leaves the bytes after it there.
pub(super) async fn read_head_from<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    method: &Method,
) -> Result<Head, HeadError> {
    let mut answered = false;
    loop {
        if !buf.is_empty() {
            answered = true;
            if let Some(head) = parse(buf, method)? {
                if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS
                {
                    continue;
                }
                return Ok(head);
            }
            if buf.len() >= MAX_HEAD {
                return Err(HeadError::Bad(format!(
                    "the origin's response head is larger than {} KiB",
                    MAX_HEAD / 1024
                )));
            }
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(4096);
        }
        match reader.read_buf(buf).await {
            Ok(0) if !answered => {
                return Err(HeadError::Closed(
                    "the origin closed the connection without answering".into(),
                ))
            }
            Ok(0) => {
                return Err(HeadError::Bad(
                    "the origin closed the connection in the middle of its response head".into(),
                ))
            }
            Ok(_) => {}
            Err(e) if !answered && is_disconnect(&e) => {
                return Err(HeadError::Closed(format!("reading from the origin: {e}")))
            }
            Err(e) => return Err(HeadError::Bad(format!("reading from the origin: {e}"))),
        }
    }
}

/// One head from the start of `buf`, consumed from it; `None` until it is
/// all there.
pub(super) fn parse(buf: &mut BytesMut, method: &Method) -> Result<Option<Head>, HeadError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(HeadError::Bad(format!(
                "the origin's response head is malformed: {e}"
            )))
        }
    };
    let code = resp.code.expect("a complete head has a status");
    let status = StatusCode::from_u16(code)
        .map_err(|_| HeadError::Bad(format!("the origin answered with status {code}")))?;
    let version = match resp.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    // Where each name and value is in the head: the head is then split off
    // the buffer, and the values become slices of it, not copies. On the
    // stack, since the parsed headers borrow the buffer that split needs.
    let base = buf.as_ptr() as usize;
    let at = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
    let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
    let count = resp.headers.len();
    for (span, h) in spans.iter_mut().zip(resp.headers.iter()) {
        let (name, value) = (h.name.as_bytes(), h.value);
        *span = (at(name), name.len() as u32, at(value), value.len() as u32);
    }
    let raw: Bytes = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(count);
    for &(name_at, name_len, value_at, value_len) in &spans[..count] {
        let name = &raw[name_at as usize..(name_at + name_len) as usize];
        let name = HeaderName::from_bytes(name)
            .map_err(|_| HeadError::Bad("the origin sent an invalid header name".into()))?;
        let value = raw.slice(value_at as usize..(value_at + value_len) as usize);
        let value = HeaderValue::from_maybe_shared(value)
            .map_err(|_| HeadError::Bad(format!("the origin sent an invalid value for {name}")))?;
        headers.append(name, value);
    }
    let (framing, mut keep_alive) = body_framing(method, status, &mut headers)?;
    keep_alive &= match version {
        Version::HTTP_11 => !connection_has(&headers, "close"),
        _ => connection_has(&headers, "keep-alive"),
    };
    Ok(Some(Head {
        status,
        version,
        headers,
        framing,
        keep_alive,
    }))
}

/// RFC 9112 §6.3, from the response's side. Returns the framing and
/// whether it lets the connection be reused.
fn body_framing(
    method: &Method,
    status: StatusCode,
    headers: &mut HeaderMap,
) -> Result<(BodyFraming, bool), HeadError> {
    if *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok((BodyFraming::Length(0), true));
    }
    if headers.contains_key(header::TRANSFER_ENCODING) {
        // Transfer-Encoding wins; a length beside it is a smuggling
        // attempt or a bug, and must not reach the client: the client's
        // framing is hyper's, from what is left. Both mean no reuse.
        let both = headers.remove(header::CONTENT_LENGTH).is_some();
        // The last coding applied, over every value; one that is not
        // text counts as an unknown coding.
        let last = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .rfind(|t| !t.is_empty());
        return Ok(match last {
            Some(t) if t.eq_ignore_ascii_case(b"chunked") => (BodyFraming::Chunked, !both),
            // Another coding last: the body runs to the close.
            _ => (BodyFraming::Close, false),
        });
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let part = part.trim_ascii();
            let n = (!part.is_empty() && part.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(part).ok()?.parse::<u64>().ok())
                .flatten();
            match (n, length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(l)) if n == l => {}
                _ => {
                    return Err(HeadError::Bad(
                        "the origin sent an invalid Content-Length".into(),
                    ))
                }
            }
        }
    }
    Ok(match length {
        Some(n) => (BodyFraming::Length(n), true),
        None => (BodyFraming::Close, false),
    })
}

/// The response hyper's server sends on, its body reading `conn`.
/// `body_sent`: the whole request body went out, so the connection can
/// carry another request after this one.
pub(super) fn build(head: Head, conn: Conn, body_sent: bool) -> Response<UpstreamBody> {
    let reusable = head.keep_alive && body_sent;
    let body = UpstreamBody::new(conn, head.framing, reusable);
    let mut resp = Response::new(body);
    *resp.status_mut() = head.status;
    *resp.version_mut() = head.version;
    *resp.headers_mut() = head.headers;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str, method: Method) -> Result<Option<Head>, HeadError> {
        parse(&mut BytesMut::from(raw), &method)
    }

    fn framing_of(raw: &str) -> (BodyFraming, bool) {
        let h = head(raw, Method::GET).unwrap().unwrap();
        (h.framing, h.keep_alive)
    }

    #[test]
    fn a_partial_head_waits_and_the_rest_stays_in_the_buffer() {
        assert!(head("HTTP/1.1 200 OK\r\nContent-Len", Method::GET)
            .unwrap()
            .is_none());
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello");
        let h = parse(&mut buf, &Method::GET).unwrap().unwrap();
        assert_eq!(&buf[..], b"hello");
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.headers["x-a"], "b");
        assert_eq!(h.framing, BodyFraming::Length(5));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"),
            (BodyFraming::Length(7), true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n"),
            (BodyFraming::Length(7), true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            (BodyFraming::Chunked, true)
        );
        assert_eq!(
            framing_of(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n"
            ),
            (BodyFraming::Chunked, false)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            (BodyFraming::Close, false)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\n\r\n"),
            (BodyFraming::Close, false)
        );
        assert_eq!(
            framing_of("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
            (BodyFraming::Length(0), true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 304 Not Modified\r\n\r\n"),
            (BodyFraming::Length(0), true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n"),
            (BodyFraming::Length(1), false)
        );
        assert_eq!(
            framing_of("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"),
            (BodyFraming::Length(1), false)
        );
        assert_eq!(
            framing_of("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: Keep-Alive\r\n\r\n"),
            (BodyFraming::Length(1), true)
        );
        let h = head(
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            Method::HEAD,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, BodyFraming::Length(0));
        assert_eq!(
            h.headers["content-length"], "10",
            "a HEAD answer keeps the length it would have had"
        );
    }

    #[test]
    fn a_length_beside_transfer_encoding_never_reaches_the_client() {
        let h = head(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            Method::GET,
        )
        .unwrap()
        .unwrap();
        assert!(!h.headers.contains_key("content-length"));
    }

    #[test]
    fn bad_heads_are_errors_not_guesses() {
        for raw in [
            "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 7, 8\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +7\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            "HTTP/2 200 OK\r\n\r\n",
            "SSH-2.0-OpenSSH_9.2\r\n\r\n",
        ] {
            assert!(
                matches!(head(raw, Method::GET), Err(HeadError::Bad(_))),
                "{raw:?}"
            );
        }
    }
}
