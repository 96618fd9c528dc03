//! What every load loop writes to and the report reads: counters, samples
//! and the deploy log, behind one lock.

use crate::*;

pub(crate) fn ms(since: Instant, t: Instant) -> f64 {
    t.saturating_duration_since(since).as_secs_f64() * 1000.0
}

#[derive(Default)]
pub(crate) struct HttpStats {
    pub(crate) sent: u64,
    pub(crate) ok: u64,
    pub(crate) non_2xx: BTreeMap<u16, u64>,
    pub(crate) conn_errors: u64,
    pub(crate) timeouts: u64,
    pub(crate) last_success_ms: Option<f64>,
    pub(crate) max_gap_ms: f64,
    /// (time, version) each time the observed version changes.
    pub(crate) transitions: Vec<(f64, String)>,
    pub(crate) max_count: Option<i64>,
    /// Completion times (monotonic, since pushed under the lock) with the running maximum
    /// count of every response completed up to then.
    pub(crate) completed: Vec<(f64, i64)>,
    pub(crate) continuity_violations: Vec<String>,
}

#[derive(Default)]
pub(crate) struct WsStats {
    pub(crate) opened: u64,
    pub(crate) connect_errors: u64,
    pub(crate) graceful_closes: u64,
    pub(crate) cuts: u64,
    pub(crate) close_codes: BTreeMap<String, u64>,
    pub(crate) reconnects: u64,
    pub(crate) echo_mismatches: u64,
    pub(crate) echoes_ok: u64,
    /// (version greeted, opened ms, closed ms) for each finished WebSocket.
    pub(crate) lives: Vec<(Option<String>, f64, f64)>,
}

#[derive(Default)]
pub(crate) struct SseStats {
    pub(crate) opened: u64,
    pub(crate) events: u64,
    pub(crate) breaks: u64,
}

#[derive(Default, Serialize, Clone)]
pub(crate) struct OauthStats {
    pub(crate) supported: bool,
    pub(crate) issued: u64,
    pub(crate) carried_across_deploy: u64,
    pub(crate) accepted: u64,
    pub(crate) refused: u64,
    pub(crate) second_use_refused: u64,
    pub(crate) second_use_accepted: u64,
    pub(crate) errors: u64,
}

pub(crate) struct DeployRun {
    pub(crate) index: u32,
    pub(crate) expected_failure: bool,
    pub(crate) start_ms: f64,
    pub(crate) end_ms: f64,
    pub(crate) exit_code: Option<i32>,
}

pub(crate) struct Shared {
    pub(crate) t0: Instant,
    pub(crate) deadline: Instant,
    pub(crate) args: Args,
    pub(crate) target: Target,
    pub(crate) http: Mutex<HttpStats>,
    pub(crate) ws: Mutex<WsStats>,
    pub(crate) sse: Mutex<SseStats>,
    pub(crate) oauth: Mutex<OauthStats>,
    pub(crate) deploys: Mutex<Vec<DeployRun>>,
    /// The process group of the deploy command running now, if any.
    pub(crate) deploy_group: Mutex<Option<rustix::process::Pid>>,
    pub(crate) requests_started: AtomicU64,
    pub(crate) rate_next: Mutex<Instant>,
}

impl Shared {
    pub(crate) fn now_ms(&self) -> f64 {
        ms(self.t0, Instant::now())
    }

    pub(crate) fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    /// Reserves a request slot; false once the run is over or the request budget is spent.
    pub(crate) async fn admit(&self) -> bool {
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

    pub(crate) fn record_response(
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

    pub(crate) fn record_failure(&self, err: &ReqError) {
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
