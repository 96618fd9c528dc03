//! A staged version: started and health-gated beside the live one, and
//! served only to some requests until `cutover promote` switches to it (a
//! normal switch: drain, 1012, retire) or `cutover abort` drops it.
//!
//! Lifecycle (one per app, kept by the proxy with the route and by the
//! deploy engine with its release record):
//!
//! ```text
//! deploy --preview | --canary N%  ->  Staged  --promote-->  live (the old color drains)
//!                                       |
//!                                       +-----abort------>  drained, then removed
//! ```
//!
//! Which requests the staged set gets:
//! - a request with the `cutover-preview` header or cookie (any value
//!   but `0`), in either mode: the way to look at it before anyone else;
//! - a request for one of the app's `preview_hosts`;
//! - with a canary, that share of new sessions, drawn once and kept by
//!   the `cutover-canary` cookie so a user does not flip between versions.

use serde::{Deserialize, Serialize};

use crate::diag::{Diagnose, Report};
use crate::route::validate_host;

/// The header (and cookie) that asks for the staged version.
pub const PREVIEW_HEADER: &str = "cutover-preview";
/// The cookie that keeps a canary session on the side it was drawn for.
pub const CANARY_COOKIE: &str = "cutover-canary";
/// The hint when there is nothing staged to promote or abort.
pub const HOW_TO_STAGE: &str = "stage a version with `cutover deploy --preview` or `--canary N%`";
/// How long a canary assignment lasts in the browser.
pub const CANARY_COOKIE_MAX_AGE_SECS: u64 = 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum StageMode {
    /// Only requests that ask for it (header, cookie, preview host).
    Preview,
    /// Also `percent` of new sessions.
    Canary { percent: u8 },
}

impl StageMode {
    /// `--canary 10%` or `--canary 10`: a share of 1 to 99 percent.
    pub fn canary(text: &str) -> Result<StageMode, Report> {
        let digits = text.trim().trim_end_matches('%').trim();
        match digits.parse::<u8>() {
            Ok(percent) if (1..=99).contains(&percent) => Ok(StageMode::Canary { percent }),
            _ => Err(Report::new(format!(
                "--canary {text:?} is not a share of new sessions between 1% and 99%"
            ))
            .hint("e.g. --canary 10%; to send everyone, deploy without --canary (or promote the canary)")),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            StageMode::Preview => "preview".into(),
            StageMode::Canary { percent } => format!("canary {percent}%"),
        }
    }
}

/// What the proxy is asked to stage with a set.
// No `deny_unknown_fields`: serde does not support it with `flatten`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    #[serde(flatten)]
    pub mode: StageMode,
    /// Hosts that reach only the staged version (`x-cutover.preview_hosts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preview_hosts: Vec<String>,
    /// Names this stage in the canary cookie, so an assignment drawn for
    /// an earlier canary does not count for this one. Set by the proxy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
}

impl Stage {
    pub fn validate(&self) -> Result<(), Report> {
        if let StageMode::Canary { percent } = self.mode {
            if !(1..=99).contains(&percent) {
                return Err(Report::new(format!(
                    "canary percent {percent} is not between 1 and 99"
                )));
            }
        }
        for host in &self.preview_hosts {
            validate_host(host)
                .map_err(|e| e.report().map_message(|m| format!("preview_hosts: {m}")))?;
            if host.starts_with("*.") {
                return Err(Report::new(format!(
                    "preview_hosts: {host} is a wildcard; a preview host names one host"
                ))
                .hint("list each preview host, e.g. preview.example.com"));
            }
        }
        if !self
            .token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(Report::new("stage token: letters, digits and - only"));
        }
        Ok(())
    }

    /// The cookie value of a session drawn for the staged side or not.
    pub fn canary_cookie_value(&self, staged: bool) -> String {
        format!("{}.{}", self.token, if staged { "new" } else { "live" })
    }

    /// Which side a `cutover-canary` cookie value puts the session on;
    /// `None` when it was drawn for another stage (or is not ours).
    pub fn side_of(&self, value: &str) -> Option<bool> {
        let (token, side) = value.rsplit_once('.')?;
        if token != self.token {
            return None;
        }
        match side {
            "new" => Some(true),
            "live" => Some(false),
            _ => None,
        }
    }
}

/// Whether a `cutover-preview` header or cookie value asks for the staged
/// version.
pub fn asks_preview(value: &str) -> bool {
    let v = value.trim();
    !(v == "0" || v.eq_ignore_ascii_case("false") || v.eq_ignore_ascii_case("off"))
}

/// Every value of cookie `name` in a `Cookie` header (a browser sends one
/// per path it was set for).
pub fn cookie_values<'a>(header: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> {
    header.split(';').filter_map(move |pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(token: &str) -> Stage {
        Stage {
            mode: StageMode::Canary { percent: 10 },
            preview_hosts: vec![],
            token: token.into(),
        }
    }

    #[test]
    fn canary_shares_parse_with_or_without_a_percent_sign() {
        assert_eq!(
            StageMode::canary("10%").unwrap(),
            StageMode::Canary { percent: 10 }
        );
        assert_eq!(
            StageMode::canary(" 25 ").unwrap(),
            StageMode::Canary { percent: 25 }
        );
        for bad in ["0", "100%", "-5", "ten", "", "150"] {
            let e = StageMode::canary(bad).unwrap_err();
            assert!(e.message.contains("between 1% and 99%"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn a_canary_cookie_counts_only_for_its_own_stage() {
        let s = stage("a1b2");
        assert_eq!(s.side_of(&s.canary_cookie_value(true)), Some(true));
        assert_eq!(s.side_of(&s.canary_cookie_value(false)), Some(false));
        assert_eq!(s.side_of(&stage("ffff").canary_cookie_value(true)), None);
        assert_eq!(s.side_of("a1b2.maybe"), None);
        assert_eq!(s.side_of("garbage"), None);
    }

    #[test]
    fn cookies_are_found_by_name_among_others() {
        let h = "session=abc; cutover-canary=t.new ; other=\"x\"";
        let values = |name| cookie_values(h, name).collect::<Vec<_>>();
        assert_eq!(values("cutover-canary"), ["t.new"]);
        assert_eq!(values("other"), ["x"]);
        assert!(values("cutover").is_empty());
        let two = "cutover-canary=a.live; cutover-canary=b.new";
        assert_eq!(cookie_values(two, "cutover-canary").count(), 2);
        assert!(asks_preview("1") && asks_preview("yes") && !asks_preview("0"));
        assert!(!asks_preview("false"));
    }

    #[test]
    fn stages_are_validated() {
        let mut s = stage("t");
        s.preview_hosts = vec!["*.example.com".into()];
        assert!(s.validate().unwrap_err().message.contains("wildcard"));
        s.preview_hosts = vec!["preview.example.com".into()];
        assert!(s.validate().is_ok());
        s.token = "bad token".into();
        assert!(s.validate().is_err());
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"mode\":\"canary\"") && json.contains("\"percent\":10"));
        assert_eq!(serde_json::from_str::<Stage>(&json).unwrap(), s);
    }
}
