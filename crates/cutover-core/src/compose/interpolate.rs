//! `${VAR}` interpolation with the Compose spec's operators.
//!
//! Compose interpolates scalar values after YAML parsing, never keys, so this
//! works on single strings; the caller walks the document and knows the path.

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateError {
    /// `${VAR:?message}` or `${VAR?message}` with VAR missing (or empty for `:?`).
    Required { var: String, message: String },
    /// Not a valid template, e.g. `${}` or a lone `$`.
    Invalid { reason: String },
}

/// Variables a string referenced that had no value and no default; Compose
/// warns about these and substitutes an empty string.
pub type Unset = BTreeSet<String>;

/// Interpolates `s`, looking variables up with `lookup`, by compose-go's
/// rules: `$$` is one `$`; a `$` that starts no name and no `${` stays as
/// written (`^REGEX$`); a `${` that is not a well-formed substitution is an
/// error.
pub fn interpolate(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Unset,
) -> Result<String, InterpolateError> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let Some(off) = s[i..].find('$') else {
            out.push_str(&s[i..]);
            break;
        };
        out.push_str(&s[i..i + off]);
        i += off;
        // b[i] == '$'
        match b.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let (body, next) =
                    braced_extent(s, i).ok_or_else(|| InterpolateError::Invalid {
                        reason: format!(
                            "\"${{\" is not followed by a variable name and \"}}\" in {s:?}"
                        ),
                    })?;
                out.push_str(&braced(body, lookup, unset)?);
                i = next;
            }
            Some(c) if is_name_start(*c) => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && is_name_char(b[j]) {
                    j += 1;
                }
                let name = &s[start..j];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        unset.insert(name.to_string());
                    }
                }
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

fn is_name_start(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

const OPERATORS: [&str; 6] = [":-", ":?", ":+", "-", "?", "+"];

/// The body of the `${...}` at `dollar`, and where the text after it
/// starts. Compose matches `${name}`, or `${name<op>` up to the last `}` on
/// the line, then cuts that at the first `}` that balances the `{`s
/// before it, so a default may hold braces (`${JSON:-{"a":1}}`).
fn braced_extent(s: &str, dollar: usize) -> Option<(&str, usize)> {
    let b = s.as_bytes();
    let name_start = dollar + 2;
    if !b.get(name_start).is_some_and(|c| is_name_start(*c)) {
        return None;
    }
    let mut j = name_start;
    while j < b.len() && is_name_char(b[j]) {
        j += 1;
    }
    let end = if b.get(j) == Some(&b'}') {
        j
    } else {
        let op = OPERATORS.iter().find(|op| s[j..].starts_with(**op))?;
        let line_end = s[j..].find('\n').map_or(s.len(), |n| j + n);
        j + op.len() + s[j + op.len()..line_end].rfind('}')?
    };
    let matched = &s[dollar..=end];
    Some(match first_balanced_close(matched) {
        Some(close) => (&matched[2..close], dollar + close + 1),
        None => (&matched[2..matched.len() - 1], end + 1),
    })
}

/// compose-go's `getFirstBraceClosingIndex`, quirk included: the character
/// after each `{` is skipped.
fn first_balanced_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0i32;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'}' {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
        if b[i] == b'{' {
            depth += 1;
            i += 1;
        }
        i += 1;
    }
    None
}

/// The body of `${...}`: a name, optionally followed by an operator and a word
/// that is itself interpolated (only when it is used).
fn braced(
    body: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Unset,
) -> Result<String, InterpolateError> {
    let b = body.as_bytes();
    let mut j = 0;
    while j < b.len() && is_name_char(b[j]) {
        j += 1;
    }
    let name = &body[..j];
    let rest = &body[j..];
    let value = lookup(name);
    let (op, word) = if rest.is_empty() {
        ("", "")
    } else {
        // Two-character operators first, so ":-" is not read as ":" + "-".
        match OPERATORS.iter().find(|op| rest.starts_with(**op)) {
            Some(op) => (*op, &rest[op.len()..]),
            None => {
                return Err(InterpolateError::Invalid {
                    reason: format!(
                        "unexpected {rest:?} after the variable name in \"${{{body}}}\""
                    ),
                })
            }
        }
    };
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    match op {
        "" => match value {
            Some(v) => Ok(v),
            None => {
                unset.insert(name.to_string());
                Ok(String::new())
            }
        },
        ":-" if non_empty => Ok(value.unwrap_or_default()),
        "-" if set => Ok(value.unwrap_or_default()),
        ":-" | "-" => interpolate(word, lookup, unset),
        ":+" if non_empty => interpolate(word, lookup, unset),
        "+" if set => interpolate(word, lookup, unset),
        ":+" | "+" => Ok(String::new()),
        ":?" if non_empty => Ok(value.unwrap_or_default()),
        "?" if set => Ok(value.unwrap_or_default()),
        _ => Err(InterpolateError::Required {
            var: name.to_string(),
            message: interpolate(word, lookup, unset)?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(s: &str) -> Result<String, InterpolateError> {
        let env: BTreeMap<&str, &str> = [("A", "a"), ("EMPTY", ""), ("IMG", "app:42")]
            .into_iter()
            .collect();
        let lookup = |k: &str| env.get(k).map(|v| v.to_string());
        interpolate(s, &lookup, &mut Unset::new())
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(run("x${A}y$A-z").unwrap(), "xay".to_string() + "a-z");
        assert_eq!(run("${IMG}").unwrap(), "app:42");
        assert_eq!(run("no vars").unwrap(), "no vars");
    }

    #[test]
    fn dollar_escape() {
        assert_eq!(run("$$A $${A}").unwrap(), "$A ${A}");
    }

    #[test]
    fn defaults() {
        assert_eq!(run("${MISSING:-d}").unwrap(), "d");
        assert_eq!(run("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(run("${MISSING-d}").unwrap(), "d");
        assert_eq!(run("${EMPTY-d}").unwrap(), "");
        assert_eq!(run("${A:-d}").unwrap(), "a");
    }

    #[test]
    fn nested_defaults() {
        assert_eq!(run("${MISSING:-${ALSO:-${A}}}").unwrap(), "a");
        assert_eq!(run("${MISSING:-x${A}y}").unwrap(), "xay");
        assert_eq!(run("${MISSING:-$$}").unwrap(), "$");
    }

    #[test]
    fn alternatives() {
        assert_eq!(run("${A:+alt}").unwrap(), "alt");
        assert_eq!(run("${EMPTY:+alt}").unwrap(), "");
        assert_eq!(run("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(run("${MISSING+alt}").unwrap(), "");
    }

    #[test]
    fn required() {
        assert_eq!(run("${A:?need it}").unwrap(), "a");
        assert_eq!(run("${EMPTY?need it}").unwrap(), "");
        assert_eq!(
            run("${EMPTY:?need it}").unwrap_err(),
            InterpolateError::Required {
                var: "EMPTY".into(),
                message: "need it".into()
            }
        );
        assert_eq!(
            run("${MISSING?set ${A}}").unwrap_err(),
            InterpolateError::Required {
                var: "MISSING".into(),
                message: "set a".into()
            }
        );
    }

    #[test]
    fn unset_is_reported_and_empty() {
        let mut unset = Unset::new();
        let out = interpolate("[${NOPE}][$ALSO_NOPE]", &|_| None, &mut unset).unwrap();
        assert_eq!(out, "[][]");
        assert_eq!(unset.into_iter().collect::<Vec<_>>(), ["ALSO_NOPE", "NOPE"]);
    }

    #[test]
    fn a_dollar_that_starts_nothing_stays() {
        assert_eq!(run("cost: 5$").unwrap(), "cost: 5$");
        assert_eq!(run("^REGEX$ $} $-").unwrap(), "^REGEX$ $} $-");
    }

    #[test]
    fn braces_in_a_default_are_balanced() {
        assert_eq!(run(r#"${MISSING:-{"json":1}}"#).unwrap(), r#"{"json":1}"#);
        assert_eq!(run("${MISSING:-a}b}").unwrap(), "ab}");
    }

    #[test]
    fn invalid() {
        assert!(matches!(run("${}"), Err(InterpolateError::Invalid { .. })));
        assert!(matches!(run("${A"), Err(InterpolateError::Invalid { .. })));
        assert!(matches!(
            run("${A.b}"),
            Err(InterpolateError::Invalid { .. })
        ));
    }
}
