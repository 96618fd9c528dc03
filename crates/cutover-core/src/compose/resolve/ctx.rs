//! The resolver's context: the input, the diagnostics found so far, and
//! the typed readers every key goes through, so a wrong type is reported
//! the same way (file, line, key path, what was expected) wherever it is.

use super::*;

pub(super) struct Ctx<'a> {
    pub(super) input: &'a LoadInput,
    /// Each file read, as shown in messages, with where it wrote what: the
    /// -f files in order, then included and extended ones.
    pub(super) sources: Vec<(String, Positions)>,
    pub(super) errors: Vec<Diagnostic>,
    pub(super) warnings: Vec<Diagnostic>,
}

impl Ctx<'_> {
    /// Locates `path` in the file that last defines it (later files override),
    /// falling back to the deepest ancestor found.
    pub(super) fn diag(
        &self,
        file: Option<usize>,
        path: &KeyPath,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        let mut best: Option<(usize, usize, Option<Position>)> = None;
        for (i, (_, positions)) in self.sources.iter().enumerate() {
            if file.is_some_and(|only| only != i) {
                continue;
            }
            let (depth, at) = positions.locate(path);
            if best.is_none_or(|(d, _, _)| depth >= d) && (depth > 0 || best.is_none()) {
                best = Some((depth, i, at));
            }
        }
        let (file, at) = match best {
            Some((_, i, at)) => (Some(self.sources[i].0.clone()), at),
            None => (None, None),
        };
        Diagnostic {
            file,
            line: at.map(|a| a.line),
            column: at.map(|a| a.column),
            key: path.to_string(),
            message,
            hint,
        }
    }

    pub(super) fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        let d = self.diag(None, path, message.into(), None);
        self.errors.push(d);
    }

    pub(super) fn error_hint(
        &mut self,
        path: &KeyPath,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let d = self.diag(None, path, message.into(), Some(hint.into()));
        self.errors.push(d);
    }

    pub(super) fn warn(
        &mut self,
        path: &KeyPath,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let d = self.diag(None, path, message.into(), hint);
        self.warnings.push(d);
    }

    pub(super) fn env(&self, name: &str) -> Option<String> {
        self.input.env.get(name).cloned()
    }

    // Typed readers. After interpolation every scalar may be a string, so
    // numbers and booleans are accepted in string form, as Compose does.

    pub(super) fn string(&mut self, v: &Value, p: &KeyPath) -> Option<String> {
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

    pub(super) fn opt_string(&mut self, v: Option<&Value>, p: &KeyPath) -> Option<String> {
        v.filter(|v| !v.is_null()).and_then(|v| self.string(v, p))
    }

    pub(super) fn boolean(&mut self, v: &Value, p: &KeyPath) -> Option<bool> {
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

    pub(super) fn uint(&mut self, v: &Value, p: &KeyPath, max: u64) -> Option<u64> {
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

    pub(super) fn int(&mut self, v: &Value, p: &KeyPath) -> Option<i64> {
        let n = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        if n.is_none() {
            self.error(p, format!("expected a whole number, found {}", show(v)));
        }
        n
    }

    /// A size in bytes: a number, or one with Docker's binary units
    /// (`512m`, `1g`, `64k`, `1.5gb`), as Compose reads `mem_limit`.
    pub(super) fn bytes(&mut self, v: &Value, p: &KeyPath) -> Option<u64> {
        let parsed = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => parse_bytes(s),
            _ => None,
        };
        if parsed.is_none() {
            self.error_hint(
                p,
                format!("expected a size, found {}", show(v)),
                "write bytes or a number with a unit: 512m, 1g, 64k",
            );
        }
        parsed
    }

    /// `cpus:` (`1.5`, `"0.25"`) in billionths of a CPU.
    pub(super) fn cpus(&mut self, v: &Value, p: &KeyPath) -> Option<u64> {
        let parsed = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|c| c.is_finite() && *c >= 0.0)
        .map(|c| (c * 1e9).round() as u64);
        if parsed.is_none() {
            self.error_hint(
                p,
                format!("expected a number of CPUs, found {}", show(v)),
                "e.g. 1.5 or \"0.25\"",
            );
        }
        parsed
    }

    pub(super) fn port(&mut self, v: &Value, p: &KeyPath) -> Option<u16> {
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

    pub(super) fn duration(&mut self, v: &Value, p: &KeyPath) -> Option<Duration> {
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

    pub(super) fn opt_duration(&mut self, v: Option<&Value>, p: &KeyPath) -> Option<Duration> {
        v.filter(|v| !v.is_null()).and_then(|v| self.duration(v, p))
    }

    /// A string or a list of strings.
    pub(super) fn string_list(&mut self, v: &Value, p: &KeyPath) -> Vec<String> {
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

    pub(super) fn mapping<'v>(
        &mut self,
        v: &'v Value,
        p: &KeyPath,
    ) -> Option<&'v serde_norway::Mapping> {
        match v {
            Value::Mapping(m) => Some(m),
            _ => {
                self.error(p, format!("expected a mapping, found {}", kind(v)));
                None
            }
        }
    }

    /// The items of a list, each with its key path; an error and none when
    /// `v` is not a list.
    pub(super) fn items<'v>(&mut self, v: &'v Value, p: &KeyPath) -> Vec<(KeyPath, &'v Value)> {
        match v {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (p.index(i), item))
                .collect(),
            _ => {
                self.error(p, format!("expected a list, found {}", kind(v)));
                Vec::new()
            }
        }
    }

    /// Entries of a mapping whose keys must be strings.
    pub(super) fn entries<'v>(
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
    pub(super) fn check_keys(
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
    pub(super) fn str_map(
        &mut self,
        v: &Value,
        p: &KeyPath,
        from_env: bool,
    ) -> BTreeMap<String, String> {
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
pub(super) fn lookup<'v>(entries: &[(String, &'v Value)], key: &str) -> Option<&'v Value> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

pub(super) fn kind(v: &Value) -> &'static str {
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

pub(super) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        v => kind(v).to_string(),
    }
}

/// docker/go-units' `RAMInBytes`: a decimal number and an optional unit
/// `b`, `k`, `m`, `g`, `t`, `p` (each may end in `b`), 1024-based, any case.
pub(super) fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let num: f64 = num.parse().ok()?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix('b')
        .filter(|u| !u.is_empty())
        .unwrap_or(unit);
    let power = match unit {
        "" | "b" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    Some((num * 1024f64.powi(power)) as u64)
}
