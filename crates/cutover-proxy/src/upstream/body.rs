//! The origin's response body as hyper's server streams it to the client:
//! frames cut from the connection's read buffer without copies, and the
//! connection given back for reuse once the body has been read to its end.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::chunked::{Chunked, Item};
use super::conn::Conn;
use super::upgraded::Upgraded;

/// Reads at least this much room into the buffer for body bytes.
const READ_AHEAD: usize = 16 * 1024;

/// How the response body is delimited, from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    Length(u64),
    Chunked,
    /// Until the origin closes the connection.
    Close,
}

enum State {
    Length(u64),
    Chunked(Chunked),
    Close,
    Done,
}

pub(crate) struct UpstreamBody {
    conn: Option<Conn>,
    state: State,
    reusable: bool,
}

impl UpstreamBody {
    pub(super) fn new(conn: Conn, framing: BodyFraming, reusable: bool) -> UpstreamBody {
        let state = match framing {
            BodyFraming::Length(0) => State::Done,
            BodyFraming::Length(n) => State::Length(n),
            BodyFraming::Chunked => State::Chunked(Chunked::new()),
            BodyFraming::Close => State::Close,
        };
        UpstreamBody {
            conn: Some(conn),
            state,
            reusable,
        }
    }

    /// The connection, for its target's pool, once the body has been read
    /// to its end on a keep-alive connection with nothing read past it.
    pub(crate) fn take_reusable(&mut self) -> Option<Conn> {
        let done = matches!(self.state, State::Done);
        let conn = self.conn.take()?;
        (done && self.reusable && !conn.has_leftover()).then_some(conn)
    }

    /// After a 101: the connection, for the relay, with whatever the origin
    /// sent past the head. The body is then empty.
    pub(crate) fn take_upgraded(&mut self) -> Option<Upgraded> {
        self.state = State::Done;
        let (stream, leftover) = self.conn.take()?.into_parts();
        Some(Upgraded::new(stream, leftover))
    }

    fn fail(&mut self, e: io::Error) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.state = State::Done;
        self.conn = None;
        Poll::Ready(Some(Err(e)))
    }
}

/// Reads more of the body into the buffer; `Ok(0)` at the origin's close.
fn poll_fill(conn: &mut Conn, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    let (stream, buf, _) = conn.parts();
    if buf.capacity() - buf.len() < READ_AHEAD / 4 {
        buf.reserve(READ_AHEAD);
    }
    tokio_util::io::poll_read_buf(Pin::new(stream), cx, buf)
}

fn cut_short(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("the origin closed the connection {what}"),
    )
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Length(left) => {
                    let buf = conn.buf();
                    if !buf.is_empty() {
                        let n = (*left).min(buf.len() as u64);
                        let data = buf.split_to(n as usize).freeze();
                        *left -= n;
                        if *left == 0 {
                            this.state = State::Done;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                State::Chunked(dec) => match dec.decode(conn.buf()) {
                    Ok(Some(Item::Data(data))) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Some(Item::End(trailers))) => {
                        this.state = State::Done;
                        return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let e = io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("the origin's chunked body is malformed: {}", e.0),
                        );
                        return this.fail(e);
                    }
                },
                State::Close => {
                    let buf = conn.buf();
                    if !buf.is_empty() {
                        let data = buf.split().freeze();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
            }
            match ready!(poll_fill(conn, cx)) {
                Ok(0) => match this.state {
                    State::Close => {
                        this.state = State::Done;
                        return Poll::Ready(None);
                    }
                    State::Length(left) => {
                        return this.fail(cut_short(&format!(
                            "{left} bytes before the end of the body"
                        )))
                    }
                    _ => return this.fail(cut_short("before the end of the chunked body")),
                },
                Ok(_) => {}
                Err(e) => return this.fail(e),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}
