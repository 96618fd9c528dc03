//! The one shape of everything cutover tells a user went wrong: what
//! happened, the facts behind it, and what to do (docs/style.md).
//!
//! Errors keep these apart from where they arise to where they are shown:
//! the CLI renders them, the control API encodes them as `error`, `detail`
//! and `hint`, and the progress stream carries them in their own fields. No
//! text ever has to be cut apart again to find its hint.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// One line: what happened, where (the file, field or resource).
    pub message: String,
    /// Supporting facts: each failing target, a position in a request body,
    /// what else a deploy had done. May span lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What the user can do about it, as a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Report {
    pub fn new(message: impl Into<String>) -> Report {
        Report {
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Report {
        self.hint = Some(hint.into());
        self
    }

    pub fn opt_hint(mut self, hint: Option<impl Into<String>>) -> Report {
        self.hint = hint.map(Into::into);
        self
    }

    /// Adds a fact below what is already there.
    pub fn detail(mut self, detail: impl Into<String>) -> Report {
        let detail = detail.into();
        self.detail = Some(match self.detail.take() {
            Some(d) => format!("{d}\n{detail}"),
            None => detail,
        });
        self
    }

    /// The same report with `message` rewritten, e.g. to say what was being
    /// done: `report.map_message(|m| format!("deploying backend: {m}"))`.
    pub fn map_message(mut self, f: impl FnOnce(String) -> String) -> Report {
        self.message = f(self.message);
        self
    }
}

/// An error that can reach a user: its message is its `Display`, and it says
/// what the user can do about it.
pub trait Diagnose: fmt::Display {
    fn hint(&self) -> Option<String> {
        None
    }

    fn detail(&self) -> Option<String> {
        None
    }

    fn report(&self) -> Report {
        Report {
            message: self.to_string(),
            detail: self.detail(),
            hint: self.hint(),
        }
    }
}

impl From<String> for Report {
    fn from(message: String) -> Report {
        Report::new(message)
    }
}

impl From<&str> for Report {
    fn from(message: &str) -> Report {
        Report::new(message)
    }
}

/// The message, its detail indented below it, then `hint: ...`: how the CLI
/// prints an error after its `error: ` prefix, and how a log line shows one.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(detail) = &self.detail {
            for line in detail.lines() {
                write!(f, "\n  {line}")?;
            }
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

/// `1 container`, `6 containers`: a count and its noun, as messages say it
/// (docs/style.md: no `container(s)`).
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_names_its_noun_once_or_in_the_plural() {
        assert_eq!(count(1, "volume"), "1 volume");
        assert_eq!(count(0, "volume"), "0 volumes");
        assert_eq!(count(6, "container"), "6 containers");
    }

    #[test]
    fn renders_message_detail_and_hint_in_that_order() {
        let r = Report::new("backend did not become healthy within 60s")
            .detail("10.0.3.7:8080: GET /up returned 500")
            .detail("10.0.3.8:8080: connection refused")
            .hint("the old version is still serving");
        assert_eq!(
            r.to_string(),
            "backend did not become healthy within 60s\n  10.0.3.7:8080: GET /up returned 500\n  10.0.3.8:8080: connection refused\nhint: the old version is still serving"
        );
    }

    #[test]
    fn encodes_without_empty_fields() {
        let json = serde_json::to_value(Report::new("x")).unwrap();
        assert_eq!(json, serde_json::json!({"message": "x"}));
    }
}
