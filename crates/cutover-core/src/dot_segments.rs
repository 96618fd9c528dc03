//! Dot segments in a request path (RFC 3986 §5.2.4). A route prefix must
//! match the path the origin will resolve, not the one the client wrote:
//! `/wsp/../up` is `/up`, and routing it by its `/wsp` prefix would send it
//! to a service that never owned it. nginx normalises the same way before
//! it matches a location; like nginx, a `%2e` counts as a dot, and a path
//! that climbs above the root is refused.

use std::borrow::Cow;

/// The path climbs above the root (`/../etc`): there is no path it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AboveRoot;

/// `path` with its `.` and `..` segments resolved. Borrowed when there were
/// none, which is nearly always, so the common case costs one scan.
pub fn remove_dot_segments(path: &str) -> Result<Cow<'_, str>, AboveRoot> {
    let may_have_dots = path.bytes().any(|b| b == b'.' || b == b'%');
    if !may_have_dots || !path.split('/').any(is_dot_segment) {
        return Ok(Cow::Borrowed(path));
    }
    let mut out: Vec<&str> = Vec::new();
    let mut segments = path.split('/').peekable();
    // An absolute path splits into "" first; keep it as the root.
    let absolute = path.starts_with('/');
    if absolute {
        segments.next();
    }
    let mut trailing_slash = false;
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match dot_kind(seg) {
            Some(Dot::One) => trailing_slash = last,
            Some(Dot::Two) => {
                if out.pop().is_none() {
                    return Err(AboveRoot);
                }
                trailing_slash = last;
            }
            None => {
                out.push(seg);
                trailing_slash = false;
            }
        }
    }
    let mut joined = String::with_capacity(path.len());
    if absolute {
        joined.push('/');
    }
    joined.push_str(&out.join("/"));
    if trailing_slash && !joined.ends_with('/') {
        joined.push('/');
    }
    Ok(Cow::Owned(joined))
}

enum Dot {
    One,
    Two,
}

fn is_dot_segment(seg: &str) -> bool {
    dot_kind(seg).is_some()
}

/// `.` or `..`, each dot written as itself or as `%2e`/`%2E`.
fn dot_kind(seg: &str) -> Option<Dot> {
    let mut rest = seg;
    let mut dots = 0;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("%2e") {
            rest = &rest[3..];
        } else {
            return None;
        }
        dots += 1;
    }
    match dots {
        1 => Some(Dot::One),
        2 => Some(Dot::Two),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> Result<String, AboveRoot> {
        remove_dot_segments(p).map(Cow::into_owned)
    }

    #[test]
    fn rfc_3986_examples_and_encoded_dots() {
        assert_eq!(norm("/wsp/../up"), Ok("/up".into()));
        assert_eq!(norm("/a/b/c/./../../g"), Ok("/a/g".into()));
        assert_eq!(norm("/a/./b/"), Ok("/a/b/".into()));
        assert_eq!(norm("/a/b/.."), Ok("/a/".into()));
        assert_eq!(norm("/a/b/."), Ok("/a/b/".into()));
        assert_eq!(norm("/wsp/%2e%2E/up"), Ok("/up".into()));
        assert_eq!(norm("/wsp/.%2e/up"), Ok("/up".into()));
        assert_eq!(norm("/.."), Err(AboveRoot));
        assert_eq!(norm("/a/../../etc"), Err(AboveRoot));
    }

    #[test]
    fn names_with_dots_are_not_dot_segments() {
        for p in [
            "/",
            "/a.b",
            "/.well-known/x",
            "/...",
            "/a..",
            "/%2e%2e%2e",
            "/a/%2ex",
        ] {
            assert!(
                matches!(remove_dot_segments(p), Ok(Cow::Borrowed(_))),
                "{p}"
            );
        }
    }
}
