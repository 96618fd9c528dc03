//! Host paths in the compose file: `~` expanded, made absolute against the
//! project folder, normalized without touching the filesystem.

use super::*;

/// `a/./b/../c` -> `a/c` without touching the filesystem (the path may not
/// exist yet on the machine that resolves it). A `..` cancels only a name
/// before it: leading ones stay (`../../data`), and one past the root is the
/// root, as the kernel reads `/..`.
pub(super) fn normalize_path(p: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    out.iter().map(|c| c.as_os_str()).collect()
}

impl Ctx<'_> {
    pub(super) fn host_path(&mut self, raw: &str, p: &KeyPath) -> Option<PathBuf> {
        let expanded = if raw == "~" || raw.starts_with("~/") {
            let Some(home) = self.env("HOME") else {
                self.error_hint(
                    p,
                    format!("cannot expand {raw:?}: HOME is not set"),
                    "write the path without ~",
                );
                return None;
            };
            PathBuf::from(home).join(raw.trim_start_matches('~').trim_start_matches('/'))
        } else {
            PathBuf::from(raw)
        };
        Some(normalize_path(&self.input.project_dir.join(expanded)))
    }
}

/// A path inside the container as Compose cleans it (Go's `path.Clean`):
/// `/logs/` and `/logs//.` are `/logs`, so two spellings of one target
/// are one mount.
pub(crate) fn clean_container_path(p: &str) -> String {
    if !p.starts_with('/') {
        // Relative targets are refused later with the path as written.
        return p.to_string();
    }
    let cleaned = normalize_path(Path::new(p));
    cleaned.display().to_string()
}

pub(super) fn self_path(cx: &mut Ctx<'_>, raw: &str, p: &KeyPath) -> Option<PathBuf> {
    cx.host_path(raw, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_without_losing_leading_parents() {
        let n = |s: &str| normalize_path(Path::new(s));
        assert_eq!(n("../../data"), Path::new("../../data"));
        assert_eq!(n("a/./b/../c"), Path::new("a/c"));
        assert_eq!(n("a/../../b"), Path::new("../b"));
        assert_eq!(n("/srv/app/../../.."), Path::new("/"));
        assert_eq!(n("/srv/./app/"), Path::new("/srv/app"));
        assert_eq!(n("./"), Path::new(""));
    }

    #[test]
    fn container_paths_lose_trailing_slashes() {
        assert_eq!(clean_container_path("/logs/"), "/logs");
        assert_eq!(clean_container_path("/a//b/./c/.."), "/a/b");
        assert_eq!(clean_container_path("/"), "/");
        assert_eq!(clean_container_path("rel/"), "rel/");
    }
}
