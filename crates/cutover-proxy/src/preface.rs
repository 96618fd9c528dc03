//! The first moments of a client connection. hyper's header timer starts
//! only once it knows the protocol, and its protocol detection (reading up
//! to the 24-byte HTTP/2 preface) has no timer at all: a client that sends
//! nothing, or a few bytes of the preface, would hold its socket forever.
//! [`Preface`] bounds that first stretch by the client header timeout.
//!
//! The timer runs until the bytes read so far tell the protocol and its
//! first step: for HTTP/1 the first byte that is not the preface (hyper's
//! header timer covers the rest of the head), for HTTP/2 the whole preface
//! and the header of the client's first frame (its SETTINGS), after which
//! hyper's pings cover an h2 connection that goes quiet.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The preface and one frame header (9 bytes).
const H2_FIRST_STEP: usize = H2_PREFACE.len() + 9;

pin_project! {
    /// A client stream whose first bytes must come within a deadline.
    pub(crate) struct Preface<S> {
        #[pin]
        io: S,
        deadline: Option<Pin<Box<Sleep>>>,
        seen: usize,
    }
}

impl<S> Preface<S> {
    pub(crate) fn new(io: S, limit: Duration) -> Preface<S> {
        Preface {
            io,
            deadline: Some(Box::pin(tokio::time::sleep(limit))),
            seen: 0,
        }
    }
}

/// Whether `new` bytes read at offset `seen` settle the protocol's first
/// step: a byte off the preface (HTTP/1), or preface and frame header read.
fn settled(seen: usize, new: &[u8]) -> bool {
    let off_preface = new
        .iter()
        .enumerate()
        .any(|(i, b)| H2_PREFACE.get(seen + i).is_some_and(|p| p != b));
    off_preface || seen + new.len() >= H2_FIRST_STEP
}

impl<S: AsyncRead> AsyncRead for Preface<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let Some(deadline) = this.deadline.as_mut() else {
            return this.io.poll_read(cx, buf);
        };
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client sent no request within the client header timeout",
            )));
        }
        let before = buf.filled().len();
        let read = this.io.poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            let new = &buf.filled()[before..];
            if new.is_empty() || settled(*this.seen, new) {
                *this.deadline = None;
            }
            *this.seen += new.len();
        }
        read
    }
}

impl<S: AsyncWrite> AsyncWrite for Preface<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, b)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http1_request_settles_at_its_first_byte() {
        assert!(settled(0, b"G"));
        assert!(settled(0, b"GET / HTTP/1.1\r\n"));
        // "PRI" could still be the preface; "PRX" cannot.
        assert!(!settled(0, b"PRI"));
        assert!(settled(3, b"X"));
    }

    #[test]
    fn http2_settles_only_after_the_preface_and_a_frame_header() {
        assert!(!settled(0, H2_PREFACE));
        assert!(!settled(0, &H2_PREFACE[..23]));
        assert!(!settled(24, &[0; 8]));
        assert!(settled(24, &[0; 9]));
        assert!(settled(
            20,
            &[b'\r', b'\n', b'\r', b'\n', 0, 0, 0, 0, 0, 0, 0, 0, 0]
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_times_out_and_a_talking_one_does_not() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(64);
        let mut silent = Preface::new(server, Duration::from_secs(10));
        let mut buf = [0u8; 8];
        let err = silent.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);

        let (mut client2, server2) = tokio::io::duplex(64);
        let mut talking = Preface::new(server2, Duration::from_secs(10));
        client2.write_all(b"GET").await.unwrap();
        assert_eq!(talking.read(&mut buf).await.unwrap(), 3);
        // Past the deadline, the stream reads on: the protocol is known.
        tokio::time::sleep(Duration::from_secs(20)).await;
        client2.write_all(b" /").await.unwrap();
        assert_eq!(talking.read(&mut buf).await.unwrap(), 2);
        client.shutdown().await.unwrap();
    }
}
