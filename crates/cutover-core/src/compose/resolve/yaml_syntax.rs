//! A YAML syntax error as a user reads it. The parser reports where it gave
//! up, which for an unclosed quote or bracket is past the end of the file;
//! the place to fix is where that quote or bracket opened, which the parser
//! names after "while". Its wording is libyaml's; the common cases get
//! plain words and a hint, the rest keep the parser's text.

/// Where to point and what to say.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Syntax {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: String,
}

/// `text` is the parser's message, `at` its position (1-based), `content`
/// the file.
pub(super) fn explain(text: &str, at: Option<(usize, usize)>, content: &str) -> Syntax {
    let lines = content.lines().count();
    let (problem, context) = match text.split_once(", while ") {
        Some((p, c)) => (p, Some(c)),
        None => (text, None),
    };
    let problem = strip_mark(problem).0;
    let opened = context.and_then(|c| strip_mark(c).1);
    let (line, column) = at.unwrap_or((1, 1));
    // Past the last line (the end of the file) is no place to look.
    let here = if line > lines.max(1) {
        (lines.max(1), 1)
    } else {
        (line, column)
    };
    let what = context.map(|c| strip_mark(c).0).unwrap_or_default();
    let (place, message, hint) = if what.contains("quoted scalar") {
        (
            opened.unwrap_or(here),
            "this quoted value is never closed".to_string(),
            "add the closing quote; inside \"...\" a quote is written \\\", inside '...' as ''",
        )
    } else if what.contains("flow mapping") {
        (
            opened.unwrap_or(here),
            "this { ... } mapping is not closed".to_string(),
            "add the closing }, and separate its entries with commas",
        )
    } else if what.contains("flow sequence") {
        (
            opened.unwrap_or(here),
            "this [ ... ] list is not closed".to_string(),
            "add the closing ], and separate its items with commas",
        )
    } else if problem.contains("tab character") || char_at(content, here) == Some('\t') {
        (
            here,
            "a tab in the indentation".to_string(),
            "YAML indents with spaces only: replace the tab with spaces",
        )
    } else if problem.contains("mapping values are not allowed") {
        (
            here,
            "a `key:` where a value goes".to_string(),
            "check this line's indentation against the line above, or quote a value that contains \": \"",
        )
    } else if problem.contains("did not find expected key")
        || problem.contains("did not find expected '-' indicator")
    {
        (
            here,
            "this line's indentation does not fit the lines above".to_string(),
            "keys of one mapping start in one column, and items of one list each start with `- ` in one column",
        )
    } else if problem.contains("cannot start any token") {
        (
            here,
            "a value that cannot start like this unquoted".to_string(),
            "quote the value: YAML reserves @ and ` at the start of a plain value",
        )
    } else if problem.contains("unknown anchor") {
        (
            here,
            "an alias (*name) with no anchor (&name) before it".to_string(),
            "define the anchor above its first use, e.g. `x-base: &base`",
        )
    } else if let Some(key) = duplicate_key(problem) {
        (
            here,
            format!("`{key}` is written twice in one mapping"),
            "keep one of them; Compose refuses the file too",
        )
    } else {
        (
            here,
            problem.to_string(),
            "check the YAML syntax at this line and the one above",
        )
    };
    Syntax {
        line: place.0,
        column: place.1,
        message: format!("not valid YAML: {message}"),
        hint: hint.to_string(),
    }
}

/// The character at a 1-based line and column.
fn char_at(content: &str, (line, column): (usize, usize)) -> Option<char> {
    content
        .lines()
        .nth(line.checked_sub(1)?)?
        .chars()
        .nth(column.checked_sub(1)?)
}

/// `did not find ... at line 4 column 1` to its words and `(4, 1)`.
fn strip_mark(text: &str) -> (&str, Option<(usize, usize)>) {
    let Some((words, mark)) = text.rsplit_once(" at line ") else {
        return (text, None);
    };
    let pos = mark
        .split_once(" column ")
        .and_then(|(l, c)| Some((l.trim().parse().ok()?, c.trim().parse().ok()?)));
    (words, pos)
}

/// `services.web: duplicate entry with key "image"` to `image`.
fn duplicate_key(problem: &str) -> Option<&str> {
    let (_, key) = problem.split_once("duplicate entry with key ")?;
    Some(key.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unclosed_quote_is_shown_where_it_opens_not_past_the_end() {
        let s = explain(
            "found unexpected end of stream at line 4 column 1, while scanning a quoted scalar at line 3 column 12",
            Some((4, 1)),
            "a:\n b:\n  c: \"x\n",
        );
        assert_eq!((s.line, s.column), (3, 12));
        assert_eq!(
            s.message,
            "not valid YAML: this quoted value is never closed"
        );
        let s = explain(
            "did not find expected ',' or ']' at line 4 column 1, while parsing a flow sequence at line 3 column 12",
            Some((4, 1)),
            "a:\n b:\n  c: [1\n",
        );
        assert_eq!((s.line, s.column), (3, 12));
        assert!(s.hint.contains("closing ]"), "{s:?}");
    }

    #[test]
    fn other_errors_keep_their_place_with_a_hint() {
        let s = explain(
            "services.web: duplicate entry with key \"image\" at line 3 column 5",
            Some((3, 5)),
            "a:\n b:\n  c: 1\n  c: 2\n",
        );
        assert_eq!(
            (s.line, s.message.as_str()),
            (3, "not valid YAML: `image` is written twice in one mapping")
        );
        let s = explain(
            "something new at line 9 column 2",
            Some((9, 2)),
            "a\nb\nc\nd\n",
        );
        assert_eq!((s.line, s.column), (4, 1));
        assert_eq!(s.message, "not valid YAML: something new");
    }
}
