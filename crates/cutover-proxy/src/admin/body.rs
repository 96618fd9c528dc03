//! Reading and checking request bodies, with errors that name the field.

use cutover_core::service::DeployRequest;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Parses a JSON body; a failure names the path of the offending field
/// (`targets[0]`, `health.interval`) and puts the line and column in `detail`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = strip_location(&inner.to_string(), inner.line(), inner.column());
        let error = if path == "." {
            format!("request body: {message}")
        } else {
            format!("{path}: {message}")
        };
        ApiError::bad_request(error)
            .with_detail(format!("line {}, column {}", inner.line(), inner.column()))
            .with_hint("see docs/api.md for the request body of this call")
    })?;
    de.end().map_err(|e| {
        ApiError::bad_request("request body: trailing characters after the JSON value")
            .with_detail(format!("line {}, column {}", e.line(), e.column()))
    })?;
    Ok(value)
}

/// serde_json appends " at line L column C" to its messages; the location
/// goes to `detail` instead, so the message reads like the style guide asks.
fn strip_location(message: &str, line: usize, column: usize) -> String {
    let suffix = format!(" at line {line} column {column}");
    message.strip_suffix(&suffix).unwrap_or(message).to_string()
}

/// Service names end up in metrics labels, logs and later in container names,
/// so they are restricted to what all of those accept.
pub fn validate_service_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("invalid service name {name:?}")).with_hint(
            "use 1 to 63 characters: letters, digits, '-', '_' and '.', starting with a letter or digit",
        ))
    }
}

/// Checks what serde cannot: every target is a `host:port`.
pub fn validate_deploy(req: &DeployRequest) -> Result<(), ApiError> {
    if req.targets.is_empty() {
        return Err(
            ApiError::bad_request("targets: at least one target is required")
                .with_hint("list the new targets as \"host:port\", e.g. [\"10.0.3.7:8080\"]"),
        );
    }
    for (i, target) in req.targets.iter().enumerate() {
        if let Err(why) = check_host_port(target) {
            return Err(ApiError::bad_request(format!(
                "targets[{i}]: invalid socket address {target:?}: {why}"
            ))
            .with_hint(
                "write each target as \"host:port\", e.g. \"10.0.3.7:8080\" or \"[::1]:8080\"",
            ));
        }
    }
    if let Some(prefix) = &req.path_prefix {
        if !prefix.starts_with('/') {
            return Err(ApiError::bad_request(format!(
                "path_prefix: {prefix:?} does not start with '/'"
            ))
            .with_hint("write the prefix as an absolute path, e.g. \"/api\""));
        }
    }
    for (i, host) in req.hosts.iter().enumerate() {
        if host.is_empty() || host.contains(['/', ' ', ':']) {
            return Err(ApiError::bad_request(format!("hosts[{i}]: invalid host name {host:?}"))
                .with_hint("write a host name without scheme or port, e.g. \"example.com\" or \"*.example.com\""));
        }
    }
    if !req.health.path.starts_with('/') {
        return Err(ApiError::bad_request(format!(
            "health.path: {:?} does not start with '/'",
            req.health.path
        )));
    }
    Ok(())
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

    fn deploy(json: &str) -> Result<DeployRequest, ApiError> {
        let req: DeployRequest = parse_json(json.as_bytes())?;
        validate_deploy(&req)?;
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
        assert!(err.error.contains("helth"), "{err:?}");
        assert!(err.error.starts_with("helth: unknown field"), "{err:?}");
        assert_eq!(err.detail.as_deref(), Some("line 1, column 37"));
    }

    #[test]
    fn nested_type_error_has_a_path() {
        let err = deploy(r#"{"targets":["127.0.0.1:8080"],"health":{"interval":5}}"#).unwrap_err();
        assert!(err.error.starts_with("health.interval: "), "{err:?}");
        let err = deploy(r#"{"targets":[1]}"#).unwrap_err();
        assert!(err.error.starts_with("targets[0]: invalid type"), "{err:?}");
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
                err.error.starts_with("targets[1]: invalid socket address"),
                "{bad}: {err:?}"
            );
        }
        assert!(deploy(r#"{"targets":[]}"#)
            .unwrap_err()
            .error
            .starts_with("targets:"));
    }

    #[test]
    fn syntax_errors_point_at_the_body() {
        let err = deploy("{\"targets\": [\n").unwrap_err();
        assert!(err.error.contains("EOF"), "{err:?}");
        assert_eq!(err.detail.as_deref(), Some("line 2, column 0"));
        let err = deploy(r#"{"targets":["127.0.0.1:1"]} x"#).unwrap_err();
        assert!(err.error.contains("trailing"), "{err:?}");
    }

    #[test]
    fn service_names() {
        for ok in ["web", "athens-backend", "a.b_c", "9lives"] {
            validate_service_name(ok).unwrap();
        }
        for bad in ["", "-web", "a/b", "has space", &"x".repeat(64)] {
            validate_service_name(bad).unwrap_err();
        }
    }
}
