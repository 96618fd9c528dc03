//! From compose sources to a [`ResolvedProject`]: parse, interpolate, merge,
//! validate every key, resolve names and paths.
//!
//! This walks `serde_norway::Value` by hand rather than deserializing into
//! docker-compose-types: those structs accept keys cutover would have to ignore
//! silently and their errors carry no key path or line, while every error here
//! must name the file, line and key.

use crate::diag::Report;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_norway::Value;

use super::interpolate::{interpolate, InterpolateError, Unset};
use super::locate::{locate, KeyPath};
use super::merge::{keyed_list_to_map, merge_files, strip_tags};
use super::model::*;
use crate::service::{HealthCheck, Timeouts};

/// One compose file's contents; `path` is shown in messages as given.
#[derive(Debug, Clone)]
pub struct ComposeFile {
    pub path: PathBuf,
    pub content: String,
}

/// Everything loading needs, already read from disk by the caller.
#[derive(Debug, Clone)]
pub struct LoadInput {
    /// In `-f` order; later files override earlier ones.
    pub files: Vec<ComposeFile>,
    /// Absolute directory of the first file; relative paths resolve against it
    /// (Compose does the same for every file of a multi-file project).
    pub project_dir: PathBuf,
    /// `-p`.
    pub project_name: Option<String>,
    /// Variables for interpolation: the `.env` file overlaid with the process
    /// environment (process wins).
    pub env: BTreeMap<String, String>,
}

/// Reads `env_file:` entries; the IO side implements it over the filesystem.
pub trait EnvFileReader {
    /// `Ok(None)` when the file does not exist.
    fn read_env_file(&self, path: &Path) -> Result<Option<Vec<(String, String)>>, Report>;
}

/// Ports of datastores that must not be reachable from the internet without
/// the user meaning it (the field report published Redis on 0.0.0.0:6379).
pub const DATASTORE_PORTS: &[(u16, &str)] = &[
    (6379, "Redis"),
    (5432, "PostgreSQL"),
    (3306, "MySQL"),
    (27017, "MongoDB"),
    (11211, "Memcached"),
];

const TOP_LEVEL_KEYS: &[&str] = &["name", "services", "networks", "volumes"];

const SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "volumes",
    "networks",
    "ports",
    "depends_on",
    "healthcheck",
    "restart",
    "labels",
    "user",
    "working_dir",
    "stop_grace_period",
    "extra_hosts",
    "logging",
    "container_name",
    "x-cutover",
];

/// Service keys accepted with a warning because ignoring them cannot break
/// the deployment in a way the user would not notice.
const IGNORED_SERVICE_KEYS: &[(&str, &str)] = &[
    ("deploy", "cutover runs one container per service (per color for an app); replicas, resources and placement are not applied"),
    ("profiles", "cutover deploys every service of the file"),
    ("pull_policy", "the daemon decides when to pull"),
    ("expose", "it has no effect: containers on a shared network reach each other on every port"),
    ("develop", "compose watch settings do not apply to deploys"),
];

const CUTOVER_KEYS: &[&str] = &[
    "port",
    "health",
    "hosts",
    "path_prefix",
    "deploy_timeout",
    "drain_timeout",
    "websocket_drain_timeout",
    "keep",
];

const DEFAULT_KEEP: u32 = 3;

struct Ctx<'a> {
    input: &'a LoadInput,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Ctx<'_> {
    /// Locates `path` in the file that last defines it (later files override),
    /// falling back to the deepest ancestor found.
    fn diag(
        &self,
        file: Option<usize>,
        path: &KeyPath,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        let mut best: Option<(usize, usize, Option<usize>)> = None;
        for (i, f) in self.input.files.iter().enumerate() {
            if file.is_some_and(|only| only != i) {
                continue;
            }
            let (depth, line) = locate(&f.content, path);
            if best.is_none_or(|(d, _, _)| depth >= d) && (depth > 0 || best.is_none()) {
                best = Some((depth, i, line));
            }
        }
        let (file, line) = match best {
            Some((_, i, line)) => (Some(self.input.files[i].path.display().to_string()), line),
            None => (None, None),
        };
        Diagnostic {
            file,
            line,
            key: path.to_string(),
            message,
            hint,
        }
    }

    fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        let d = self.diag(None, path, message.into(), None);
        self.errors.push(d);
    }

    fn error_hint(&mut self, path: &KeyPath, message: impl Into<String>, hint: impl Into<String>) {
        let d = self.diag(None, path, message.into(), Some(hint.into()));
        self.errors.push(d);
    }

    fn warn(&mut self, path: &KeyPath, message: impl Into<String>, hint: Option<String>) {
        let d = self.diag(None, path, message.into(), hint);
        self.warnings.push(d);
    }

    fn env(&self, name: &str) -> Option<String> {
        self.input.env.get(name).cloned()
    }

    // Typed readers. After interpolation every scalar may be a string, so
    // numbers and booleans are accepted in string form, as Compose does.

    fn string(&mut self, v: &Value, p: &KeyPath) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                self.error(p, format!("expected a string, found {}", kind(v)));
                None
            }
        }
    }

    fn opt_string(&mut self, v: Option<&Value>, p: &KeyPath) -> Option<String> {
        v.filter(|v| !v.is_null()).and_then(|v| self.string(v, p))
    }

    fn boolean(&mut self, v: &Value, p: &KeyPath) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => {
                self.error(p, format!("expected true or false, found {}", show(v)));
                None
            }
        }
    }

    fn uint(&mut self, v: &Value, p: &KeyPath, max: u64) -> Option<u64> {
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if n <= max => Some(n),
            _ => {
                self.error(
                    p,
                    format!("expected a whole number up to {max}, found {}", show(v)),
                );
                None
            }
        }
    }

    fn port(&mut self, v: &Value, p: &KeyPath) -> Option<u16> {
        match v {
            Value::Number(n) if n.as_u64().is_some_and(|n| (1..=65535).contains(&n)) => {
                n.as_u64().map(|n| n as u16)
            }
            Value::String(s) if s.trim().parse::<u16>().is_ok_and(|n| n > 0) => {
                s.trim().parse().ok()
            }
            _ => {
                self.error(p, format!("expected a port number, found {}", show(v)));
                None
            }
        }
    }

    fn duration(&mut self, v: &Value, p: &KeyPath) -> Option<Duration> {
        let parsed = match v {
            Value::String(s) => humantime::parse_duration(s.trim()).ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.error_hint(
                p,
                format!("expected a duration, found {}", show(v)),
                "write it with a unit, e.g. \"30s\", \"1m30s\" or \"500ms\"",
            );
        }
        parsed
    }

    fn opt_duration(&mut self, v: Option<&Value>, p: &KeyPath) -> Option<Duration> {
        v.filter(|v| !v.is_null()).and_then(|v| self.duration(v, p))
    }

    /// A string or a list of strings.
    fn string_list(&mut self, v: &Value, p: &KeyPath) -> Vec<String> {
        match v {
            Value::Null => Vec::new(),
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.string(item, &p.index(i)))
                .collect(),
            v => self.string(v, p).into_iter().collect(),
        }
    }

    fn mapping<'v>(&mut self, v: &'v Value, p: &KeyPath) -> Option<&'v serde_norway::Mapping> {
        match v {
            Value::Mapping(m) => Some(m),
            _ => {
                self.error(p, format!("expected a mapping, found {}", kind(v)));
                None
            }
        }
    }

    /// Entries of a mapping whose keys must be strings.
    fn entries<'v>(
        &mut self,
        m: &'v serde_norway::Mapping,
        p: &KeyPath,
    ) -> Vec<(String, &'v Value)> {
        let mut out = Vec::new();
        for (k, v) in m {
            match k {
                Value::String(s) => out.push((s.clone(), v)),
                Value::Number(n) => out.push((n.to_string(), v)),
                Value::Bool(b) => out.push((b.to_string(), v)),
                _ => self.error(p, format!("keys must be strings, found {}", kind(k))),
            }
        }
        out
    }

    /// Rejects keys outside `allowed`, suggesting the nearest one.
    fn check_keys(
        &mut self,
        entries: &[(String, &Value)],
        p: &KeyPath,
        allowed: &[&str],
        what: &str,
    ) {
        for (k, _) in entries {
            if !allowed.contains(&k.as_str()) {
                let hint = did_you_mean(k, allowed)
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("{what} accepts: {}", allowed.join(", ")));
                self.error_hint(&p.key(k), format!("unknown key `{k}`"), hint);
            }
        }
    }

    /// `KEY: value` mapping or `KEY=value` list. A key without a value takes
    /// the interpolation environment's value when `from_env`, and is dropped
    /// when that has none (Compose's behavior for environment and build args).
    fn str_map(&mut self, v: &Value, p: &KeyPath, from_env: bool) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Value::Sequence(items) = v {
            if let Some((i, bad)) = items.iter().enumerate().find(|(_, i)| !i.is_string()) {
                self.error(
                    &p.index(i),
                    format!("expected \"KEY=value\", found {}", kind(bad)),
                );
                return out;
            }
        }
        let normalized = keyed_list_to_map(v.clone());
        let Some(m) = self.mapping(&normalized, p) else {
            return out;
        };
        for (k, val) in self.entries(m, p) {
            let value = match val {
                Value::Null if from_env => self.env(&k),
                Value::Null => Some(String::new()),
                Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => {
                    self.error(
                        &p.key(&k),
                        format!("expected a string, found {}", kind(val)),
                    );
                    None
                }
                v => self.string(v, &p.key(&k)),
            };
            if let Some(value) = value {
                out.insert(k, value);
            }
        }
        out
    }
}

/// The value of `key` among a mapping's entries (as [`Ctx::entries`] gives
/// them).
fn lookup<'v>(entries: &[(String, &'v Value)], key: &str) -> Option<&'v Value> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        v => kind(v).to_string(),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) fn did_you_mean<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (levenshtein(key, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min()
        .map(|(_, c)| c)
}

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

/// Splits a command string into words like a POSIX shell would, without
/// expanding anything: Compose passes `command: a "b c"` as `["a", "b c"]`.
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("a double quote is not closed".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `a/./b/../c` -> `a/c` without touching the filesystem (the path may not
/// exist yet on the machine that resolves it). A `..` cancels only a name
/// before it: leading ones stay (`../../data`), and one past the root is the
/// root, as the kernel reads `/..`.
fn normalize_path(p: &Path) -> PathBuf {
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
    fn host_path(&mut self, raw: &str, p: &KeyPath) -> Option<PathBuf> {
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

/// Loads, merges and resolves compose sources.
pub fn load(
    input: &LoadInput,
    env_files: &dyn EnvFileReader,
) -> Result<ResolvedProject, ComposeError> {
    let mut cx = Ctx {
        input,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    if input.files.is_empty() {
        return Err(ComposeError {
            errors: vec![Diagnostic {
                file: None,
                line: None,
                key: String::new(),
                message: "no compose file given".into(),
                hint: Some("pass -f compose.yaml".into()),
            }],
            warnings: Vec::new(),
        });
    }
    let mut merged: Option<Value> = None;
    for (i, file) in input.files.iter().enumerate() {
        if let Some(v) = parse_file(&mut cx, i, file) {
            merged = Some(match merged {
                Some(base) => merge_files(base, v),
                None => v,
            });
        }
    }
    let project = match merged.and_then(strip_tags) {
        Some(root) if cx.errors.is_empty() => resolve_root(&mut cx, &root, env_files),
        _ => None,
    };
    let file_pos = |d: &Diagnostic| {
        let idx = input
            .files
            .iter()
            .position(|f| Some(f.path.display().to_string()) == d.file);
        (idx.unwrap_or(usize::MAX), d.line.unwrap_or(0))
    };
    // Stable: messages about one line keep the order they were found in.
    cx.errors.sort_by_key(file_pos);
    cx.warnings.sort_by_key(file_pos);
    match project {
        Some(mut p) if cx.errors.is_empty() => {
            p.warnings = cx.warnings;
            Ok(p)
        }
        _ => Err(ComposeError {
            errors: cx.errors,
            warnings: cx.warnings,
        }),
    }
}

fn parse_file(cx: &mut Ctx<'_>, i: usize, file: &ComposeFile) -> Option<Value> {
    let shown = file.path.display().to_string();
    let mut v: Value = match serde_norway::from_str(&file.content) {
        Ok(v) => v,
        Err(e) => {
            cx.errors.push(Diagnostic {
                file: Some(shown),
                line: e.location().map(|l| l.line()),
                key: String::new(),
                message: format!("not valid YAML: {e}"),
                hint: None,
            });
            return None;
        }
    };
    if let Err(e) = v.apply_merge() {
        cx.errors.push(Diagnostic {
            file: Some(shown),
            line: None,
            key: String::new(),
            message: format!("a YAML merge key (<<) failed: {e}"),
            hint: None,
        });
        return None;
    }
    if !v.is_mapping() {
        cx.errors.push(Diagnostic {
            file: Some(shown),
            line: None,
            key: String::new(),
            message: format!(
                "expected a mapping with `services:` at the top, found {}",
                kind(&v)
            ),
            hint: None,
        });
        return None;
    }
    let mut unset = BTreeMap::new();
    interpolate_value(cx, i, &mut v, &KeyPath::root(), &mut unset);
    for (var, path) in unset {
        let d = cx.diag(
            Some(i),
            &path,
            format!("variable {var} is not set, using an empty string"),
            Some(format!(
                "set {var} in the environment or in .env, or give a default: ${{{var}:-value}}"
            )),
        );
        cx.warnings.push(d);
    }
    Some(v)
}

/// Interpolates every string scalar in place. Keys are left alone, as in
/// Compose. `unset` collects each unset variable with its first use.
fn interpolate_value(
    cx: &mut Ctx<'_>,
    file: usize,
    v: &mut Value,
    p: &KeyPath,
    unset: &mut BTreeMap<String, KeyPath>,
) {
    match v {
        Value::String(s) => {
            let env = &cx.input.env;
            let lookup = |k: &str| env.get(k).cloned();
            let mut missing = Unset::new();
            match interpolate(s, &lookup, &mut missing) {
                Ok(out) => *s = out,
                Err(InterpolateError::Required { var, message }) => {
                    let msg = if message.is_empty() {
                        format!("required variable {var} has no value")
                    } else {
                        format!("required variable {var} has no value: {message}")
                    };
                    let d = cx.diag(
                        Some(file),
                        p,
                        msg,
                        Some(format!("set {var} in the environment or in .env")),
                    );
                    cx.errors.push(d);
                }
                Err(InterpolateError::Invalid { reason }) => {
                    let d = cx.diag(
                        Some(file),
                        p,
                        format!("invalid interpolation: {reason}"),
                        Some("write $$ for a literal $".into()),
                    );
                    cx.errors.push(d);
                }
            }
            for var in missing {
                unset.entry(var).or_insert_with(|| p.clone());
            }
        }
        Value::Sequence(items) => {
            for (n, item) in items.iter_mut().enumerate() {
                interpolate_value(cx, file, item, &p.index(n), unset);
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let key = k.as_str().map(str::to_string).unwrap_or_default();
                interpolate_value(cx, file, item, &p.key(&key), unset);
            }
        }
        Value::Tagged(t) => interpolate_value(cx, file, &mut t.value, p, unset),
        _ => {}
    }
}

fn resolve_root(
    cx: &mut Ctx<'_>,
    root: &Value,
    env_files: &dyn EnvFileReader,
) -> Option<ResolvedProject> {
    let rootp = KeyPath::root();
    let m = cx.mapping(root, &rootp)?;
    let entries = cx.entries(m, &rootp);
    for (k, _) in &entries {
        if k == "version" {
            cx.warn(
                &rootp.key(k),
                "`version` is obsolete and ignored",
                Some("remove it".into()),
            );
        } else if !TOP_LEVEL_KEYS.contains(&k.as_str()) && !k.starts_with("x-") {
            let (msg, hint) = match did_you_mean(k, TOP_LEVEL_KEYS) {
                Some(s) => (format!("unknown key `{k}`"), format!("did you mean `{s}`?")),
                None => (
                    format!("`{k}` is not supported by cutover"),
                    "the top level accepts name, services, networks, volumes and x-* extensions"
                        .into(),
                ),
            };
            cx.error_hint(&rootp.key(k), msg, hint);
        }
    }
    let get = |k: &str| lookup(&entries, k);

    let name = project_name(cx, get("name"))?;
    let networks = top_networks(cx, &name, get("networks"));
    let volumes = top_volumes(cx, &name, get("volumes"));

    let services_p = rootp.key("services");
    let Some(services_v) = get("services").filter(|v| !v.is_null()) else {
        cx.error_hint(
            &services_p,
            "no services defined",
            "add a `services:` mapping with at least one service",
        );
        return None;
    };
    let services_m = cx.mapping(services_v, &services_p)?;
    let services = cx.entries(services_m, &services_p);
    if services.is_empty() {
        cx.error_hint(
            &services_p,
            "no services defined",
            "add at least one service under `services:`",
        );
        return None;
    }
    let names: BTreeSet<String> = services.iter().map(|(k, _)| k.clone()).collect();
    let apps_set: BTreeSet<String> = services
        .iter()
        .filter(|(_, v)| v.as_mapping().is_some_and(|m| m.contains_key("x-cutover")))
        .map(|(k, _)| k.clone())
        .collect();

    let mut resolver = ServiceResolver {
        project: &name,
        networks: &networks,
        volumes: &volumes,
        services: &names,
        apps: &apps_set,
        env_files,
        default_network_used: false,
    };
    let mut apps = Vec::new();
    let mut accessories = Vec::new();
    for (svc_name, v) in &services {
        let p = services_p.key(svc_name);
        if let Some(r) = resolver.service(cx, svc_name, v, &p) {
            match r {
                Resolved::App(a) => apps.push(a),
                Resolved::Accessory(a) => accessories.push(a),
            }
        }
    }
    let default_used = resolver.default_network_used;
    let mut networks: Vec<NetworkSpec> = networks.into_values().collect();
    if default_used && !networks.iter().any(|n| n.key == "default") {
        networks.push(NetworkSpec {
            key: "default".into(),
            name: format!("{name}_default"),
            external: false,
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
            internal: false,
            attachable: false,
        });
    }
    let order = dependency_order(cx, &services_p, &apps, &accessories)?;
    apps.sort_by_key(|a| order.iter().position(|n| *n == a.service.name));
    accessories.sort_by_key(|a| order.iter().position(|n| *n == a.service.name));
    Some(ResolvedProject {
        name,
        project_dir: cx.input.project_dir.clone(),
        apps,
        accessories,
        networks,
        volumes: volumes.into_values().collect(),
        warnings: Vec::new(),
    })
}

const PROJECT_NAME_HINT: &str =
    "use lowercase letters, digits, - and _, starting with a letter or digit";

fn project_name(cx: &mut Ctx<'_>, top: Option<&Value>) -> Option<String> {
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
fn given_name(cx: &mut Ctx<'_>, n: String, from: &str, hint: String) -> Option<String> {
    if is_valid_project_name(&n) {
        return Some(n);
    }
    cx.errors.push(Diagnostic {
        file: None,
        line: None,
        key: String::new(),
        message: format!("{from} {n:?} is not a valid project name"),
        hint: Some(hint),
    });
    None
}

fn top_networks(
    cx: &mut Ctx<'_>,
    project: &str,
    v: Option<&Value>,
) -> BTreeMap<String, NetworkSpec> {
    top_level(
        cx,
        "networks",
        v,
        &[
            "name",
            "external",
            "driver",
            "driver_opts",
            "labels",
            "internal",
            "attachable",
        ],
        "a network",
        |key| NetworkSpec {
            name: format!("{project}_{key}"),
            key,
            external: false,
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
            internal: false,
            attachable: false,
        },
        |cx, spec, k, val, kp| match k {
            "external" => {
                if val.is_mapping() {
                    cx.error_hint(
                        kp,
                        "`external: {name: ...}` is obsolete",
                        "write `external: true` and `name: ...`",
                    );
                } else {
                    spec.external = cx.boolean(val, kp).unwrap_or(false);
                }
            }
            "driver" => spec.driver = cx.string(val, kp),
            "driver_opts" => spec.driver_opts = cx.str_map(val, kp, false),
            "labels" => spec.labels = cx.str_map(val, kp, false),
            "internal" => spec.internal = cx.boolean(val, kp).unwrap_or(false),
            "attachable" => spec.attachable = cx.boolean(val, kp).unwrap_or(false),
            _ => {}
        },
        |spec| (&mut spec.name, spec.external),
    )
}

fn top_volumes(cx: &mut Ctx<'_>, project: &str, v: Option<&Value>) -> BTreeMap<String, VolumeSpec> {
    top_level(
        cx,
        "volumes",
        v,
        &["name", "external", "driver", "driver_opts", "labels"],
        "a volume",
        |key| VolumeSpec {
            name: format!("{project}_{key}"),
            key,
            external: false,
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
        },
        |cx, spec, k, val, kp| match k {
            "external" => spec.external = cx.boolean(val, kp).unwrap_or(false),
            "driver" => spec.driver = cx.string(val, kp),
            "driver_opts" => spec.driver_opts = cx.str_map(val, kp, false),
            "labels" => spec.labels = cx.str_map(val, kp, false),
            _ => {}
        },
        |spec| (&mut spec.name, spec.external),
    )
}

/// Top-level `networks:` or `volumes:`: one reader for both, so they share
/// the entry shape and the naming rule. `new` makes the default entry of a
/// key, `field` reads any key of `allowed` but `name`, and `name` gives the
/// entry's name and whether it is external.
#[allow(clippy::too_many_arguments)]
fn top_level<T>(
    cx: &mut Ctx<'_>,
    section: &str,
    v: Option<&Value>,
    allowed: &[&str],
    what: &str,
    new: impl Fn(String) -> T,
    mut field: impl FnMut(&mut Ctx<'_>, &mut T, &str, &Value, &KeyPath),
    name: impl Fn(&mut T) -> (&mut String, bool),
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    let p = KeyPath::root().key(section);
    let Some(m) = v.filter(|v| !v.is_null()).and_then(|v| cx.mapping(v, &p)) else {
        return out;
    };
    for (key, v) in cx.entries(m, &p) {
        let ep = p.key(&key);
        let mut spec = new(key.clone());
        if !v.is_null() {
            let Some(em) = cx.mapping(v, &ep) else {
                continue;
            };
            let e = cx.entries(em, &ep);
            cx.check_keys(&e, &ep, allowed, what);
            let mut given = None;
            for (k, val) in &e {
                let kp = ep.key(k);
                if k == "name" {
                    given = cx.string(val, &kp);
                } else {
                    field(cx, &mut spec, k, val, &kp);
                }
            }
            let (slot, external) = name(&mut spec);
            match given {
                Some(n) => *slot = n,
                // An external one is looked up by its key as written.
                None if external => *slot = key.clone(),
                None => {}
            }
        }
        out.insert(key, spec);
    }
    out
}

enum Resolved {
    App(AppSpec),
    Accessory(AccessorySpec),
}

struct ServiceResolver<'a> {
    project: &'a str,
    networks: &'a BTreeMap<String, NetworkSpec>,
    volumes: &'a BTreeMap<String, VolumeSpec>,
    services: &'a BTreeSet<String>,
    apps: &'a BTreeSet<String>,
    env_files: &'a dyn EnvFileReader,
    default_network_used: bool,
}

impl ServiceResolver<'_> {
    fn service(
        &mut self,
        cx: &mut Ctx<'_>,
        name: &str,
        v: &Value,
        p: &KeyPath,
    ) -> Option<Resolved> {
        let m = cx.mapping(v, p)?;
        let entries = cx.entries(m, p);
        let is_app = self.apps.contains(name);
        for (k, _) in &entries {
            if SERVICE_KEYS.contains(&k.as_str()) || (k.starts_with("x-") && k != "x-cutover") {
                continue;
            }
            if let Some((_, why)) = IGNORED_SERVICE_KEYS.iter().find(|(i, _)| i == k) {
                cx.warn(&p.key(k), format!("`{k}` is ignored: {why}"), None);
                continue;
            }
            let (msg, hint) = match did_you_mean(k, SERVICE_KEYS) {
                Some(s) => (format!("unknown key `{k}`"), format!("did you mean `{s}`?")),
                None => (
                    format!("`{k}` is not supported by cutover"),
                    "remove it; docs/config.md lists the keys cutover supports".into(),
                ),
            };
            cx.error_hint(&p.key(k), msg, hint);
        }
        let get = |k: &str| lookup(&entries, k).filter(|v| !v.is_null());

        let build = get("build").and_then(|b| self.build(cx, b, &p.key("build")));
        let image = match (cx.opt_string(get("image"), &p.key("image")), &build) {
            (Some(i), _) if !i.trim().is_empty() => i,
            (_, Some(_)) => format!("{}-{name}", self.project),
            (Some(_), None) => {
                cx.error_hint(
                    &p.key("image"),
                    "image is empty",
                    "if it comes from a variable such as ${DOCKER_IMAGE}, set it: DOCKER_IMAGE=app:42 cutover deploy",
                );
                return None;
            }
            (None, None) => {
                cx.error_hint(
                    p,
                    format!("service {name} has neither `image` nor `build`"),
                    "add `image: <reference>`",
                );
                return None;
            }
        };
        let command = get("command").and_then(|c| self.command(cx, c, &p.key("command")));
        let entrypoint = get("entrypoint").and_then(|c| self.command(cx, c, &p.key("entrypoint")));

        let mut environment = BTreeMap::new();
        if let Some(ef) = get("env_file") {
            self.env_file(cx, ef, &p.key("env_file"), &mut environment);
        }
        if let Some(env) = get("environment") {
            environment.extend(cx.str_map(env, &p.key("environment"), true));
        }

        let mounts = get("volumes")
            .map(|v| self.mounts(cx, v, &p.key("volumes")))
            .unwrap_or_default();
        let mut networks = self.service_networks(cx, get("networks"), &p.key("networks"));
        if !is_app {
            // Compose's implicit alias: other services reach an accessory by
            // its service name (REDIS_HOST=redis). Apps get none, since two
            // colors answering one name would bypass the proxy's switch.
            for n in &mut networks {
                if !n.aliases.iter().any(|a| a == name) {
                    n.aliases.insert(0, name.to_string());
                }
            }
        }
        let ports = get("ports")
            .map(|v| ports(cx, v, &p.key("ports")))
            .unwrap_or_default();
        let depends_on = get("depends_on")
            .map(|v| self.depends_on(cx, name, v, &p.key("depends_on")))
            .unwrap_or_default();
        let healthcheck =
            get("healthcheck").and_then(|v| healthcheck(cx, v, &p.key("healthcheck")));
        let restart = get("restart").and_then(|v| {
            let rp = p.key("restart");
            let r = cx.string(v, &rp)?;
            let ok = matches!(
                r.as_str(),
                "no" | "always" | "unless-stopped" | "on-failure"
            ) || r
                .strip_prefix("on-failure:")
                .is_some_and(|n| n.parse::<u32>().is_ok());
            if !ok {
                cx.error_hint(
                    &rp,
                    format!("unknown restart policy {r:?}"),
                    "use no, always, unless-stopped, on-failure or on-failure:<max retries>",
                );
            }
            ok.then_some(r)
        });
        let labels = get("labels")
            .map(|v| cx.str_map(v, &p.key("labels"), false))
            .unwrap_or_default();
        for k in labels.keys().filter(|k| k.starts_with("cutover.")) {
            cx.error_hint(
                &p.key("labels").key(k),
                format!("label {k} is reserved"),
                "cutover writes cutover.* labels itself to find its containers; rename the label",
            );
        }
        let user = cx.opt_string(get("user"), &p.key("user"));
        let working_dir = cx.opt_string(get("working_dir"), &p.key("working_dir"));
        let stop_grace_period =
            cx.opt_duration(get("stop_grace_period"), &p.key("stop_grace_period"));
        let extra_hosts = get("extra_hosts")
            .map(|v| extra_hosts(cx, v, &p.key("extra_hosts")))
            .unwrap_or_default();
        let logging = get("logging").and_then(|v| logging(cx, v, &p.key("logging")));

        let spec = ServiceSpec {
            name: name.to_string(),
            image,
            build,
            command,
            entrypoint,
            environment,
            mounts,
            networks,
            ports,
            depends_on,
            healthcheck,
            restart,
            labels,
            user,
            working_dir,
            stop_grace_period,
            extra_hosts,
            logging,
        };
        datastore_warnings(cx, &spec, p);
        let container_name = cx.opt_string(get("container_name"), &p.key("container_name"));
        if is_app {
            if container_name.is_some() {
                cx.error_hint(
                    &p.key("container_name"),
                    format!("an app cannot have a container_name: its two colors run side by side as {}-{name}-blue and {}-{name}-green", self.project, self.project),
                    "remove container_name; other services reach the app through cutover's proxy",
                );
            }
            for (i, port) in spec.ports.iter().enumerate() {
                if let Some(published) = port.published {
                    cx.error_hint(
                        &p.key("ports").index(i),
                        format!("an app cannot publish host port {published}: both colors would need it during a deploy"),
                        "remove it from ports; cutover's proxy serves the app and forwards to x-cutover.port",
                    );
                }
            }
            let cutover = app_settings(
                cx,
                entries
                    .iter()
                    .find(|(k, _)| k == "x-cutover")
                    .map(|(_, v)| *v)
                    .unwrap_or(&Value::Null),
                &p.key("x-cutover"),
            )?;
            Some(Resolved::App(AppSpec {
                service: spec,
                cutover,
            }))
        } else {
            let container_name =
                container_name.unwrap_or_else(|| format!("{}-{name}", self.project));
            Some(Resolved::Accessory(AccessorySpec {
                service: spec,
                container_name,
            }))
        }
    }

    fn build(&mut self, cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<BuildSpec> {
        let mut spec = BuildSpec {
            context: String::new(),
            dockerfile: None,
            args: BTreeMap::new(),
            target: None,
        };
        let context = match v {
            Value::Mapping(m) => {
                let e = cx.entries(m, p);
                cx.check_keys(&e, p, &["context", "dockerfile", "args", "target"], "build");
                for (k, val) in &e {
                    let kp = p.key(k);
                    match k.as_str() {
                        "dockerfile" => spec.dockerfile = cx.string(val, &kp),
                        "args" => spec.args = cx.str_map(val, &kp, true),
                        "target" => spec.target = cx.string(val, &kp),
                        _ => {}
                    }
                }
                match e.iter().find(|(k, _)| k == "context") {
                    Some((_, c)) => cx.string(c, &p.key("context"))?,
                    None => ".".to_string(),
                }
            }
            v => cx.string(v, p)?,
        };
        let is_url = [
            "http://",
            "https://",
            "git://",
            "git@",
            "ssh://",
            "github.com/",
        ]
        .iter()
        .any(|s| context.starts_with(s));
        spec.context = if is_url {
            context
        } else {
            self_path(cx, &context, &p.key("context"))?
                .display()
                .to_string()
        };
        Some(spec)
    }

    fn command(&mut self, cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<Vec<String>> {
        match v {
            Value::Sequence(_) => Some(cx.string_list(v, p)),
            Value::String(s) => match shell_split(s) {
                Ok(words) => Some(words),
                Err(e) => {
                    cx.error_hint(p, e, "or write the command as a list: [\"a\", \"b c\"]");
                    None
                }
            },
            v => {
                cx.error(p, format!("expected a string or a list, found {}", kind(v)));
                None
            }
        }
    }

    fn env_file(
        &mut self,
        cx: &mut Ctx<'_>,
        v: &Value,
        p: &KeyPath,
        env: &mut BTreeMap<String, String>,
    ) {
        let items: Vec<(KeyPath, &Value)> = match v {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (p.index(i), v))
                .collect(),
            v => vec![(p.clone(), v)],
        };
        for (ip, item) in items {
            let (path, required) = match item {
                Value::Mapping(m) => {
                    let e = cx.entries(m, &ip);
                    cx.check_keys(
                        &e,
                        &ip,
                        &["path", "required", "format"],
                        "an env_file entry",
                    );
                    let Some((_, path)) = e.iter().find(|(k, _)| k == "path") else {
                        cx.error(&ip, "missing `path`");
                        continue;
                    };
                    let Some(path) = cx.string(path, &ip.key("path")) else {
                        continue;
                    };
                    let required = match e.iter().find(|(k, _)| k == "required") {
                        Some((_, r)) => cx.boolean(r, &ip.key("required")).unwrap_or(true),
                        None => true,
                    };
                    (path, required)
                }
                v => match cx.string(v, &ip) {
                    Some(s) => (s, true),
                    None => continue,
                },
            };
            let Some(abs) = self_path(cx, &path, &ip) else {
                continue;
            };
            match self.env_files.read_env_file(&abs) {
                Ok(Some(pairs)) => env.extend(pairs),
                Ok(None) if !required => {}
                Ok(None) => cx.error_hint(
                    &ip,
                    format!("env file {} does not exist", abs.display()),
                    "create it, or write `env_file: {path: ..., required: false}`",
                ),
                Err(e) => {
                    let d = cx.diag(
                        None,
                        &ip,
                        format!("cannot read env file {}: {}", abs.display(), e.message),
                        e.hint,
                    );
                    cx.errors.push(d);
                }
            }
        }
    }

    fn mounts(&mut self, cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Vec<Mount> {
        let Value::Sequence(items) = v else {
            cx.error(p, format!("expected a list, found {}", kind(v)));
            return Vec::new();
        };
        let mut out: Vec<Mount> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let ip = p.index(i);
            let mount = match item {
                Value::String(s) => self.mount_short(cx, s, &ip),
                Value::Mapping(m) => self.mount_long(cx, m, &ip),
                v => {
                    cx.error(
                        &ip,
                        format!("expected \"source:target\" or a mapping, found {}", kind(v)),
                    );
                    None
                }
            };
            if let Some(m) = mount {
                if !m.target().starts_with('/') {
                    cx.error(
                        &ip,
                        format!("the container path {:?} must be absolute", m.target()),
                    );
                } else if out.iter().any(|o| o.target() == m.target()) {
                    cx.error(&ip, format!("{} is mounted twice", m.target()));
                } else {
                    out.push(m);
                }
            }
        }
        out
    }

    fn named_volume(&mut self, cx: &mut Ctx<'_>, key: &str, p: &KeyPath) -> Option<String> {
        match self.volumes.get(key) {
            Some(v) => Some(v.name.clone()),
            None => {
                cx.error_hint(
                    p,
                    format!("volume {key:?} is not declared"),
                    format!("add it under the top-level `volumes:` ({key}: {{}}), or write ./{key} for a folder beside the compose file"),
                );
                None
            }
        }
    }

    fn mount_short(&mut self, cx: &mut Ctx<'_>, s: &str, p: &KeyPath) -> Option<Mount> {
        let parts: Vec<&str> = s.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [t] => (None, *t, ""),
            [s, t] => (Some(*s), *t, ""),
            [s, t, m] => (Some(*s), *t, *m),
            _ => {
                cx.error(p, format!("expected \"source:target[:mode]\", found {s:?}"));
                return None;
            }
        };
        let (mut read_only, mut selinux, mut nocopy) = (false, None, false);
        for opt in mode.split(',').filter(|o| !o.is_empty()) {
            match opt {
                "ro" => read_only = true,
                "rw" => read_only = false,
                "z" | "Z" => selinux = Some(opt.to_string()),
                "nocopy" => nocopy = true,
                // Docker Desktop consistency hints; no effect on Linux.
                "cached" | "delegated" | "consistent" => {}
                _ => {
                    cx.error_hint(
                        p,
                        format!("unknown volume mode {opt:?}"),
                        "use ro, rw, z, Z or nocopy",
                    );
                    return None;
                }
            }
        }
        let target = target.to_string();
        Some(match source {
            None => Mount::Volume {
                source: None,
                target,
                read_only,
                nocopy,
            },
            Some(src) if src.starts_with(['.', '/', '~']) => Mount::Bind {
                source: self_path(cx, src, p)?,
                target,
                read_only,
                create_host_path: true,
                selinux,
            },
            Some(src) => Mount::Volume {
                source: Some(self.named_volume(cx, src, p)?),
                target,
                read_only,
                nocopy,
            },
        })
    }

    fn mount_long(
        &mut self,
        cx: &mut Ctx<'_>,
        m: &serde_norway::Mapping,
        p: &KeyPath,
    ) -> Option<Mount> {
        let e = cx.entries(m, p);
        cx.check_keys(
            &e,
            p,
            &[
                "type",
                "source",
                "target",
                "read_only",
                "bind",
                "volume",
                "tmpfs",
                "consistency",
            ],
            "a volume entry",
        );
        let get = |k: &str| lookup(&e, k);
        let Some(ty) = get("type").and_then(|t| cx.string(t, &p.key("type"))) else {
            cx.error_hint(p, "missing `type`", "use type: volume, bind or tmpfs");
            return None;
        };
        let Some(target) = get("target").and_then(|t| cx.string(t, &p.key("target"))) else {
            cx.error(p, "missing `target`");
            return None;
        };
        let read_only = get("read_only")
            .and_then(|v| cx.boolean(v, &p.key("read_only")))
            .unwrap_or(false);
        let source = cx.opt_string(get("source"), &p.key("source"));
        let sub = |cx: &mut Ctx<'_>, k: &str, allowed: &[&str]| -> BTreeMap<String, Value> {
            let Some(v) = get(k) else {
                return BTreeMap::new();
            };
            let sp = p.key(k);
            let Some(m) = cx.mapping(v, &sp) else {
                return BTreeMap::new();
            };
            let e = cx.entries(m, &sp);
            cx.check_keys(&e, &sp, allowed, k);
            e.into_iter().map(|(k, v)| (k, v.clone())).collect()
        };
        match ty.as_str() {
            "bind" => {
                let opts = sub(cx, "bind", &["create_host_path", "selinux", "propagation"]);
                let Some(src) = source else {
                    cx.error(p, "a bind mount needs `source`");
                    return None;
                };
                let create_host_path = opts
                    .get("create_host_path")
                    .and_then(|v| cx.boolean(v, &p.key("bind").key("create_host_path")))
                    .unwrap_or(true);
                let selinux = opts
                    .get("selinux")
                    .and_then(|v| cx.string(v, &p.key("bind").key("selinux")));
                Some(Mount::Bind {
                    source: self_path(cx, &src, &p.key("source"))?,
                    target,
                    read_only,
                    create_host_path,
                    selinux,
                })
            }
            "volume" => {
                let opts = sub(cx, "volume", &["nocopy"]);
                let nocopy = opts
                    .get("nocopy")
                    .and_then(|v| cx.boolean(v, &p.key("volume").key("nocopy")))
                    .unwrap_or(false);
                let source = match source {
                    Some(s) => Some(self.named_volume(cx, &s, &p.key("source"))?),
                    None => None,
                };
                Some(Mount::Volume {
                    source,
                    target,
                    read_only,
                    nocopy,
                })
            }
            "tmpfs" => {
                let opts = sub(cx, "tmpfs", &["size", "mode"]);
                let size = opts
                    .get("size")
                    .and_then(|v| cx.uint(v, &p.key("tmpfs").key("size"), u64::MAX));
                let mode = opts
                    .get("mode")
                    .and_then(|v| cx.uint(v, &p.key("tmpfs").key("mode"), 0o7777))
                    .map(|m| m as u32);
                Some(Mount::Tmpfs { target, size, mode })
            }
            other => {
                cx.error_hint(
                    &p.key("type"),
                    format!("mount type {other:?} is not supported"),
                    "use volume, bind or tmpfs",
                );
                None
            }
        }
    }

    fn service_networks(
        &mut self,
        cx: &mut Ctx<'_>,
        v: Option<&Value>,
        p: &KeyPath,
    ) -> Vec<ServiceNetwork> {
        let mut wanted: Vec<(String, KeyPath, Vec<String>)> = Vec::new();
        match v {
            None => {}
            Some(Value::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(n) = cx.string(item, &p.index(i)) {
                        wanted.push((n, p.index(i), Vec::new()));
                    }
                }
            }
            Some(Value::Mapping(m)) => {
                for (k, val) in cx.entries(m, p) {
                    let kp = p.key(&k);
                    let mut aliases = Vec::new();
                    if let Some(nm) = val.as_mapping() {
                        let e = cx.entries(nm, &kp);
                        cx.check_keys(&e, &kp, &["aliases"], "a service network");
                        if let Some((_, a)) = e.iter().find(|(k, _)| k == "aliases") {
                            aliases = cx.string_list(a, &kp.key("aliases"));
                        }
                    } else if !val.is_null() {
                        cx.error(&kp, format!("expected a mapping, found {}", kind(val)));
                    }
                    wanted.push((k, kp, aliases));
                }
            }
            Some(other) => cx.error(
                p,
                format!("expected a list or a mapping, found {}", kind(other)),
            ),
        }
        if wanted.is_empty() {
            wanted.push(("default".into(), p.clone(), Vec::new()));
        }
        let mut out = Vec::new();
        for (key, kp, aliases) in wanted {
            let name = match self.networks.get(&key) {
                Some(n) => n.name.clone(),
                None if key == "default" => {
                    self.default_network_used = true;
                    format!("{}_default", self.project)
                }
                None => {
                    cx.error_hint(
                        &kp,
                        format!("network {key:?} is not declared"),
                        format!("add it under the top-level `networks:` ({key}: {{}}; add `external: true` if it already exists outside this project)"),
                    );
                    continue;
                }
            };
            out.push(ServiceNetwork { key, name, aliases });
        }
        out
    }

    fn depends_on(
        &mut self,
        cx: &mut Ctx<'_>,
        me: &str,
        v: &Value,
        p: &KeyPath,
    ) -> Vec<Dependency> {
        let mut out = Vec::new();
        let mut add = |cx: &mut Ctx<'_>, dep: String, kp: &KeyPath, condition, required| {
            if !self.services.contains(&dep) {
                cx.error_hint(
                    kp,
                    format!("depends on undefined service {dep:?}"),
                    format!(
                        "services in this project: {}",
                        self.services.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            } else if dep == me {
                cx.error(kp, "a service cannot depend on itself");
            } else if self.apps.contains(&dep) && !self.apps.contains(me) {
                cx.error_hint(
                    kp,
                    format!("accessory {me} depends on app {dep}"),
                    "accessories start before apps; move the dependency to the app",
                );
            } else {
                out.push(Dependency {
                    service: dep,
                    condition,
                    required,
                });
            }
        };
        match v {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(dep) = cx.string(item, &p.index(i)) {
                        add(cx, dep, &p.index(i), DependsCondition::ServiceStarted, true);
                    }
                }
            }
            Value::Mapping(m) => {
                for (dep, val) in cx.entries(m, p) {
                    let kp = p.key(&dep);
                    let mut condition = DependsCondition::ServiceStarted;
                    let mut required = true;
                    if let Some(dm) = val.as_mapping() {
                        let e = cx.entries(dm, &kp);
                        cx.check_keys(
                            &e,
                            &kp,
                            &["condition", "required", "restart"],
                            "a depends_on entry",
                        );
                        for (k, val) in &e {
                            match k.as_str() {
                                "condition" => match cx.string(val, &kp.key(k)).as_deref() {
                                    Some("service_started") => condition = DependsCondition::ServiceStarted,
                                    Some("service_healthy") => condition = DependsCondition::ServiceHealthy,
                                    Some("service_completed_successfully") => condition = DependsCondition::ServiceCompletedSuccessfully,
                                    Some(other) => cx.error_hint(&kp.key(k), format!("unknown condition {other:?}"), "use service_started, service_healthy or service_completed_successfully"),
                                    None => {}
                                },
                                "required" => required = cx.boolean(val, &kp.key(k)).unwrap_or(true),
                                // Compose's restart-with-dependency: the daemon
                                // never restarts an accessory for an app.
                                _ => {}
                            }
                        }
                    } else if !val.is_null() {
                        cx.error(&kp, format!("expected a mapping, found {}", kind(val)));
                    }
                    add(cx, dep, &kp, condition, required);
                }
            }
            other => cx.error(
                p,
                format!("expected a list or a mapping, found {}", kind(other)),
            ),
        }
        out
    }
}

fn self_path(cx: &mut Ctx<'_>, raw: &str, p: &KeyPath) -> Option<PathBuf> {
    cx.host_path(raw, p)
}

/// `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`, where either port may be
/// a range `a-b`.
pub fn parse_port_short(s: &str) -> Result<Vec<PortSpec>, String> {
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, proto)) => (spec, proto.to_string()),
        None => (s, "tcp".to_string()),
    };
    if protocol != "tcp" && protocol != "udp" {
        return Err(format!("unknown protocol {protocol:?}; use tcp or udp"));
    }
    let (host_ip, rest) = if let Some(after) = spec.strip_prefix('[') {
        let (ip, rest) = after
            .split_once(']')
            .ok_or("an IPv6 address misses its closing ]")?;
        (
            Some(ip.to_string()),
            rest.strip_prefix(':')
                .ok_or("expected \":\" after the IPv6 address")?,
        )
    } else {
        match spec.matches(':').count() {
            0 | 1 => (None, spec),
            2 => {
                let (ip, rest) = spec.split_once(':').unwrap_or_default();
                (Some(ip.to_string()), rest)
            }
            _ => return Err("write an IPv6 host address in brackets: \"[::1]:8080:80\"".into()),
        }
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (Some(p), t),
        None => (None, rest),
    };
    let targets = port_range(target)?;
    let published = match published {
        None | Some("") => vec![None; targets.len()],
        Some(p) => {
            let ps = port_range(p)?;
            if ps.len() != targets.len() {
                return Err("the host and container port ranges have different lengths".into());
            }
            ps.into_iter().map(Some).collect()
        }
    };
    let host_ip = host_ip.filter(|ip| !ip.is_empty());
    Ok(targets
        .into_iter()
        .zip(published)
        .map(|(target, published)| PortSpec {
            target,
            published,
            host_ip: host_ip.clone(),
            protocol: protocol.clone(),
        })
        .collect())
}

fn port_range(s: &str) -> Result<Vec<u16>, String> {
    let one = |p: &str| match p.trim().parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{p:?} is not a port number")),
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if a > b {
                return Err(format!("the port range {s} runs backwards"));
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![one(s)?]),
    }
}

fn ports(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Vec<PortSpec> {
    let Value::Sequence(items) = v else {
        cx.error(p, format!("expected a list, found {}", kind(v)));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let ip = p.index(i);
        match item {
            Value::String(_) | Value::Number(_) => {
                let s = show(item).trim_matches('"').to_string();
                let s = if let Value::String(s) = item {
                    s.clone()
                } else {
                    s
                };
                match parse_port_short(&s) {
                    Ok(ps) => out.extend(ps),
                    Err(e) => cx.error_hint(&ip, format!("invalid port {s:?}: {e}"), "write [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], e.g. \"127.0.0.1:6379:6379\""),
                }
            }
            Value::Mapping(m) => {
                let e = cx.entries(m, &ip);
                cx.check_keys(
                    &e,
                    &ip,
                    &[
                        "target",
                        "published",
                        "host_ip",
                        "protocol",
                        "mode",
                        "name",
                        "app_protocol",
                    ],
                    "a port entry",
                );
                let get = |k: &str| lookup(&e, k);
                let Some(target) = get("target").and_then(|t| cx.port(t, &ip.key("target"))) else {
                    if get("target").is_none() {
                        cx.error(&ip, "missing `target`");
                    }
                    continue;
                };
                let protocol = cx
                    .opt_string(get("protocol"), &ip.key("protocol"))
                    .unwrap_or_else(|| "tcp".into());
                if protocol != "tcp" && protocol != "udp" {
                    cx.error_hint(
                        &ip.key("protocol"),
                        format!("unknown protocol {protocol:?}"),
                        "use tcp or udp",
                    );
                    continue;
                }
                let host_ip = cx.opt_string(get("host_ip"), &ip.key("host_ip"));
                let published = match get("published").filter(|v| !v.is_null()) {
                    None => vec![None],
                    Some(pv) => {
                        let Some(ps) = cx.string(pv, &ip.key("published")) else {
                            continue;
                        };
                        match port_range(&ps) {
                            Ok(r) if r.len() == 1 => vec![Some(r[0])],
                            Ok(_) => {
                                cx.error(&ip.key("published"), "a range needs the short syntax with a range of container ports too");
                                continue;
                            }
                            Err(e) => {
                                cx.error(&ip.key("published"), e);
                                continue;
                            }
                        }
                    }
                };
                out.extend(published.into_iter().map(|published| PortSpec {
                    target,
                    published,
                    host_ip: host_ip.clone(),
                    protocol: protocol.clone(),
                }));
            }
            other => cx.error(
                &ip,
                format!("expected a port string or a mapping, found {}", kind(other)),
            ),
        }
    }
    out
}

fn healthcheck(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<Healthcheck> {
    let m = cx.mapping(v, p)?;
    let e = cx.entries(m, p);
    cx.check_keys(
        &e,
        p,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "start_interval",
            "disable",
        ],
        "healthcheck",
    );
    let get = |k: &str| lookup(&e, k).filter(|v| !v.is_null());
    let disable = get("disable")
        .and_then(|d| cx.boolean(d, &p.key("disable")))
        .unwrap_or(false);
    let test = match get("test") {
        _ if disable => vec!["NONE".to_string()],
        None => Vec::new(),
        Some(Value::String(s)) => vec!["CMD-SHELL".to_string(), s.clone()],
        Some(t) => {
            let list = cx.string_list(t, &p.key("test"));
            if !matches!(
                list.first().map(String::as_str),
                Some("NONE" | "CMD" | "CMD-SHELL")
            ) {
                cx.error_hint(
                    &p.key("test"),
                    "a test list must start with CMD, CMD-SHELL or NONE",
                    "e.g. [\"CMD\", \"redis-cli\", \"ping\"], or a string to run in a shell",
                );
            }
            list
        }
    };
    Some(Healthcheck {
        test,
        interval: cx.opt_duration(get("interval"), &p.key("interval")),
        timeout: cx.opt_duration(get("timeout"), &p.key("timeout")),
        start_period: cx.opt_duration(get("start_period"), &p.key("start_period")),
        start_interval: cx.opt_duration(get("start_interval"), &p.key("start_interval")),
        retries: get("retries")
            .and_then(|r| cx.uint(r, &p.key("retries"), u32::MAX as u64))
            .map(|r| r as u32),
    })
}

fn extra_hosts(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let Some(s) = cx.string(item, &p.index(i)) else {
                    continue;
                };
                // `host=ip` is Compose's form for IPv6 addresses.
                let split = s.split_once('=').or_else(|| s.split_once(':'));
                match split {
                    Some((h, ip)) if !h.is_empty() && !ip.is_empty() => {
                        out.push(format!("{h}:{ip}"))
                    }
                    _ => cx.error_hint(
                        &p.index(i),
                        format!("expected \"host:ip\", found {s:?}"),
                        "e.g. \"host.docker.internal:host-gateway\"",
                    ),
                }
            }
        }
        Value::Mapping(m) => {
            for (h, ip) in cx.entries(m, p) {
                let ips = cx.string_list(ip, &p.key(&h));
                out.extend(ips.into_iter().map(|ip| format!("{h}:{ip}")));
            }
        }
        other => cx.error(
            p,
            format!("expected a list or a mapping, found {}", kind(other)),
        ),
    }
    out
}

fn logging(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<Logging> {
    let m = cx.mapping(v, p)?;
    let e = cx.entries(m, p);
    cx.check_keys(&e, p, &["driver", "options"], "logging");
    let get = |k: &str| lookup(&e, k).filter(|v| !v.is_null());
    Some(Logging {
        driver: cx.opt_string(get("driver"), &p.key("driver")),
        options: get("options")
            .map(|o| cx.str_map(o, &p.key("options"), false))
            .unwrap_or_default(),
    })
}

fn app_settings(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<AppSettings> {
    let empty = serde_norway::Mapping::new();
    let m = if v.is_null() {
        &empty
    } else {
        cx.mapping(v, p)?
    };
    let e = cx.entries(m, p);
    cx.check_keys(&e, p, CUTOVER_KEYS, "x-cutover");
    let get = |k: &str| lookup(&e, k).filter(|v| !v.is_null());
    let port = match get("port") {
        Some(v) => cx.port(v, &p.key("port")),
        None => {
            cx.error_hint(
                p,
                "missing `port`",
                "set x-cutover.port to the port the app listens on inside the container, e.g. 8080",
            );
            None
        }
    };
    let mut health = HealthCheck::default();
    if let Some(h) = get("health") {
        let hp = p.key("health");
        if let Some(hm) = cx.mapping(h, &hp) {
            let he = cx.entries(hm, &hp);
            cx.check_keys(
                &he,
                &hp,
                &["path", "interval", "timeout", "host"],
                "x-cutover.health",
            );
            for (k, val) in &he {
                let kp = hp.key(k);
                match k.as_str() {
                    "path" => match cx.string(val, &kp) {
                        Some(s) if s.starts_with('/') => health.path = s,
                        Some(s) => cx.error_hint(
                            &kp,
                            format!("{s:?} is not a path"),
                            format!("start it with /, e.g. \"/{s}\""),
                        ),
                        None => {}
                    },
                    "interval" => {
                        health.interval = cx.duration(val, &kp).unwrap_or(health.interval)
                    }
                    "timeout" => health.timeout = cx.duration(val, &kp).unwrap_or(health.timeout),
                    "host" => health.host = cx.string(val, &kp),
                    _ => {}
                }
            }
        }
    }
    let hosts = get("hosts")
        .map(|h| cx.string_list(h, &p.key("hosts")))
        .unwrap_or_default();
    let path_prefix = cx.opt_string(get("path_prefix"), &p.key("path_prefix"));
    if let Some(pp) = &path_prefix {
        if !pp.starts_with('/') {
            cx.error_hint(
                &p.key("path_prefix"),
                format!("{pp:?} is not a path"),
                format!("start it with /, e.g. \"/{pp}\""),
            );
        }
    }
    let mut timeouts = Timeouts::default();
    if let Some(d) = cx.opt_duration(get("deploy_timeout"), &p.key("deploy_timeout")) {
        timeouts.deploy = d;
    }
    if let Some(d) = cx.opt_duration(get("drain_timeout"), &p.key("drain_timeout")) {
        timeouts.drain = d;
    }
    if let Some(d) = cx.opt_duration(
        get("websocket_drain_timeout"),
        &p.key("websocket_drain_timeout"),
    ) {
        timeouts.websocket_drain = d;
    }
    let keep = get("keep")
        .and_then(|k| cx.uint(k, &p.key("keep"), 100))
        .map(|k| k as u32)
        .unwrap_or(DEFAULT_KEEP);
    Some(AppSettings {
        port: port?,
        health,
        hosts,
        path_prefix,
        timeouts,
        keep,
    })
}

fn datastore_warnings(cx: &mut Ctx<'_>, spec: &ServiceSpec, p: &KeyPath) {
    for (i, port) in spec.ports.iter().enumerate() {
        let everywhere = matches!(port.host_ip.as_deref(), None | Some("0.0.0.0") | Some("::"));
        let known = DATASTORE_PORTS
            .iter()
            .find(|(n, _)| *n == port.target || Some(*n) == port.published);
        if let (true, Some((_, what))) = (everywhere, known) {
            let host_port = port
                .published
                .map(|n| n.to_string())
                .unwrap_or_else(|| "an ephemeral port".into());
            cx.warn(
                &p.key("ports").index(i),
                format!("{} publishes {what} port {} on every interface (host port {host_port}): anyone who can reach this host can connect", spec.name, port.target),
                Some(format!(
                    "services on the project network reach it as {}:{} without ports; to reach it from this host only, write \"127.0.0.1:{}:{}\"",
                    spec.name,
                    port.target,
                    port.published.unwrap_or(port.target),
                    port.target
                )),
            );
        }
    }
}

/// Orders services so each comes after what it depends on; a cycle is an error.
fn dependency_order(
    cx: &mut Ctx<'_>,
    services_p: &KeyPath,
    apps: &[AppSpec],
    accessories: &[AccessorySpec],
) -> Option<Vec<String>> {
    let all: Vec<&ServiceSpec> = accessories
        .iter()
        .map(|a| &a.service)
        .chain(apps.iter().map(|a| &a.service))
        .collect();
    let mut order: Vec<String> = Vec::new();
    let mut remaining: Vec<&ServiceSpec> = all.clone();
    while !remaining.is_empty() {
        let (ready, blocked): (Vec<&ServiceSpec>, Vec<&ServiceSpec>) =
            remaining.into_iter().partition(|s| {
                s.depends_on
                    .iter()
                    .all(|d| order.contains(&d.service) || !all.iter().any(|o| o.name == d.service))
            });
        if ready.is_empty() {
            let names: Vec<&str> = blocked.iter().map(|s| s.name.as_str()).collect();
            cx.error_hint(
                &services_p.key(names[0]).key("depends_on"),
                format!("depends_on forms a cycle between {}", names.join(", ")),
                "remove one of the dependencies",
            );
            return None;
        }
        order.extend(ready.iter().map(|s| s.name.clone()));
        remaining = blocked;
    }
    Some(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words() {
        assert_eq!(
            shell_split(r#"java -jar "app x.jar" 'a b' c\ d"#).unwrap(),
            ["java", "-jar", "app x.jar", "a b", "c d"]
        );
        assert_eq!(shell_split("  ").unwrap(), Vec::<String>::new());
        assert_eq!(shell_split("a \"\"").unwrap(), ["a", ""]);
        assert!(shell_split("a 'b").is_err());
    }

    #[test]
    fn project_names() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("_x-Y_"), "x-y_");
        assert!(is_valid_project_name("athens"));
        assert!(!is_valid_project_name("Athens"));
        assert!(!is_valid_project_name("-a"));
    }

    #[test]
    fn short_ports() {
        let p = |s| parse_port_short(s).unwrap();
        assert_eq!(
            p("80"),
            [PortSpec {
                target: 80,
                published: None,
                host_ip: None,
                protocol: "tcp".into()
            }]
        );
        assert_eq!(
            p("8080:80/udp"),
            [PortSpec {
                target: 80,
                published: Some(8080),
                host_ip: None,
                protocol: "udp".into()
            }]
        );
        assert_eq!(
            p("127.0.0.1:6379:6379")[0].host_ip.as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(p("127.0.0.1::80")[0].published, None);
        assert_eq!(
            p("[::1]:80:8080")[0],
            PortSpec {
                target: 8080,
                published: Some(80),
                host_ip: Some("::1".into()),
                protocol: "tcp".into()
            }
        );
        assert_eq!(
            p("9000-9001:8000-8001")
                .iter()
                .map(|p| (p.published, p.target))
                .collect::<Vec<_>>(),
            [(Some(9000), 8000), (Some(9001), 8001)]
        );
        assert!(parse_port_short("9000-9002:80").is_err());
        assert!(parse_port_short("http").is_err());
        assert!(parse_port_short("80/sctp").is_err());
    }

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
    fn suggestions() {
        assert_eq!(
            did_you_mean("enviroment", SERVICE_KEYS),
            Some("environment")
        );
        assert_eq!(did_you_mean("prot", CUTOVER_KEYS), Some("port"));
        assert_eq!(did_you_mean("healthz", CUTOVER_KEYS), Some("health"));
        assert_eq!(did_you_mean("zzzzzz", CUTOVER_KEYS), None);
    }
}
