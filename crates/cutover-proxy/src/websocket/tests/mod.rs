//! The relay against real tungstenite peers (paused time), and the frame
//! parser.

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
/// An idle timeout no test reaches, for tests about something else.
const NO_IDLE: Duration = Duration::from_secs(24 * 3600);

/// A relay between two raw byte peers (no WebSocket library), for tests
/// that write frames by hand: the client's end, the upstream's end, the
/// drain deadline and the running relay.
fn raw_relay() -> (
    DuplexStream,
    DuplexStream,
    CancellationToken,
    JoinHandle<io::Result<RelayOutcome>>,
) {
    let (client_app, client_proxy) = duplex(4096);
    let (upstream_proxy, upstream_app) = duplex(4096);
    let deadline = CancellationToken::new();
    let relay = tokio::spawn(relay(
        client_proxy,
        upstream_proxy,
        deadline.clone(),
        NO_IDLE,
    ));
    (client_app, upstream_app, deadline, relay)
}

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
    let relay = tokio::spawn(relay(
        client_proxy,
        upstream_proxy,
        deadline.clone(),
        NO_IDLE,
    ));
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
    let (mut client_app, mut upstream_app, deadline, relay) = raw_relay();

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
    let (mut client_app, mut upstream_app, _deadline, relay) = raw_relay();
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
    let (mut client_app, mut upstream_app, _deadline, relay) = raw_relay();
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
    let to_client = Peer::Client.close_frame_to(false);
    assert_eq!(&to_client[..4], &[0x88, 17, 0x03, 0xF4]);
    assert_eq!(&to_client[4..], b"service restart");
    t.advance(&to_client).unwrap();
    assert!(t.close_seen);

    let to_upstream = Peer::Upstream.close_frame_to(false);
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

// ---- properties of the frame parser ----

mod properties {
    use proptest::prelude::*;

    use super::super::{encode_frame, FrameError, FrameTracker, OPCODE_CLOSE};

    /// One frame: opcode, a payload length that reaches all three length
    /// encodings (7-bit, 16-bit, 64-bit), and masked or not.
    fn frame() -> impl Strategy<Value = Vec<u8>> {
        let len = prop_oneof![0usize..=125, 126usize..=300, 65_530usize..=65_600];
        (0u8..16, len, any::<Option<[u8; 4]>>())
            .prop_map(|(op, len, mask)| encode_frame(op, &vec![0xA5; len], mask))
    }

    /// Splits `bytes` into chunks of the given sizes (cycled), as reads do.
    fn chunks<'a>(bytes: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut at = 0;
        let mut k = 0;
        std::iter::from_fn(move || {
            if at >= bytes.len() {
                return None;
            }
            let n = sizes[k % sizes.len()].min(bytes.len() - at);
            k += 1;
            let piece = &bytes[at..at + n];
            at += n;
            Some(piece)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// However the stream is cut into reads, the tracker finds exactly
        /// the frame ends, and a Close frame among them is seen.
        #[test]
        fn boundaries_are_the_frame_ends_whatever_the_reads(
            frames in prop::collection::vec(frame(), 1..6),
            sizes in prop::collection::vec(1usize..5_000, 1..8),
        ) {
            let stream: Vec<u8> = frames.concat();
            let mut ends = Vec::new();
            let mut total = 0;
            for f in &frames {
                total += f.len();
                ends.push(total);
            }
            let mut t = FrameTracker::new();
            let mut seen = Vec::new();
            let mut offset = 0;
            for piece in chunks(&stream, &sizes) {
                let mut rest = piece;
                while !rest.is_empty() {
                    let was_at_boundary = t.at_boundary();
                    let used = if was_at_boundary {
                        // Past a boundary: take one whole step (a header
                        // and what it can of its payload).
                        t.step(rest).unwrap()
                    } else {
                        t.advance_to_boundary(rest).unwrap()
                    };
                    prop_assert!(used > 0 && used <= rest.len());
                    offset += used;
                    rest = &rest[used..];
                    if t.at_boundary() {
                        seen.push(offset);
                    }
                }
            }
            prop_assert_eq!(seen, ends);
            let has_close = frames.iter().any(|f| f[0] & 0x0F == OPCODE_CLOSE);
            prop_assert_eq!(t.close_seen, has_close);
        }

        /// Arbitrary bytes in arbitrary reads: never a panic, never more
        /// consumed than given, and the only error is the one RFC 6455
        /// names for a length with its top bit set.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..512),
            sizes in prop::collection::vec(1usize..64, 1..8),
        ) {
            let mut t = FrameTracker::new();
            for piece in chunks(&bytes, &sizes) {
                match t.advance_to_boundary(piece) {
                    Ok(used) => prop_assert!(used <= piece.len()),
                    Err(FrameError::LengthMsbSet(_)) => break,
                }
                if t.advance(piece).is_err() {
                    break;
                }
            }
        }
    }
}

mod closing;
