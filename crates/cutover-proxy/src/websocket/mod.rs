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
//!
//! A connection with no bytes either way for the idle timeout ends the same
//! way, with 1001 to both sides. After its Close, the relay reads and
//! discards what the client still sends until the client's own Close and its
//! FIN (RFC 6455 §7.1.1), within a bound: closing a socket with unread data
//! sends an RST, and a client that was sending as the Close went out would
//! see the reset and lose the Close frame.

use std::future::pending;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Per-direction copy buffer; big enough that a busy connection needs few
/// syscalls, small enough that thousands of idle connections stay cheap.
const BUF_SIZE: usize = 16 * 1024;

/// How long a frame already in flight at the deadline may take to finish
/// before the connection is cut without a Close frame.
const FRAME_FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait for the peer's Close reply after ours, and for shutdowns.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// After the relay is done, how long the client's side is read (and the
/// bytes discarded) while waiting for its FIN, so our close is not an RST.
const LINGER: Duration = Duration::from_secs(5);

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
    /// The idle timeout ended it: no bytes either way for that long.
    pub closed_idle: bool,
    /// Bytes forwarded from the upstream to the client (injected frames excluded).
    pub to_client: u64,
    /// Bytes forwarded from the client to the upstream (injected frames excluded).
    pub to_upstream: u64,
}

/// Why the relay is closing the connection itself.
struct Stop {
    /// Cancelled at the drain deadline or at the idle timeout.
    token: CancellationToken,
    /// Set before `token` is cancelled when the cause is the idle timeout.
    idle: AtomicBool,
    /// Cancelled once the client sent its Close, or its direction ended.
    /// The client's side is not shut down before it (bounded): over TLS
    /// the shutdown is a close_notify, after which clients such as aiohttp
    /// can no longer write the Close reply they owe.
    client_closed: CancellationToken,
}

/// When either direction last read something, as milliseconds since the
/// relay started: one relaxed store per read.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }
}

/// Relays raw WebSocket frames between `client` and `upstream` (both already
/// past the 101 handshake) until both directions are closed, until
/// `deadline` is cancelled, or until nothing moved for `idle`; then both
/// peers get a Close frame at a frame boundary and the relay ends within a
/// few seconds.
///
/// Returns an error on an I/O failure or on a frame header that cannot be
/// framed (e.g. a 64-bit length with the most significant bit set).
pub(crate) async fn relay<C, U>(
    client: C,
    upstream: U,
    deadline: CancellationToken,
    idle: Duration,
) -> io::Result<RelayOutcome>
where
    C: AsyncRead + AsyncWrite + Unpin + Send,
    U: AsyncRead + AsyncWrite + Unpin + Send,
{
    let stop = Stop {
        token: deadline.child_token(),
        idle: AtomicBool::new(false),
        client_closed: CancellationToken::new(),
    };
    let activity = Activity {
        start: Instant::now(),
        last_ms: AtomicU64::new(0),
    };
    let (mut client_rx, client_tx) = tokio::io::split(client);
    let (upstream_rx, upstream_tx) = tokio::io::split(upstream);
    let relayed = {
        let to_upstream = Pump::new(&mut client_rx, upstream_tx, Peer::Client, &stop, &activity);
        let to_client = Pump::new(upstream_rx, client_tx, Peer::Upstream, &stop, &activity);
        // An error in one direction drops the other: the caller then drops
        // both connections, the only sane end for a stream we cannot frame.
        let to_upstream = async {
            let ran = to_upstream.run().await;
            stop.client_closed.cancel();
            ran
        };
        let pumps = async { tokio::try_join!(to_upstream, to_client.run()) };
        tokio::select! {
            r = pumps => r,
            never = idle_watch(&stop, &activity, idle) => match never {},
        }
    };
    let (up, down) = relayed?;
    linger(&mut client_rx).await;
    let idle_closed = stop.idle.load(Ordering::Relaxed);
    Ok(RelayOutcome {
        closed_at_deadline: (up.at_deadline || down.at_deadline) && !idle_closed,
        closed_idle: idle_closed,
        to_client: down.forwarded,
        to_upstream: up.forwarded,
    })
}

/// Fires `stop` (as idle) once neither direction read anything for `idle`.
/// Never returns: the relay ends when its pumps do.
async fn idle_watch(stop: &Stop, activity: &Activity, idle: Duration) -> std::convert::Infallible {
    loop {
        let last = activity.last_ms.load(Ordering::Relaxed);
        let due = activity.start + Duration::from_millis(last) + idle;
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            () = stop.token.cancelled() => return pending().await,
        }
        if activity.last_ms.load(Ordering::Relaxed) == last {
            stop.idle.store(true, Ordering::Relaxed);
            stop.token.cancel();
            return pending().await;
        }
    }
}

/// Reads and discards what the client still sends until its FIN, bounded:
/// our side was shut down already, and dropping a socket with unread bytes
/// would answer them with an RST.
async fn linger<R: AsyncRead + Unpin>(client: &mut R) {
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = client.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
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

    /// The Close frame the proxy sends *to* this peer when it stops the
    /// relay. Frames to the upstream must be masked (we act as its client);
    /// frames to the client must not be (we act as its server).
    fn close_frame_to(self, idle: bool) -> Vec<u8> {
        match self {
            Peer::Client if idle => close_frame(CLOSE_GOING_AWAY, "idle timeout", None),
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
/// (The upstream client asks the same of a pooled connection that died.)
pub(crate) fn is_disconnect(e: &io::Error) -> bool {
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
struct Pump<'a, R, W> {
    src: R,
    dst: W,
    from: Peer,
    stop: &'a Stop,
    activity: &'a Activity,
    tracker: FrameTracker,
    buf: Box<[u8]>,
    forwarded: u64,
    /// A Close went to `dst`: ours, or the peer's forwarded.
    close_sent: bool,
}

impl<'a, R, W> Pump<'a, R, W>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    fn new(src: R, dst: W, from: Peer, stop: &'a Stop, activity: &'a Activity) -> Self {
        Self {
            src,
            dst,
            from,
            stop,
            activity,
            tracker: FrameTracker::new(),
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            forwarded: 0,
            close_sent: false,
        }
    }

    /// After each read: a Close from the client lets the other direction
    /// shut the client's side down.
    fn saw_frames(&self) {
        if self.from == Peer::Client && self.tracker.close_seen {
            self.stop.client_closed.cancel();
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

    async fn run(mut self) -> io::Result<PumpOutcome> {
        let deadline = &self.stop.token.clone();
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
            self.activity.touch();
            let before = self.tracker;
            let parsed = self.tracker.advance(&self.buf[..end]);
            parsed.map_err(|e| self.invalid(e))?;
            self.saw_frames();
            self.close_sent |= self.tracker.close_seen;
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
            let idle = self.stop.idle.load(Ordering::Relaxed);
            self.dst.write_all(&self.to().close_frame_to(idle)).await?;
            self.dst.flush().await?;
            self.close_sent = true;
        }
        let parsed = self.tracker.advance(&self.buf[pos..end]);
        parsed.map_err(|e| self.invalid(e))?;
        self.saw_frames();
        while !self.tracker.close_seen {
            let read = self.src.read(&mut self.buf).await?;
            if read == 0 {
                break;
            }
            let parsed = self.tracker.advance(&self.buf[..read]);
            parsed.map_err(|e| self.invalid(e))?;
            self.saw_frames();
        }
        Ok(())
    }

    /// Propagates the end of this direction. Bounded once the deadline has
    /// passed, so a peer that stops reading cannot keep the relay alive.
    async fn shutdown_dst(&mut self, deadline: &CancellationToken) {
        // The client owes its Close reply to one that went its way: it
        // gets the close grace to send it before its side is shut.
        if self.to() == Peer::Client && self.close_sent {
            let replied = self.stop.client_closed.cancelled();
            let _ = tokio::time::timeout(CLOSE_GRACE, replied).await;
        }
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
mod tests;
