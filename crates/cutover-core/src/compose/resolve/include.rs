//! `include:` and `extends:`, applied to each parsed file before the -f
//! files merge, as compose-go's loader does:
//!
//! - an included file is a project of its own: its folder (or
//!   `project_directory`) is where its relative paths start, its `.env` (or
//!   `env_file`) adds variables the including environment does not set, and
//!   its services, networks, volumes, secrets and configs join the file that
//!   includes it; one defined on both sides is an error;
//! - a service that `extends` another starts from a copy of it (from this
//!   file or `extends.file`, whose relative paths start at its own folder)
//!   and merges its own keys over it by the same rules as `-f` files.
//!
//! Relative paths that came from another folder are made absolute here, so
//! the resolver reads every path against the project folder as before.

use serde_norway::Mapping;

use super::*;
use crate::compose::dotenv::parse_dotenv;
use crate::compose::merge::merge_service;

/// What is being expanded, to refuse a file that includes itself or a
/// service that extends itself, however far round.
#[derive(Default)]
pub(super) struct Chain {
    files: Vec<PathBuf>,
    extends: Vec<(PathBuf, String)>,
}

impl From<PathBuf> for Chain {
    /// The chain of a -f file at `path`.
    fn from(path: PathBuf) -> Chain {
        Chain {
            files: vec![path],
            extends: Vec::new(),
        }
    }
}

/// Applies `include` then `extends` to `doc`, a file read from `file` whose
/// relative paths start at `dir`.
pub(super) fn expand(
    cx: &mut Ctx<'_>,
    files: &dyn ProjectFiles,
    doc: &mut Value,
    dir: &Path,
    env: &BTreeMap<String, String>,
    chain: &mut Chain,
) {
    apply_include(cx, files, doc, dir, env, chain);
    apply_extends(cx, files, doc, dir, env, chain);
}

/// The resources an included project brings.
const IMPORTED: &[&str] = &["services", "networks", "volumes", "secrets", "configs"];

fn apply_include(
    cx: &mut Ctx<'_>,
    files: &dyn ProjectFiles,
    doc: &mut Value,
    dir: &Path,
    env: &BTreeMap<String, String>,
    chain: &mut Chain,
) {
    let Some(m) = doc.as_mapping_mut() else {
        return;
    };
    let Some(list) = m.remove("include") else {
        return;
    };
    let p = KeyPath::root().key("include");
    let entries = match list {
        Value::Sequence(items) => items,
        Value::Null => return,
        other => {
            cx.error(&p, format!("expected a list, found {}", kind(&other)));
            return;
        }
    };
    for (i, entry) in entries.iter().enumerate() {
        let ip = p.index(i);
        let Some(inc) = include_entry(cx, entry, &ip) else {
            continue;
        };
        let paths: Vec<PathBuf> = inc
            .paths
            .iter()
            .map(|f| normalize_path(&dir.join(f)))
            .collect();
        let project_dir = match &inc.project_directory {
            Some(d) => normalize_path(&dir.join(d)),
            None => paths[0].parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        if paths.iter().any(|p| chain.files.contains(p)) {
            cx.error_hint(
                &ip,
                format!("{} includes itself", paths[0].display()),
                "remove the include that leads back to this file",
            );
            continue;
        }
        let Some(inc_env) = included_env(cx, files, &inc, dir, &project_dir, env, &ip) else {
            continue;
        };
        let mut merged: Option<Value> = None;
        for path in &paths {
            let Some(content) = read(cx, files, path, &ip, "included file") else {
                continue;
            };
            let Some(mut v) = parse_source(cx, shown(cx, path), &content, &inc_env) else {
                continue;
            };
            chain.files.push(path.clone());
            expand(cx, files, &mut v, &project_dir, &inc_env, chain);
            chain.files.pop();
            merged = Some(match merged {
                Some(base) => merge_files(base, v),
                None => v,
            });
        }
        let Some(mut included) = merged else {
            continue;
        };
        absolutize(&mut included, &project_dir);
        import(cx, doc, included, &paths[0]);
    }
}

struct Include {
    paths: Vec<String>,
    project_directory: Option<String>,
    env_files: Option<Vec<String>>,
}

/// `- path` or `- {path: a | [a, b], project_directory, env_file}`.
fn include_entry(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<Include> {
    match v {
        Value::Mapping(m) => {
            let e = cx.entries(m, p);
            cx.check_keys(
                &e,
                p,
                &["path", "project_directory", "env_file"],
                "an include",
            );
            let paths = lookup(&e, "path")
                .map(|v| cx.string_list(v, &p.key("path")))
                .unwrap_or_default();
            if paths.is_empty() {
                cx.error(p, "missing `path`");
                return None;
            }
            Some(Include {
                paths,
                project_directory: cx
                    .opt_string(lookup(&e, "project_directory"), &p.key("project_directory")),
                env_files: lookup(&e, "env_file").map(|v| cx.string_list(v, &p.key("env_file"))),
            })
        }
        v => cx.string(v, p).map(|path| Include {
            paths: vec![path],
            project_directory: None,
            env_files: None,
        }),
    }
}

/// The including environment, plus what the included project's `.env` (or
/// its `env_file` list) sets and the including one does not.
fn included_env(
    cx: &mut Ctx<'_>,
    files: &dyn ProjectFiles,
    inc: &Include,
    dir: &Path,
    project_dir: &Path,
    env: &BTreeMap<String, String>,
    p: &KeyPath,
) -> Option<BTreeMap<String, String>> {
    let (candidates, required): (Vec<PathBuf>, bool) = match &inc.env_files {
        Some(list) => (
            list.iter()
                .filter(|f| f.as_str() != "/dev/null")
                .map(|f| normalize_path(&dir.join(f)))
                .collect(),
            true,
        ),
        None => (vec![project_dir.join(".env")], false),
    };
    let mut vars = BTreeMap::new();
    for f in candidates {
        let content = match files.read_file(&f) {
            Ok(Some(c)) => c,
            Ok(None) if !required => continue,
            Ok(None) => {
                cx.error_hint(
                    p,
                    format!("env file {} does not exist", f.display()),
                    "create it, or remove it from the include's env_file",
                );
                return None;
            }
            Err(e) => {
                cx.error(p, format!("cannot read {}: {}", f.display(), e.message));
                return None;
            }
        };
        let lookup = |k: &str| env.get(k).cloned();
        if let Err(e) = parse_dotenv(&content, &mut vars, &lookup, &mut Unset::new()) {
            cx.errors.push(Diagnostic {
                file: Some(f.display().to_string()),
                line: Some(e.line),
                column: Some(e.column),
                key: String::new(),
                message: e.message,
                hint: e.hint,
            });
            return None;
        }
    }
    let mut out = env.clone();
    for (k, v) in vars {
        out.entry(k).or_insert(v);
    }
    Some(out)
}

/// Adds what `included` defines to `doc`; a name both define differently is
/// an error naming both places.
fn import(cx: &mut Ctx<'_>, doc: &mut Value, included: Value, from: &Path) {
    let (Some(target), Value::Mapping(mut source)) = (doc.as_mapping_mut(), included) else {
        return;
    };
    for key in IMPORTED {
        let Some(Value::Mapping(items)) = source.remove(*key) else {
            continue;
        };
        let slot = target
            .entry(Value::String((*key).to_string()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if slot.is_null() {
            *slot = Value::Mapping(Mapping::new());
        }
        let Some(existing) = slot.as_mapping_mut() else {
            continue;
        };
        for (name, def) in items {
            match existing.get(&name) {
                Some(mine) if *mine == def => {}
                Some(_) => {
                    let name = name.as_str().unwrap_or_default().to_string();
                    cx.error_hint(
                        &KeyPath::root().key(key).key(&name),
                        format!(
                            "{key}.{name} is defined here and in the included {}",
                            from.display()
                        ),
                        "rename one of them, or define it in one place only",
                    );
                }
                None => {
                    existing.insert(name, def);
                }
            }
        }
    }
}

fn apply_extends(
    cx: &mut Ctx<'_>,
    files: &dyn ProjectFiles,
    doc: &mut Value,
    dir: &Path,
    env: &BTreeMap<String, String>,
    chain: &mut Chain,
) {
    let Some(services) = doc.get_mut("services").and_then(Value::as_mapping_mut) else {
        return;
    };
    let names: Vec<String> = services
        .keys()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let here = dir.to_path_buf();
    for name in names {
        extended(cx, files, services, &name, dir, &here, env, chain);
    }
}

/// Service `name` of `services` (a file at `file`, with relative paths from
/// `dir`) with its `extends` applied; also written back into `services`.
#[allow(clippy::too_many_arguments)]
fn extended(
    cx: &mut Ctx<'_>,
    files: &dyn ProjectFiles,
    services: &mut Mapping,
    name: &str,
    dir: &Path,
    file: &Path,
    env: &BTreeMap<String, String>,
    chain: &mut Chain,
) -> Option<Value> {
    let mut service = services.get(name)?.clone();
    let Some(ext) = service.as_mapping_mut().and_then(|m| m.remove("extends")) else {
        return Some(service);
    };
    let p = KeyPath::root().key("services").key(name).key("extends");
    let (base_name, base_file) = match &ext {
        Value::Mapping(m) => {
            let e = cx.entries(m, &p);
            cx.check_keys(&e, &p, &["service", "file"], "extends");
            let Some(s) = cx.opt_string(lookup(&e, "service"), &p.key("service")) else {
                cx.error(&p, "missing `service`");
                return None;
            };
            (s, cx.opt_string(lookup(&e, "file"), &p.key("file")))
        }
        v => (cx.string(v, &p)?, None),
    };
    let key = (file.to_path_buf(), name.to_string());
    if chain.extends.contains(&key) {
        cx.error_hint(
            &p,
            format!("service {name} extends itself"),
            "remove one of the extends that lead back to it",
        );
        return None;
    }
    chain.extends.push(key);
    let base = match base_file {
        Some(f) => {
            let path = normalize_path(&dir.join(&f));
            let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            read(cx, files, &path, &p.key("file"), "extended file")
                .and_then(|content| parse_source(cx, shown(cx, &path), &content, env))
                .and_then(|mut other| {
                    let Some(other_services) =
                        other.get_mut("services").and_then(Value::as_mapping_mut)
                    else {
                        cx.error(&p, format!("{f} has no services"));
                        return None;
                    };
                    if !other_services.contains_key(base_name.as_str()) {
                        cx.error_hint(
                            &p.key("service"),
                            format!("{f} has no service {base_name:?}"),
                            format!("services in {f}: {}", names_of(other_services)),
                        );
                        return None;
                    }
                    let mut b = extended(
                        cx,
                        files,
                        other_services,
                        &base_name,
                        &base_dir,
                        &path,
                        env,
                        chain,
                    )?;
                    absolutize_service(&mut b, &base_dir);
                    Some(b)
                })
        }
        None if base_name == name => {
            cx.error(&p, format!("service {name} extends itself"));
            None
        }
        None if !services.contains_key(base_name.as_str()) => {
            cx.error_hint(
                &p,
                format!("extends undefined service {base_name:?}"),
                format!("services in this file: {}", names_of(services)),
            );
            None
        }
        None => extended(cx, files, services, &base_name, dir, file, env, chain),
    };
    chain.extends.pop();
    let merged = merge_service(base?, service);
    services.insert(Value::String(name.to_string()), merged.clone());
    Some(merged)
}

fn names_of(services: &Mapping) -> String {
    services
        .keys()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn read(
    cx: &mut Ctx<'_>,
    files: &dyn ProjectFiles,
    path: &Path,
    p: &KeyPath,
    what: &str,
) -> Option<String> {
    match files.read_file(path) {
        Ok(Some(c)) => Some(c),
        Ok(None) => {
            cx.error_hint(
                p,
                format!("{what} {} does not exist", path.display()),
                "paths are relative to the folder of the file that names them",
            );
            None
        }
        Err(e) => {
            cx.error(p, format!("cannot read {}: {}", path.display(), e.message));
            None
        }
    }
}

/// A file's name in messages: relative to the project folder when inside it.
fn shown(cx: &Ctx<'_>, path: &Path) -> String {
    path.strip_prefix(&cx.input.project_dir)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A relative host path in a file from another folder, made absolute.
fn absolute(v: &mut Value, dir: &Path) {
    if let Value::String(s) = v {
        if is_relative_host_path(s) {
            *s = normalize_path(&dir.join(&*s)).display().to_string();
        }
    }
}

fn is_relative_host_path(s: &str) -> bool {
    !(s.starts_with('/')
        || s.starts_with('~')
        || s.contains("://")
        || s.starts_with("git@")
        || s.starts_with("github.com/"))
}

/// Every relative host path of an included project made absolute against
/// its folder: services' own, and secrets' and configs' `file`.
fn absolutize(doc: &mut Value, dir: &Path) {
    if let Some(services) = doc.get_mut("services").and_then(Value::as_mapping_mut) {
        for (_, s) in services.iter_mut() {
            absolutize_service(s, dir);
        }
    }
    for top in ["secrets", "configs"] {
        if let Some(defs) = doc.get_mut(top).and_then(Value::as_mapping_mut) {
            for (_, d) in defs.iter_mut() {
                if let Some(f) = d.get_mut("file") {
                    absolute(f, dir);
                }
            }
        }
    }
}

/// A service's host paths: `build` (or its `context`, `.` when unset),
/// `env_file`, bind sources of `volumes`, `extends.file`, and the
/// certificate files of `x-cutover.tls`.
fn absolutize_service(s: &mut Value, dir: &Path) {
    let Some(m) = s.as_mapping_mut() else {
        return;
    };
    match m.get_mut("build") {
        Some(b @ Value::String(_)) => absolute(b, dir),
        Some(Value::Mapping(b)) => {
            let context = b
                .entry(Value::String("context".into()))
                .or_insert_with(|| Value::String(".".into()));
            absolute(context, dir);
        }
        _ => {}
    }
    match m.get_mut("env_file") {
        Some(Value::Sequence(items)) => {
            for item in items {
                match item {
                    Value::Mapping(e) => {
                        if let Some(p) = e.get_mut("path") {
                            absolute(p, dir);
                        }
                    }
                    v => absolute(v, dir),
                }
            }
        }
        Some(v) => absolute(v, dir),
        None => {}
    }
    if let Some(Value::Mapping(tls)) = m.get_mut("x-cutover").and_then(|x| x.get_mut("tls")) {
        for file in ["cert", "key"] {
            if let Some(f) = tls.get_mut(file) {
                absolute(f, dir);
            }
        }
    }
    if let Some(Value::Sequence(items)) = m.get_mut("volumes") {
        for item in items {
            match item {
                Value::String(short) => {
                    if let Some((src, rest)) = short.split_once(':') {
                        if src.starts_with('.') {
                            let abs = normalize_path(&dir.join(src));
                            *short = format!("{}:{rest}", abs.display());
                        }
                    }
                }
                Value::Mapping(long) => {
                    let is_bind = long.get("type").and_then(Value::as_str) == Some("bind");
                    if let (true, Some(src)) = (is_bind, long.get_mut("source")) {
                        absolute(src, dir);
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(Value::Mapping(ext)) = m.get_mut("extends") {
        if let Some(f) = ext.get_mut("file") {
            absolute(f, dir);
        }
    }
}
