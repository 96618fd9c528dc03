//! The response body a proxied exchange streams back, which settles the request's
//! accounting (pool return, metrics, in-flight count, access log) exactly
//! once, when it ends or is dropped, and which a drain deadline can cut.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio_util::sync::WaitForCancellationFutureOwned;

use crate::access_log::{self, LogCtx};
use crate::router::Route;
use crate::target::InFlight;
use crate::upstream::{Conn, UpstreamBody};

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

#[derive(Debug)]
struct CutAtDrainDeadline;

impl fmt::Display for CutAtDrainDeadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("response cut at the drain deadline of its target set")
    }
}

impl StdError for CutAtDrainDeadline {}

/// Accounting for a proxied response, settled once when it ends (or is
/// dropped): pool return, metrics, in-flight count and the access log line.
pub(super) struct Tail {
    route: Arc<Route>,
    guard: Option<InFlight>,
    start: Instant,
    status: u16,
    bytes: u64,
    log: Option<LogCtx>,
    note: Option<&'static str>,
    done: bool,
}

impl Tail {
    /// The accounting of a response of `bytes` so far (a local page's
    /// length, or 0 for a proxied body that counts as it streams).
    pub(super) fn new(
        route: Arc<Route>,
        guard: InFlight,
        start: Instant,
        status: u16,
        bytes: u64,
        log: Option<LogCtx>,
    ) -> Tail {
        Tail {
            route,
            guard: Some(guard),
            start,
            status,
            bytes,
            log,
            note: None,
            done: false,
        }
    }

    /// Settles the request. `conn`, the upstream connection when the body
    /// was read to its end on one that may be reused, goes back to its
    /// target's pool unless the set drains.
    pub(super) fn finish(&mut self, complete: bool, conn: Option<Conn>) {
        if self.done {
            return;
        }
        self.done = true;
        let Some(guard) = self.guard.take() else {
            return;
        };
        if let Some(conn) = conn.filter(|_| complete && !guard.set().is_draining()) {
            guard.target().checkin(conn);
        }
        let elapsed = self.start.elapsed();
        guard.set().answered(self.status);
        self.route
            .service
            .metrics
            .record(guard.set().color, self.status, elapsed);
        if let Some(ctx) = &self.log {
            let note = if complete {
                self.note
            } else {
                self.note.or(Some("client went away or body error"))
            };
            access_log::write(
                ctx,
                &self.route.service.name,
                &guard.target().addr,
                guard.set().color.as_str(),
                self.status,
                elapsed.as_micros() as u64,
                self.bytes,
                note,
            );
        }
        drop(guard);
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.finish(false, None);
    }
}

pin_project! {
    #[project = RespProj]
    pub(crate) enum RespBody {
        Local { data: Option<Bytes> },
        Upstream {
            body: UpstreamBody,
            #[pin]
            cut: Option<WaitForCancellationFutureOwned>,
            tail: Tail,
        },
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            RespProj::Local { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            RespProj::Upstream {
                body,
                mut cut,
                tail,
            } => {
                if tail.done {
                    return Poll::Ready(None);
                }
                match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(d) = frame.data_ref() {
                            tail.bytes += d.len() as u64;
                        }
                        // hyper stops polling once a body says it is over,
                        // so a length-delimited body is settled here.
                        if body.is_end_stream() {
                            tail.finish(true, body.take_reusable());
                        }
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Poll::Ready(Some(Err(e))) => {
                        tail.note = Some("upstream body error");
                        tail.finish(false, None);
                        return Poll::Ready(Some(Err(e.into())));
                    }
                    Poll::Ready(None) => {
                        tail.finish(true, body.take_reusable());
                        return Poll::Ready(None);
                    }
                    Poll::Pending => {}
                }
                // Only a body that waits on its upstream can outlive a drain
                // deadline, so only then do we listen for the cut.
                // The set is the one the request entered (the route's
                // active one, or its staged one); not done, so entered.
                if cut.is_none() {
                    if let Some(guard) = &tail.guard {
                        cut.set(Some(guard.set().cut.clone().cancelled_owned()));
                    }
                }
                if let Some(f) = cut.as_pin_mut() {
                    if f.poll(cx).is_ready() {
                        if let Some(set) = tail.guard.as_ref().map(InFlight::set) {
                            set.cut_requests.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                service = &*tail.route.service.name,
                                color = set.color.as_str(),
                                "response still streaming at the drain deadline was cut"
                            );
                        }
                        tail.note = Some("cut at drain deadline");
                        tail.finish(false, None);
                        return Poll::Ready(Some(Err(Box::new(CutAtDrainDeadline))));
                    }
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Local { data } => data.is_none(),
            RespBody::Upstream { body, tail, .. } => tail.done || body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Local { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            RespBody::Upstream { body, .. } => body.size_hint(),
        }
    }
}
