//! WebSocket sessions that send while deploys run, and how they ended.

use crate::*;

pub(crate) enum WsEnd {
    Deadline,
    Graceful(u16),
    Cut(String),
}

pub(crate) async fn ws_session(
    shared: &Shared,
    id: usize,
    version: &mut Option<String>,
) -> anyhow::Result<WsEnd> {
    let url = format!("ws://{}/ws", shared.target.authority);
    let (mut ws, _) =
        tokio::time::timeout(shared.args.timeout, tokio_tungstenite::connect_async(url))
            .await
            .context("WebSocket connect timed out")??;
    shared.ws.lock().unwrap().opened += 1;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut seq = 0u64;
    let mut pending: Vec<String> = Vec::new();
    let deadline = tokio::time::sleep_until(shared.deadline.into());
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                let _ = ws.close(None).await;
                return Ok(WsEnd::Deadline);
            }
            _ = tick.tick() => {
                seq += 1;
                let msg = format!("echo-{id}-{seq}");
                if let Err(e) = ws.send(Message::text(msg.clone())).await {
                    return Ok(WsEnd::Cut(format!("send failed: {e}")));
                }
                pending.push(msg);
                // The echo of a message sent long ago is lost; keep the list bounded.
                if pending.len() > 64 {
                    pending.remove(0);
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let t = t.as_str();
                    if t.starts_with("echo-") {
                        if let Some(i) = pending.iter().position(|p| p == t) {
                            pending.remove(i);
                            shared.ws.lock().unwrap().echoes_ok += 1;
                        } else {
                            shared.ws.lock().unwrap().echo_mismatches += 1;
                        }
                    } else if version.is_none() {
                        if let Ok(j) = serde_json::from_str::<serde_json::Value>(t) {
                            if let Some(h) = j.get("hello") {
                                *version = Some(h.as_str().map(str::to_string).unwrap_or_else(|| h.to_string()));
                            }
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(u16::from(CloseCode::Status));
                    return Ok(WsEnd::Graceful(code));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Ok(WsEnd::Cut(e.to_string())),
                None => return Ok(WsEnd::Cut("EOF without close frame".into())),
            }
        }
    }
}

pub(crate) async fn ws_loop(shared: Arc<Shared>, id: usize) {
    // Only a socket that was open and then closed makes the next connect a reconnect.
    let mut had_session = false;
    while shared.running() {
        if had_session {
            shared.ws.lock().unwrap().reconnects += 1;
        }
        let opened = shared.now_ms();
        let mut version = None;
        let end = ws_session(&shared, id, &mut version).await;
        let closed = shared.now_ms();
        let connect_failed = {
            let mut w = shared.ws.lock().unwrap();
            match end {
                Ok(WsEnd::Deadline) => return,
                Ok(WsEnd::Graceful(code)) => {
                    *w.close_codes.entry(code.to_string()).or_default() += 1;
                    // During a deploy only the proxy's own closes are
                    // graceful: 1012 at the drain deadline, 1001 going
                    // away. Anything else, 1000 included, ended a session
                    // the user did not end.
                    if matches!(code, 1001 | 1012) {
                        w.graceful_closes += 1;
                    } else {
                        w.cuts += 1;
                    }
                    w.lives.push((version, opened, closed));
                    false
                }
                Ok(WsEnd::Cut(reason)) => {
                    tracing::debug!(id, %reason, "websocket cut");
                    *w.close_codes.entry("none".into()).or_default() += 1;
                    w.cuts += 1;
                    w.lives.push((version, opened, closed));
                    false
                }
                Err(e) => {
                    tracing::debug!(id, error = %e, "websocket connect failed");
                    w.connect_errors += 1;
                    true
                }
            }
        };
        had_session = !connect_failed;
        let pause = if connect_failed { 100 } else { 20 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}
