//! The corpus: projects under `projects/`, each a folder as a user has it
//! (compose files, `.env`, env files, a Dockerfile), written for this repo
//! in the shapes real projects take. A `case` file in each says how it is
//! loaded:
//!
//! ```text
//! args -f compose.yaml -f compose.prod.yaml   (default: discovery)
//! env KEY=value                               (the process environment)
//! refuse <text>                               (cutover refuses it, saying <text>)
//! ```
//!
//! For every project Compose accepts, cutover must either resolve it to the
//! same value in every field either of them prints (extensions aside), or
//! refuse it as the case file says, with a position and a hint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use cutover_compose::{load_project, LoadError, LoadOptions};
use cutover_core::compose::canonical;

use super::oracle;

struct Case {
    args: Vec<String>,
    env: BTreeMap<String, String>,
    refuse: Option<String>,
}

fn read_case(dir: &Path) -> Case {
    let mut case = Case {
        args: Vec::new(),
        env: BTreeMap::new(),
        refuse: None,
    };
    let text = std::fs::read_to_string(dir.join("case")).unwrap_or_default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "args" => case.args = rest.split_whitespace().map(str::to_string).collect(),
            "env" => {
                let (k, v) = rest.split_once('=').expect("env KEY=value");
                case.env.insert(k.into(), v.into());
            }
            "refuse" => case.refuse = Some(rest.to_string()),
            other => panic!("{}: unknown line {other:?} in case", dir.display()),
        }
    }
    case
}

/// `-f` files and `-p` from the case's args, as the CLI would pass them.
fn options(dir: &Path, case: &Case) -> LoadOptions {
    let mut opts = LoadOptions {
        working_dir: dir.to_path_buf(),
        process_env: case.env.clone(),
        ..LoadOptions::default()
    };
    let mut args = case.args.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "-f" => opts
                .files
                .push(PathBuf::from(args.next().expect("-f FILE"))),
            "-p" => opts.project_name = args.next().cloned(),
            "--env-file" => opts.env_file = args.next().map(PathBuf::from),
            "--profile" => opts.profiles.extend(args.next().cloned()),
            other => panic!("unknown arg {other:?}"),
        }
    }
    opts
}

/// Service fields Compose prints that say nothing about what runs:
/// extensions (Compose's JSON leaves `x-cutover` out; cutover prints it).
fn compared(field: &str) -> bool {
    !field.starts_with("x-")
}

/// What of a project the comparison looks at: every field, with empty
/// values (`null`, `{}`, `[]`) left out on both sides and the few that are
/// one setting written two ways brought to one form.
fn used_fields(p: &Value) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), p["name"].clone());
    let mut services = Map::new();
    for (name, s) in p["services"].as_object().into_iter().flatten() {
        let mut m = Map::new();
        // Every field either side prints: one that only one of them has is
        // a difference.
        for (f, v) in s.as_object().into_iter().flatten() {
            let f = f.as_str();
            if !compared(f) || is_empty(v) {
                continue;
            }
            // With `build:` and no `image:`, Compose prints no image name;
            // cutover names it `<project>-<service>` as Compose builds it.
            if f == "image" && !is_empty(&s["build"]) {
                continue;
            }
            // `test: [NONE]` and `disable: true` are one setting, which
            // cutover writes the second way.
            if f == "healthcheck" && v["test"] == serde_json::json!(["NONE"]) {
                m.insert(f.to_string(), serde_json::json!({"disable": true}));
                continue;
            }
            // Of `deploy:` cutover prints `resources`, `mode: global`, and
            // `replicas`, which is `scale` written another way; the rest is
            // Swarm's.
            if f == "deploy" {
                let mut d = serde_json::Map::new();
                let r = &v["resources"];
                if !is_empty(r) {
                    d.insert("resources".into(), r.clone());
                }
                if v["mode"] == "global" {
                    d.insert("mode".into(), v["mode"].clone());
                }
                if !d.is_empty() {
                    m.insert(f.to_string(), serde_json::Value::Object(d));
                }
                if let Some(n) = v.get("replicas").filter(|n| **n != serde_json::json!(1)) {
                    m.insert("scale".into(), n.clone());
                }
                continue;
            }
            // One replica is what a service runs anyway.
            if f == "scale" && *v == serde_json::json!(1) {
                continue;
            }
            // Compose marks a dependency `restart: true` (restart the
            // dependent with it); cutover never restarts a running service
            // for another, and docs/config.md says so.
            if f == "depends_on" {
                let mut d = v.clone();
                for dep in d.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
                    if let Some(o) = dep.as_object_mut() {
                        o.remove("restart");
                    }
                }
                m.insert(f.to_string(), d);
                continue;
            }
            m.insert(f.to_string(), v.clone());
        }
        services.insert(name.clone(), Value::Object(m));
    }
    out.insert("services".into(), Value::Object(services));
    for top in ["networks", "volumes", "secrets", "configs"] {
        let items: Map<String, Value> = p[top]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.retain(|_, x| !is_empty(x));
                }
                (k.clone(), v)
            })
            .collect();
        if !items.is_empty() {
            out.insert(top.into(), Value::Object(items));
        }
    }
    Value::Object(out)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Each differing path, `services.web.environment: cutover X, compose Y`.
fn differences(path: &str, ours: &Value, theirs: &Value, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let null = Value::Null;
                differences(
                    &format!("{path}.{k}"),
                    a.get(k).unwrap_or(&null),
                    b.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}:\n      cutover: {a}\n      compose: {b}")),
    }
}

#[test]
fn every_project_of_the_corpus_agrees_with_compose() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/projects");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    assert!(names.len() >= 40, "the corpus has {} projects", names.len());
    let mut failures = Vec::new();
    let (mut same, mut refused) = (0, 0);
    for dir in &names {
        let label = dir.file_name().unwrap().to_string_lossy().to_string();
        // Copied, so relative paths, `.env` and the project name (the
        // folder's) are the same for both tools, and nothing is written
        // into the source tree.
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join(&label);
        copy_dir(dir, &work);
        let case = read_case(&work);
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let compose = oracle::config(&work, &args, &case.env);
        let ours = load_project(&options(&work, &case));
        match (ours, compose, &case.refuse) {
            (Err(e), Err(_), _) => {
                refused += 1;
                let _ = e;
            }
            (Ok(_), Err(e), _) => failures.push(format!(
                "{label}: Compose refuses it, cutover accepts it\n    compose: {e}"
            )),
            (Err(e), Ok(_), Some(why)) => {
                let text = e.to_string();
                let positioned = matches!(&e, LoadError::Compose(c) if c.errors.iter().all(|d| d.line.is_some()));
                if !text.contains(why.as_str()) || !positioned {
                    failures.push(format!(
                        "{label}: refused, but not with {why:?} at a file position:\n    {text}"
                    ));
                } else {
                    refused += 1;
                }
            }
            (Err(e), Ok(_), None) => failures.push(format!(
                "{label}: cutover refuses what Compose accepts:\n    {e}"
            )),
            (Ok(_), Ok(_), Some(why)) => failures.push(format!(
                "{label}: the case says cutover refuses it ({why:?}), but it is accepted"
            )),
            (Ok(p), Ok(theirs), None) => {
                let mut diffs = Vec::new();
                differences(
                    "",
                    &used_fields(&canonical(&p)),
                    &used_fields(&theirs),
                    &mut diffs,
                );
                if diffs.is_empty() {
                    same += 1;
                } else {
                    failures.push(format!("{label}:\n    {}", diffs.join("\n    ")));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} projects disagree with Docker Compose:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
    eprintln!("corpus: {same} projects resolve as Compose resolves them, {refused} are refused as their case says");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
