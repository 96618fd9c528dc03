//! Finds where a key path is written in a YAML source: line and column.
//!
//! serde_norway's `Value` carries no positions, and errors must name a line
//! and column, so each file is also read once by a span-aware YAML parser
//! (saphyr-parser) into a tree of positions. The tree follows YAML itself,
//! not indentation: flow collections (`[a, b]`, `{k: v}`), anchors and
//! aliases (`*base` points at where `&base` wrote the value) and merge keys
//! (`<<: *base`, a key not written in the mapping itself is looked for in
//! what it merges) all resolve to the place the user wrote the value.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, Span};

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

/// A place in a file, 1-based, columns in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    fn of(span: &Span) -> Position {
        Position {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    at: Position,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Scalar,
    /// Entries in the order written: the key's text, where the key is, and
    /// its value.
    Map(Vec<(String, Position, Node)>),
    Seq(Vec<Node>),
    /// `*name`: the anchor id it refers to.
    Alias(usize),
}

/// The positions of one file's first document, read once.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
}

/// Aliases and merge keys followed at most this deep: YAML forbids cycles,
/// but a positions tree must not loop on a file that has one anyway.
const MAX_HOPS: usize = 32;

impl Positions {
    /// Reads `src`; a file that does not parse has no positions (its
    /// syntax error is reported by the YAML loader, with its own place).
    pub fn of(src: &str) -> Positions {
        let mut b = Builder {
            events: Parser::new_from_str(src),
            anchors: HashMap::new(),
        };
        let root = b.document();
        Positions {
            root,
            anchors: b.anchors,
        }
    }

    /// How many segments of `path` were found, and where the deepest one
    /// found is written (`None` when not even the first was): the key of a
    /// mapping entry, or the item of a sequence.
    pub fn locate(&self, path: &KeyPath) -> (usize, Option<Position>) {
        let Some(mut node) = self.root.as_ref() else {
            return (0, None);
        };
        let mut depth = 0;
        let mut at = None;
        for seg in &path.0 {
            let here = self.resolve(node);
            let found = match (seg, &here.kind) {
                (Seg::Key(k), Kind::Map(_)) => self.entry(here, k, 0),
                (Seg::Index(i), Kind::Seq(items)) => items.get(*i).map(|n| (n.at, n)),
                _ => None,
            };
            let Some((pos, next)) = found else { break };
            depth += 1;
            at = Some(pos);
            node = next;
        }
        (depth, at)
    }

    /// The node an alias stands for (the node itself otherwise).
    fn resolve<'a>(&'a self, mut node: &'a Node) -> &'a Node {
        for _ in 0..MAX_HOPS {
            match &node.kind {
                Kind::Alias(id) => match self.anchors.get(id) {
                    Some(target) => node = target,
                    None => return node,
                },
                _ => return node,
            }
        }
        node
    }

    /// `key` in `map`: written there (the last one, as later keys win), or
    /// brought in by a merge key, the first merged mapping that has it.
    fn entry<'a>(&'a self, map: &'a Node, key: &str, hops: usize) -> Option<(Position, &'a Node)> {
        let Kind::Map(entries) = &map.kind else {
            return None;
        };
        if let Some((_, at, value)) = entries.iter().rev().find(|(k, _, _)| k == key && k != "<<") {
            return Some((*at, value));
        }
        if hops >= MAX_HOPS {
            return None;
        }
        for (_, _, merged) in entries.iter().filter(|(k, _, _)| k == "<<") {
            let merged = self.resolve(merged);
            let sources: Vec<&Node> = match &merged.kind {
                Kind::Seq(items) => items.iter().map(|n| self.resolve(n)).collect(),
                _ => vec![merged],
            };
            for source in sources {
                if let Some(found) = self.entry(source, key, hops + 1) {
                    return Some(found);
                }
            }
        }
        None
    }
}

/// Where `path` is in `src`, parsing it for this one question; the resolver
/// keeps one [`Positions`] per file instead.
pub fn locate(src: &str, path: &KeyPath) -> (usize, Option<Position>) {
    Positions::of(src).locate(path)
}

struct Builder<'a> {
    events: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Option<(Event<'a>, Span)> {
        self.events.next_event()?.ok()
    }

    /// The first document's root node.
    fn document(&mut self) -> Option<Node> {
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => continue,
                Event::StreamEnd | Event::DocumentEnd => return None,
                event => return self.node(event, span),
            }
        }
    }

    /// The node that starts with `event`, children included.
    fn node(&mut self, event: Event<'a>, span: Span) -> Option<Node> {
        let at = Position::of(&span);
        let (kind, anchor) = match event {
            Event::Scalar(_, _, anchor, _) => (Kind::Scalar, anchor),
            Event::Alias(id) => (Kind::Alias(id), 0),
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(event, span)?);
                }
                (Kind::Seq(items), anchor)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::MappingEnd) {
                        break;
                    }
                    // A key that is not a scalar (`? [a, b]: x`) has no
                    // name a key path could use; it is kept but never found.
                    let name = match &event {
                        Event::Scalar(text, ..) => text.to_string(),
                        _ => String::new(),
                    };
                    let key = self.node(event, span)?;
                    let (event, span) = self.next()?;
                    let value = self.node(event, span)?;
                    entries.push((name, key.at, value));
                }
                (Kind::Map(entries), anchor)
            }
            _ => return None,
        };
        let node = Node { at, kind };
        // Anchor ids start at 1; 0 means none.
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Some(node)
    }
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

    /// `(depth, (line, column))`.
    fn at(src: &str, path: &[&str]) -> (usize, Option<(usize, usize)>) {
        let (depth, pos) = locate(src, &p(path));
        (depth, pos.map(|p| (p.line, p.column)))
    }

    #[test]
    fn finds_nested_keys_and_items() {
        assert_eq!(at(SRC, &["name"]), (1, Some((2, 1))));
        assert_eq!(
            at(SRC, &["services", "backend", "image"]),
            (3, Some((5, 5)))
        );
        assert_eq!(
            at(SRC, &["services", "backend", "ports", "0"]),
            (4, Some((7, 7)))
        );
        assert_eq!(
            at(SRC, &["services", "backend", "ports", "1", "published"]),
            (5, Some((9, 7)))
        );
        assert_eq!(
            at(SRC, &["services", "backend", "environment", "A"]),
            (4, Some((11, 7)))
        );
        assert_eq!(at(SRC, &["services", "redis", "image"]), (3, Some((13, 5))));
    }

    #[test]
    fn enters_flow_collections_and_stops_at_missing_keys() {
        assert_eq!(
            at(SRC, &["services", "redis", "volumes", "1"]),
            (4, Some((14, 18)))
        );
        assert_eq!(at(SRC, &["services", "backend", "nope"]), (2, Some((4, 3))));
        assert_eq!(at(SRC, &["image"]), (0, None));
        let flow = "services: {web: {image: app, ports: [\"80\", {target: 81}]}}\n";
        assert_eq!(
            at(flow, &["services", "web", "ports", "1", "target"]),
            (5, Some((1, 45)))
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys_point_where_the_value_is_written() {
        let src = "x-base: &base\n  image: app\n  ports: [\"80\"]\nservices:\n  web:\n    <<: *base\n    command: run\n  worker: *base\n";
        // Merged in: where the anchor wrote it.
        assert_eq!(at(src, &["services", "web", "image"]), (3, Some((2, 3))));
        assert_eq!(
            at(src, &["services", "web", "ports", "0"]),
            (4, Some((3, 11)))
        );
        // Written in the mapping itself.
        assert_eq!(at(src, &["services", "web", "command"]), (3, Some((7, 5))));
        // A whole alias.
        assert_eq!(at(src, &["services", "worker", "image"]), (3, Some((2, 3))));
        // A list of merges: the first that has the key.
        let list = "a: &a {x: 1}\nb: &b {x: 2, y: 3}\nc:\n  <<: [*a, *b]\n";
        assert_eq!(at(list, &["c", "x"]), (2, Some((1, 8))));
        assert_eq!(at(list, &["c", "y"]), (2, Some((2, 14))));
    }

    #[test]
    fn text_that_is_not_yaml_has_no_positions() {
        assert_eq!(at("services: [\n", &["services"]), (0, None));
        assert_eq!(at("", &["services"]), (0, None));
    }
}
