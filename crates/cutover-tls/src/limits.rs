//! How often cutover may ask its CA for certificates. Kept below Let's
//! Encrypt's own limits, so a misconfigured host (DNS pointing elsewhere,
//! a firewall in front of port 80) cannot lock the account out for a week:
//!
//! | Let's Encrypt                          | cutover                         |
//! |----------------------------------------|---------------------------------|
//! | 5 failed validations per host per hour | 3, then that host waits         |
//! | 300 new orders per account per 3 hours | 100 per 3 hours, all hosts      |
//! | 50 certificates per domain per week    | 40 per registered domain a week |
//!
//! Pure: the caller passes the time, so the windows are tested directly.
//! The "registered domain" is the last two labels: without the public
//! suffix list `a.example.co.uk` and `b.example.co.uk` count together,
//! which errs on the safe side.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);
const FAILURES_PER_HOST: usize = 3;
const ORDERS_PER_WINDOW: usize = 100;
const ORDER_WINDOW: Duration = Duration::from_secs(3 * 3600);
const ISSUED_PER_DOMAIN: usize = 40;
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Default)]
pub(crate) struct Limits {
    failures: HashMap<String, VecDeque<Instant>>,
    orders: VecDeque<Instant>,
    issued: HashMap<String, VecDeque<Instant>>,
}

/// Why an order has to wait, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wait {
    pub until: Instant,
    pub why: String,
}

impl Limits {
    /// May an order for `host` start now? Counts it when it may.
    pub fn start(&mut self, host: &str, now: Instant) -> Result<(), Wait> {
        let failures = window(self.failures.entry(host.into()).or_default(), now, HOUR);
        if failures.len() >= FAILURES_PER_HOST {
            return Err(Wait {
                until: failures[0] + HOUR,
                why: format!(
                    "{} failed validations for {host} in the last hour",
                    failures.len()
                ),
            });
        }
        let domain = registered_domain(host);
        let issued = window(self.issued.entry(domain.clone()).or_default(), now, WEEK);
        if issued.len() >= ISSUED_PER_DOMAIN {
            return Err(Wait {
                until: issued[0] + WEEK,
                why: format!("{} certificates for {domain} this week", issued.len()),
            });
        }
        let orders = window(&mut self.orders, now, ORDER_WINDOW);
        if orders.len() >= ORDERS_PER_WINDOW {
            return Err(Wait {
                until: orders[0] + ORDER_WINDOW,
                why: format!("{} new orders in the last 3 hours", orders.len()),
            });
        }
        orders.push_back(now);
        Ok(())
    }

    pub fn failed(&mut self, host: &str, now: Instant) {
        self.failures.entry(host.into()).or_default().push_back(now);
    }

    pub fn issued(&mut self, host: &str, now: Instant) {
        self.failures.remove(host);
        self.issued
            .entry(registered_domain(host))
            .or_default()
            .push_back(now);
    }
}

/// Drops what is older than `span`; what is left, oldest first.
fn window(times: &mut VecDeque<Instant>, now: Instant, span: Duration) -> &mut VecDeque<Instant> {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= span)
    {
        times.pop_front();
    }
    times
}

fn registered_domain(host: &str) -> String {
    let labels: Vec<&str> = host.rsplitn(3, '.').collect();
    match labels.as_slice() {
        [tld, name, ..] => format!("{name}.{tld}"),
        _ => host.to_string(),
    }
}

/// The wait before retry `attempt` (1, 2, ...) of a failed order: doubling
/// from `base`, at most a day, with ±25 % jitter (`jitter` in 0..1) so
/// daemons that failed together do not retry together.
pub(crate) fn backoff(base: Duration, attempt: u32, jitter: f64) -> Duration {
    let doubled = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = doubled.min(Duration::from_secs(24 * 3600));
    capped.mul_f64(0.75 + jitter.clamp(0.0, 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_that_keeps_failing_waits_an_hour_others_do_not() {
        let mut l = Limits::default();
        let t0 = Instant::now();
        for i in 0..3 {
            let at = t0 + Duration::from_secs(i * 60);
            l.start("bad.example.com", at).unwrap();
            l.failed("bad.example.com", at);
        }
        let wait = l
            .start("bad.example.com", t0 + Duration::from_secs(300))
            .unwrap_err();
        assert_eq!(wait.until, t0 + HOUR);
        assert!(wait.why.contains("3 failed validations"), "{}", wait.why);
        l.start("good.example.com", t0 + Duration::from_secs(300))
            .unwrap();
        // An hour after the first failure, one more try.
        l.start("bad.example.com", t0 + HOUR).unwrap();
    }

    #[test]
    fn orders_and_issuance_have_windows() {
        let mut l = Limits::default();
        let t0 = Instant::now();
        for i in 0..ORDERS_PER_WINDOW {
            l.start(&format!("h{i}.example{i}.com"), t0).unwrap();
        }
        let wait = l.start("next.example.org", t0).unwrap_err();
        assert_eq!(wait.until, t0 + ORDER_WINDOW);
        l.start("next.example.org", t0 + ORDER_WINDOW).unwrap();

        let mut l = Limits::default();
        for i in 0..ISSUED_PER_DOMAIN {
            l.issued(&format!("h{i}.shop.example.com"), t0);
        }
        let wait = l.start("x.example.com", t0).unwrap_err();
        assert!(
            wait.why.contains("for example.com this week"),
            "{}",
            wait.why
        );
        l.start("x.example.net", t0).unwrap();
    }

    #[test]
    fn backoff_doubles_to_a_day_with_jitter() {
        let m = Duration::from_secs(60);
        assert_eq!(backoff(m, 1, 0.5), m);
        assert_eq!(backoff(m, 3, 0.5), 4 * m);
        assert_eq!(backoff(m, 40, 0.5), Duration::from_secs(86400));
        assert_eq!(backoff(m, 1, 0.0), m.mul_f64(0.75));
        assert_eq!(backoff(m, 1, 1.0), m.mul_f64(1.25));
    }
}
