//! The project name: `-p`, `COMPOSE_PROJECT_NAME`, `name:` or the folder, in
//! Compose's order and by its rule.

use super::*;

/// Compose's rule for a project name: lowercase letters, digits, `-` and `_`,
/// starting with a letter or digit.
pub fn is_valid_project_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Turns a folder name into a project name the way Compose does.
pub fn normalize_project_name(dir_name: &str) -> String {
    let kept: String = dir_name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    kept.trim_start_matches(['-', '_']).to_string()
}

pub(super) const PROJECT_NAME_HINT: &str =
    "use lowercase letters, digits, - and _, starting with a letter or digit";

pub(super) fn project_name(cx: &mut Ctx<'_>, top: Option<&Value>) -> Option<String> {
    // Compose's order: -p, then COMPOSE_PROJECT_NAME (environment or .env),
    // then `name:`, then the folder.
    if let Some(n) = &cx.input.project_name {
        return given_name(cx, n.clone(), "-p", PROJECT_NAME_HINT.into());
    }
    if let Some(n) = cx
        .input
        .env
        .get("COMPOSE_PROJECT_NAME")
        .filter(|n| !n.is_empty())
    {
        let hint = format!("{PROJECT_NAME_HINT} (set in the environment or .env)");
        return given_name(cx, n.clone(), "COMPOSE_PROJECT_NAME", hint);
    }
    if let Some(v) = top.filter(|v| !v.is_null()) {
        let p = KeyPath::root().key("name");
        let n = cx.string(v, &p)?;
        if !is_valid_project_name(&n) {
            cx.error_hint(
                &p,
                format!("{n:?} is not a valid project name"),
                PROJECT_NAME_HINT,
            );
            return None;
        }
        return Some(n);
    }
    let dir = cx
        .input
        .project_dir
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let n = normalize_project_name(&dir);
    if n.is_empty() {
        cx.errors.push(Diagnostic {
            file: None,
            line: None,
            column: None,
            key: String::new(),
            message: format!("cannot derive a project name from the folder {dir:?}"),
            hint: Some("set `name:` at the top of the compose file or pass -p".into()),
        });
        return None;
    }
    Some(n)
}

/// A name given outside the files (`-p`, `COMPOSE_PROJECT_NAME`): used as
/// it is, so an invalid one is an error naming where it came from.
pub(super) fn given_name(cx: &mut Ctx<'_>, n: String, from: &str, hint: String) -> Option<String> {
    if is_valid_project_name(&n) {
        return Some(n);
    }
    cx.errors.push(Diagnostic {
        file: None,
        line: None,
        column: None,
        key: String::new(),
        message: format!("{from} {n:?} is not a valid project name"),
        hint: Some(hint),
    });
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("_x-Y_"), "x-y_");
        assert!(is_valid_project_name("athens"));
        assert!(!is_valid_project_name("Athens"));
        assert!(!is_valid_project_name("-a"));
    }
}
