//! How the control API reads request bodies and writes errors: one reader
//! and one error shape for every route, the proxy's and the deploy
//! engine's alike (docs/api.md, "Errors").

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::diag::Report;

/// The body of every error answer: `error` is one line saying what
/// happened, `detail` what the caller may show verbatim (the failing
/// targets of a deploy, a position in the body), `hint` what to do. Empty
/// fields are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl From<Report> for ErrorBody {
    fn from(r: Report) -> ErrorBody {
        ErrorBody {
            error: r.message,
            detail: r.detail,
            hint: r.hint,
        }
    }
}

impl From<ErrorBody> for Report {
    fn from(b: ErrorBody) -> Report {
        Report {
            message: b.error,
            detail: b.detail,
            hint: b.hint,
        }
    }
}

/// Parses one JSON value and nothing after it. A failure names the path of
/// the offending field (`targets[0]`, `health.interval`) in its message and
/// puts the line and column in `detail`.
pub fn read_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Report> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = strip_location(&inner.to_string(), inner.line(), inner.column());
        // Where the reader was, even for a syntax error (`targets: EOF
        // while parsing a list` says more than the body as a whole); `?`
        // is serde_path_to_error for "before any key".
        let at = if matches!(path.as_str(), "" | "." | "?") {
            "request body".to_string()
        } else {
            path
        };
        Report::new(format!("{at}: {message}"))
            .detail(format!("line {}, column {}", inner.line(), inner.column()))
            .hint("see docs/api.md for the request body of this call")
    })?;
    de.end().map_err(|e| {
        Report::new("request body: trailing characters after the JSON value")
            .detail(format!("line {}, column {}", e.line(), e.column()))
            .hint("send one JSON value as the body")
    })?;
    Ok(value)
}

/// serde_json appends " at line L column C" to its messages; the position
/// goes to `detail` instead.
fn strip_location(message: &str, line: usize, column: usize) -> String {
    let suffix = format!(" at line {line} column {column}");
    message.strip_suffix(&suffix).unwrap_or(message).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        volumes: bool,
    }

    #[test]
    fn trailing_data_is_refused() {
        let err = read_json::<Body>(br#"{"volumes":true} junk"#).unwrap_err();
        assert!(err.message.contains("trailing"), "{err:?}");
        assert_eq!(err.detail.as_deref(), Some("line 1, column 18"));
        read_json::<Body>(b"{\"volumes\":true}\n").unwrap();
    }

    #[test]
    fn a_wrong_field_is_named() {
        let err = read_json::<Body>(br#"{"volumes":1}"#).unwrap_err();
        assert!(err.message.starts_with("volumes: invalid type"), "{err:?}");
        let err = read_json::<Body>(b"{").unwrap_err();
        assert!(err.message.starts_with("request body: "), "{err:?}");
    }

    #[test]
    fn errors_encode_without_empty_fields() {
        let body = ErrorBody::from(Report::new("no service named \"x\""));
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"no service named \"x\""}"#
        );
    }
}
