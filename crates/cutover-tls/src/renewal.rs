//! When to renew an automatic certificate: with a third of its lifetime
//! left, or earlier when the CA's renewal information (ARI, RFC 9773)
//! suggests a window, as a CA does before it revokes certificates en masse.
//!
//! Pure: the caller passes what the CA said, the random draw and the time,
//! so the rules are tested directly. The steps are RFC 9773 §4.2's: draw a
//! time uniformly in the window; renew then (at once if it has passed);
//! until then ask again when the CA's `Retry-After` says, within limits.

use std::time::{Duration, SystemTime};

use cutover_core::tls::RenewalWindow;

use crate::pem::Facts;

/// What the CA answered when asked about one certificate.
#[derive(Debug, Clone)]
pub(crate) enum Ari {
    /// Its directory has no `renewalInfo`: only the lifetime counts.
    Unsupported,
    /// Asking failed (the CA unreachable, a bad answer; logged where it
    /// failed): ask again later.
    Failed,
    Window {
        window: RenewalWindow,
        retry_after: Duration,
    },
}

/// When the next order is due, and when to ask the CA again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub renew_at: SystemTime,
    /// `None`: the CA has no ARI, nothing to ask before `renew_at`.
    pub recheck_at: Option<SystemTime>,
    pub window: Option<RenewalWindow>,
}

/// RFC 9773 §4.3.2 asks clients to bound the CA's `Retry-After`: no
/// tighter than a minute, no looser than a day.
const RECHECK_MIN: Duration = Duration::from_secs(60);
const RECHECK_MAX: Duration = Duration::from_secs(24 * 3600);
/// After a failed ask: an hour, so a CA outage costs few requests while a
/// revocation notice is still seen the same day.
const RECHECK_AFTER_FAILURE: Duration = Duration::from_secs(3600);

impl Plan {
    /// The plan for a certificate with `facts`, given the CA's answer and
    /// `draw` in `[0, 1)`.
    pub fn new(facts: &Facts, ari: Ari, draw: f64, now: SystemTime) -> Plan {
        let lifetime = facts.renew_at();
        match ari {
            Ari::Unsupported => Plan {
                renew_at: lifetime,
                recheck_at: None,
                window: None,
            },
            Ari::Failed => Plan {
                renew_at: lifetime,
                recheck_at: Some(now + RECHECK_AFTER_FAILURE),
                window: None,
            },
            Ari::Window {
                window,
                retry_after,
            } => {
                let span = window
                    .end
                    .duration_since(window.start)
                    .unwrap_or(Duration::ZERO);
                let drawn = window.start + span.mul_f64(draw.clamp(0.0, 1.0));
                Plan {
                    renew_at: drawn.min(lifetime),
                    recheck_at: Some(now + retry_after.clamp(RECHECK_MIN, RECHECK_MAX)),
                    window: Some(window),
                }
            }
        }
    }

    /// This plan, but with `previous`'s drawn time when the CA's window has
    /// not moved: drawn again at every ask, the renewal would drift to the
    /// window's start (the earliest of many draws), against RFC 9773's one
    /// uniform draw that spreads the CA's load.
    pub fn keeping(mut self, previous: &Plan) -> Plan {
        if self.window.is_some() && self.window == previous.window {
            self.renew_at = previous.renew_at;
        }
        self
    }

    /// Whether the certificate is to be renewed now.
    pub fn due(&self, now: SystemTime) -> bool {
        self.renew_at <= now
    }

    /// When the manager looks at the certificate next: to order it, or to
    /// ask the CA again.
    pub fn wake_at(&self) -> SystemTime {
        self.recheck_at
            .map_or(self.renew_at, |r| r.min(self.renew_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn facts(issued: SystemTime, days: u32) -> Facts {
        Facts {
            names: vec!["a.example".into()],
            issuer: "test".into(),
            not_before: issued,
            not_after: issued + DAY * days,
        }
    }

    fn window(start: SystemTime, end: SystemTime) -> RenewalWindow {
        RenewalWindow {
            start,
            end,
            explanation: None,
        }
    }

    #[test]
    fn without_ari_the_lifetime_rule_alone_counts() {
        let now = SystemTime::UNIX_EPOCH + DAY * 20_000;
        let f = facts(now, 90);
        let plan = Plan::new(&f, Ari::Unsupported, 0.5, now);
        assert_eq!(plan.renew_at, now + DAY * 60);
        assert_eq!(plan.wake_at(), plan.renew_at);
        let failed = Plan::new(&f, Ari::Failed, 0.5, now);
        assert_eq!(failed.renew_at, now + DAY * 60);
        assert_eq!(failed.wake_at(), now + RECHECK_AFTER_FAILURE);
    }

    #[test]
    fn a_window_that_has_passed_makes_the_certificate_due_now() {
        let now = SystemTime::UNIX_EPOCH + DAY * 20_000;
        let f = facts(now - DAY, 90);
        let ari = Ari::Window {
            window: window(now - DAY, now - DAY / 2),
            retry_after: Duration::from_secs(1),
        };
        let plan = Plan::new(&f, ari, 0.99, now);
        assert!(plan.due(now), "{plan:?}");
        // A Retry-After of a second is asked again after a minute.
        assert_eq!(plan.recheck_at, Some(now + RECHECK_MIN));
    }

    #[test]
    fn the_draw_is_kept_while_the_window_stays_and_made_again_when_it_moves() {
        let now = SystemTime::UNIX_EPOCH + DAY * 20_000;
        let f = facts(now, 90);
        let ask = |start, draw| {
            let ari = Ari::Window {
                window: window(start, start + DAY * 2),
                retry_after: Duration::from_secs(6 * 3600),
            };
            Plan::new(&f, ari, draw, now)
        };
        let first = ask(now + DAY * 50, 0.9);
        let again = ask(now + DAY * 50, 0.1).keeping(&first);
        assert_eq!(again.renew_at, first.renew_at);
        assert_eq!(again.recheck_at, Some(now + Duration::from_secs(6 * 3600)));
        let moved = ask(now + DAY * 10, 0.1).keeping(&first);
        assert_eq!(moved.renew_at, now + DAY * 10 + DAY / 5);
        let none = Plan::new(&f, Ari::Unsupported, 0.5, now).keeping(&first);
        assert_eq!(none.renew_at, f.renew_at());
    }

    proptest! {
        /// The renewal is the drawn time in the window or the lifetime
        /// rule's, whichever comes first; the CA is asked again no sooner
        /// than a minute and no later than a day, and never after renewal.
        #[test]
        fn the_drawn_time_lies_in_the_window_or_before_it(
            start_days in 0u32..200,
            span_hours in 0u32..500,
            draw in 0.0f64..1.0,
            retry_secs in 0u64..10 * 24 * 3600,
        ) {
            let now = SystemTime::UNIX_EPOCH + DAY * 20_000;
            let f = facts(now, 90);
            let start = now + DAY * start_days;
            let end = start + Duration::from_secs(3600) * span_hours;
            let plan = Plan::new(&f, Ari::Window {
                window: window(start, end),
                retry_after: Duration::from_secs(retry_secs),
            }, draw, now);
            prop_assert!(plan.renew_at <= f.renew_at());
            if start < f.renew_at() {
                prop_assert!(start <= plan.renew_at && plan.renew_at <= end);
            } else {
                prop_assert_eq!(plan.renew_at, f.renew_at());
            }
            let recheck = plan.recheck_at.unwrap();
            prop_assert!(now + RECHECK_MIN <= recheck && recheck <= now + RECHECK_MAX);
            prop_assert!(plan.wake_at() <= plan.renew_at && plan.wake_at() <= recheck);
        }
    }
}
