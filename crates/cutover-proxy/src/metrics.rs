//! Request metrics kept as plain atomics in per-service structs that routes
//! point at, so recording a request never hashes a label or allocates.
//! Gauges (in-flight, draining, health) are read from the target sets when
//! the text is rendered instead of being maintained on the hot path.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cutover_core::service::Color;

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const COLORS: [Color; 2] = [Color::Blue, Color::Green];

fn class_index(status: u16) -> usize {
    ((status / 100).clamp(1, 5) - 1) as usize
}

fn color_index(c: Color) -> usize {
    match c {
        Color::Blue => 0,
        Color::Green => 1,
    }
}

#[derive(Default)]
pub(crate) struct Histogram {
    /// Non-cumulative; the last slot counts everything above the last bound.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let i = BUCKETS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
                *b as f64 / 1e6
            );
        }
        cumulative += self.buckets[BUCKETS_US.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

#[derive(Default)]
pub(crate) struct ServiceMetrics {
    requests: [[AtomicU64; 5]; 2],
    latency: Histogram,
}

impl ServiceMetrics {
    pub fn record(&self, color: Color, status: u16, elapsed: Duration) {
        self.requests[color_index(color)][class_index(status)].fetch_add(1, Ordering::Relaxed);
        self.latency.record(elapsed);
    }
}

/// Requests the proxy answered itself without a service (404, health).
#[derive(Default)]
pub(crate) struct Unrouted {
    requests: [AtomicU64; 5],
}

impl Unrouted {
    pub fn record(&self, status: u16) {
        self.requests[class_index(status)].fetch_add(1, Ordering::Relaxed);
    }
}

/// Client connections of the data listener: how many are open, and how
/// many were closed at once because the cap was reached.
#[derive(Default)]
pub(crate) struct Connections {
    pub open: AtomicU64,
    pub shed: AtomicU64,
}

/// What the renderer needs to know about one service besides its counters.
pub(crate) struct ServiceGauges<'a> {
    pub name: &'a str,
    pub metrics: &'a ServiceMetrics,
    pub in_flight: u64,
    pub upgraded: u64,
    pub draining_in_flight: u64,
    pub draining_upgraded: u64,
    /// Pooled connections to its targets waiting for a request.
    pub idle_upstream: u64,
    /// (addr, color, healthy)
    pub targets: Vec<(&'a str, Color, bool)>,
}

/// A Prometheus label value.
pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) fn render(
    services: &[ServiceGauges<'_>],
    unrouted: &Unrouted,
    connections: &Connections,
) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str(
        "# HELP cutover_client_connections Open client connections of the data listener.\n",
    );
    out.push_str("# TYPE cutover_client_connections gauge\n");
    let _ = writeln!(
        out,
        "cutover_client_connections {}",
        connections.open.load(Ordering::Relaxed)
    );
    out.push_str("# HELP cutover_connections_shed_total Client connections closed on accept because --max-connections were open.\n");
    out.push_str("# TYPE cutover_connections_shed_total counter\n");
    let _ = writeln!(
        out,
        "cutover_connections_shed_total {}",
        connections.shed.load(Ordering::Relaxed)
    );
    out.push_str(
        "# HELP cutover_requests_total Requests answered, by service, status class and color.\n",
    );
    out.push_str("# TYPE cutover_requests_total counter\n");
    for s in services {
        let name = escape(s.name);
        for color in COLORS {
            for (ci, class) in CLASSES.iter().enumerate() {
                let v = s.metrics.requests[color_index(color)][ci].load(Ordering::Relaxed);
                if v > 0 {
                    let _ = writeln!(
                        out,
                        "cutover_requests_total{{service=\"{name}\",class=\"{class}\",color=\"{color}\"}} {v}"
                    );
                }
            }
        }
    }
    for (ci, class) in CLASSES.iter().enumerate() {
        let v = unrouted.requests[ci].load(Ordering::Relaxed);
        if v > 0 {
            let _ = writeln!(
                out,
                "cutover_requests_total{{service=\"\",class=\"{class}\",color=\"\"}} {v}"
            );
        }
    }
    out.push_str(
        "# HELP cutover_request_duration_seconds Time from request head to end of response.\n",
    );
    out.push_str("# TYPE cutover_request_duration_seconds histogram\n");
    for s in services {
        let labels = format!("service=\"{}\"", escape(s.name));
        s.metrics
            .latency
            .render(&mut out, "cutover_request_duration_seconds", &labels);
    }
    out.push_str("# HELP cutover_in_flight_requests HTTP requests being proxied.\n");
    out.push_str("# TYPE cutover_in_flight_requests gauge\n");
    for s in services {
        let _ = writeln!(
            out,
            "cutover_in_flight_requests{{service=\"{}\"}} {}",
            escape(s.name),
            s.in_flight
        );
    }
    out.push_str(
        "# HELP cutover_upgraded_connections Upgraded (WebSocket) connections being relayed.\n",
    );
    out.push_str("# TYPE cutover_upgraded_connections gauge\n");
    for s in services {
        let _ = writeln!(
            out,
            "cutover_upgraded_connections{{service=\"{}\"}} {}",
            escape(s.name),
            s.upgraded
        );
    }
    out.push_str("# HELP cutover_draining_connections Requests and upgraded connections still on draining target sets.\n");
    out.push_str("# TYPE cutover_draining_connections gauge\n");
    for s in services {
        let name = escape(s.name);
        let _ = writeln!(
            out,
            "cutover_draining_connections{{service=\"{name}\",kind=\"http\"}} {}",
            s.draining_in_flight
        );
        let _ = writeln!(
            out,
            "cutover_draining_connections{{service=\"{name}\",kind=\"upgraded\"}} {}",
            s.draining_upgraded
        );
    }
    out.push_str("# HELP cutover_upstream_idle_connections Pooled connections to the service's targets waiting for a request.\n");
    out.push_str("# TYPE cutover_upstream_idle_connections gauge\n");
    for s in services {
        let _ = writeln!(
            out,
            "cutover_upstream_idle_connections{{service=\"{}\"}} {}",
            escape(s.name),
            s.idle_upstream
        );
    }
    out.push_str("# HELP cutover_target_healthy 1 when the target's last probe passed.\n");
    out.push_str("# TYPE cutover_target_healthy gauge\n");
    for s in services {
        let name = escape(s.name);
        for (addr, color, healthy) in &s.targets {
            let _ = writeln!(
                out,
                "cutover_target_healthy{{service=\"{name}\",target=\"{}\",color=\"{color}\"}} {}",
                escape(addr),
                u8::from(*healthy)
            );
        }
    }
    out
}

/// Seconds until each served certificate's notAfter (negative once past),
/// the one figure an expiry alert needs.
pub(crate) fn render_certificates(
    out: &mut String,
    certs: &[cutover_core::tls::CertificateStatus],
    now: std::time::SystemTime,
) {
    use std::fmt::Write;
    let served: Vec<_> = certs
        .iter()
        .filter_map(|c| Some((c, c.not_after?)))
        .collect();
    if served.is_empty() {
        return;
    }
    out.push_str(
        "# HELP cutover_certificate_expiry_seconds Seconds until the certificate expires.\n",
    );
    out.push_str("# TYPE cutover_certificate_expiry_seconds gauge\n");
    for (c, not_after) in served {
        let left = match not_after.duration_since(now) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        for host in &c.hosts {
            let _ = writeln!(
                out,
                "cutover_certificate_expiry_seconds{{host=\"{host}\",source=\"{}\"}} {left}",
                c.source
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.record(Duration::from_micros(100));
        h.record(Duration::from_micros(700));
        h.record(Duration::from_secs(100));
        let mut out = String::new();
        h.render(&mut out, "x", "service=\"s\"");
        assert!(
            out.contains("x_bucket{service=\"s\",le=\"0.0005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{service=\"s\",le=\"0.001\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{service=\"s\",le=\"10\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{service=\"s\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("x_count{service=\"s\"} 3\n"), "{out}");
    }

    #[test]
    fn status_classes() {
        assert_eq!(class_index(101), 0);
        assert_eq!(class_index(204), 1);
        assert_eq!(class_index(404), 3);
        assert_eq!(class_index(599), 4);
        assert_eq!(class_index(0), 0);
    }
}
