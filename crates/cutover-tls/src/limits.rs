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
//! Pure: the caller passes the time (Unix milliseconds, as the CA counts:
//! a restart must not forget an hour of failures), so the windows are
//! tested directly. The counts live in the certificate storage
//! (`Storage::update_limits`), shared by the daemons that share it.
//! The "registered domain" is the last two labels: without the public
//! suffix list `a.example.co.uk` and `b.example.co.uk` count together,
//! which errs on the safe side.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

const HOUR: u64 = 3600 * 1000;
const FAILURES_PER_HOST: usize = 3;
const ORDERS_PER_WINDOW: usize = 100;
const ORDER_WINDOW: u64 = 3 * HOUR;
const ISSUED_PER_DOMAIN: usize = 40;
const WEEK: u64 = 7 * 24 * HOUR;

/// Times of failed validations, new orders and issued certificates, Unix
/// ms, oldest first.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Limits {
    failures: BTreeMap<String, VecDeque<u64>>,
    orders: VecDeque<u64>,
    issued: BTreeMap<String, VecDeque<u64>>,
}

/// Why an order has to wait, and until when (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wait {
    pub until: u64,
    pub why: String,
}

impl Limits {
    /// May an order for `host` start now? Counts it when it may.
    pub fn start(&mut self, host: &str, now: u64) -> Result<(), Wait> {
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

    pub fn failed(&mut self, host: &str, now: u64) {
        self.failures.entry(host.into()).or_default().push_back(now);
    }

    pub fn issued(&mut self, host: &str, now: u64) {
        self.failures.remove(host);
        self.issued
            .entry(registered_domain(host))
            .or_default()
            .push_back(now);
    }

    /// Forgets what no window counts any more, so the stored file stays
    /// small.
    pub fn expire(&mut self, now: u64) {
        self.failures
            .retain(|_, t| !window(t, now, HOUR).is_empty());
        self.issued.retain(|_, t| !window(t, now, WEEK).is_empty());
        window(&mut self.orders, now, ORDER_WINDOW);
    }
}

/// Drops what is older than `span`; what is left, oldest first. A time
/// ahead of `now` (a clock set back) counts until it is `span` old.
fn window(times: &mut VecDeque<u64>, now: u64, span: u64) -> &mut VecDeque<u64> {
    while times
        .front()
        .is_some_and(|t| now.saturating_sub(*t) >= span)
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
        let t0 = 1_800_000_000_000;
        for i in 0..3 {
            let at = t0 + i * 60_000;
            l.start("bad.example.com", at).unwrap();
            l.failed("bad.example.com", at);
        }
        let wait = l.start("bad.example.com", t0 + 300_000).unwrap_err();
        assert_eq!(wait.until, t0 + HOUR);
        assert!(wait.why.contains("3 failed validations"), "{}", wait.why);
        l.start("good.example.com", t0 + 300_000).unwrap();
        // An hour after the first failure, one more try.
        l.start("bad.example.com", t0 + HOUR).unwrap();
    }

    #[test]
    fn orders_and_issuance_have_windows() {
        let mut l = Limits::default();
        let t0 = 1_800_000_000_000;
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
    fn what_no_window_counts_is_forgotten() {
        let mut l = Limits::default();
        let t0 = 1_800_000_000_000;
        l.start("a.example.com", t0).unwrap();
        l.failed("a.example.com", t0);
        l.issued("b.example.com", t0);
        l.expire(t0 + HOUR);
        assert!(l.failures.is_empty());
        assert_eq!(l.orders.len(), 1);
        l.expire(t0 + WEEK);
        assert_eq!(l, Limits::default());
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
