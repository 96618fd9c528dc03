//! The verdict: counts, gaps, close codes and the Markdown table.

use crate::*;

#[derive(Serialize)]
pub(crate) struct HttpReport {
    pub(crate) sent: u64,
    pub(crate) ok_2xx: u64,
    pub(crate) non_2xx: BTreeMap<u16, u64>,
    pub(crate) connection_errors: u64,
    pub(crate) timeouts: u64,
    pub(crate) longest_gap_ms: f64,
}

#[derive(Serialize)]
pub(crate) struct WsReport {
    pub(crate) opened: u64,
    pub(crate) connect_errors: u64,
    pub(crate) graceful_closes: u64,
    pub(crate) cuts: u64,
    pub(crate) close_codes: BTreeMap<String, u64>,
    pub(crate) reconnects: u64,
    pub(crate) echoes_ok: u64,
    pub(crate) echo_mismatches: u64,
}

#[derive(Serialize)]
pub(crate) struct SseReport {
    pub(crate) opened: u64,
    pub(crate) events: u64,
    pub(crate) breaks: u64,
}

#[derive(Serialize)]
pub(crate) struct DeployReport {
    pub(crate) index: u32,
    pub(crate) expected_failure: bool,
    pub(crate) exit_code: Option<i32>,
    pub(crate) ok: bool,
    pub(crate) version_before: Option<String>,
    pub(crate) version_after: Option<String>,
    pub(crate) switch_ms: Option<f64>,
    pub(crate) drain_ms: Option<f64>,
    pub(crate) total_ms: f64,
}

#[derive(Serialize)]
pub(crate) struct ContinuityReport {
    pub(crate) ok: bool,
    pub(crate) max_count: Option<i64>,
    pub(crate) violations: Vec<String>,
}

#[derive(Serialize)]
pub(crate) struct Report {
    pub(crate) url: String,
    pub(crate) duration_ms: f64,
    pub(crate) http: HttpReport,
    pub(crate) websocket: WsReport,
    pub(crate) sse: SseReport,
    pub(crate) deploys: Vec<DeployReport>,
    pub(crate) continuity: ContinuityReport,
    pub(crate) oauth: OauthStats,
    pub(crate) failures: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

pub(crate) fn build_report(shared: &Shared) -> Report {
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

pub(crate) fn opt_ms(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.0} ms"))
        .unwrap_or_else(|| "-".into())
}

pub(crate) fn markdown(r: &Report) -> String {
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
