//! Health probes: the gate before a switch and the monitor that keeps active
//! targets honest afterwards.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cutover_core::service::HealthCheck;
use cutover_core::status::Health;
use http::{header, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};

use crate::context::Context;
use crate::target::TargetSet;

/// Waiting for new targets never polls slower than this, whatever the
/// configured interval says: a deploy should not wait on a slow poll.
pub(crate) const GATE_POLL: Duration = Duration::from_millis(250);

/// Most apps are up within a few seconds, and each poll step they wait past
/// that is pure deploy overhead: the gate polls this often at first. A
/// probe of an app not yet listening is one refused connect, cheap enough.
const GATE_FAST_POLL: Duration = Duration::from_millis(50);
const GATE_FAST_FOR: Duration = Duration::from_secs(5);

/// How much of a failing probe's body the error quotes.
const EXCERPT: usize = 200;

/// One probe: `GET path` with the configured Host; any 2xx passes. The error
/// names what failed: the connect error or the status and a body excerpt.
pub(crate) async fn probe(addr: &str, hc: &HealthCheck, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, probe_inner(addr, hc)).await {
        Ok(r) => r,
        Err(_) => Err(format!("GET {} timed out after {timeout:?}", hc.path)),
    }
}

async fn probe_inner(addr: &str, hc: &HealthCheck) -> Result<(), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    let conn = tokio::spawn(conn);
    let result = async {
        let req = Request::get(hc.path.as_str())
            .header(header::HOST, hc.host.as_deref().unwrap_or(addr))
            .header(header::USER_AGENT, "cutover-health")
            .header(header::CONNECTION, "close")
            .body(Empty::new())
            .map_err(|e| format!("invalid probe request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("GET {}: {e}", hc.path))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let mut body = resp.into_body();
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT {
            match body.frame().await {
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        excerpt.extend_from_slice(d);
                    }
                }
                _ => break,
            }
        }
        excerpt.truncate(EXCERPT);
        let text = String::from_utf8_lossy(&excerpt);
        let text = text.trim();
        if text.is_empty() {
            Err(format!("GET {} answered {status}", hc.path))
        } else {
            Err(format!("GET {} answered {status}: {text:?}", hc.path))
        }
    }
    .await;
    conn.abort();
    result
}

/// Polls every target of a new set until all pass or `within` runs out.
/// On failure the error lists each failing target with its last probe.
pub(crate) async fn gate(
    set: &TargetSet,
    hc: &HealthCheck,
    within: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let deadline = started + within;
    let poll = |now: Instant| {
        let cap = if now.duration_since(started) < GATE_FAST_FOR {
            GATE_FAST_POLL
        } else {
            GATE_POLL
        };
        hc.interval.min(cap)
    };
    let waits = set.targets.iter().map(|t| async move {
        // The most telling failure so far: a probe cut short by the deadline
        // says less than the real answer before it.
        let mut last: Option<String> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let why = last.unwrap_or_else(|| "no probe finished before the deadline".into());
                return Err(format!("{}: {why}", t.addr));
            }
            let clamped = remaining < hc.timeout;
            match probe(&t.addr, hc, hc.timeout.min(remaining)).await {
                Ok(()) => {
                    t.set_health(Health::Healthy, None);
                    return Ok(());
                }
                Err(e) => {
                    if !(clamped && last.is_some() && Instant::now() >= deadline) {
                        t.set_health(Health::Unhealthy, Some(e.clone()));
                        last = Some(e);
                    }
                }
            }
            let now = Instant::now();
            let step = poll(now);
            if now + step >= deadline {
                let why = last.unwrap_or_default();
                return Err(format!("{}: {why}", t.addr));
            }
            tokio::time::sleep(step).await;
        }
    });
    let failures: Vec<String> = futures_util::future::join_all(waits)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// Probes an active set's targets every `interval` until the set retires,
/// moving targets in and out of rotation and reporting transitions.
pub(crate) async fn monitor(inner: Arc<Context>, set: Arc<TargetSet>, hc: HealthCheck) {
    let period = hc.interval.max(Duration::from_millis(10));
    // Targets that just passed the gate need no probe right away; restored
    // ones (Unknown) do, to enter rotation as soon as they answer.
    let gated = set.targets.iter().all(|t| t.health() == Health::Healthy);
    let start = if gated {
        Instant::now() + period
    } else {
        Instant::now()
    };
    let mut tick = tokio::time::interval_at(start, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = set.monitor_stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let probes = set.targets.iter().map(|t| probe(&t.addr, &hc, hc.timeout));
        let results = tokio::select! {
            _ = set.monitor_stop.cancelled() => return,
            r = futures_util::future::join_all(probes) => r,
        };
        for (idx, r) in results.into_iter().enumerate() {
            let t = &set.targets[idx];
            // The monitor's tick is the pool's clock too: connections a
            // burst left idle close even when no request comes again.
            t.expire_idle(inner.config.upstream_idle_timeout);
            let changed = match r {
                Ok(()) => t.set_health(Health::Healthy, None),
                Err(e) => t.set_health(Health::Unhealthy, Some(e)),
            };
            if let Some(prev) = changed {
                inner.health_changed(&set, idx, prev);
            }
        }
    }
}
