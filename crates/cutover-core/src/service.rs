//! The description of a proxied service, as the control API receives it and as
//! the state file stores it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diag::{Diagnose, Report};
use crate::route::{normalize_prefix, validate_host};
use crate::tls::TlsRoute;

/// Which of the two alternating slots a target set belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a target is probed, before a switch and while it is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheck {
    /// Request path of the probe.
    pub path: String,
    /// Host header of the probe; the target's address when unset.
    pub host: Option<String>,
    /// Time between probes. Waiting for a new target polls at most every 250 ms
    /// whatever this says, so a deploy never waits on a slow poll.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Time a single probe may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            path: "/up".into(),
            host: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Deadlines of one deploy call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// How long new targets have to become healthy.
    #[serde(with = "humantime_serde")]
    pub deploy: Duration,
    /// How long in-flight HTTP requests on the old set may run after the switch.
    #[serde(with = "humantime_serde")]
    pub drain: Duration,
    /// How long upgraded (WebSocket) connections on the old set may live after
    /// the switch before they are closed with 1012.
    #[serde(with = "humantime_serde")]
    pub websocket_drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            deploy: Duration::from_secs(60),
            drain: Duration::from_secs(30),
            websocket_drain: Duration::from_secs(300),
        }
    }
}

/// The body of the deploy call: put these targets live for this service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// `addr:port` of each new target.
    pub targets: Vec<String>,
    /// Exact names or `*.example.com` wildcards; empty means catch-all.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Optional path prefix; the longest matching prefix wins.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Slot the targets belong to; the other one of the active set when unset.
    #[serde(default)]
    pub color: Option<Color>,
    /// Free-form version label, shown in status and logs.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub health: HealthCheck,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Host addresses (`0.0.0.0:8080`) where the daemon listens for this
    /// service alone, as well as on its main listener by `hosts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen: Vec<String>,
    /// Where containers on the app's networks reach it by name (each
    /// network's gateway at the app's port, `172.18.0.1:8080`): pinned to
    /// this service like `listen`, but it stays on the main listener too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_network: Vec<String>,
    /// HTTPS for the route's hosts; plain HTTP only when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsRoute>,
}

impl DeployRequest {
    /// Every address pinned to this service: its own ports, then the
    /// in-network ones.
    pub fn pinned_addresses(&self) -> Vec<String> {
        let mut out = self.listen.clone();
        for a in &self.in_network {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
        out
    }
}

/// What the control API and the proxy accept as a service's name. Names end
/// up in metrics labels, logs and file names, so they are kept to what all
/// of those take: one segment, or `project/service` for the route of a
/// compose app (which the deploy engine installs). Each segment is 1 to 63
/// letters, digits, `-`, `_` and `.`, starting with a letter or digit.
pub fn validate_service_name(name: &str) -> Result<(), Report> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && s.as_bytes()[0].is_ascii_alphanumeric()
    };
    let mut segments = name.split('/');
    let ok = segments.by_ref().take(2).all(segment_ok) && segments.next().is_none();
    if ok {
        Ok(())
    } else {
        Err(Report::new(format!("invalid service name {name:?}")).hint(
            "use 1 to 63 characters: letters, digits, '-', '_' and '.', starting with a letter or digit",
        ))
    }
}

/// `project/service`: the route of a compose app, which `cutover deploy`
/// owns; the control API's PUT leaves those to it.
pub fn is_project_route(name: &str) -> bool {
    name.contains('/')
}

/// Targets one service may have. Each target holds a health monitor and a
/// connection pool per data-plane thread; a request naming thousands of
/// targets (a script gone wrong, or a hostile client of the TCP control
/// API) would take memory the daemon then keeps.
pub const MAX_TARGETS: usize = 256;

impl DeployRequest {
    /// Everything serde cannot check. The error names the field
    /// (`targets[1]`, `health.path`), as the request body spells it.
    pub fn validate(&self) -> Result<(), Report> {
        if self.targets.is_empty() {
            return Err(Report::new("targets: at least one target is required")
                .hint("list the new targets as \"host:port\", e.g. [\"10.0.3.7:8080\"]"));
        }
        if self.targets.len() > MAX_TARGETS {
            return Err(Report::new(format!(
                "targets: {} targets, at most {MAX_TARGETS} are accepted for one service",
                self.targets.len()
            ))
            .hint("one host serves a service from a few replicas; check the script that builds the list"));
        }
        for (i, target) in self.targets.iter().enumerate() {
            if let Err(why) = check_host_port(target) {
                return Err(Report::new(format!(
                    "targets[{i}]: invalid socket address {target:?}: {why}"
                ))
                .hint(
                    "write each target as \"host:port\", e.g. \"10.0.3.7:8080\" or \"[::1]:8080\"",
                ));
            }
        }
        let addresses = [("listen", &self.listen), ("in_network", &self.in_network)];
        for (field, list) in addresses {
            for (i, addr) in list.iter().enumerate() {
                if addr.parse::<std::net::SocketAddr>().is_err() {
                    return Err(Report::new(format!(
                        "{field}[{i}]: {addr:?} is not an IP address and port"
                    ))
                    .hint("write it as \"0.0.0.0:8080\" or \"[::]:8080\""));
                }
            }
        }
        for (i, host) in self.hosts.iter().enumerate() {
            validate_host(host)
                .map_err(|e| e.report().map_message(|m| format!("hosts[{i}]: {m}")))?;
        }
        normalize_prefix(self.path_prefix.as_deref())
            .map_err(|e| e.report().map_message(|m| format!("path_prefix: {m}")))?;
        if !self.health.path.starts_with('/') {
            return Err(Report::new(format!(
                "health.path: {:?} does not start with '/'",
                self.health.path
            ))
            .hint("write the probe's path as an absolute path, e.g. \"/up\""));
        }
        if self.health.interval.is_zero() || self.health.timeout.is_zero() {
            return Err(Report::new(
                "health: interval and timeout must be longer than zero",
            ));
        }
        if let Some(tls) = &self.tls {
            tls.validate(&self.hosts)?;
        }
        Ok(())
    }
}

fn check_host_port(target: &str) -> Result<(), &'static str> {
    let (host, port) = target.rsplit_once(':').ok_or("expected host:port")?;
    let port: u16 = port
        .parse()
        .map_err(|_| "the port is not a number from 1 to 65535")?;
    if port == 0 {
        return Err("the port is not a number from 1 to 65535");
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or("unclosed '[' in an IPv6 address")?;
        inner
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| "invalid IPv6 address")?;
        return Ok(());
    }
    if host.is_empty() {
        return Err("the host is empty");
    }
    if host.contains(':') {
        return Err("an IPv6 address must be written in brackets, e.g. [::1]:8080");
    }
    let valid_name = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !valid_name {
        return Err("the host is neither an IP address nor a host name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request body as the control API reads it: parsed, then validated.
    fn deploy(json: &str) -> Result<DeployRequest, Report> {
        let req: DeployRequest = crate::wire::read_json(json.as_bytes())?;
        req.validate()?;
        Ok(req)
    }

    #[test]
    fn accepts_a_minimal_request() {
        let req = deploy(r#"{"targets":["127.0.0.1:8080","app-green:80","[::1]:9000"]}"#).unwrap();
        assert_eq!(req.targets.len(), 3);
    }

    #[test]
    fn unknown_field_is_named() {
        let err = deploy(r#"{"targets":["127.0.0.1:8080"],"helth":{}}"#).unwrap_err();
        assert!(err.message.starts_with("helth: unknown field"), "{err:?}");
        assert_eq!(err.detail.as_deref(), Some("line 1, column 37"));
    }

    #[test]
    fn nested_type_error_has_a_path() {
        let err = deploy(r#"{"targets":["127.0.0.1:8080"],"health":{"interval":5}}"#).unwrap_err();
        assert!(err.message.starts_with("health.interval: "), "{err:?}");
        let err = deploy(r#"{"targets":[1]}"#).unwrap_err();
        assert!(
            err.message.starts_with("targets[0]: invalid type"),
            "{err:?}"
        );
    }

    #[test]
    fn bad_targets_are_named_by_index() {
        for bad in [
            "nope",
            "1.2.3.4:0",
            "1.2.3.4:99999",
            ":80",
            "::1:80",
            "a b:80",
            "[::1:80",
        ] {
            let err = deploy(&format!(r#"{{"targets":["127.0.0.1:8080",{bad:?}]}}"#)).unwrap_err();
            assert!(
                err.message
                    .starts_with("targets[1]: invalid socket address"),
                "{bad}: {err:?}"
            );
        }
        assert!(deploy(r#"{"targets":[]}"#)
            .unwrap_err()
            .message
            .starts_with("targets:"));
        let err = deploy(r#"{"targets":["a:1"],"hosts":["ok.test","a b"]}"#).unwrap_err();
        assert!(
            err.message.starts_with("hosts[1]: invalid host pattern"),
            "{err:?}"
        );
    }

    #[test]
    fn syntax_errors_point_at_the_body() {
        let err = deploy("{\"targets\": [\n").unwrap_err();
        assert!(err.message.contains("EOF"), "{err:?}");
        assert_eq!(err.detail.as_deref(), Some("line 2, column 0"));
        let err = deploy(r#"{"targets":["127.0.0.1:1"]} x"#).unwrap_err();
        assert!(err.message.contains("trailing"), "{err:?}");
    }

    #[test]
    fn service_names_have_one_rule() {
        for ok in ["web", "athens-backend", "a.b_c", "9lives", "athens/backend"] {
            validate_service_name(ok).unwrap();
        }
        for bad in [
            "",
            "-web",
            "a/b/c",
            "/web",
            "web/",
            "has space",
            &"x".repeat(64),
        ] {
            validate_service_name(bad).unwrap_err();
        }
    }
}
