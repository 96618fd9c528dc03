//! Route table: which service serves a host and path.
//!
//! Kept pure (no IO, no locking) so the proxy can rebuild one per deploy and
//! publish it as an immutable snapshot; a lookup is then a few hash probes and
//! prefix compares with no allocation when the host is already lowercase.
//!
//! Precedence, like nginx `server_name` followed by the longest `location`:
//! an exact host beats a `*.example.com` wildcard, which beats the catch-all
//! (a service with no hosts). Within the winning host tier the longest
//! matching path prefix wins; if no prefix in that tier matches the path, the
//! next tier is tried, so a catch-all still answers paths an exact host does
//! not claim.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::diag::Diagnose;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("host {host:?} with path prefix {prefix:?} is already routed to another service")]
    Duplicate { host: String, prefix: String },
    #[error("invalid host pattern {0:?}")]
    InvalidHost(String),
    #[error("invalid path prefix {0:?}")]
    InvalidPrefix(String),
}

impl Diagnose for RouteError {
    fn hint(&self) -> Option<String> {
        Some(
            match self {
                RouteError::Duplicate { .. } => {
                    "give the services different hosts or path prefixes"
                }
                RouteError::InvalidHost(_) => {
                    "use an exact name (app.example.com) or a leading wildcard (*.example.com)"
                }
                RouteError::InvalidPrefix(_) => "a path prefix starts with '/'",
            }
            .into(),
        )
    }
}

#[derive(Debug, Clone)]
struct Entry<T> {
    /// Normalized: starts with '/', no trailing '/', or empty for "everything".
    prefix: String,
    value: T,
}

/// Hosts and path prefixes mapped to values (the proxy stores its route
/// handles here).
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    exact: HashMap<String, Vec<Entry<T>>>,
    /// Keyed by the suffix after `*.`, e.g. `example.com`.
    wildcard: HashMap<String, Vec<Entry<T>>>,
    catch_all: Vec<Entry<T>>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        RouteTable {
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            catch_all: Vec::new(),
        }
    }
}

/// Whether a route with these settings is on the main listener: a route
/// with only its own `listen` addresses (and no hosts or prefix) is served
/// there alone and claims nothing in the table.
pub fn on_main_listener(hosts: &[String], prefix: Option<&str>, listen: &[String]) -> bool {
    listen.is_empty() || !hosts.is_empty() || prefix.is_some()
}

/// Checks a host pattern as a deploy request gives it.
pub fn validate_host(pattern: &str) -> Result<(), RouteError> {
    let bare = pattern.strip_prefix("*.").unwrap_or(pattern);
    let ok = !bare.is_empty()
        && !bare.contains('*')
        && !bare.contains('/')
        && !bare.contains(':')
        && !bare.starts_with('.')
        && !bare.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(RouteError::InvalidHost(pattern.to_string()))
    }
}

/// `/api/` and `/api` are the same prefix; `/` and none both mean everything.
pub fn normalize_prefix(prefix: Option<&str>) -> Result<String, RouteError> {
    let Some(p) = prefix else {
        return Ok(String::new());
    };
    if p.is_empty() {
        return Ok(String::new());
    }
    if !p.starts_with('/') || p.contains(char::is_whitespace) || p.contains('?') {
        return Err(RouteError::InvalidPrefix(p.to_string()));
    }
    Ok(p.trim_end_matches('/').to_string())
}

/// Host header value to the name routes are keyed by: port stripped, trailing
/// dot removed, lowercase. Borrows when nothing needs changing (the usual case).
pub fn normalize_host(raw: &str) -> Cow<'_, str> {
    let no_port = if let Some(rest) = raw.strip_prefix('[') {
        // IPv6 literal: keep the brackets, drop a port after them.
        match rest.find(']') {
            Some(end) => &raw[..end + 2],
            None => raw,
        }
    } else {
        match raw.rfind(':') {
            Some(i) if raw[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &raw[..i],
            _ => raw,
        }
    };
    let trimmed = no_port.strip_suffix('.').unwrap_or(no_port);
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'),
        None => false,
    }
}

fn best<'a, T>(entries: &'a [Entry<T>], path: &str) -> Option<&'a T> {
    // Entries are kept sorted longest prefix first.
    entries
        .iter()
        .find(|e| prefix_matches(&e.prefix, path))
        .map(|e| &e.value)
}

fn insert_sorted<T>(
    list: &mut Vec<Entry<T>>,
    entry: Entry<T>,
    host: &str,
) -> Result<(), RouteError> {
    if list.iter().any(|e| e.prefix == entry.prefix) {
        return Err(RouteError::Duplicate {
            host: host.to_string(),
            prefix: if entry.prefix.is_empty() {
                "/".into()
            } else {
                entry.prefix
            },
        });
    }
    let at = list
        .iter()
        .position(|e| e.prefix.len() < entry.prefix.len())
        .unwrap_or(list.len());
    list.insert(at, entry);
    Ok(())
}

impl<T: Clone> RouteTable<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `hosts` (none = catch-all) under `prefix` to `value`. Fails on an
    /// invalid pattern or when the same host and prefix are already routed.
    pub fn insert(
        &mut self,
        hosts: &[String],
        prefix: Option<&str>,
        value: T,
    ) -> Result<(), RouteError> {
        let prefix = normalize_prefix(prefix)?;
        if hosts.is_empty() {
            return insert_sorted(&mut self.catch_all, Entry { prefix, value }, "*");
        }
        for h in hosts {
            validate_host(h)?;
            let lower = h.to_ascii_lowercase();
            let lower = lower.strip_suffix('.').unwrap_or(&lower).to_string();
            let entry = Entry {
                prefix: prefix.clone(),
                value: value.clone(),
            };
            match lower.strip_prefix("*.") {
                Some(suffix) => insert_sorted(
                    self.wildcard.entry(suffix.to_string()).or_default(),
                    entry,
                    h,
                )?,
                None => insert_sorted(self.exact.entry(lower.clone()).or_default(), entry, h)?,
            }
        }
        Ok(())
    }
}

impl<T> RouteTable<T> {
    /// The value routed for a request. `host` is the raw Host header (or
    /// HTTP/2 authority); `path` is the request path.
    pub fn lookup(&self, host: Option<&str>, path: &str) -> Option<&T> {
        if let Some(raw) = host {
            let host = normalize_host(raw);
            let host: &str = &host;
            if let Some(v) = self.exact.get(host).and_then(|l| best(l, path)) {
                return Some(v);
            }
            if !self.wildcard.is_empty() {
                // Most specific suffix first: for a.b.example.com try
                // b.example.com, then example.com, then com.
                let mut rest = host;
                while let Some(dot) = rest.find('.') {
                    rest = &rest[dot + 1..];
                    if let Some(v) = self.wildcard.get(rest).and_then(|l| best(l, path)) {
                        return Some(v);
                    }
                }
            }
        }
        best(&self.catch_all, path)
    }

    /// The value that holds exactly `host` (a pattern as inserted; `None`
    /// for the catch-all) under `prefix`, as `insert` would find it taken.
    pub fn holder(&self, host: Option<&str>, prefix: Option<&str>) -> Option<&T> {
        let prefix = normalize_prefix(prefix).ok()?;
        let list = match host.map(|h| h.to_ascii_lowercase()) {
            None => &self.catch_all,
            Some(h) => {
                let h = h.strip_suffix('.').unwrap_or(&h);
                match h.strip_prefix("*.") {
                    Some(suffix) => self.wildcard.get(suffix)?,
                    None => self.exact.get(h)?,
                }
            }
        };
        list.iter().find(|e| e.prefix == prefix).map(|e| &e.value)
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.catch_all.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &[(&[&str], Option<&str>, &'static str)]) -> RouteTable<&'static str> {
        let mut t = RouteTable::new();
        for (hosts, prefix, name) in routes {
            let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
            t.insert(&hosts, *prefix, *name).unwrap();
        }
        t
    }

    #[test]
    fn exact_beats_wildcard_beats_catch_all() {
        let t = table(&[
            (&[], None, "default"),
            (&["*.example.com"], None, "wild"),
            (&["app.example.com"], None, "app"),
        ]);
        assert_eq!(t.lookup(Some("app.example.com"), "/"), Some(&"app"));
        assert_eq!(t.lookup(Some("other.example.com"), "/"), Some(&"wild"));
        assert_eq!(
            t.lookup(Some("deep.other.example.com"), "/x"),
            Some(&"wild")
        );
        assert_eq!(t.lookup(Some("example.org"), "/"), Some(&"default"));
        assert_eq!(t.lookup(None, "/"), Some(&"default"));
    }

    #[test]
    fn wildcard_does_not_match_the_bare_domain() {
        let t = table(&[(&["*.example.com"], None, "wild")]);
        assert_eq!(t.lookup(Some("example.com"), "/"), None);
    }

    #[test]
    fn more_specific_wildcard_wins() {
        let t = table(&[
            (&["*.example.com"], None, "outer"),
            (&["*.eu.example.com"], None, "eu"),
        ]);
        assert_eq!(t.lookup(Some("a.eu.example.com"), "/"), Some(&"eu"));
        assert_eq!(t.lookup(Some("a.us.example.com"), "/"), Some(&"outer"));
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table(&[
            (&["h"], None, "root"),
            (&["h"], Some("/api"), "api"),
            (&["h"], Some("/api/v2/"), "v2"),
        ]);
        assert_eq!(t.lookup(Some("h"), "/"), Some(&"root"));
        assert_eq!(t.lookup(Some("h"), "/api"), Some(&"api"));
        assert_eq!(t.lookup(Some("h"), "/api/users"), Some(&"api"));
        assert_eq!(t.lookup(Some("h"), "/api/v2"), Some(&"v2"));
        assert_eq!(t.lookup(Some("h"), "/api/v2/x"), Some(&"v2"));
        // A prefix matches whole segments only.
        assert_eq!(t.lookup(Some("h"), "/apiary"), Some(&"root"));
    }

    #[test]
    fn unmatched_prefix_falls_back_to_next_tier() {
        let t = table(&[(&["h"], Some("/api"), "api"), (&[], None, "default")]);
        assert_eq!(t.lookup(Some("h"), "/api/x"), Some(&"api"));
        assert_eq!(t.lookup(Some("h"), "/other"), Some(&"default"));
    }

    #[test]
    fn host_port_stripped_and_case_insensitive() {
        let t = table(&[(&["App.Example.com"], None, "app")]);
        assert_eq!(t.lookup(Some("app.example.com:8080"), "/"), Some(&"app"));
        assert_eq!(t.lookup(Some("APP.EXAMPLE.COM"), "/"), Some(&"app"));
        assert_eq!(t.lookup(Some("app.example.com."), "/"), Some(&"app"));
        assert_eq!(t.lookup(Some("nope.example.com"), "/"), None);
    }

    #[test]
    fn ipv6_host_port_stripped() {
        assert_eq!(normalize_host("[::1]:8080"), "[::1]");
        assert_eq!(normalize_host("[::1]"), "[::1]");
        assert_eq!(normalize_host("127.0.0.1:80"), "127.0.0.1");
        assert!(matches!(normalize_host("already.lower"), Cow::Borrowed(_)));
    }

    #[test]
    fn unknown_host_without_catch_all_is_none() {
        let t = table(&[(&["a.test"], None, "a")]);
        assert_eq!(t.lookup(Some("b.test"), "/"), None);
        assert_eq!(t.lookup(None, "/"), None);
    }

    #[test]
    fn duplicate_route_rejected() {
        let mut t = table(&[(&["a.test"], Some("/x"), "a")]);
        let err = t
            .insert(&["A.test".to_string()], Some("/x/"), "b")
            .unwrap_err();
        assert!(matches!(err, RouteError::Duplicate { .. }), "{err}");
        let mut t = table(&[(&[], None, "a")]);
        assert!(t.insert(&[], Some("/"), "b").is_err());
    }

    #[test]
    fn the_holder_of_a_host_and_prefix_is_found_as_written() {
        let t = table(&[
            (&["a.test"], Some("/x"), "a"),
            (&["*.example.com"], None, "wild"),
            (&[], Some("/api"), "any"),
        ]);
        assert_eq!(t.holder(Some("A.test."), Some("/x/")), Some(&"a"));
        assert_eq!(t.holder(Some("a.test"), None), None);
        assert_eq!(t.holder(Some("*.Example.com"), Some("/")), Some(&"wild"));
        // A name the wildcard serves is not the wildcard's claim.
        assert_eq!(t.holder(Some("b.example.com"), None), None);
        assert_eq!(t.holder(None, Some("/api")), Some(&"any"));
        assert_eq!(t.holder(None, None), None);
    }

    #[test]
    fn invalid_patterns_rejected() {
        let mut t: RouteTable<u8> = RouteTable::new();
        assert!(t.insert(&["a.*.com".into()], None, 1).is_err());
        assert!(t.insert(&["host:80".into()], None, 1).is_err());
        assert!(t.insert(&["".into()], None, 1).is_err());
        assert!(t.insert(&["ok.test".into()], Some("api"), 1).is_err());
        assert!(t.is_empty());
    }
}
