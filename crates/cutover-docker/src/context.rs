//! The build context: a tar of the context directory, as `docker build`
//! sends it.
//!
//! `.dockerignore` is honoured for what projects actually write: one pattern a
//! line, `#` comments, `!` exceptions (the last matching line wins), `*` and
//! `?` inside a path segment, `**` for any number of segments, and a pattern
//! that matches a directory excludes everything below it. Character classes
//! (`[a-z]`) and escapes are not supported and match literally. The
//! Dockerfile and `.dockerignore` themselves are always sent, as the engine
//! needs the first and the docker CLI sends both.
//!
//! The tar is built in memory; contexts large enough for that to matter are
//! better trimmed by `.dockerignore` anyway.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::error::EngineError;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    segments: Vec<String>,
    exception: bool,
}

/// The parsed `.dockerignore` of a context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreRules {
    patterns: Vec<Pattern>,
}

impl IgnoreRules {
    pub fn parse(text: &str) -> IgnoreRules {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let (exception, body) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let segments: Vec<String> = body
                    .split('/')
                    .filter(|s| !s.is_empty() && *s != ".")
                    .map(str::to_owned)
                    .collect();
                (!segments.is_empty()).then_some(Pattern {
                    segments,
                    exception,
                })
            })
            .collect();
        IgnoreRules { patterns }
    }

    /// Whether `path` (relative, `/`-separated) is left out of the context.
    pub fn is_excluded(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // A pattern naming a directory covers everything below it.
            let hit = (1..=parts.len()).any(|n| match_segments(&pattern.segments, &parts[..n]));
            if hit {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((seg, path_rest)) => {
                match_glob(first.as_bytes(), seg.as_bytes()) && match_segments(rest, path_rest)
            }
            None => false,
        },
    }
}

/// `*` and `?` within one segment.
fn match_glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| match_glob(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && match_glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && match_glob(rest, &text[1..]),
    }
}

/// Checks that `dockerfile` stays inside the context and returns it as the
/// `/`-separated path the engine expects.
pub(crate) fn dockerfile_in_context(
    context: &Path,
    dockerfile: Option<&Path>,
) -> Result<String, EngineError> {
    let rel = dockerfile.unwrap_or(Path::new("Dockerfile"));
    let bad = |message: String| EngineError::Context {
        path: context.display().to_string(),
        message,
    };
    let mut parts = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => {
                return Err(bad(format!(
                    "the Dockerfile {} must be a relative path inside the context",
                    rel.display()
                )))
            }
        }
    }
    let joined = parts.join("/");
    if !context.join(&joined).is_file() {
        return Err(bad(format!("no Dockerfile at {joined}")));
    }
    Ok(joined)
}

/// The context folder as `/build` takes it, and the Dockerfile's path in
/// it: what the daemon sends the engine, and what a remote client uploads.
/// Blocking.
pub fn pack(context: &Path, dockerfile: Option<&Path>) -> Result<(String, Vec<u8>), EngineError> {
    let dockerfile = dockerfile_in_context(context, dockerfile)?;
    let tar = tar_context(context, &dockerfile)?;
    Ok((dockerfile, tar))
}

/// Tars `context`, leaving out what `.dockerignore` excludes. Blocking.
pub fn tar_context(context: &Path, dockerfile: &str) -> Result<Vec<u8>, EngineError> {
    let io_err = |path: &Path, err: io::Error| EngineError::Context {
        path: path.display().to_string(),
        message: err.to_string(),
    };
    if !context.is_dir() {
        return Err(EngineError::Context {
            path: context.display().to_string(),
            message: "not a directory".into(),
        });
    }
    let rules = match fs::read_to_string(context.join(".dockerignore")) {
        Ok(text) => IgnoreRules::parse(&text),
        Err(err) if err.kind() == io::ErrorKind::NotFound => IgnoreRules::default(),
        Err(err) => return Err(io_err(&context.join(".dockerignore"), err)),
    };
    let always = [dockerfile.to_owned(), ".dockerignore".to_owned()];

    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let full_dir = context.join(&dir);
        let mut entries = fs::read_dir(&full_dir)
            .map_err(|e| io_err(&full_dir, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io_err(&full_dir, e))?;
        // Same order every time, so the same context makes the same tar.
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = dir.join(entry.file_name());
            let rel_str = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let file_type = entry.file_type().map_err(|e| io_err(&entry.path(), e))?;
            let excluded = rules.is_excluded(&rel_str) && !always.contains(&rel_str);
            if file_type.is_dir() {
                // An excluded directory is still walked when an exception
                // could bring back something inside it.
                if excluded && !rules.has_exceptions() {
                    continue;
                }
                if !excluded {
                    builder
                        .append_dir(&rel, entry.path())
                        .map_err(|e| io_err(&entry.path(), e))?;
                }
                stack.push(rel);
            } else if !excluded {
                builder
                    .append_path_with_name(entry.path(), &rel)
                    .map_err(|e| io_err(&entry.path(), e))?;
            }
        }
    }
    builder.into_inner().map_err(|e| io_err(context, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_directories() {
        let rules = IgnoreRules::parse("# comment\n\ntarget\n*.log\n**/node_modules\ndocs/*.md\n");
        assert!(rules.is_excluded("target"));
        assert!(rules.is_excluded("target/debug/app"));
        assert!(rules.is_excluded("server.log"));
        assert!(!rules.is_excluded("logs/server.log"));
        assert!(rules.is_excluded("web/app/node_modules/x.js"));
        assert!(rules.is_excluded("node_modules"));
        assert!(rules.is_excluded("docs/readme.md"));
        assert!(!rules.is_excluded("docs/sub/readme.md"));
        assert!(!rules.is_excluded("src/main.rs"));
    }

    #[test]
    fn last_match_wins_with_exceptions() {
        let rules = IgnoreRules::parse("*.md\n!README.md\n/secret/\n./tmp?\n");
        assert!(rules.is_excluded("CHANGES.md"));
        assert!(!rules.is_excluded("README.md"));
        assert!(rules.is_excluded("secret/key"));
        assert!(rules.is_excluded("tmp1"));
        assert!(!rules.is_excluded("tmp12"));
    }

    #[test]
    fn tar_leaves_out_ignored_files_but_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(
            root.join(".dockerignore"),
            "Dockerfile\n*.log\ncache\n!cache/keep\n",
        )
        .unwrap();
        fs::write(root.join("app.sh"), "echo hi\n").unwrap();
        fs::write(root.join("debug.log"), "noise\n").unwrap();
        fs::create_dir(root.join("cache")).unwrap();
        fs::write(root.join("cache/drop"), "x").unwrap();
        fs::write(root.join("cache/keep"), "y").unwrap();

        let bytes = tar_context(root, "Dockerfile").unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![".dockerignore", "Dockerfile", "app.sh", "cache/keep"]
        );
    }

    #[test]
    fn dockerfile_must_stay_inside_the_context() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("docker")).unwrap();
        fs::write(dir.path().join("docker/Dockerfile.app"), "FROM x\n").unwrap();
        assert_eq!(
            dockerfile_in_context(dir.path(), Some(Path::new("./docker/Dockerfile.app"))).unwrap(),
            "docker/Dockerfile.app"
        );
        let err = dockerfile_in_context(dir.path(), Some(Path::new("../Dockerfile"))).unwrap_err();
        assert!(err.to_string().contains("inside the context"), "{err}");
        let err = dockerfile_in_context(dir.path(), None).unwrap_err();
        assert!(
            err.to_string().contains("no Dockerfile at Dockerfile"),
            "{err}"
        );
    }
}
