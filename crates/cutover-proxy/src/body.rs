//! The request body as it goes upstream: the client's body with the size
//! limit applied while it streams. Upstream connections (the target pools)
//! and the request path both name it.

use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// Upstream request body: the client's body with the size limit applied as
/// it streams (Content-Length is checked up front; chunked bodies here).
pub(crate) struct ReqBody {
    inner: Option<Incoming>,
    remaining: u64,
}

impl ReqBody {
    pub(crate) fn new(body: Incoming, limit: u64) -> ReqBody {
        ReqBody {
            inner: Some(body),
            remaining: limit,
        }
    }
}

#[derive(Debug)]
pub(crate) enum ReqBodyError {
    TooLarge,
    Client(hyper::Error),
}

impl fmt::Display for ReqBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReqBodyError::TooLarge => f.write_str("request body exceeds the configured limit"),
            ReqBodyError::Client(e) => write!(f, "reading the client's request body: {e}"),
        }
    }
}

impl StdError for ReqBodyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ReqBodyError::TooLarge => None,
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
        match ready!(Pin::new(inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.inner = None;
                        return Poll::Ready(Some(Err(ReqBodyError::TooLarge)));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(ReqBodyError::Client(e)))),
            None => Poll::Ready(None),
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
