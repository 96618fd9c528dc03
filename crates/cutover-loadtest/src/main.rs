//! `cutover-loadtest`: runs HTTP, WebSocket and SSE load against one endpoint while a
//! deploy command runs repeatedly, then reports every failure it saw.
//!
//! Everything is bounded: the run stops at `--duration` (plus the time the last deploy
//! command needs) or at `--max-requests`, whichever comes first.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(
    name = "cutover-loadtest",
    about = "Run load against an HTTP endpoint while deploying, and report what broke"
)]
struct Args {
    /// Base URL of the app, e.g. http://127.0.0.1:8080. Only loopback hosts unless --allow-host.
    #[arg(long)]
    url: String,
    /// A non-loopback host this run may target (e.g. a container IP the run created).
    #[arg(long)]
    allow_host: Vec<String>,
    /// How long traffic runs.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Keep-alive HTTP/1.1 connections, each a loop of requests.
    #[arg(long, default_value_t = 50)]
    keepalive: usize,
    /// Loops that open a fresh connection per request.
    #[arg(long, default_value_t = 4)]
    fresh: usize,
    /// WebSocket clients (path /ws).
    #[arg(long, default_value_t = 50)]
    ws: usize,
    /// SSE readers (path /api/v1/stream).
    #[arg(long, default_value_t = 0)]
    sse: usize,
    /// Global cap on HTTP requests per second; unlimited when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Stop after this many HTTP requests.
    #[arg(long)]
    max_requests: Option<u64>,
    /// Path hit by the HTTP load; its JSON `version` and `count` fields are checked.
    #[arg(long, default_value = "/api/v1/visits")]
    path: String,
    /// Per-request timeout.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Shell command (run with `sh -c`) that performs one deploy.
    #[arg(long)]
    deploy_cmd: Option<String>,
    /// How many deploys to run, one after another.
    #[arg(long, default_value_t = 1)]
    deploys: u32,
    /// Pause before each deploy.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    deploy_interval: Duration,
    /// 1-based index of the deploy that runs with LOADTEST_BROKEN=1 and must fail.
    #[arg(long)]
    broken_at: Option<u32>,
    /// Extra env var the deploy command gets set to the version (`v<i>`).
    #[arg(long)]
    version_env: Option<String>,
    /// Response header that carries the app version (instead of the JSON `version`).
    #[arg(long)]
    version_header: Option<String>,
    /// Start an OAuth flow this often (0s disables).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    oauth_interval: Duration,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write the markdown report here.
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
    /// Exit 1 when anything failed (requests, cut WebSockets, continuity, unexpected deploy failure).
    #[arg(long)]
    assert_zero_failures: bool,
}

/// Where the target lives; parsed once so every task connects the same way.
#[derive(Clone, Debug)]
struct Target {
    host: String,
    port: u16,
    authority: String,
}

fn parse_target(url: &str, allow: &[String]) -> anyhow::Result<Target> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("invalid --url {url:?}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("--url {url:?} must use http://\nhint: TLS is not supported; point at the plain HTTP listener");
    }
    let host = uri
        .host()
        .with_context(|| format!("--url {url:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(80);
    let loopback = host == "localhost"
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    if !loopback && !allow.iter().any(|a| a == &host) {
        bail!(
            "refusing to load-test {host}: it is not a loopback address\nhint: pass --allow-host {host} if this run created that host (e.g. a container IP)"
        );
    }
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    Ok(Target {
        host,
        port,
        authority,
    })
}

fn ms(since: Instant, t: Instant) -> f64 {
    t.saturating_duration_since(since).as_secs_f64() * 1000.0
}

#[derive(Default)]
struct HttpStats {
    sent: u64,
    ok: u64,
    non_2xx: BTreeMap<u16, u64>,
    conn_errors: u64,
    timeouts: u64,
    last_success_ms: Option<f64>,
    max_gap_ms: f64,
    /// (time, version) each time the observed version changes.
    transitions: Vec<(f64, String)>,
    max_count: Option<i64>,
    /// Completion times (monotonic, since pushed under the lock) with the running maximum
    /// count of every response completed up to then.
    completed: Vec<(f64, i64)>,
    continuity_violations: Vec<String>,
}

#[derive(Default)]
struct WsStats {
    opened: u64,
    connect_errors: u64,
    graceful_closes: u64,
    cuts: u64,
    close_codes: BTreeMap<String, u64>,
    reconnects: u64,
    echo_mismatches: u64,
    echoes_ok: u64,
    /// (version greeted, opened ms, closed ms) for each finished WebSocket.
    lives: Vec<(Option<String>, f64, f64)>,
}

#[derive(Default)]
struct SseStats {
    opened: u64,
    events: u64,
    breaks: u64,
}

#[derive(Default, Serialize, Clone)]
struct OauthStats {
    supported: bool,
    issued: u64,
    carried_across_deploy: u64,
    accepted: u64,
    refused: u64,
    second_use_refused: u64,
    second_use_accepted: u64,
    errors: u64,
}

struct DeployRun {
    index: u32,
    expected_failure: bool,
    start_ms: f64,
    end_ms: f64,
    exit_code: Option<i32>,
}

struct Shared {
    t0: Instant,
    deadline: Instant,
    args: Args,
    target: Target,
    http: Mutex<HttpStats>,
    ws: Mutex<WsStats>,
    sse: Mutex<SseStats>,
    oauth: Mutex<OauthStats>,
    deploys: Mutex<Vec<DeployRun>>,
    /// The process group of the deploy command running now, if any.
    deploy_group: Mutex<Option<rustix::process::Pid>>,
    requests_started: AtomicU64,
    rate_next: Mutex<Instant>,
}

impl Shared {
    fn now_ms(&self) -> f64 {
        ms(self.t0, Instant::now())
    }

    fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    /// Reserves a request slot; false once the run is over or the request budget is spent.
    async fn admit(&self) -> bool {
        if !self.running() {
            return false;
        }
        if let Some(max) = self.args.max_requests {
            if self.requests_started.fetch_add(1, Ordering::Relaxed) >= max {
                return false;
            }
        }
        if let Some(rate) = self.args.rate.filter(|r| *r > 0.0) {
            let at = {
                let mut next = self.rate_next.lock().unwrap();
                let at = (*next).max(Instant::now());
                *next = at + Duration::from_secs_f64(1.0 / rate);
                at
            };
            if at >= self.deadline {
                return false;
            }
            tokio::time::sleep_until(at.into()).await;
        }
        true
    }

    fn record_response(
        &self,
        started: f64,
        status: StatusCode,
        version: Option<String>,
        count: Option<i64>,
    ) {
        let mut h = self.http.lock().unwrap();
        // Read under the lock: `completed` must stay ordered by end time for
        // its binary search. Two tasks that read the clock before locking
        // could push out of order, and a response that ended after a
        // request started would then count as its floor.
        let now = self.now_ms();
        h.sent += 1;
        if !status.is_success() {
            *h.non_2xx.entry(status.as_u16()).or_default() += 1;
            return;
        }
        h.ok += 1;
        if let Some(last) = h.last_success_ms {
            h.max_gap_ms = h.max_gap_ms.max(now - last);
        } else {
            h.max_gap_ms = h.max_gap_ms.max(now);
        }
        h.last_success_ms = Some(now);
        if let Some(v) = version {
            if h.transitions
                .last()
                .map(|(_, last)| last != &v)
                .unwrap_or(true)
            {
                h.transitions.push((now, v));
            }
        }
        if let Some(c) = count {
            // Only responses that completed before this request started constrain it:
            // concurrent requests may legitimately complete out of order.
            let idx = h.completed.partition_point(|(end, _)| *end < started);
            if idx > 0 {
                let floor = h.completed[idx - 1].1;
                if c < floor {
                    let msg = format!(
                        "at {:.0} ms: count {c} is lower than {floor}, seen before this request started at {started:.0} ms",
                        now
                    );
                    if h.continuity_violations.len() < 50 {
                        h.continuity_violations.push(msg);
                    } else if h.continuity_violations.len() == 50 {
                        h.continuity_violations
                            .push("(further violations not listed)".into());
                    }
                }
            }
            let running_max = h.completed.last().map(|(_, m)| (*m).max(c)).unwrap_or(c);
            h.completed.push((now, running_max));
            h.max_count = Some(running_max);
        }
    }

    fn record_failure(&self, err: &ReqError) {
        let timeout = match err {
            ReqError::Timeout => true,
            ReqError::Conn(e) => {
                tracing::debug!(error = %e, "request failed");
                false
            }
        };
        let mut h = self.http.lock().unwrap();
        h.sent += 1;
        if timeout {
            h.timeouts += 1;
        } else {
            h.conn_errors += 1;
        }
    }
}

enum ReqError {
    Timeout,
    Conn(anyhow::Error),
}

async fn connect(
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

async fn request(
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

fn parse_visit(
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

async fn keepalive_loop(shared: Arc<Shared>) {
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

async fn fresh_loop(shared: Arc<Shared>) {
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

enum WsEnd {
    Deadline,
    Graceful(u16),
    Cut(String),
}

async fn ws_session(
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

async fn ws_loop(shared: Arc<Shared>, id: usize) {
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
                    if matches!(code, 1000 | 1001 | 1012) {
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

async fn sse_loop(shared: Arc<Shared>) {
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

fn query_param(location: &str, key: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

async fn oauth_get(shared: &Shared, path: &str) -> Option<(StatusCode, http::HeaderMap)> {
    let mut s = connect(&shared.target, shared.args.timeout).await.ok()?;
    request(&mut s, &shared.target, path, shared.args.timeout)
        .await
        .ok()
        .map(|(st, h, _)| (st, h))
}

/// Redeems a state, then replays it: the first use must be accepted, the replay refused.
async fn oauth_redeem(shared: &Shared, state: &str, carried: bool) {
    let path = format!("/api/v1/open/oauth/callback?state={state}");
    let first = oauth_get(shared, &path).await;
    let second = oauth_get(shared, &path).await;
    let mut o = shared.oauth.lock().unwrap();
    if carried {
        o.carried_across_deploy += 1;
    }
    // Only the app's own answers are a verdict on the state: a 2xx/3xx
    // accepts it, a 4xx refuses it. No answer, or a 5xx (a proxy with no
    // upstream, an app without Redis), says nothing about the state and is
    // an error; counting a 502 on the replay as "accepted twice" would blame
    // the app for the proxy's outage.
    match first.map(|(st, _)| verdict(st)) {
        Some(Verdict::Accepted) => o.accepted += 1,
        Some(Verdict::Refused) => o.refused += 1,
        None | Some(Verdict::NoAnswer) => o.errors += 1,
    }
    match second.map(|(st, _)| verdict(st)) {
        Some(Verdict::Refused) => o.second_use_refused += 1,
        Some(Verdict::Accepted) => o.second_use_accepted += 1,
        None | Some(Verdict::NoAnswer) => o.errors += 1,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Refused,
    NoAnswer,
}

fn verdict(st: StatusCode) -> Verdict {
    if st.is_success() || st.is_redirection() {
        Verdict::Accepted
    } else if st.is_client_error() {
        Verdict::Refused
    } else {
        Verdict::NoAnswer
    }
}

fn last_transition_ms(shared: &Shared) -> Option<f64> {
    let h = shared.http.lock().unwrap();
    // The first entry is the initial version, not a switch.
    (h.transitions.len() > 1)
        .then(|| h.transitions.last().map(|(t, _)| *t))
        .flatten()
}

async fn oauth_loop(shared: Arc<Shared>) {
    let interval = shared.args.oauth_interval;
    let mut pending: Vec<(String, f64)> = Vec::new();
    let mut tick = tokio::time::interval(interval);
    while shared.running() {
        tick.tick().await;
        if !shared.running() {
            break;
        }
        if let Some((st, headers)) = oauth_get(&shared, "/api/v1/open/oauth/start").await {
            let state = headers
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| query_param(l, "state"));
            match (st.is_redirection(), state) {
                (true, Some(s)) => {
                    let mut o = shared.oauth.lock().unwrap();
                    o.supported = true;
                    o.issued += 1;
                    pending.push((s, shared.now_ms()));
                }
                _ if st == StatusCode::NOT_FOUND => {
                    tracing::info!(
                        "no OAuth endpoint at /api/v1/open/oauth/start; OAuth check skipped"
                    );
                    return;
                }
                _ => shared.oauth.lock().unwrap().errors += 1,
            }
        } else {
            shared.oauth.lock().unwrap().errors += 1;
        }
        if let Some(switch) = last_transition_ms(&shared) {
            let (carried, rest): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|(_, issued)| *issued < switch);
            pending = rest;
            for (s, _) in carried {
                oauth_redeem(&shared, &s, true).await;
            }
        }
    }
    for (s, _) in pending {
        oauth_redeem(&shared, &s, false).await;
    }
}

async fn deploy_loop(shared: Arc<Shared>) {
    let Some(cmd) = shared.args.deploy_cmd.clone() else {
        return;
    };
    for i in 1..=shared.args.deploys {
        tokio::time::sleep(shared.args.deploy_interval).await;
        if !shared.running() {
            tracing::warn!(index = i, "run ended before this deploy started");
            break;
        }
        let version = format!("v{i}");
        let broken = shared.args.broken_at == Some(i);
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c")
            .arg(&cmd)
            .env("LOADTEST_VERSION", &version)
            .env("LOADTEST_DEPLOY", i.to_string());
        if let Some(var) = &shared.args.version_env {
            c.env(var, &version);
        }
        if broken {
            c.env("LOADTEST_BROKEN", "1");
        }
        c.kill_on_drop(true);
        // Its own process group: an interrupted run stops the deploy and all
        // it started (docker-compose, curl, sleep), not only `sh`.
        c.process_group(0);
        let start_ms = shared.now_ms();
        let status = match c.spawn() {
            Ok(mut child) => {
                let group = child
                    .id()
                    .and_then(|id| rustix::process::Pid::from_raw(id as i32));
                *shared.deploy_group.lock().unwrap() = group;
                let status = child.wait().await;
                *shared.deploy_group.lock().unwrap() = None;
                status
            }
            Err(e) => Err(e),
        };
        let end_ms = shared.now_ms();
        let exit_code = match status {
            Ok(s) => s.code().or(Some(-1)),
            Err(e) => {
                tracing::error!(error = %e, "could not run the deploy command");
                None
            }
        };
        eprintln!(
            "deploy {i} ({version}{}): exit {exit_code:?} after {:.0} ms",
            if broken { ", broken" } else { "" },
            end_ms - start_ms
        );
        shared.deploys.lock().unwrap().push(DeployRun {
            index: i,
            expected_failure: broken,
            start_ms,
            end_ms,
            exit_code,
        });
    }
}

#[derive(Serialize)]
struct HttpReport {
    sent: u64,
    ok_2xx: u64,
    non_2xx: BTreeMap<u16, u64>,
    connection_errors: u64,
    timeouts: u64,
    longest_gap_ms: f64,
}

#[derive(Serialize)]
struct WsReport {
    opened: u64,
    connect_errors: u64,
    graceful_closes: u64,
    cuts: u64,
    close_codes: BTreeMap<String, u64>,
    reconnects: u64,
    echoes_ok: u64,
    echo_mismatches: u64,
}

#[derive(Serialize)]
struct SseReport {
    opened: u64,
    events: u64,
    breaks: u64,
}

#[derive(Serialize)]
struct DeployReport {
    index: u32,
    expected_failure: bool,
    exit_code: Option<i32>,
    ok: bool,
    version_before: Option<String>,
    version_after: Option<String>,
    switch_ms: Option<f64>,
    drain_ms: Option<f64>,
    total_ms: f64,
}

#[derive(Serialize)]
struct ContinuityReport {
    ok: bool,
    max_count: Option<i64>,
    violations: Vec<String>,
}

#[derive(Serialize)]
struct Report {
    url: String,
    duration_ms: f64,
    http: HttpReport,
    websocket: WsReport,
    sse: SseReport,
    deploys: Vec<DeployReport>,
    continuity: ContinuityReport,
    oauth: OauthStats,
    failures: Vec<String>,
    warnings: Vec<String>,
}

fn build_report(shared: &Shared) -> Report {
    let h = shared.http.lock().unwrap();
    let w = shared.ws.lock().unwrap();
    let s = shared.sse.lock().unwrap();
    let o = shared.oauth.lock().unwrap().clone();
    let runs = shared.deploys.lock().unwrap();
    let end = shared.now_ms();
    // The gap after the last success until the end of the traffic also counts as downtime.
    let traffic_end = ms(shared.t0, shared.deadline).min(end);
    let tail_gap = h
        .last_success_ms
        .map(|l| traffic_end - l)
        .unwrap_or(traffic_end);
    let http = HttpReport {
        sent: h.sent,
        ok_2xx: h.ok,
        non_2xx: h.non_2xx.clone(),
        connection_errors: h.conn_errors,
        timeouts: h.timeouts,
        longest_gap_ms: h.max_gap_ms.max(tail_gap.max(0.0)),
    };
    let version_at = |t: f64| -> Option<String> {
        h.transitions
            .iter()
            .rev()
            .find(|(at, _)| *at <= t)
            .map(|(_, v)| v.clone())
    };
    let deploys = runs
        .iter()
        .map(|d| {
            let before = version_at(d.start_ms);
            let switch = h
                .transitions
                .iter()
                .find(|(at, v)| *at >= d.start_ms && Some(v) != before.as_ref())
                .map(|(at, v)| (*at, v.clone()));
            // A switch that shows up only after the next deploy began belongs to that one.
            let next_start = runs
                .iter()
                .find(|n| n.index == d.index + 1)
                .map(|n| n.start_ms);
            let switch = switch.filter(|(at, _)| next_start.map(|n| *at < n).unwrap_or(true));
            let drain_ms = switch.as_ref().and_then(|(at, _)| {
                let old = before.as_ref()?;
                w.lives
                    .iter()
                    // Closes are counted from the command start: a proxy may close old sockets a
                    // moment before the first new-version response is observed.
                    .filter(|(v, opened, closed)| {
                        v.as_ref() == Some(old) && *opened < *at && *closed >= d.start_ms
                    })
                    .map(|(_, _, closed)| (closed - at).max(0.0))
                    .fold(None, |acc: Option<f64>, x| {
                        Some(acc.map_or(x, |a| a.max(x)))
                    })
            });
            let succeeded = d.exit_code == Some(0);
            DeployReport {
                index: d.index,
                expected_failure: d.expected_failure,
                exit_code: d.exit_code,
                ok: succeeded != d.expected_failure,
                version_before: before,
                version_after: switch.as_ref().map(|(_, v)| v.clone()),
                switch_ms: switch.as_ref().map(|(at, _)| at - d.start_ms),
                drain_ms,
                total_ms: d.end_ms - d.start_ms,
            }
        })
        .collect::<Vec<_>>();
    let continuity = ContinuityReport {
        ok: h.continuity_violations.is_empty(),
        max_count: h.max_count,
        violations: h.continuity_violations.clone(),
    };
    let mut failures = Vec::new();
    let failed_requests = h.conn_errors + h.timeouts + h.non_2xx.values().sum::<u64>();
    if failed_requests > 0 {
        failures.push(format!(
            "{failed_requests} HTTP requests failed ({} connection errors, {} timeouts, {} non-2xx)",
            h.conn_errors,
            h.timeouts,
            h.non_2xx.values().sum::<u64>()
        ));
    }
    if h.ok == 0 {
        failures.push("no HTTP request succeeded".into());
    }
    if w.cuts > 0 {
        failures.push(format!("{} WebSockets were cut (closed without a close frame or with a code other than 1000/1001/1012)", w.cuts));
    }
    if w.connect_errors > 0 {
        failures.push(format!("{} WebSocket connects failed", w.connect_errors));
    }
    if w.echo_mismatches > 0 {
        failures.push(format!(
            "{} WebSocket echoes did not match a sent message",
            w.echo_mismatches
        ));
    }
    if s.breaks > 0 {
        failures.push(format!("{} SSE streams broke", s.breaks));
    }
    if !continuity.ok {
        failures.push(format!(
            "{} counter continuity violations",
            continuity.violations.len()
        ));
    }
    if o.refused > 0 || o.second_use_accepted > 0 || o.errors > 0 {
        failures.push(format!(
            "OAuth: {} states refused on first use, {} accepted twice, {} errors",
            o.refused, o.second_use_accepted, o.errors
        ));
    }
    for d in &deploys {
        if !d.ok {
            if d.expected_failure {
                failures.push(format!(
                    "deploy {} was expected to fail but exited {:?}",
                    d.index, d.exit_code
                ));
            } else {
                failures.push(format!("deploy {} failed: exit {:?}", d.index, d.exit_code));
            }
        }
    }
    if shared.args.deploy_cmd.is_some() && (runs.len() as u32) < shared.args.deploys {
        failures.push(format!(
            "only {} of {} deploys ran before the run ended\nhint: raise --duration or lower --deploy-interval",
            runs.len(),
            shared.args.deploys
        ));
    }
    let mut warnings = Vec::new();
    if !h.transitions.is_empty() {
        for d in deploys
            .iter()
            .filter(|d| d.exit_code == Some(0) && d.switch_ms.is_none())
        {
            warnings.push(format!(
                "deploy {} succeeded but no response from a new version was seen before the next deploy or the end of the run",
                d.index
            ));
        }
    }
    Report {
        url: shared.args.url.clone(),
        duration_ms: end,
        http,
        websocket: WsReport {
            opened: w.opened,
            connect_errors: w.connect_errors,
            graceful_closes: w.graceful_closes,
            cuts: w.cuts,
            close_codes: w.close_codes.clone(),
            reconnects: w.reconnects,
            echoes_ok: w.echoes_ok,
            echo_mismatches: w.echo_mismatches,
        },
        sse: SseReport {
            opened: s.opened,
            events: s.events,
            breaks: s.breaks,
        },
        deploys,
        continuity,
        oauth: o,
        failures,
        warnings,
    }
}

fn opt_ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.0} ms"))
        .unwrap_or_else(|| "-".into())
}

fn markdown(r: &Report) -> String {
    let mut m = String::new();
    let codes = |map: &BTreeMap<String, u64>| {
        if map.is_empty() {
            "-".to_string()
        } else {
            map.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let non2xx: BTreeMap<String, u64> = r
        .http
        .non_2xx
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    m.push_str(&format!("# Load test against {}\n\n", r.url));
    m.push_str("| metric | value |\n|---|---|\n");
    m.push_str(&format!("| duration | {:.1} s |\n", r.duration_ms / 1000.0));
    m.push_str(&format!("| HTTP requests sent | {} |\n", r.http.sent));
    m.push_str(&format!("| HTTP 2xx | {} |\n", r.http.ok_2xx));
    m.push_str(&format!("| HTTP non-2xx | {} |\n", codes(&non2xx)));
    m.push_str(&format!(
        "| connection errors | {} |\n",
        r.http.connection_errors
    ));
    m.push_str(&format!("| timeouts | {} |\n", r.http.timeouts));
    m.push_str(&format!(
        "| longest gap between successes | {:.0} ms |\n",
        r.http.longest_gap_ms
    ));
    m.push_str(&format!("| WebSockets opened | {} |\n", r.websocket.opened));
    m.push_str(&format!(
        "| WebSocket graceful closes | {} |\n",
        r.websocket.graceful_closes
    ));
    m.push_str(&format!("| WebSocket cuts | {} |\n", r.websocket.cuts));
    m.push_str(&format!(
        "| WebSocket close codes | {} |\n",
        codes(&r.websocket.close_codes)
    ));
    m.push_str(&format!(
        "| WebSocket reconnects | {} |\n",
        r.websocket.reconnects
    ));
    m.push_str(&format!(
        "| WebSocket connect errors | {} |\n",
        r.websocket.connect_errors
    ));
    if r.sse.opened > 0 || r.sse.breaks > 0 {
        m.push_str(&format!(
            "| SSE streams / events / breaks | {} / {} / {} |\n",
            r.sse.opened, r.sse.events, r.sse.breaks
        ));
    }
    m.push_str(&format!(
        "| counter continuity | {} (max count {}) |\n",
        if r.continuity.ok {
            "ok".to_string()
        } else {
            format!("{} violations", r.continuity.violations.len())
        },
        r.continuity
            .max_count
            .map(|c| c.to_string())
            .unwrap_or_else(|| "-".into())
    ));
    if r.oauth.supported {
        m.push_str(&format!(
            "| OAuth states issued / carried across a deploy / accepted / refused | {} / {} / {} / {} |\n",
            r.oauth.issued, r.oauth.carried_across_deploy, r.oauth.accepted, r.oauth.refused
        ));
        m.push_str(&format!(
            "| OAuth second use refused / accepted | {} / {} |\n",
            r.oauth.second_use_refused, r.oauth.second_use_accepted
        ));
    }
    if !r.deploys.is_empty() {
        m.push_str("\n| deploy | exit | expected failure | ok | version | switch | drain | total |\n|---|---|---|---|---|---|---|---|\n");
        for d in &r.deploys {
            m.push_str(&format!(
                "| {} | {} | {} | {} | {} → {} | {} | {} | {:.0} ms |\n",
                d.index,
                d.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into()),
                if d.expected_failure { "yes" } else { "no" },
                if d.ok { "yes" } else { "NO" },
                d.version_before.as_deref().unwrap_or("-"),
                d.version_after.as_deref().unwrap_or("-"),
                opt_ms(d.switch_ms),
                opt_ms(d.drain_ms),
                d.total_ms
            ));
        }
    }
    m.push('\n');
    for w in &r.warnings {
        m.push_str(&format!("Warning: {w}\n"));
    }
    if r.failures.is_empty() {
        m.push_str("No failures.\n");
    } else {
        m.push_str("Failures:\n");
        for f in &r.failures {
            m.push_str(&format!("- {}\n", f.replace('\n', " ")));
        }
    }
    m
}

#[tokio::main]
async fn main() {
    // Exit 1 is reserved for --assert-zero-failures, so a run that could not start or
    // finish exits 2, like a usage error.
    if let Err(e) = run().await {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let target = parse_target(&args.url, &args.allow_host)?;
    if !args.path.starts_with('/') {
        bail!("--path {:?} must start with /", args.path);
    }
    let t0 = Instant::now();
    let shared = Arc::new(Shared {
        t0,
        deadline: t0 + args.duration,
        target,
        http: Mutex::default(),
        ws: Mutex::default(),
        sse: Mutex::default(),
        oauth: Mutex::default(),
        deploys: Mutex::default(),
        deploy_group: Mutex::default(),
        requests_started: AtomicU64::new(0),
        rate_next: Mutex::new(t0),
        args,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..shared.args.keepalive {
        tasks.spawn(keepalive_loop(shared.clone()));
    }
    for _ in 0..shared.args.fresh {
        tasks.spawn(fresh_loop(shared.clone()));
    }
    for id in 0..shared.args.ws {
        tasks.spawn(ws_loop(shared.clone(), id));
    }
    for _ in 0..shared.args.sse {
        tasks.spawn(sse_loop(shared.clone()));
    }
    if !shared.args.oauth_interval.is_zero() {
        tasks.spawn(oauth_loop(shared.clone()));
    }
    // Deploys run to completion even past the traffic deadline, so each one gets a verdict.
    let deploys = tokio::spawn(deploy_loop(shared.clone()));
    let work = async {
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "load task panicked");
            }
        }
        deploys.await.context("deploy task panicked")
    };
    tokio::select! {
        r = work => r?,
        (name, code) = stop_signal() => {
            stop_deploy(&shared).await;
            eprintln!("cutover-loadtest: {name}: stopped before the end; no report");
            std::process::exit(code);
        }
    }

    let report = build_report(&shared);
    let md = markdown(&report);
    print!("{md}");
    if let Some(p) = &shared.args.json {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &shared.args.markdown {
        std::fs::write(p, &md).with_context(|| format!("writing {}", p.display()))?;
    }
    if shared.args.assert_zero_failures && !report.failures.is_empty() {
        eprintln!("cutover-loadtest: failures found:");
        for f in &report.failures {
            eprintln!("  {f}");
        }
        std::process::exit(1);
    }
    Ok(())
}

/// SIGTERM or SIGINT, as the name and the exit code a shell gives a process
/// they end.
async fn stop_signal() -> (&'static str, i32) {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => ("SIGTERM", 143),
            _ = int.recv() => ("SIGINT", 130),
        },
        // Without handlers the default action ends the run, as before.
        _ => std::future::pending().await,
    }
}

/// Ends the deploy in progress, if any: SIGTERM to its process group, then
/// SIGKILL to what is left after 8 s. A deploy left running after the
/// harness would go on creating containers its caller has already cleaned.
async fn stop_deploy(shared: &Shared) {
    use rustix::process::{kill_process_group, test_kill_process_group, Signal};
    let Some(group) = *shared.deploy_group.lock().unwrap() else {
        return;
    };
    eprintln!("cutover-loadtest: stopping the deploy in progress");
    if kill_process_group(group, Signal::TERM).is_err() {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(8);
    while test_kill_process_group(group).is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = kill_process_group(group, Signal::KILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_accepted() {
        for url in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://localhost:1",
            "http://[::1]:9000/x",
        ] {
            assert!(parse_target(url, &[]).is_ok(), "{url}");
        }
        let t = parse_target("http://[::1]:9000", &[]).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
    }

    #[test]
    fn other_hosts_need_allow_host() {
        let err = parse_target("http://172.17.0.2:8080", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a loopback address"), "{err}");
        assert!(err.contains("hint: pass --allow-host 172.17.0.2"), "{err}");
        assert!(parse_target("http://172.17.0.2:8080", &["172.17.0.2".into()]).is_ok());
        assert!(parse_target("http://example.com", &["172.17.0.2".into()]).is_err());
        assert!(parse_target("https://127.0.0.1", &[]).is_err());
    }

    #[test]
    fn only_the_apps_answers_judge_an_oauth_state() {
        assert_eq!(verdict(StatusCode::FOUND), Verdict::Accepted);
        assert_eq!(verdict(StatusCode::OK), Verdict::Accepted);
        assert_eq!(verdict(StatusCode::BAD_REQUEST), Verdict::Refused);
        assert_eq!(verdict(StatusCode::GONE), Verdict::Refused);
        assert_eq!(verdict(StatusCode::BAD_GATEWAY), Verdict::NoAnswer);
        assert_eq!(verdict(StatusCode::SERVICE_UNAVAILABLE), Verdict::NoAnswer);
    }

    #[test]
    fn state_is_read_from_location_query() {
        assert_eq!(
            query_param("https://idp/x?client_id=a&state=abc&y=1", "state").as_deref(),
            Some("abc")
        );
        assert_eq!(query_param("https://idp/x", "state"), None);
    }
}
