//! Finds the line of a key path in a YAML source.
//!
//! serde_norway's `Value` carries no positions, and errors must name a line, so
//! this scans block-style YAML by indentation. Flow collections (`[a, b]`,
//! `{k: v}`) are not entered: a path into one resolves to the line of the
//! collection itself, which is still the right line to look at.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A key path such as `services.backend.ports[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        KeyPath(v)
    }

    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        KeyPath(v)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Token<'a> {
    line: usize,
    indent: usize,
    /// A `- ` sequence entry marker; its content follows as its own token.
    item: bool,
    text: &'a str,
}

fn tokens(src: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    for (n, raw) in src.lines().enumerate() {
        let trimmed = raw.trim_start_matches(' ');
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let mut indent = raw.len() - trimmed.len();
        let mut text = trimmed;
        // "- - a" and "- key: v" put content on the marker's line, indented past it.
        while text == "-" || text.starts_with("- ") {
            out.push(Token {
                line: n + 1,
                indent,
                item: true,
                text: "-",
            });
            let after = &text[1..];
            let rest = after.trim_start_matches(' ');
            indent += 1 + after.len() - rest.len();
            text = rest;
            if text.is_empty() {
                break;
            }
        }
        if !text.is_empty() {
            out.push(Token {
                line: n + 1,
                indent,
                item: false,
                text,
            });
        }
    }
    out
}

fn key_matches(text: &str, key: &str) -> bool {
    for (open, close) in [("", ""), ("\"", "\""), ("'", "'")] {
        if let Some(rest) = text.strip_prefix(open) {
            if let Some(rest) = rest.strip_prefix(key) {
                if let Some(rest) = rest.strip_prefix(close) {
                    let rest = rest.trim_start_matches(' ');
                    if rest == ":" || rest.starts_with(": ") || rest.starts_with(":\t") {
                        return true;
                    }
                }
            }
        }
    }
    false
}

/// Returns how many segments of `path` were found and the 1-based line of the
/// deepest one found (`None` when not even the first was).
pub fn locate(src: &str, path: &KeyPath) -> (usize, Option<usize>) {
    let toks = tokens(src);
    let (mut start, mut end) = (0, toks.len());
    let mut depth = 0;
    let mut line = None;
    for seg in &path.0 {
        let Some(first) = toks.get(start..end).and_then(|t| t.first()) else {
            break;
        };
        let level = first.indent;
        let found = match seg {
            Seg::Key(k) => (start..end).find(|&i| {
                !toks[i].item && toks[i].indent == level && key_matches(toks[i].text, k)
            }),
            Seg::Index(n) => (start..end)
                .filter(|&i| toks[i].item && toks[i].indent == level)
                .nth(*n),
        };
        let Some(at) = found else { break };
        let t = &toks[at];
        // A key's block also holds "- " entries at its own indentation
        // (`ports:\n- 80` is valid YAML).
        let block_end = (at + 1..end)
            .find(|&j| {
                toks[j].indent < t.indent
                    || (toks[j].indent == t.indent && (t.item || !toks[j].item))
            })
            .unwrap_or(end);
        depth += 1;
        line = Some(t.line);
        start = at + 1;
        end = block_end;
    }
    (depth, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"# comment
name: demo
services:
  backend:
    image: app
    ports:
    - "80"
    - target: 81
      published: 8081
    environment:
      A: b
  "redis":
    image: redis
    volumes: [a, b]
"#;

    fn p(s: &[&str]) -> KeyPath {
        let mut k = KeyPath::root();
        for seg in s {
            k = match seg.parse::<usize>() {
                Ok(n) => k.index(n),
                Err(_) => k.key(seg),
            };
        }
        k
    }

    #[test]
    fn finds_nested_keys_and_items() {
        assert_eq!(locate(SRC, &p(&["name"])), (1, Some(2)));
        assert_eq!(
            locate(SRC, &p(&["services", "backend", "image"])),
            (3, Some(5))
        );
        assert_eq!(
            locate(SRC, &p(&["services", "backend", "ports", "0"])),
            (4, Some(7))
        );
        assert_eq!(
            locate(SRC, &p(&["services", "backend", "ports", "1", "published"])),
            (5, Some(9))
        );
        assert_eq!(
            locate(SRC, &p(&["services", "backend", "environment", "A"])),
            (4, Some(11))
        );
        assert_eq!(
            locate(SRC, &p(&["services", "redis", "image"])),
            (3, Some(13))
        );
    }

    #[test]
    fn stops_at_flow_collections_and_missing_keys() {
        assert_eq!(
            locate(SRC, &p(&["services", "redis", "volumes", "1"])),
            (3, Some(14))
        );
        assert_eq!(
            locate(SRC, &p(&["services", "backend", "nope"])),
            (2, Some(4))
        );
        assert_eq!(locate(SRC, &p(&["image"])), (0, None));
    }
}
