//! A Server-Sent Events stream held open across deploys.

use crate::*;

pub(crate) async fn sse_loop(shared: Arc<Shared>) {
    while shared.running() {
        let result = async {
            let mut s = connect(&shared.target, shared.args.timeout)
                .await
                .map_err(|_| anyhow::anyhow!("connect failed"))?;
            let req = Request::get("/api/v1/stream")
                .header(http::header::HOST, &shared.target.authority)
                .header(http::header::ACCEPT, "text/event-stream")
                .body(Empty::<Bytes>::new())?;
            let resp = tokio::time::timeout(shared.args.timeout, s.send_request(req)).await??;
            if !resp.status().is_success() {
                bail!("status {}", resp.status());
            }
            shared.sse.lock().unwrap().opened += 1;
            let mut body = resp.into_body();
            loop {
                let frame = tokio::select! {
                    _ = tokio::time::sleep_until(shared.deadline.into()) => return Ok(()),
                    f = body.frame() => f,
                };
                match frame {
                    Some(Ok(f)) => {
                        if let Some(data) = f.data_ref() {
                            let n = data.windows(5).filter(|w| w == b"data:").count() as u64;
                            shared.sse.lock().unwrap().events += n;
                        }
                    }
                    Some(Err(e)) => bail!("stream error: {e}"),
                    None => bail!("stream ended"),
                }
            }
        }
        .await;
        if let Err(e) = result {
            if shared.running() {
                tracing::debug!(error = %e, "sse break");
                shared.sse.lock().unwrap().breaks += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
