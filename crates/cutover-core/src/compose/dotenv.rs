//! `.env` and `env_file:` contents, read as Docker Compose v2 reads them
//! (compose-go's `dotenv` package), so a file means the same to both.
//!
//! Hand-written rather than taken from a dotenv crate: the crates on
//! crates.io follow the shell or the Ruby gem, and differ from Compose in the
//! cases real files hit (`${VAR:-default}`, `$$`, inline comments, `export`,
//! a key with no value, keys with dots or dashes). The rules, in order:
//!
//! - A UTF-8 BOM at the start is skipped; blank lines and lines starting
//!   with `#` are ignored.
//! - `export ` before a key is ignored.
//! - A key is letters, digits, `_`, `.`, `-`, `[` and `]`, ended by `=` or
//!   `:`. A key alone on its line takes its value from the environment, and
//!   is left out when the environment has none.
//! - Unquoted values run to the end of the line; ` #` starts a comment;
//!   trailing whitespace is dropped; variables are interpolated.
//! - `'single'` values are literal but for `\'`. `"double"` values may span
//!   lines, take `\n`, `\t`, `\"`, `\\`, `\$` and the other C escapes, then
//!   are interpolated. Text after the closing quote up to a `#` is read as
//!   the next entry, as Compose does.
//! - Interpolation looks a name up in the caller's environment first, then
//!   in the keys read so far.

use std::collections::BTreeMap;

use super::interpolate::{interpolate, InterpolateError, Unset};

/// A line the parser could not read. `line` and `column` are 1-based; the
/// column counts characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Parses `src` into `vars`, later keys replacing earlier ones. `vars` may
/// hold values already (a service's `environment:` under its `env_file:`);
/// they are visible to interpolation like the file's own keys.
pub fn parse_dotenv(
    src: &str,
    vars: &mut BTreeMap<String, String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Unset,
) -> Result<(), DotenvError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let mut p = Parser { src, at: 0 };
    while p.skip_to_statement() {
        let (key, key_at, inherited) = p.key()?;
        if inherited {
            if let Some(v) = lookup(&key) {
                vars.insert(key, v);
            }
            continue;
        }
        let value = p.value(key_at, vars, lookup, unset)?;
        vars.insert(key, value);
    }
    Ok(())
}

struct Parser<'a> {
    src: &'a str,
    /// Byte offset of the next unread character.
    at: usize,
}

/// Compose's "space": whitespace that does not end a line.
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']')
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.at..]
    }

    /// 1-based line and character column of byte offset `at`.
    fn position(&self, at: usize) -> (usize, usize) {
        let before = &self.src[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    fn error(&self, at: usize, message: String, hint: Option<&str>) -> DotenvError {
        let (line, column) = self.position(at);
        DotenvError {
            line,
            column,
            message,
            hint: hint.map(str::to_string),
        }
    }

    /// Skips whitespace and comment lines; false at the end of the input.
    fn skip_to_statement(&mut self) -> bool {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.at += rest.len() - trimmed.len();
            if trimmed.is_empty() {
                return false;
            }
            if !trimmed.starts_with('#') {
                return true;
            }
            match trimmed.find('\n') {
                Some(nl) => self.at += nl,
                None => {
                    self.at = self.src.len();
                    return false;
                }
            }
        }
    }

    /// The key, where it starts, and whether it stands alone on its line
    /// (inherited from the environment). Leaves `at` after the `=` or `:`
    /// and the spaces after it.
    fn key(&mut self) -> Result<(String, usize, bool), DotenvError> {
        if let Some(after) = self.rest().strip_prefix("export") {
            if after.starts_with(is_space) {
                self.at += "export".len();
                let rest = self.rest();
                self.at += rest.len() - rest.trim_start_matches(is_space).len();
            }
        }
        let start = self.at;
        let rest = self.rest();
        let mut end = None;
        for (i, c) in rest.char_indices() {
            match c {
                '=' | ':' | '\n' => {
                    end = Some((i, c));
                    break;
                }
                c if is_space(c) || is_key_char(c) => {}
                c => {
                    let line = rest.lines().next().unwrap_or_default();
                    return Err(self.error(
                        start + i,
                        format!("unexpected character {c:?} in variable name {line:?}"),
                        Some("a variable name is letters, digits, `_`, `.` and `-`; write KEY=value, quoting the value if it has spaces or #"),
                    ));
                }
            }
        }
        // The last line without a newline ends the key like a newline does.
        let (end, terminator) = end.unwrap_or((rest.len(), '\n'));
        let key = rest[..end].trim_end_matches(|c: char| c.is_whitespace());
        if key.contains(char::is_whitespace) {
            return Err(self.error(
                start,
                format!("variable name {key:?} contains a space"),
                Some("write KEY=value with no space in KEY"),
            ));
        }
        if key.is_empty() {
            return Err(self.error(
                start,
                format!("a line starts with {terminator:?} and has no variable name"),
                Some("write KEY=value"),
            ));
        }
        let key = key.to_string();
        self.at = (start + end + terminator.len_utf8()).min(self.src.len());
        if terminator != '\n' {
            let rest = self.rest();
            self.at += rest.len() - rest.trim_start_matches(is_space).len();
        }
        Ok((key, start, terminator == '\n'))
    }

    fn value(
        &mut self,
        key_at: usize,
        vars: &BTreeMap<String, String>,
        lookup: &dyn Fn(&str) -> Option<String>,
        unset: &mut Unset,
    ) -> Result<String, DotenvError> {
        let value_at = self.at;
        let expand = |s: &str, unset: &mut Unset, p: &Parser<'_>| {
            let lookup = |k: &str| lookup(k).or_else(|| vars.get(k).cloned());
            interpolate(s, &lookup, unset).map_err(|e| {
                let (message, hint) = match e {
                    InterpolateError::Required { var, message } => (
                        format!("required variable {var} is missing a value: {message}"),
                        None,
                    ),
                    InterpolateError::Invalid { reason } => (
                        reason,
                        Some("write $$ for a literal $, or single-quote the value"),
                    ),
                };
                p.error(value_at, message, hint)
            })
        };
        let rest = self.rest();
        let quote = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => {
                let line = rest.split('\n').next().unwrap_or_default();
                self.at += (line.len() + 1).min(rest.len());
                let value = line.split(" #").next().unwrap_or_default();
                return expand(value.trim_end(), unset, self);
            }
        };
        // Inside quotes a backslash keeps the next character; before the
        // quote character it stands for that character alone.
        let mut raw = String::new();
        let mut escaped = false;
        for (i, c) in rest.char_indices().skip(1) {
            if c == quote && !escaped {
                self.at += i + 1;
                return if quote == '"' {
                    expand(&unescape(&raw), unset, self)
                } else {
                    Ok(raw)
                };
            }
            if escaped {
                escaped = false;
                if c != quote {
                    raw.push('\\');
                }
                raw.push(c);
            } else if c == '\\' {
                escaped = true;
            } else {
                raw.push(c);
            }
        }
        Err(self.error(
            key_at,
            format!("the value opened with {quote} is never closed"),
            Some("close the quote; a double-quoted value may span lines"),
        ))
    }
}

/// The escapes of a double-quoted value: `\a \b \f \n \r \t \v \\ \"`, octal
/// `\0NNN`, and `\$`, which becomes `$$` so interpolation keeps one `$`.
/// Any other backslash stays as written.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&next) = chars.peek() else {
            out.push('\\');
            break;
        };
        let simple = match next {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(e) = simple {
            chars.next();
            out.push(e);
        } else if next == '$' {
            chars.next();
            out.push_str("$$");
        } else if next == '0' {
            chars.next();
            let mut digits = String::new();
            while digits.len() < 3 && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                digits.push(chars.next().unwrap_or('0'));
            }
            // Like Go's UnquoteChar, which Compose calls: three octal
            // digits make a byte below 256; anything else stays as written.
            match (digits.len() == 3)
                .then(|| u32::from_str_radix(&digits, 8).ok())
                .flatten()
                .filter(|n| *n < 256)
            {
                Some(n) => out.push(char::from_u32(n).unwrap_or('\u{fffd}')),
                None => {
                    out.push_str("\\0");
                    out.push_str(&digits);
                }
            }
        } else {
            out.push('\\');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<BTreeMap<String, String>, DotenvError> {
        let env = |k: &str| (k == "FROM_ENV").then(|| "env".to_string());
        let mut vars = BTreeMap::new();
        parse_dotenv(src, &mut vars, &env, &mut Unset::new()).map(|()| vars)
    }

    fn one(src: &str) -> String {
        let vars = parse(src).unwrap();
        assert_eq!(vars.len(), 1, "{vars:?}");
        vars.into_values().next().unwrap()
    }

    #[test]
    fn unquoted_values_and_comments() {
        assert_eq!(one("A=b c  \n"), "b c");
        assert_eq!(one("A=bar#baz"), "bar#baz");
        assert_eq!(one("A=bar #baz"), "bar");
        assert_eq!(one("# comment\n\n  A = b\n"), "b");
        assert_eq!(one("A: yaml"), "yaml");
        assert_eq!(one("export A=b"), "b");
        assert_eq!(one("\u{feff}A=b"), "b");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(one(r##"A="bar#baz"#"##), "bar#baz");
        assert_eq!(one(r#"A="a\nb\"c\\""#), "a\nb\"c\\");
        assert_eq!(one(r#"A='a\nb\'c'"#), "a\\nb'c");
        assert_eq!(one("A=\"line1\nline2\""), "line1\nline2");
        assert_eq!(one(r#"A="\$HOME""#), "$HOME");
        assert_eq!(one(r#"A="\0101""#), "A");
    }

    #[test]
    fn interpolation_sees_the_environment_then_earlier_keys() {
        let vars = parse("X=1\nY=${X}-$FROM_ENV\nZ=${MISSING:-d}\nP=pa$$word\nQ='$X'\n").unwrap();
        assert_eq!(vars["Y"], "1-env");
        assert_eq!(vars["Z"], "d");
        assert_eq!(vars["P"], "pa$word");
        assert_eq!(vars["Q"], "$X");
    }

    #[test]
    fn a_key_alone_is_taken_from_the_environment() {
        let vars = parse("FROM_ENV\nNOT_SET\nA.b-c=1").unwrap();
        assert_eq!(vars.len(), 2, "{vars:?}");
        assert_eq!(vars["FROM_ENV"], "env");
        assert_eq!(vars["A.b-c"], "1");
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse("A=1\nB C=2\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1), "{e:?}");
        let e = parse("A=1\n  B$=2\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 4), "{e:?}");
        assert!(e.message.contains("unexpected character '$'"), "{e:?}");
        let e = parse("A=1\nB=\"open\n").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        let e = parse("A=${NEED:?set it}").unwrap_err();
        assert!(e.message.contains("NEED"), "{e:?}");
    }
}
