//! cutover against Docker Compose v2 on the same inputs: the interpolation
//! and dotenv tables, and the corpus of projects under `projects/`.
//!
//! Expected values are never written here: each case is given to the
//! `docker-compose` binary and to cutover, and their answers must agree
//! (or both must refuse the input).

mod oracle;
mod tables;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use cutover_compose::{load_project, LoadOptions};

/// Accumulates disagreements so one run reports all of them.
#[derive(Default)]
struct Tally {
    cases: usize,
    failures: String,
}

impl Tally {
    fn check<T: PartialEq + std::fmt::Debug>(
        &mut self,
        case: &str,
        ours: Result<T, String>,
        compose: Result<T, String>,
    ) {
        self.cases += 1;
        let refused_on_purpose = tables::REFUSED_ON_PURPOSE.iter().any(|(c, _)| *c == case);
        match (&ours, &compose) {
            (Ok(a), Ok(b)) if a == b => {}
            (Err(_), Err(_)) => {}
            (Err(_), Ok(_)) if refused_on_purpose => {}
            _ => {
                let _ = writeln!(
                    self.failures,
                    "case {case:?}\n  cutover: {ours:?}\n  compose: {compose:?}"
                );
            }
        }
    }

    fn assert_agree(self, what: &str) {
        assert!(
            self.failures.is_empty(),
            "{what}: cutover and Docker Compose disagree on {} of {} cases:\n{}",
            self.failures.matches("\ncase ").count() + 1,
            self.cases,
            self.failures
        );
        eprintln!("{what}: all {} cases agree with Docker Compose", self.cases);
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The environment of `service` as cutover resolves the project in `dir`.
fn our_environment(
    dir: &Path,
    process_env: &BTreeMap<String, String>,
    service: &str,
) -> Result<BTreeMap<String, String>, String> {
    let p = load_project(&LoadOptions {
        working_dir: dir.to_path_buf(),
        process_env: process_env.clone(),
        ..LoadOptions::default()
    })
    .map_err(|e| e.to_string())?;
    let spec = p
        .accessory(service)
        .map(|a| &a.service)
        .or_else(|| p.app(service).map(|a| &a.service))
        .ok_or_else(|| format!("no service {service}"))?;
    Ok(spec.environment.clone())
}

/// YAML single-quoted scalar: the string exactly, `'` doubled.
fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[test]
fn interpolation_table_agrees_with_compose() {
    let process_env = env(tables::ENV);
    let mut tally = Tally::default();
    for template in tables::TEMPLATES {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            format!(
                "services:\n  s:\n    image: img\n    environment:\n      V: {}\n",
                yaml_quote(template)
            ),
        )
        .unwrap();
        let compose =
            oracle::config(dir.path(), &[], &process_env).map(|p| oracle::environment(&p, "s"));
        tally.check(
            template,
            our_environment(dir.path(), &process_env, "s"),
            compose,
        );
    }
    tally.assert_agree("interpolation");
}

#[test]
fn dotenv_table_agrees_with_compose() {
    let process_env = env(&[("HOST_VAR", "fromhost")]);
    let mut tally = Tally::default();
    for content in tables::DOTENV {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "services:\n  s:\n    image: img\n    env_file: case.env\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("case.env"), content).unwrap();
        let compose =
            oracle::config(dir.path(), &[], &process_env).map(|p| oracle::environment(&p, "s"));
        tally.check(
            content,
            our_environment(dir.path(), &process_env, "s"),
            compose,
        );
    }
    tally.assert_agree("env_file");
}

/// The same files as `.env`, where they set the variables the compose file
/// interpolates.
#[test]
fn dotenv_table_as_the_project_env_agrees_with_compose() {
    let process_env = env(&[("HOST_VAR", "fromhost")]);
    let mut tally = Tally::default();
    for content in tables::DOTENV {
        let dir = tempfile::tempdir().unwrap();
        // Every key a case might set, read back through interpolation.
        let keys = ["A", "B", "A_B", "A.B", "HOST_VAR", "NOT_SET"];
        let mut compose = String::from("services:\n  s:\n    image: img\n    environment:\n");
        for (i, k) in keys.iter().enumerate() {
            let var = if k.contains('.') { "A" } else { k };
            let _ = writeln!(compose, "      V{i}: ${{{var}-unset}}");
        }
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        std::fs::write(dir.path().join(".env"), content).unwrap();
        let theirs =
            oracle::config(dir.path(), &[], &process_env).map(|p| oracle::environment(&p, "s"));
        tally.check(
            content,
            our_environment(dir.path(), &process_env, "s"),
            theirs,
        );
    }
    tally.assert_agree(".env");
}

mod projects;
