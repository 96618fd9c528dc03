//! The request body as it goes upstream: the client's body with the size
//! limit and the stall timer applied while it streams, and a signal when it
//! has all been sent. Upstream connections (the target pools), the request
//! path and the control listeners name it.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, DropGuard};

/// Upstream request body: the client's body with the size limit applied as
/// it streams (Content-Length is checked up front; chunked bodies here),
/// and a client that stops sending in the middle answered 408 after the
/// body timeout, as nginx's `client_body_timeout` does.
pub(crate) struct ReqBody {
    inner: Option<Incoming>,
    remaining: u64,
    /// Only for a body that has something to send: a bodiless request
    /// (most of them) allocates neither.
    streaming: Option<Box<Streaming>>,
}

struct Streaming {
    stall: Duration,
    timer: Pin<Box<Sleep>>,
    /// Cancelled when the body has been sent, or given up.
    _sent: DropGuard,
    token: CancellationToken,
}

impl ReqBody {
    pub(crate) fn new(body: Incoming, limit: u64, stall: Duration) -> ReqBody {
        let streaming = (!body.is_end_stream()).then(|| {
            let token = CancellationToken::new();
            Box::new(Streaming {
                stall,
                timer: Box::pin(tokio::time::sleep(stall)),
                _sent: token.clone().drop_guard(),
                token,
            })
        });
        ReqBody {
            inner: Some(body),
            remaining: limit,
            streaming,
        }
    }

    /// Cancelled once the whole body has been sent upstream; `None` when
    /// there was nothing to send. The response-header timer starts there,
    /// so a long upload is bounded by its body timer, not by that one.
    pub(crate) fn sent(&self) -> Option<CancellationToken> {
        self.streaming.as_ref().map(|s| s.token.clone())
    }

    fn end(&mut self) {
        self.inner = None;
        self.streaming = None;
    }
}

#[derive(Debug)]
pub(crate) enum ReqBodyError {
    TooLarge,
    /// The client sent no body data for the body timeout.
    Stalled(Duration),
    /// The body could not be read: a malformed chunked encoding, or the
    /// client went away in the middle.
    Client(hyper::Error),
}

impl fmt::Display for ReqBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReqBodyError::TooLarge => f.write_str("request body exceeds the configured limit"),
            ReqBodyError::Stalled(d) => {
                write!(f, "the client sent no request body data for {d:?}")
            }
            ReqBodyError::Client(e) => write!(f, "reading the client's request body: {e}"),
        }
    }
}

impl StdError for ReqBodyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ReqBodyError::TooLarge | ReqBodyError::Stalled(_) => None,
            ReqBodyError::Client(e) => Some(e),
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = ReqBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ReqBodyError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if polled.is_pending() {
            if let Some(s) = this.streaming.as_mut() {
                if s.timer.as_mut().poll(cx).is_ready() {
                    let stall = s.stall;
                    this.end();
                    return Poll::Ready(Some(Err(ReqBodyError::Stalled(stall))));
                }
            }
            return Poll::Pending;
        }
        match ready!(polled) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.end();
                        return Poll::Ready(Some(Err(ReqBodyError::TooLarge)));
                    }
                    this.remaining -= len;
                }
                if let Some(s) = this.streaming.as_mut() {
                    let next = Instant::now() + s.stall;
                    s.timer.as_mut().reset(next);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => {
                this.end();
                Poll::Ready(Some(Err(ReqBodyError::Client(e))))
            }
            None => {
                this.end();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(|b| b.size_hint())
            .unwrap_or_else(|| SizeHint::with_exact(0))
    }
}
