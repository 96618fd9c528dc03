//! Target set lifecycle: Active -> Draining -> Drained.
//!
//! The same idea as sozu's backend states (Normal -> Closing -> Closed): a set
//! that lost the switch takes no new requests but keeps serving what it has
//! until that work ends or its deadlines pass. The runtime feeds this machine
//! what it observes (load, deadlines) and does what it answers; keeping it pure
//! lets the rules be tested without sockets or clocks.

use crate::status::SetState;

/// What the runtime must do after feeding a deadline in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineAction {
    /// Nothing left of that kind, or the set is not draining.
    Nothing,
    /// Cut the in-flight HTTP requests (drain timeout).
    CutRequests,
    /// Close the upgraded connections with 1012/1001 (websocket drain timeout).
    CloseUpgraded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    state: SetState,
    http_deadline_passed: bool,
    websocket_deadline_passed: bool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    pub fn new() -> Self {
        Lifecycle {
            state: SetState::Active,
            http_deadline_passed: false,
            websocket_deadline_passed: false,
        }
    }

    pub fn state(&self) -> SetState {
        self.state
    }

    /// Only an active set gets new requests or upgrades.
    pub fn accepts_new_work(&self) -> bool {
        self.state == SetState::Active
    }

    /// The set lost the switch (or its service was removed). Returns whether
    /// this call changed the state.
    pub fn retire(&mut self) -> bool {
        if self.state == SetState::Active {
            self.state = SetState::Draining;
            true
        } else {
            false
        }
    }

    /// Feed the current load; returns true when this makes the set Drained.
    /// An active set is never drained, however idle it is.
    pub fn observe(&mut self, in_flight: u64, upgraded: u64) -> bool {
        if self.state == SetState::Draining && in_flight == 0 && upgraded == 0 {
            self.state = SetState::Drained;
            true
        } else {
            false
        }
    }

    /// The HTTP drain timeout passed with `in_flight` requests still running.
    pub fn http_deadline(&mut self, in_flight: u64) -> DeadlineAction {
        if self.state != SetState::Draining || self.http_deadline_passed {
            return DeadlineAction::Nothing;
        }
        self.http_deadline_passed = true;
        if in_flight > 0 {
            DeadlineAction::CutRequests
        } else {
            DeadlineAction::Nothing
        }
    }

    /// The websocket drain timeout passed with `upgraded` connections open.
    pub fn websocket_deadline(&mut self, upgraded: u64) -> DeadlineAction {
        if self.state != SetState::Draining || self.websocket_deadline_passed {
            return DeadlineAction::Nothing;
        }
        self.websocket_deadline_passed = true;
        if upgraded > 0 {
            DeadlineAction::CloseUpgraded
        } else {
            DeadlineAction::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_set_never_drains() {
        let mut l = Lifecycle::new();
        assert!(!l.observe(0, 0));
        assert_eq!(l.state(), SetState::Active);
        assert_eq!(l.http_deadline(3), DeadlineAction::Nothing);
        assert_eq!(l.websocket_deadline(3), DeadlineAction::Nothing);
        assert!(l.accepts_new_work());
    }

    #[test]
    fn draining_waits_for_requests_and_upgrades() {
        let mut l = Lifecycle::new();
        assert!(l.retire());
        assert!(!l.accepts_new_work());
        assert!(!l.observe(2, 1));
        assert!(!l.observe(0, 1));
        assert_eq!(l.state(), SetState::Draining);
        assert!(l.observe(0, 0));
        assert_eq!(l.state(), SetState::Drained);
    }

    #[test]
    fn drained_is_terminal() {
        let mut l = Lifecycle::new();
        l.retire();
        assert!(l.observe(0, 0));
        assert!(!l.observe(0, 0), "drained is reported once");
        assert!(!l.retire());
        assert_eq!(l.http_deadline(1), DeadlineAction::Nothing);
        assert_eq!(l.state(), SetState::Drained);
    }

    #[test]
    fn retire_twice_is_a_no_op() {
        let mut l = Lifecycle::new();
        assert!(l.retire());
        assert!(!l.retire());
        assert_eq!(l.state(), SetState::Draining);
    }

    #[test]
    fn deadlines_cut_only_what_is_left_and_only_once() {
        let mut l = Lifecycle::new();
        l.retire();
        assert_eq!(l.http_deadline(2), DeadlineAction::CutRequests);
        assert_eq!(l.http_deadline(2), DeadlineAction::Nothing);
        assert_eq!(l.websocket_deadline(0), DeadlineAction::Nothing);

        let mut l = Lifecycle::new();
        l.retire();
        assert_eq!(l.http_deadline(0), DeadlineAction::Nothing);
        assert_eq!(l.websocket_deadline(4), DeadlineAction::CloseUpgraded);
        assert!(l.observe(0, 0));
    }
}
