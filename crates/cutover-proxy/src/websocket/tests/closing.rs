//! How the relay ends a connection itself: the idle timeout, and the
//! lingering read after its Close.

use super::*;

/// Unmasks a masked frame the relay sent upstream; returns opcode and payload.
fn unmask(frame: &[u8]) -> (u8, Vec<u8>) {
    assert!(
        frame[1] & MASK_BIT != 0,
        "frames to the upstream are masked"
    );
    let len = usize::from(frame[1] & 0x7F);
    let key = &frame[2..6];
    let payload = frame[6..6 + len]
        .iter()
        .zip(key.iter().cycle())
        .map(|(b, k)| b ^ k)
        .collect();
    (frame[0] & 0x0F, payload)
}

#[tokio::test(start_paused = true)]
async fn nothing_either_way_for_the_idle_timeout_closes_with_1001_and_traffic_resets_it() {
    let (mut client_app, client_proxy) = duplex(4096);
    let (upstream_proxy, mut upstream_app) = duplex(4096);
    let idle = Duration::from_secs(60);
    let relay = tokio::spawn(relay(
        client_proxy,
        upstream_proxy,
        CancellationToken::new(),
        idle,
    ));
    let start = Instant::now();

    // A ping at 40 s: the connection lives past 60 s.
    tokio::time::sleep(Duration::from_secs(40)).await;
    let ping = encode_frame(0x9, b"", Some([1, 2, 3, 4]));
    client_app.write_all(&ping).await.unwrap();
    let mut got = vec![0; ping.len()];
    upstream_app.read_exact(&mut got).await.unwrap();

    let expected = close_frame(CLOSE_GOING_AWAY, "idle timeout", None);
    let mut to_client = vec![0; expected.len()];
    client_app.read_exact(&mut to_client).await.unwrap();
    let closed_after = start.elapsed();
    assert_eq!(to_client, expected);
    assert!(
        closed_after >= Duration::from_secs(100) && closed_after < Duration::from_secs(101),
        "closed after {closed_after:?}, not 60 s after the last traffic at 40 s"
    );
    let mut to_upstream = vec![0; 2 + 4 + 2 + "going away".len()];
    upstream_app.read_exact(&mut to_upstream).await.unwrap();
    let (opcode, payload) = unmask(&to_upstream);
    assert_eq!(opcode, OPCODE_CLOSE);
    assert_eq!(
        u16::from_be_bytes([payload[0], payload[1]]),
        CLOSE_GOING_AWAY
    );

    // Both peers answer the Close, and the relay is done.
    client_app
        .write_all(&close_frame(CLOSE_GOING_AWAY, "", Some([7, 7, 7, 7])))
        .await
        .unwrap();
    upstream_app
        .write_all(&close_frame(CLOSE_GOING_AWAY, "", None))
        .await
        .unwrap();
    drop(client_app);
    drop(upstream_app);
    let outcome = relay.await.unwrap().unwrap();
    assert!(
        outcome.closed_idle && !outcome.closed_at_deadline,
        "{outcome:?}"
    );
}

/// After its Close, the relay keeps reading what the client sends until the
/// client's FIN, so its own close of the socket is never over unread bytes.
#[tokio::test(start_paused = true)]
async fn the_client_side_is_read_until_its_fin_after_the_close() {
    let (mut client_app, mut upstream_app, deadline, relay) = raw_relay();
    deadline.cancel();
    // The client answers the 1012 and sends its FIN a second later.
    let expected = close_frame(CLOSE_SERVICE_RESTART, "service restart", None);
    let mut got = vec![0; expected.len()];
    client_app.read_exact(&mut got).await.unwrap();
    assert_eq!(got, expected);
    client_app
        .write_all(&close_frame(1000, "", Some([1, 1, 1, 1])))
        .await
        .unwrap();
    upstream_app
        .write_all(&close_frame(1000, "", None))
        .await
        .unwrap();
    let mut rest = Vec::new();
    upstream_app.read_to_end(&mut rest).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !relay.is_finished(),
        "the relay let go of the client before its FIN"
    );
    client_app.write_all(b"late bytes").await.unwrap();
    drop(client_app);
    let outcome = relay.await.unwrap().unwrap();
    assert!(outcome.closed_at_deadline);
}

/// The upstream answers the 1012 at once, the client only later: the
/// client's side is not shut down before its Close reply (over TLS that
/// shutdown is a close_notify, after which aiohttp cannot write the reply),
/// and not longer than the close grace when the reply never comes.
#[tokio::test(start_paused = true)]
async fn the_client_side_stays_open_for_its_close_reply() {
    let (mut client_app, mut upstream_app, deadline, relay) = raw_relay();
    deadline.cancel();
    let expected = close_frame(CLOSE_SERVICE_RESTART, "service restart", None);
    let mut got = vec![0; expected.len()];
    client_app.read_exact(&mut got).await.unwrap();
    assert_eq!(got, expected);
    upstream_app
        .write_all(&close_frame(1000, "", None))
        .await
        .unwrap();
    // The upstream answered; the client's side is still open for writing
    // and reading: no EOF before the client answered.
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(CLOSE_GRACE / 2, client_app.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "the client's side was shut before its Close: {early:?}"
    );
    client_app
        .write_all(&close_frame(1000, "", Some([1, 1, 1, 1])))
        .await
        .unwrap();
    // Its reply lets the shutdown through at once.
    let eof = tokio::time::timeout(Duration::from_millis(10), client_app.read(&mut byte)).await;
    assert!(matches!(eof, Ok(Ok(0))), "{eof:?}");
    drop(client_app);
    assert!(relay.await.unwrap().unwrap().closed_at_deadline);
}
