//! The HTTP/1.1 exchange with an origin, driven in the request's own task.
//!
//! Ours rather than hyper's client, for the hot path: hyper's
//! `client::conn::http1` drives each upstream connection in a task of its
//! own, so every request crossed to that task through a channel and its
//! response came back through a oneshot, with the wake-ups and polls of a
//! second task, and the head was rebuilt from a `Request` it had to own.
//! Those were the largest costs per request left in the profile
//! (docs/benchmarks.md, "Where the time goes"). Here the request's task
//! writes the head it already has, parses the response head with
//! httparse, and the response body reads the same socket as hyper's
//! server polls it; the connection goes back to its target's pool when the
//! body has been read to its end.
//!
//! What it keeps of RFC 9112, and where:
//! - request framing: the client's length when the body has exactly that
//!   length, chunked otherwise (`request.rs`);
//! - response framing, §6.3: no body for HEAD, 1xx, 204 and 304;
//!   Transfer-Encoding over Content-Length; a length that is not one
//!   number is an error; otherwise the body runs to the close
//!   (`response.rs`, `chunked.rs`, `body.rs`);
//! - reuse only after a whole response on a keep-alive connection, with
//!   nothing left over (`body.rs`), and a pooled connection idle a while
//!   checked before it is used (`conn.rs`);
//! - a request that found a pooled connection closed under it goes out again
//!   on another only when nothing of it can have been acted on: no body and
//!   an idempotent method, as Go's `http.Transport` and nginx do (`send`);
//! - an origin that answers before it has read the whole body (a 413) is
//!   heard: the head is read while the body is sent.

mod body;
mod chunked;
mod conn;
mod request;
mod response;
mod upgraded;

use std::io;

use http::request::Parts;
use http::{Method, Response};
use http_body::Body as _;

use crate::body::{ReqBody, ReqBodyError};

pub(crate) use body::UpstreamBody;
pub(crate) use conn::Conn;
pub(crate) use upgraded::Upgraded;

/// Why an exchange produced no response head.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A pooled connection the origin had closed; nothing of the request
    /// can have been acted on, so it may go out again on another.
    Retry(String),
    /// The client's request body failed: not the origin's fault.
    Client(ReqBodyError),
    /// The origin failed the exchange (502).
    Upstream(String),
}

/// Sends the request on `conn` and reads the response head. The response's
/// body owns the connection from then on.
pub(crate) async fn send(
    mut conn: Conn,
    parts: &Parts,
    body: &mut ReqBody,
) -> Result<Response<UpstreamBody>, Failure> {
    let reused = conn.reused();
    let framing = request::framing(parts, body);
    let conn_ref = &mut conn;
    let (head, body_done) = if body.is_end_stream() {
        request::write_head(conn_ref, parts, framing)
            .await
            .map_err(|e| lost(reused, parts, "write to the origin", e))?;
        let head = response::read_head(conn_ref, &parts.method)
            .await
            .map_err(|e| e.failure(reused && replayable(&parts.method)))?;
        (head, true)
    } else {
        // Boxed: the common bodiless request's future stays small, and
        // futures are moved by value on their way to the runtime.
        Box::pin(with_body(conn_ref, parts, body, framing)).await?
    };
    conn.served();
    Ok(response::build(head, conn, body_done))
}

/// The head, then the body while the response head is read: an origin may
/// answer, and close, before it has read the body. Returns whether all
/// of the body was sent, which the connection's reuse needs.
async fn with_body(
    conn: &mut Conn,
    parts: &Parts,
    body: &mut ReqBody,
    framing: request::Framing,
) -> Result<(response::Head, bool), Failure> {
    let (stream, buf, wbuf) = conn.parts();
    let (mut reader, mut writer) = stream.split();
    let sending = request::send(&mut writer, wbuf, parts, body, framing);
    let reading = response::read_head_from(&mut reader, buf, &parts.method);
    tokio::pin!(sending, reading);
    let sent = tokio::select! {
        biased;
        head = &mut reading => {
            // Answered before the body was all sent: the rest is not sent,
            // and the connection is not reused.
            return head.map(|h| (h, false)).map_err(|e| e.failure(false));
        }
        sent = &mut sending => sent,
    };
    match sent {
        Ok(()) => {
            let head = reading.await.map_err(|e| e.failure(false))?;
            Ok((head, true))
        }
        Err(request::SendError::Client(e)) => Err(Failure::Client(e)),
        // The origin may have answered and closed: its answer wins.
        Err(request::SendError::Io(e)) => match reading.await {
            Ok(head) => Ok((head, false)),
            Err(_) => Err(Failure::Upstream(format!("write to the origin: {e}"))),
        },
    }
}

/// A write that failed on a pooled connection before anything was read.
fn lost(reused: bool, parts: &Parts, what: &str, e: io::Error) -> Failure {
    let msg = format!("{what}: {e}");
    if reused && replayable(&parts.method) {
        Failure::Retry(msg)
    } else {
        Failure::Upstream(msg)
    }
}

/// Methods whose request may be sent twice (RFC 9110 9.2.2).
fn replayable(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}
