//! The CLI's own words (docs/style.md): help layout, flags that never mean
//! two things, YAML mistakes explained where they are, completions and the
//! man page generated from the parser's own definitions.

use std::process::Command;

use crate::util::{cutover, run};

/// Runs cutover in `dir` (a project folder) and returns exit code, stdout
/// and stderr.
fn in_dir(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = run(cutover().current_dir(dir).args(args));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn deploy_help_has_the_layout_of_every_other_command() {
    let dir = tempfile::tempdir().unwrap();
    let (code, help, _) = in_dir(dir.path(), &["deploy", "--help"]);
    assert_eq!(code, Some(0));
    insta::assert_snapshot!(help);
}

#[test]
fn only_cutover_itself_has_a_version_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = in_dir(dir.path(), &["--version"]);
    assert_eq!(code, Some(0));
    assert_eq!(out, format!("cutover {}\n", env!("CARGO_PKG_VERSION")));
    let (code, _, err) = in_dir(dir.path(), &["plan", "-V"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn yaml_mistakes_are_shown_where_they_are_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("unclosed quote", "services:\n  web:\n    image: \"nginx\n"),
        ("tab", "services:\n  web:\n\timage: nginx\n"),
        (
            "indentation",
            "services:\n  web:\n    image: a\n   ports: []\n",
        ),
        ("unclosed list", "services:\n  web:\n    ports: [1, 2\n"),
        ("twice", "services:\n  web:\n    image: a\n    image: b\n"),
    ];
    let mut shown = String::new();
    for (what, yaml) in cases {
        std::fs::write(dir.path().join("compose.yaml"), yaml).unwrap();
        let (code, _, err) = in_dir(dir.path(), &["config"]);
        assert_eq!(code, Some(2), "{what}: {err}");
        shown.push_str(&format!("# {what}\n{err}"));
    }
    let (code, _, err) = in_dir(dir.path(), &["config", "-f", "missing.yaml"]);
    assert_eq!(code, Some(2), "{err}");
    shown.push_str(&format!("# missing -f\n{err}"));
    insta::assert_snapshot!(shown);
}

#[test]
fn completions_and_the_man_page_come_from_the_parser() {
    let dir = tempfile::tempdir().unwrap();
    // Each shell reads its script without running it (scripts/deps.sh
    // installs zsh and fish for this).
    for (shell, check) in [
        ("bash", &["bash", "-n"][..]),
        ("zsh", &["zsh", "-n"][..]),
        ("fish", &["fish", "--no-execute"][..]),
    ] {
        let (code, script, _) = in_dir(dir.path(), &["completions", shell]);
        assert_eq!(code, Some(0));
        let path = dir.path().join(format!("cutover.{shell}"));
        std::fs::write(&path, &script).unwrap();
        let syntax = Command::new(check[0])
            .args(&check[1..])
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("{shell} does not run ({e}): run scripts/deps.sh"));
        assert!(
            syntax.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&syntax.stderr)
        );
        // fish writes `-l version-label`, the others `--version-label`.
        for flag in ["version-label", "follow", "wait-lock"] {
            assert!(script.contains(flag), "{shell} does not complete --{flag}");
        }
    }
    let (code, page, _) = in_dir(dir.path(), &["man"]);
    assert_eq!(code, Some(0));
    assert!(page.starts_with(".ie"), "{page}");
    for command in ["deploy", "rollback", "completions", "serve"] {
        assert!(page.contains(command), "the man page lacks {command}");
    }
}
