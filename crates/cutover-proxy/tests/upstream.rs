//! The proxy's own HTTP/1.1 client, against origins that write raw bytes:
//! every response framing of RFC 9112 §6.3, responses cut into tiny
//! writes, interim responses, bad heads, an origin that answers before it
//! has read the body, and pooled connections the origin closed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cutover_core::service::Color;
use cutover_test::client::{raw, raw_status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod support;

use support::Harness;

/// What the origin does with one request.
enum Reply {
    /// These bytes, and the connection stays open.
    Bytes(Vec<u8>),
    /// These bytes, one write per byte.
    Trickle(Vec<u8>),
    /// These bytes, then close.
    Close(Vec<u8>),
    /// Close without answering.
    Drop,
}

type Script = dyn Fn(&str, usize) -> Reply + Send + Sync;

/// An origin that reads request heads (and Content-Length bodies) and
/// answers as the script says for the path and the connection's request
/// count (1 for its first). Health probes (`/up`) get a plain 200. Every
/// answer carries `x-conn`, the connection's number, so a test sees reuse.
struct RawOrigin {
    addr: SocketAddr,
}

impl RawOrigin {
    async fn start(script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> RawOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(serve(stream, n, script.clone()));
            }
        });
        RawOrigin { addr }
    }
}

async fn serve(mut stream: TcpStream, conn: usize, script: Arc<Script>) {
    let mut buf = Vec::new();
    let mut requests = 0;
    loop {
        let Some(end) = read_until_head(&mut stream, &mut buf).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        requests += 1;
        let reply = match path.as_str() {
            "/up" => Reply::Bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            p => script(p, requests),
        };
        // A body is read unless the script answers early (it reads heads only).
        if !matches!(reply, Reply::Close(_)) {
            while buf.len() < length {
                let mut chunk = [0u8; 8192];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            buf.drain(..length);
        }
        let tag = |bytes: Vec<u8>| {
            let text = String::from_utf8(bytes).unwrap();
            text.replacen("\r\n", &format!("\r\nx-conn: {conn}\r\n"), 1)
                .into_bytes()
        };
        match reply {
            Reply::Bytes(b) => {
                if stream.write_all(&tag(b)).await.is_err() {
                    return;
                }
            }
            Reply::Trickle(b) => {
                for byte in tag(b) {
                    if stream.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    let _ = stream.flush().await;
                }
            }
            Reply::Close(b) => {
                // As servers close: the answer, then a lingering read, so
                // a body still arriving does not reset the answer away.
                let _ = stream.write_all(&tag(b)).await;
                let _ = stream.shutdown().await;
                let mut sink = [0u8; 65536];
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                })
                .await;
                return;
            }
            Reply::Drop => return,
        }
    }
}

/// The end of the next request head in `buf`, reading more as needed.
async fn read_until_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(i + 4);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn proxy_to(origin: &RawOrigin) -> Harness {
    let h = Harness::start().await;
    let mut req = support::request(&[], Color::Blue);
    req.targets = vec![origin.addr.to_string()];
    h.proxy.deploy("app", req).await.unwrap();
    h
}

/// One request on its own client connection; the whole answer.
async fn ask(h: &Harness, method: &str, path: &str) -> String {
    let req = format!("{method} {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
    raw(h.addr, req.as_bytes(), Duration::from_secs(10))
        .await
        .unwrap()
}

/// Two requests on one client connection, pipelined: they run on the same
/// data-plane thread, whose upstream pool the second one uses.
async fn ask_twice(h: &Harness, method: &str, path: &str) -> (String, String) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: app.test\r\n\r\n{method} {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
    );
    let both = raw(h.addr, req.as_bytes(), Duration::from_secs(10))
        .await
        .unwrap();
    let at = both[1..]
        .find("HTTP/1.1 ")
        .map(|i| i + 1)
        .unwrap_or(both.len());
    (both[..at].to_string(), both[at..].to_string())
}

fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The body of a chunked answer hyper's server sent the client.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

#[tokio::test]
async fn a_chunked_response_arrives_whole_and_its_connection_is_reused() {
    let origin = RawOrigin::start(|_, _| {
        Reply::Trickle(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n".to_vec())
    })
    .await;
    let h = proxy_to(&origin).await;
    let (first, second) = ask_twice(&h, "GET", "/c").await;
    assert_eq!(raw_status(&first), Some(200), "{first}");
    assert_eq!(dechunk(body(&first)), "hello, world", "{first}");
    assert_eq!(dechunk(body(&second)), "hello, world", "{second}");
    assert_eq!(
        header(&first, "x-conn"),
        header(&second, "x-conn"),
        "the pooled connection was not reused"
    );
}

#[tokio::test]
async fn a_body_that_runs_to_the_close_arrives_whole_and_the_connection_is_not_reused() {
    let origin =
        RawOrigin::start(|_, _| Reply::Close(b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec()))
            .await;
    let h = proxy_to(&origin).await;
    let (first, second) = ask_twice(&h, "GET", "/x").await;
    assert_eq!(raw_status(&first), Some(200), "{first}");
    assert_eq!(dechunk(body(&first)), "until the end", "{first}");
    assert_eq!(raw_status(&second), Some(200), "{second}");
    assert_ne!(header(&first, "x-conn"), header(&second, "x-conn"));
}

#[tokio::test]
async fn head_204_and_304_have_no_body_and_keep_the_connection() {
    let origin = RawOrigin::start(|p, _| match p {
        "/204" => Reply::Bytes(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
        "/304" => Reply::Bytes(b"HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n".to_vec()),
        // A HEAD answer announces the length of a body it does not send.
        _ => Reply::Bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec()),
    })
    .await;
    let h = proxy_to(&origin).await;
    for (method, path, status) in [
        ("HEAD", "/h", 200),
        ("GET", "/204", 204),
        ("GET", "/304", 304),
    ] {
        let (first, second) = ask_twice(&h, method, path).await;
        assert_eq!(raw_status(&first), Some(status), "{first}");
        assert_eq!(raw_status(&second), Some(status), "{second}");
        assert!(first.ends_with("\r\n\r\n"), "{path} got a body: {first}");
        assert_eq!(
            header(&first, "x-conn"),
            header(&second, "x-conn"),
            "{path} lost its connection"
        );
    }
    let (head, _) = ask_twice(&h, "HEAD", "/h").await;
    assert_eq!(header(&head, "content-length"), Some("1000"), "{head}");
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let origin = RawOrigin::start(|_, _| {
        Reply::Bytes(
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal".to_vec(),
        )
    })
    .await;
    let h = proxy_to(&origin).await;
    let answer = ask(&h, "GET", "/").await;
    assert_eq!(raw_status(&answer), Some(200), "{answer}");
    assert!(answer.ends_with("real"), "{answer}");
}

#[tokio::test]
async fn heads_that_are_not_http_are_502_not_guesses() {
    let origin = RawOrigin::start(|p, _| match p {
        "/two-lengths" => Reply::Bytes(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
        ),
        "/huge" => Reply::Bytes(
            format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "a".repeat(70_000)).into_bytes(),
        ),
        "/short" => Reply::Close(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec()),
        _ => Reply::Bytes(b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()),
    })
    .await;
    let h = proxy_to(&origin).await;
    for path in ["/two-lengths", "/huge", "/ssh"] {
        let answer = ask(&h, "GET", path).await;
        assert_eq!(raw_status(&answer), Some(502), "{path}: {answer}");
    }
    // A body cut short: the client's connection is closed before the
    // announced length (with or without the head), so it cannot take it as
    // whole.
    let short = ask(&h, "GET", "/short").await;
    assert!(body(&short).len() < 10, "{short}");
}

#[tokio::test]
async fn an_origin_that_answers_before_reading_the_body_is_heard() {
    let origin = RawOrigin::start(|_, _| {
        Reply::Close(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n".to_vec())
    })
    .await;
    let h = proxy_to(&origin).await;
    let mut client = TcpStream::connect(h.addr).await.unwrap();
    let len = 8 * 1024 * 1024;
    let head = format!("POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: {len}\r\n\r\n");
    client.write_all(head.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = client.into_split();
    // The client keeps sending; the answer must come anyway.
    let sending = tokio::spawn(async move {
        let chunk = vec![b'u'; 64 * 1024];
        for _ in 0..len / chunk.len() {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.ends_with(b"too big\n") {
                break;
            }
        }
    })
    .await;
    sending.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(raw_status(&answer), Some(413), "{answer}");
}

#[tokio::test]
async fn a_pooled_connection_the_origin_closed_while_idle_is_not_used() {
    // Each connection answers once, keep-alive, then closes.
    let origin = RawOrigin::start(|_, _| {
        Reply::Close(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec())
    })
    .await;
    let h = proxy_to(&origin).await;
    let mut client = TcpStream::connect(h.addr).await.unwrap();
    for i in 0..3 {
        // A POST is never sent twice, so only the check before reuse can
        // save it from the dead connection.
        let req = b"POST /p HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\n\r\n";
        client.write_all(req).await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"hi") {
            let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "the proxy closed the client connection");
            answer.extend_from_slice(&buf[..n]);
        }
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(raw_status(&answer), Some(200), "request {i}: {answer}");
        // Idle long enough for the pool to check it before reuse.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_post_is_not_sent_twice_when_its_connection_dies_unanswered() {
    let posts = Arc::new(AtomicUsize::new(0));
    let seen = posts.clone();
    let origin = RawOrigin::start(move |_, n| {
        seen.fetch_add(1, Ordering::SeqCst);
        if n == 1 {
            Reply::Bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec())
        } else {
            Reply::Drop
        }
    })
    .await;
    let h = proxy_to(&origin).await;
    // Pipelined, so the second takes the first's pooled connection at once.
    let (first, second) = ask_twice(&h, "POST", "/p").await;
    assert_eq!(raw_status(&first), Some(200), "{first}");
    assert_eq!(raw_status(&second), Some(502), "{second}");
    assert_eq!(posts.load(Ordering::SeqCst), 2, "the POST went out again");
    // The same for a GET is retried on a fresh connection.
    let (first, second) = ask_twice(&h, "GET", "/g").await;
    assert_eq!(raw_status(&first), Some(200), "{first}");
    assert_eq!(raw_status(&second), Some(200), "{second}");
}
