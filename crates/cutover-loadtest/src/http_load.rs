//! The HTTP loops: keep-alive connections and fresh connections, each
//! request checked for the version that answered it.

use crate::*;

pub(crate) enum ReqError {
    Timeout,
    Conn(anyhow::Error),
}

pub(crate) async fn connect(
    target: &Target,
    timeout: Duration,
) -> Result<http1::SendRequest<Empty<Bytes>>, ReqError> {
    let fut = async {
        let stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // The connection's own error surfaces on the next request; nothing to do here.
            let _ = conn.await;
        });
        anyhow::Ok(sender)
    };
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(ReqError::Timeout),
        Ok(Err(e)) => Err(ReqError::Conn(e)),
        Ok(Ok(s)) => Ok(s),
    }
}

pub(crate) async fn request(
    sender: &mut http1::SendRequest<Empty<Bytes>>,
    target: &Target,
    path: &str,
    timeout: Duration,
) -> Result<(StatusCode, http::HeaderMap, Bytes), ReqError> {
    let req = Request::get(path)
        .header(http::header::HOST, &target.authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| ReqError::Conn(e.into()))?;
    let fut = async {
        let resp = sender.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        anyhow::Ok((parts.status, parts.headers, body))
    };
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(ReqError::Timeout),
        Ok(Err(e)) => Err(ReqError::Conn(e)),
        Ok(Ok(r)) => Ok(r),
    }
}

pub(crate) fn parse_visit(
    shared: &Shared,
    headers: &http::HeaderMap,
    body: &[u8],
) -> (Option<String>, Option<i64>) {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let version = match &shared.args.version_header {
        Some(h) => headers
            .get(h.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        None => json.as_ref().and_then(|j| j.get("version")).and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| Some(v.to_string()))
        }),
    };
    let count = json
        .as_ref()
        .and_then(|j| j.get("count"))
        .and_then(|c| c.as_i64());
    (version, count)
}

pub(crate) async fn keepalive_loop(shared: Arc<Shared>) {
    let mut sender: Option<http1::SendRequest<Empty<Bytes>>> = None;
    let timeout = shared.args.timeout;
    while shared.admit().await {
        let started = shared.now_ms();
        // A server may close an idle keep-alive connection between requests; that is
        // not a failed request, so reconnect before counting anything.
        let reused = match sender.take() {
            Some(mut s) => s.ready().await.is_ok().then_some(s),
            None => None,
        };
        let mut s = match reused {
            Some(s) => s,
            None => match connect(&shared.target, timeout).await {
                Ok(s) => s,
                Err(e) => {
                    shared.record_failure(&e);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        match request(&mut s, &shared.target, &shared.args.path, timeout).await {
            Ok((status, headers, body)) => {
                let (v, c) = parse_visit(&shared, &headers, &body);
                shared.record_response(started, status, v, c);
                sender = Some(s);
            }
            Err(e) => {
                shared.record_failure(&e);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

pub(crate) async fn fresh_loop(shared: Arc<Shared>) {
    let timeout = shared.args.timeout;
    while shared.admit().await {
        let started = shared.now_ms();
        let result = match connect(&shared.target, timeout).await {
            Ok(mut s) => request(&mut s, &shared.target, &shared.args.path, timeout).await,
            Err(e) => Err(e),
        };
        match result {
            Ok((status, headers, body)) => {
                let (v, c) = parse_visit(&shared, &headers, &body);
                shared.record_response(started, status, v, c);
            }
            Err(e) => {
                shared.record_failure(&e);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
