//! Relay of an upgraded (WebSocket) connection between a client and an upstream.
//!
//! Bytes are copied as they come; only frame headers are parsed, so the relay
//! always knows where the current frame ends without unmasking or buffering
//! payloads. That knowledge is what lets a switch to a new color *drain* old
//! connections instead of cutting them: when the drain deadline passes, each
//! direction stops at its next frame boundary and injects a Close frame there
//! (1012 "service restart" to the client, so it reconnects, which lands on the
//! new color; 1001 "going away" to the upstream). Injecting mid-frame would
//! corrupt the stream, so a frame in flight is finished first, within a bound.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Per-direction copy buffer; big enough that a busy connection needs few
/// syscalls, small enough that thousands of idle connections stay cheap.
const BUF_SIZE: usize = 16 * 1024;

/// How long a frame already in flight at the deadline may take to finish
/// before the connection is cut without a Close frame.
const FRAME_FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait for the peer's Close reply after ours, and for shutdowns.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The longest frame header: 2 bytes + 8-byte extended length + 4-byte mask key.
const MAX_HEADER: usize = 14;

const OPCODE_CLOSE: u8 = 0x8;
const FIN: u8 = 0x80;
const MASK_BIT: u8 = 0x80;

/// RFC 6455 7.4.1: "service restart"; tells the client to reconnect.
const CLOSE_SERVICE_RESTART: u16 = 1012;
/// RFC 6455 7.4.1: the endpoint (the proxy, for this color) is going away.
const CLOSE_GOING_AWAY: u16 = 1001;

/// What a finished relay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RelayOutcome {
    /// The drain deadline ended the connection (Close frames injected, or the
    /// connection cut because a frame did not finish in time).
    pub closed_at_deadline: bool,
    /// Bytes forwarded from the upstream to the client (injected frames excluded).
    pub to_client: u64,
    /// Bytes forwarded from the client to the upstream (injected frames excluded).
    pub to_upstream: u64,
}

/// Relays raw WebSocket frames between `client` and `upstream` (both already
/// past the 101 handshake) until both directions are closed, or until
/// `deadline` is cancelled, after which both peers get a Close frame at a
/// frame boundary and the relay ends within a few seconds.
///
/// Returns an error on an I/O failure or on a frame header that cannot be
/// framed (e.g. a 64-bit length with the most significant bit set).
pub(crate) async fn relay<C, U>(
    client: C,
    upstream: U,
    deadline: CancellationToken,
) -> io::Result<RelayOutcome>
where
    C: AsyncRead + AsyncWrite + Unpin + Send,
    U: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (client_rx, client_tx) = tokio::io::split(client);
    let (upstream_rx, upstream_tx) = tokio::io::split(upstream);
    let to_upstream = Pump::new(client_rx, upstream_tx, Peer::Client).run(&deadline);
    let to_client = Pump::new(upstream_rx, client_tx, Peer::Upstream).run(&deadline);
    // An error in one direction drops the other: the caller then drops both
    // connections, which is the only sane end for a stream we cannot frame.
    let (up, down) = tokio::try_join!(to_upstream, to_client)?;
    Ok(RelayOutcome {
        closed_at_deadline: up.at_deadline || down.at_deadline,
        to_client: down.forwarded,
        to_upstream: up.forwarded,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Client,
    Upstream,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Client => "client",
            Peer::Upstream => "upstream",
        }
    }

    /// The Close frame the proxy sends *to* this peer at the deadline. Frames
    /// to the upstream must be masked (we act as its client); frames to the
    /// client must not be (we act as its server).
    fn deadline_close_frame(self) -> Vec<u8> {
        match self {
            Peer::Client => close_frame(CLOSE_SERVICE_RESTART, "service restart", None),
            Peer::Upstream => close_frame(
                CLOSE_GOING_AWAY,
                "going away",
                Some(rand::random::<u32>().to_be_bytes()),
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid WebSocket frame from the {from}: {source}")]
struct InvalidFrame {
    from: &'static str,
    source: FrameError,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FrameError {
    #[error(
        "64-bit payload length {0:#018x} has its most significant bit set (RFC 6455 section 5.2)"
    )]
    LengthMsbSet(u64),
}

/// Tracks frame boundaries in one direction of a WebSocket byte stream by
/// parsing headers only. `Copy` so the state before a chunk can be kept and
/// replayed cheaply when a write is interrupted by the deadline.
#[derive(Debug, Clone, Copy)]
struct FrameTracker {
    header: [u8; MAX_HEADER],
    /// Header bytes collected so far; 0 together with `remaining == 0` means
    /// the stream is between frames.
    have: u8,
    /// Payload bytes of the current frame not yet seen.
    remaining: u64,
    /// A Close frame header has been seen in this stream.
    close_seen: bool,
}

impl FrameTracker {
    fn new() -> Self {
        Self {
            header: [0; MAX_HEADER],
            have: 0,
            remaining: 0,
            close_seen: false,
        }
    }

    fn at_boundary(&self) -> bool {
        self.have == 0 && self.remaining == 0
    }

    /// Consumes all of `data`.
    fn advance(&mut self, mut data: &[u8]) -> Result<(), FrameError> {
        while !data.is_empty() {
            let used = self.step(data)?;
            data = &data[used..];
        }
        Ok(())
    }

    /// Consumes `data` up to the first frame boundary (none if already at one)
    /// and returns how many bytes that was; when it is less than `data.len()`,
    /// the tracker is at a boundary.
    fn advance_to_boundary(&mut self, data: &[u8]) -> Result<usize, FrameError> {
        if self.at_boundary() {
            return Ok(0);
        }
        let mut used = 0;
        while used < data.len() {
            used += self.step(&data[used..])?;
            if self.at_boundary() {
                break;
            }
        }
        Ok(used)
    }

    /// Consumes at least one byte of non-empty `data`: the rest of the current
    /// header or as much of the current payload as is there.
    fn step(&mut self, data: &[u8]) -> Result<usize, FrameError> {
        if self.remaining > 0 {
            let used = usize::try_from(self.remaining).map_or(data.len(), |r| r.min(data.len()));
            self.remaining -= used as u64;
            return Ok(used);
        }
        if self.have == 0 && data.len() >= 2 {
            // Fast path, the usual case: the whole header is in this chunk,
            // so parse it in place and take the payload in the same step.
            let header = header_len(data[1]);
            if data.len() >= header {
                let len = payload_len(&data[..header])?;
                if data[0] & 0x0F == OPCODE_CLOSE {
                    self.close_seen = true;
                }
                let rest = data.len() - header;
                let payload = usize::try_from(len).map_or(rest, |l| l.min(rest));
                self.remaining = len - payload as u64;
                return Ok(header + payload);
            }
        }
        let have = usize::from(self.have);
        let need = if have < 2 {
            2
        } else {
            header_len(self.header[1])
        };
        let used = (need - have).min(data.len());
        self.header[have..have + used].copy_from_slice(&data[..used]);
        let have = have + used;
        self.have = have as u8;
        if have >= 2 && have == header_len(self.header[1]) {
            self.remaining = payload_len(&self.header[..have])?;
            self.have = 0;
            if self.header[0] & 0x0F == OPCODE_CLOSE {
                self.close_seen = true;
            }
        }
        Ok(used)
    }
}

/// Total header length implied by the second header byte.
fn header_len(second: u8) -> usize {
    let ext = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & MASK_BIT != 0 { 4 } else { 0 };
    2 + ext + mask
}

/// Payload length of a complete header.
fn payload_len(header: &[u8]) -> Result<u64, FrameError> {
    match header[1] & 0x7F {
        126 => Ok(u64::from(u16::from_be_bytes([header[2], header[3]]))),
        127 => {
            let mut b = [0; 8];
            b.copy_from_slice(&header[2..10]);
            let len = u64::from_be_bytes(b);
            if len >> 63 != 0 {
                return Err(FrameError::LengthMsbSet(len));
            }
            Ok(len)
        }
        short => Ok(u64::from(short)),
    }
}

/// Encodes one final frame with the shortest length encoding, masking the
/// payload when `mask` is given.
fn encode_frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mask_bit = if mask.is_some() { MASK_BIT } else { 0 };
    let mut out = Vec::with_capacity(MAX_HEADER + payload.len());
    out.push(FIN | (opcode & 0x0F));
    match payload.len() {
        len @ 0..=125 => out.push(mask_bit | len as u8),
        len @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

fn close_frame(code: u16, reason: &str, mask: Option<[u8; 4]>) -> Vec<u8> {
    // Control frame payloads are limited to 125 bytes (RFC 6455 5.5).
    debug_assert!(reason.len() <= 123);
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    encode_frame(OPCODE_CLOSE, &payload, mask)
}

/// The peer went away; during teardown that is expected, not a failure.
fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof
    )
}

/// How the normal copying phase of a direction ended.
enum Forwarded {
    Eof,
    /// The deadline fired; with the unwritten rest of a chunk if a write was
    /// under way.
    Deadline(Option<Interrupted>),
}

struct PumpOutcome {
    forwarded: u64,
    at_deadline: bool,
}

/// Bytes read from `src` that were not yet written to `dst` when the deadline
/// fired, plus the tracker state from before that chunk, so the boundary
/// inside them can be found.
struct Interrupted {
    before: FrameTracker,
    pos: usize,
    end: usize,
}

/// One direction: reads frames from `from` and writes them to the other peer.
struct Pump<R, W> {
    src: R,
    dst: W,
    from: Peer,
    tracker: FrameTracker,
    buf: Box<[u8]>,
    forwarded: u64,
}

impl<R, W> Pump<R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    fn new(src: R, dst: W, from: Peer) -> Self {
        Self {
            src,
            dst,
            from,
            tracker: FrameTracker::new(),
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            forwarded: 0,
        }
    }

    fn to(&self) -> Peer {
        match self.from {
            Peer::Client => Peer::Upstream,
            Peer::Upstream => Peer::Client,
        }
    }

    fn invalid(&self, source: FrameError) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            InvalidFrame {
                from: self.from.name(),
                source,
            },
        )
    }

    fn outcome(&self, at_deadline: bool) -> PumpOutcome {
        PumpOutcome {
            forwarded: self.forwarded,
            at_deadline,
        }
    }

    async fn run(mut self, deadline: &CancellationToken) -> io::Result<PumpOutcome> {
        let Forwarded::Deadline(interrupted) = self.forward(deadline).await? else {
            self.shutdown_dst(deadline).await;
            return Ok(self.outcome(false));
        };

        // The deadline passed. Let the frame in flight finish so the Close
        // frame lands on a boundary, but don't let a slow frame hold the drain.
        let (pos, end) = match interrupted {
            Some(Interrupted { before, pos, end }) => {
                // The chunk was parsed in full before the write; rewind to
                // what actually reached `dst`.
                self.tracker = before;
                let written = self.tracker.advance(&self.buf[..pos]);
                written.map_err(|e| self.invalid(e))?;
                (pos, end)
            }
            None => (0, 0),
        };
        let leftover = match tokio::time::timeout(FRAME_FINISH_TIMEOUT, self.finish_frame(pos, end))
            .await
        {
            Ok(Ok(Some(leftover))) => leftover,
            Ok(Ok(None)) => {
                self.shutdown_dst(deadline).await;
                return Ok(self.outcome(true));
            }
            Ok(Err(e)) if is_disconnect(&e) => {
                self.shutdown_dst(deadline).await;
                return Ok(self.outcome(true));
            }
            Ok(Err(e)) => return Err(e),
            Err(_elapsed) => {
                tracing::debug!(
                    from = self.from.name(),
                    "websocket frame did not finish within {FRAME_FINISH_TIMEOUT:?} after the drain deadline; cutting the connection"
                );
                self.shutdown_dst(deadline).await;
                return Ok(self.outcome(true));
            }
        };

        match tokio::time::timeout(CLOSE_GRACE, self.close_and_drain(leftover)).await {
            Ok(Ok(())) | Err(_) => {}
            Ok(Err(e)) if is_disconnect(&e) => {}
            Ok(Err(e)) => return Err(e),
        }
        self.shutdown_dst(deadline).await;
        Ok(self.outcome(true))
    }

    /// Copies until EOF or the deadline.
    async fn forward(&mut self, deadline: &CancellationToken) -> io::Result<Forwarded> {
        let cancelled = deadline.cancelled();
        tokio::pin!(cancelled);
        loop {
            let end = tokio::select! {
                biased;
                () = &mut cancelled => return Ok(Forwarded::Deadline(None)),
                read = self.src.read(&mut self.buf) => read?,
            };
            if end == 0 {
                return Ok(Forwarded::Eof);
            }
            let before = self.tracker;
            let parsed = self.tracker.advance(&self.buf[..end]);
            parsed.map_err(|e| self.invalid(e))?;
            let mut pos = 0;
            while pos < end {
                // A single `write` is cancel-safe (Pending means nothing was
                // written), so a peer that stops reading cannot hide the deadline.
                tokio::select! {
                    biased;
                    written = self.dst.write(&self.buf[pos..end]) => {
                        let written = written?;
                        if written == 0 {
                            return Err(io::ErrorKind::WriteZero.into());
                        }
                        pos += written;
                        self.forwarded += written as u64;
                    }
                    () = &mut cancelled => {
                        return Ok(Forwarded::Deadline(Some(Interrupted { before, pos, end })));
                    }
                }
            }
            tokio::select! {
                biased;
                flushed = self.dst.flush() => flushed?,
                // Whatever is left gets flushed with the Close frame.
                () = &mut cancelled => return Ok(Forwarded::Deadline(None)),
            }
        }
    }

    /// Forwards up to the end of the current frame; returns the range of
    /// `buf` read past that boundary, or `None` if `src` ended first.
    async fn finish_frame(
        &mut self,
        mut pos: usize,
        mut end: usize,
    ) -> io::Result<Option<(usize, usize)>> {
        loop {
            let upto = self.tracker.advance_to_boundary(&self.buf[pos..end]);
            let upto = upto.map_err(|e| self.invalid(e))?;
            self.dst.write_all(&self.buf[pos..pos + upto]).await?;
            self.forwarded += upto as u64;
            pos += upto;
            if self.tracker.at_boundary() {
                self.dst.flush().await?;
                return Ok(Some((pos, end)));
            }
            end = self.src.read(&mut self.buf).await?;
            pos = 0;
            if end == 0 {
                return Ok(None);
            }
        }
    }

    /// Sends our Close unless one already went this way (RFC 6455 5.5.1: an
    /// endpoint sends at most one), then discards what `src` sends until its
    /// own Close, which completes the closing handshake on its side.
    async fn close_and_drain(&mut self, (pos, end): (usize, usize)) -> io::Result<()> {
        if !self.tracker.close_seen {
            self.dst
                .write_all(&self.to().deadline_close_frame())
                .await?;
            self.dst.flush().await?;
        }
        let parsed = self.tracker.advance(&self.buf[pos..end]);
        parsed.map_err(|e| self.invalid(e))?;
        while !self.tracker.close_seen {
            let read = self.src.read(&mut self.buf).await?;
            if read == 0 {
                break;
            }
            let parsed = self.tracker.advance(&self.buf[..read]);
            parsed.map_err(|e| self.invalid(e))?;
        }
        Ok(())
    }

    /// Propagates the end of this direction. Bounded once the deadline has
    /// passed, so a peer that stops reading cannot keep the relay alive.
    async fn shutdown_dst(&mut self, deadline: &CancellationToken) {
        let bound = async {
            deadline.cancelled().await;
            tokio::time::sleep(CLOSE_GRACE).await;
        };
        tokio::select! {
            shut = self.dst.shutdown() => {
                if let Err(e) = shut {
                    tracing::debug!(to = self.to().name(), "websocket shutdown failed: {e}");
                }
            }
            () = bound => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{duplex, DuplexStream, ReadBuf};
    use tokio::task::JoinHandle;
    use tokio::time::Instant;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
    use tokio_tungstenite::tungstenite::{Error as WsError, Message};
    use tokio_tungstenite::WebSocketStream;

    use super::*;

    const OPCODE_TEXT: u8 = 0x1;
    const OPCODE_BINARY: u8 = 0x2;
    const MIB: usize = 1024 * 1024;

    /// Counts bytes written through it, so byte-count assertions don't depend
    /// on how tungstenite encodes frames.
    struct Counted<S> {
        inner: S,
        written: Arc<AtomicU64>,
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = poll {
                self.written.fetch_add(n as u64, Ordering::Relaxed);
            }
            poll
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    type Ws = WebSocketStream<Counted<DuplexStream>>;

    /// A tungstenite client and server talking through `relay`.
    struct Harness {
        client: Ws,
        server: Ws,
        client_written: Arc<AtomicU64>,
        server_written: Arc<AtomicU64>,
        deadline: CancellationToken,
        relay: JoinHandle<io::Result<RelayOutcome>>,
    }

    async fn harness(pipe_capacity: usize) -> Harness {
        let (client_app, client_proxy) = duplex(pipe_capacity);
        let (upstream_proxy, upstream_app) = duplex(pipe_capacity);
        let client_written = Arc::new(AtomicU64::new(0));
        let server_written = Arc::new(AtomicU64::new(0));
        let client = WebSocketStream::from_raw_socket(
            Counted {
                inner: client_app,
                written: client_written.clone(),
            },
            Role::Client,
            None,
        )
        .await;
        let server = WebSocketStream::from_raw_socket(
            Counted {
                inner: upstream_app,
                written: server_written.clone(),
            },
            Role::Server,
            None,
        )
        .await;
        let deadline = CancellationToken::new();
        let relay = tokio::spawn(relay(client_proxy, upstream_proxy, deadline.clone()));
        Harness {
            client,
            server,
            client_written,
            server_written,
            deadline,
            relay,
        }
    }

    /// Reads until the stream ends or fails; the failure is kept as the last item.
    async fn drain(mut ws: Ws) -> Vec<Result<Message, WsError>> {
        let mut seen = Vec::new();
        while let Some(item) = ws.next().await {
            let failed = item.is_err();
            seen.push(item);
            if failed {
                break;
            }
        }
        seen
    }

    fn close_of(seen: &[Result<Message, WsError>]) -> Option<(u16, String)> {
        seen.iter().find_map(|m| match m {
            Ok(Message::Close(Some(CloseFrame { code, reason }))) => {
                Some((u16::from(*code), reason.to_string()))
            }
            _ => None,
        })
    }

    fn assert_clean(seen: &[Result<Message, WsError>]) {
        for item in seen {
            assert!(
                item.is_ok(),
                "peer saw a protocol error: {item:?} in {seen:?}"
            );
        }
    }

    fn big_payload() -> Vec<u8> {
        (0..MIB).map(|i| (i % 251) as u8).collect()
    }

    async fn next_msg(ws: &mut Ws) -> Message {
        ws.next()
            .await
            .expect("stream ended")
            .expect("protocol error")
    }

    #[tokio::test]
    async fn messages_flow_both_ways_and_bytes_are_counted() {
        let Harness {
            mut client,
            mut server,
            client_written,
            server_written,
            relay,
            ..
        } = harness(64 * 1024).await;

        let echo = tokio::spawn(async move {
            let mut echoed = 0;
            while let Some(msg) = server.next().await {
                match msg.expect("server protocol error") {
                    m @ (Message::Text(_) | Message::Binary(_)) => {
                        server.send(m).await.expect("echo");
                        echoed += 1;
                    }
                    Message::Close(_) => {}
                    _ => {}
                }
            }
            echoed
        });

        client.send(Message::text("hello")).await.unwrap();
        assert_eq!(next_msg(&mut client).await, Message::text("hello"));
        client
            .send(Message::binary(vec![0, 1, 2, 255]))
            .await
            .unwrap();
        assert_eq!(
            next_msg(&mut client).await,
            Message::binary(vec![0, 1, 2, 255])
        );
        client.send(Message::binary(big_payload())).await.unwrap();
        assert_eq!(next_msg(&mut client).await, Message::binary(big_payload()));
        // A fragmented text message with a ping between the fragments.
        client
            .send(Message::Frame(Frame::message(
                "frag",
                OpCode::Data(Data::Text),
                false,
            )))
            .await
            .unwrap();
        client.send(Message::Ping("p".into())).await.unwrap();
        client
            .send(Message::Frame(Frame::message(
                "mented",
                OpCode::Data(Data::Continue),
                true,
            )))
            .await
            .unwrap();
        assert_eq!(next_msg(&mut client).await, Message::Pong("p".into()));
        assert_eq!(next_msg(&mut client).await, Message::text("fragmented"));

        client.close(None).await.unwrap();
        let rest = drain(client).await;
        assert_clean(&rest);
        assert_eq!(echo.await.unwrap(), 4);

        let outcome = relay.await.unwrap().unwrap();
        assert!(!outcome.closed_at_deadline);
        assert_eq!(outcome.to_upstream, client_written.load(Ordering::Relaxed));
        assert_eq!(outcome.to_client, server_written.load(Ordering::Relaxed));
        // Sanity: the 1 MiB message went each way.
        assert!(outcome.to_upstream > MIB as u64);
        assert!(outcome.to_client > MIB as u64);
    }

    #[tokio::test]
    async fn client_close_reaches_upstream_and_is_not_a_deadline_close() {
        let Harness {
            mut client,
            server,
            relay,
            ..
        } = harness(4096).await;
        client
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await
            .unwrap();
        let (client_seen, server_seen) = tokio::join!(drain(client), drain(server));
        assert_clean(&client_seen);
        assert_clean(&server_seen);
        assert_eq!(close_of(&server_seen), Some((1000, "bye".to_owned())));
        // tungstenite echoes the code in its reply.
        assert_eq!(close_of(&client_seen).map(|c| c.0), Some(1000));
        let outcome = relay.await.unwrap().unwrap();
        assert!(!outcome.closed_at_deadline);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_on_idle_connection_closes_both_sides_cleanly() {
        let Harness {
            mut client,
            mut server,
            deadline,
            relay,
            ..
        } = harness(4096).await;
        client.send(Message::text("before")).await.unwrap();
        assert_eq!(next_msg(&mut server).await, Message::text("before"));

        let start = Instant::now();
        deadline.cancel();
        let (client_seen, server_seen) = tokio::join!(drain(client), drain(server));
        // Server role rejects unmasked frames, so a clean drain also proves
        // the injected 1001 was masked.
        assert_clean(&client_seen);
        assert_clean(&server_seen);
        assert_eq!(
            close_of(&client_seen),
            Some((1012, "service restart".to_owned()))
        );
        assert_eq!(
            close_of(&server_seen),
            Some((1001, "going away".to_owned()))
        );
        assert_eq!(client_seen.len(), 1, "{client_seen:?}");
        assert_eq!(server_seen.len(), 1, "{server_seen:?}");

        let outcome = relay.await.unwrap().unwrap();
        assert!(outcome.closed_at_deadline);
        // Both Close replies were recognised, so no grace period was waited
        // out (virtual time: this is logic, not performance).
        assert!(start.elapsed() < CLOSE_GRACE);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_mid_frame_finishes_the_frame_then_closes() {
        // Small pipes so the 1 MiB frame is stuck mid-transfer.
        let Harness {
            client,
            mut server,
            server_written,
            deadline,
            relay,
            ..
        } = harness(8 * 1024).await;
        let sender = tokio::spawn(async move {
            server
                .send(Message::binary(big_payload()))
                .await
                .expect("send big");
            drain(server).await
        });
        // Paused time only advances once every task is blocked: the relay is
        // then stuck writing the big frame to a client that doesn't read.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!relay.is_finished());
        deadline.cancel();

        let client_seen = drain(client).await;
        assert_clean(&client_seen);
        assert_eq!(client_seen.len(), 2, "{:?}", client_seen.len());
        assert_eq!(
            client_seen[0].as_ref().unwrap(),
            &Message::binary(big_payload())
        );
        assert_eq!(
            close_of(&client_seen),
            Some((1012, "service restart".to_owned()))
        );
        let server_seen = sender.await.unwrap();
        assert_clean(&server_seen);
        assert_eq!(
            close_of(&server_seen),
            Some((1001, "going away".to_owned()))
        );

        let outcome = relay.await.unwrap().unwrap();
        assert!(outcome.closed_at_deadline);
        // The big frame was forwarded in full; the server's Close reply was
        // swallowed, since the client already had our Close.
        let big_frame = 2 + 8 + MIB as u64;
        assert_eq!(outcome.to_client, big_frame);
        assert!(server_written.load(Ordering::Relaxed) > big_frame);
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_mid_frame_cuts_when_the_frame_does_not_finish() {
        let Harness {
            client,
            mut server,
            deadline,
            relay,
            ..
        } = harness(8 * 1024).await;
        let sender = tokio::spawn(async move {
            // Fails once the relay gives up on the connection.
            let _ = server.send(Message::binary(big_payload())).await;
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let start = Instant::now();
        deadline.cancel();
        // The client never reads, so the frame can't finish.
        let outcome = relay.await.unwrap().unwrap();
        assert!(outcome.closed_at_deadline);
        assert!(start.elapsed() >= FRAME_FINISH_TIMEOUT);
        assert!(outcome.to_client < MIB as u64);

        // What reached the client is a truncated frame and no Close.
        let client_seen = drain(client).await;
        assert!(
            matches!(client_seen.last(), Some(Err(_))),
            "{:?}",
            client_seen.iter().map(|m| m.is_ok()).collect::<Vec<_>>()
        );
        assert_eq!(close_of(&client_seen), None);
        sender.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_between_fragments_injects_close_between_them() {
        let Harness {
            mut client,
            server,
            deadline,
            relay,
            ..
        } = harness(4096).await;
        client
            .send(Message::Frame(Frame::message(
                "first half",
                OpCode::Data(Data::Text),
                false,
            )))
            .await
            .unwrap();
        // Let the fragment reach the server before the deadline.
        tokio::time::sleep(Duration::from_millis(10)).await;
        deadline.cancel();
        let (client_seen, server_seen) = tokio::join!(drain(client), drain(server));
        assert_clean(&client_seen);
        assert_clean(&server_seen);
        assert_eq!(
            close_of(&server_seen),
            Some((1001, "going away".to_owned()))
        );
        assert_eq!(
            close_of(&client_seen),
            Some((1012, "service restart".to_owned()))
        );
        assert!(relay.await.unwrap().unwrap().closed_at_deadline);
    }

    /// Raw peers: a client that has already sent Close must get our 1012 (it
    /// is the reply it waits for), but the upstream, which already has the
    /// client's Close, must not get a second one.
    #[tokio::test(start_paused = true)]
    async fn deadline_after_client_close_sends_no_second_close_upstream() {
        let (mut client_app, client_proxy) = duplex(4096);
        let (upstream_proxy, mut upstream_app) = duplex(4096);
        let deadline = CancellationToken::new();
        let relay = tokio::spawn(relay(client_proxy, upstream_proxy, deadline.clone()));

        let client_close = close_frame(1000, "bye", Some([1, 2, 3, 4]));
        client_app.write_all(&client_close).await.unwrap();
        let mut got = vec![0; client_close.len()];
        upstream_app.read_exact(&mut got).await.unwrap();
        assert_eq!(got, client_close);

        deadline.cancel();
        let mut to_client = Vec::new();
        let mut to_upstream = Vec::new();
        let (a, b) = tokio::join!(
            client_app.read_to_end(&mut to_client),
            upstream_app.read_to_end(&mut to_upstream)
        );
        a.unwrap();
        b.unwrap();
        assert_eq!(to_client, close_frame(1012, "service restart", None));
        assert_eq!(to_upstream, b"");
        let outcome = relay.await.unwrap().unwrap();
        assert!(outcome.closed_at_deadline);
        assert_eq!(outcome.to_upstream, client_close.len() as u64);
        assert_eq!(outcome.to_client, 0);
    }

    #[tokio::test]
    async fn invalid_length_from_client_ends_relay_with_error() {
        let (mut client_app, client_proxy) = duplex(4096);
        let (upstream_proxy, mut upstream_app) = duplex(4096);
        let relay = tokio::spawn(relay(
            client_proxy,
            upstream_proxy,
            CancellationToken::new(),
        ));
        let mut garbage = vec![FIN | OPCODE_BINARY, MASK_BIT | 127];
        garbage.extend_from_slice(&(1u64 << 63).to_be_bytes());
        garbage.extend_from_slice(&[9, 9, 9, 9, 1, 2, 3]);
        client_app.write_all(&garbage).await.unwrap();
        let err = relay.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(msg.contains("from the client"), "{msg}");
        assert!(msg.contains("most significant bit"), "{msg}");
        // The relay dropped both connections.
        let mut rest = Vec::new();
        upstream_app.read_to_end(&mut rest).await.unwrap();
    }

    #[tokio::test]
    async fn reserved_opcodes_and_rsv_bits_pass_through() {
        let (mut client_app, client_proxy) = duplex(4096);
        let (upstream_proxy, mut upstream_app) = duplex(4096);
        let relay = tokio::spawn(relay(
            client_proxy,
            upstream_proxy,
            CancellationToken::new(),
        ));
        let mut frames = encode_frame(0x3, b"reserved data", Some([5, 6, 7, 8]));
        let mut rsv = encode_frame(OPCODE_TEXT, b"deflated", Some([1, 1, 1, 1]));
        rsv[0] |= 0x40;
        frames.extend_from_slice(&rsv);
        frames.extend_from_slice(&encode_frame(0xB, b"", Some([0, 0, 0, 0])));
        client_app.write_all(&frames).await.unwrap();
        drop(client_app);
        let mut got = Vec::new();
        upstream_app.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, frames);
        drop(upstream_app);
        let outcome = relay.await.unwrap().unwrap();
        assert_eq!(outcome.to_upstream, frames.len() as u64);
    }

    // ---- frame parser ----

    /// Feeds `bytes` one at a time and returns the offsets (after the byte)
    /// at which the tracker was at a frame boundary.
    fn boundaries_bytewise(bytes: &[u8]) -> Vec<usize> {
        let mut t = FrameTracker::new();
        let mut at = Vec::new();
        for (i, b) in bytes.iter().enumerate() {
            t.advance(std::slice::from_ref(b)).unwrap();
            if t.at_boundary() {
                at.push(i + 1);
            }
        }
        at
    }

    #[test]
    fn parses_all_three_length_encodings_split_byte_by_byte() {
        for len in [0usize, 1, 125, 126, 127, 0xFFFF, 0x10000, 70_000] {
            for mask in [None, Some([0xA, 0xB, 0xC, 0xD])] {
                let frame = encode_frame(OPCODE_BINARY, &vec![0x5A; len], mask);
                let expected_header = header_len(frame[1]);
                let ext = match len {
                    0..=125 => 0,
                    126..=0xFFFF => 2,
                    _ => 8,
                };
                assert_eq!(
                    expected_header,
                    2 + ext + if mask.is_some() { 4 } else { 0 }
                );
                assert_eq!(frame.len(), expected_header + len);
                // Exactly one boundary: at the very end of the frame.
                assert_eq!(
                    boundaries_bytewise(&frame),
                    vec![frame.len()],
                    "len {len} mask {mask:?}"
                );
            }
        }
    }

    #[test]
    fn advance_to_boundary_stops_at_each_frame_end() {
        let a = encode_frame(OPCODE_TEXT, b"abc", None);
        let b = encode_frame(OPCODE_BINARY, &[7; 300], Some([1, 2, 3, 4]));
        let c = encode_frame(OPCODE_BINARY, &[], None);
        let stream = [a.clone(), b.clone(), c.clone()].concat();

        let mut t = FrameTracker::new();
        assert_eq!(
            t.advance_to_boundary(&stream).unwrap(),
            0,
            "already at a boundary"
        );
        // Step into the first frame's header, then find its end.
        t.advance(&stream[..1]).unwrap();
        assert!(!t.at_boundary());
        assert_eq!(t.advance_to_boundary(&stream[1..]).unwrap(), a.len() - 1);
        assert!(t.at_boundary());
        let mut pos = a.len();
        t.advance(&stream[pos..pos + 1]).unwrap();
        pos += 1;
        assert_eq!(t.advance_to_boundary(&stream[pos..]).unwrap(), b.len() - 1);
        pos += b.len() - 1;
        t.advance(&stream[pos..pos + 1]).unwrap();
        pos += 1;
        // The empty frame ends with its header.
        assert_eq!(t.advance_to_boundary(&stream[pos..]).unwrap(), c.len() - 1);
        assert!(t.at_boundary());
        assert!(!t.close_seen);

        // Running out of data mid-frame consumes all of it.
        let mut t = FrameTracker::new();
        t.advance(&b[..3]).unwrap();
        assert_eq!(t.advance_to_boundary(&b[3..10]).unwrap(), 7);
        assert!(!t.at_boundary());
    }

    #[test]
    fn boundaries_in_a_stream_of_frames_fed_in_odd_chunks() {
        let frames = [
            encode_frame(OPCODE_TEXT, b"x", Some([1, 2, 3, 4])),
            encode_frame(OPCODE_BINARY, &[1; 126], None),
            encode_frame(OPCODE_BINARY, &[2; 65_536], Some([9, 8, 7, 6])),
            close_frame(1000, "", None),
        ];
        let stream = frames.concat();
        let mut ends = Vec::new();
        let mut total = 0;
        for f in &frames {
            total += f.len();
            ends.push(total);
        }
        assert_eq!(boundaries_bytewise(&stream), ends);

        for chunk in [3, 7, 13, 1000, 16 * 1024] {
            let mut t = FrameTracker::new();
            let mut found = Vec::new();
            let mut offset = 0;
            for piece in stream.chunks(chunk) {
                let mut pos = 0;
                while pos < piece.len() {
                    if t.at_boundary() {
                        // Step past the boundary to look for the next one.
                        t.advance(&piece[pos..pos + 1]).unwrap();
                        pos += 1;
                        if t.at_boundary() {
                            found.push(offset + pos);
                        }
                        continue;
                    }
                    pos += t.advance_to_boundary(&piece[pos..]).unwrap();
                    if t.at_boundary() {
                        found.push(offset + pos);
                    }
                }
                offset += piece.len();
            }
            assert_eq!(found, ends, "chunk size {chunk}");
            assert!(t.close_seen);
        }
    }

    #[test]
    fn close_frames_are_recognised_and_encoded_per_rfc() {
        let mut t = FrameTracker::new();
        t.advance(&encode_frame(OPCODE_TEXT, b"hi", None)).unwrap();
        assert!(!t.close_seen);
        let to_client = Peer::Client.deadline_close_frame();
        assert_eq!(&to_client[..4], &[0x88, 17, 0x03, 0xF4]);
        assert_eq!(&to_client[4..], b"service restart");
        t.advance(&to_client).unwrap();
        assert!(t.close_seen);

        let to_upstream = Peer::Upstream.deadline_close_frame();
        assert_eq!(to_upstream[0], 0x88);
        assert_eq!(to_upstream[1], MASK_BIT | 12);
        let key = &to_upstream[2..6];
        let unmasked: Vec<u8> = to_upstream[6..]
            .iter()
            .zip(key.iter().cycle())
            .map(|(b, k)| b ^ k)
            .collect();
        assert_eq!(&unmasked[..2], &1001u16.to_be_bytes());
        assert_eq!(&unmasked[2..], b"going away");
    }

    #[test]
    fn msb_length_is_rejected() {
        let mut header = vec![FIN | OPCODE_BINARY, 127];
        header.extend_from_slice(&u64::MAX.to_be_bytes());
        let mut t = FrameTracker::new();
        assert_eq!(t.advance(&header), Err(FrameError::LengthMsbSet(u64::MAX)));
        // Largest legal length is accepted.
        let mut header = vec![FIN | OPCODE_BINARY, 127];
        header.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        let mut t = FrameTracker::new();
        t.advance(&header).unwrap();
        assert!(!t.at_boundary());
    }

    #[test]
    fn garbage_never_panics() {
        // xorshift: deterministic and dependency-free.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut errors = 0;
        for _ in 0..2_000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut t = FrameTracker::new();
            let chunk = 1 + (next() % 5) as usize;
            for piece in bytes.chunks(chunk) {
                let step = if next() % 2 == 0 {
                    t.advance(piece).map(|()| piece.len())
                } else {
                    t.advance_to_boundary(piece)
                };
                match step {
                    Ok(used) => assert!(used <= piece.len()),
                    Err(FrameError::LengthMsbSet(_)) => {
                        errors += 1;
                        break;
                    }
                }
            }
        }
        // The generator does produce invalid headers, so the error path ran.
        assert!(errors > 0);
    }
}
