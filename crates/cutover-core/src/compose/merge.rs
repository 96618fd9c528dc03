//! Merging `-f` files with the Compose spec's rules: mappings merge, most
//! sequences append, and some keys merge by identity (environment by name,
//! volumes by target, ports by value) or are replaced whole (command).
//! `!reset` removes a value and `!override` replaces it without merging.

use serde_norway::{Mapping, Value};

use super::resolve::clean_container_path;

/// Merges `over` (a later file) into `base`.
pub fn merge_files(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            for (k, v) in o {
                let key = k.as_str().unwrap_or_default().to_string();
                let merged = match key.as_str() {
                    "services" | "networks" | "volumes" => merge_with(b.remove(&k), v, |b, o| {
                        if key == "services" {
                            merge_service(b, o)
                        } else {
                            merge_generic(b, o)
                        }
                    }),
                    _ => resolve_tags(b.remove(&k), v, merge_generic),
                };
                if let Some(m) = merged {
                    b.insert(k, m);
                }
            }
            Value::Mapping(b)
        }
        (_, over) => over,
    }
}

/// Applies `!reset` / `!override` on `over`, else merges with `f`. `None` means
/// the key is gone.
fn resolve_tags(base: Option<Value>, over: Value, f: fn(Value, Value) -> Value) -> Option<Value> {
    if let Value::Tagged(t) = &over {
        if t.tag == "reset" {
            return None;
        }
        if t.tag == "override" {
            return Some(t.value.clone());
        }
    }
    Some(match base {
        Some(b) => f(b, over),
        None => over,
    })
}

/// Merges two mappings of named entries (services, networks, volumes).
fn merge_with(
    base: Option<Value>,
    over: Value,
    f: impl Fn(Value, Value) -> Value,
) -> Option<Value> {
    if let Value::Tagged(t) = &over {
        if t.tag == "reset" {
            return None;
        }
        if t.tag == "override" {
            return Some(t.value.clone());
        }
    }
    match (base, over) {
        (Some(Value::Mapping(mut b)), Value::Mapping(o)) => {
            for (k, v) in o {
                let merged = match b.remove(&k) {
                    Some(old) if !is_tag(&v, "override") && !is_tag(&v, "reset") => Some(f(old, v)),
                    _ => strip_tag(v),
                };
                if let Some(m) = merged {
                    b.insert(k, m);
                }
            }
            Some(Value::Mapping(b))
        }
        (_, over) => Some(over),
    }
}

fn is_tag(v: &Value, tag: &str) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == tag)
}

fn strip_tag(v: Value) -> Option<Value> {
    match v {
        Value::Tagged(t) if t.tag == "reset" => None,
        Value::Tagged(t) if t.tag == "override" => Some(t.value),
        v => Some(v),
    }
}

/// Applies `!reset` / `!override` left in the merged document (a single file
/// may use them too): a reset value disappears, an override is its content.
pub fn strip_tags(v: Value) -> Option<Value> {
    match v {
        Value::Tagged(t) if t.tag == "reset" => None,
        Value::Tagged(t) if t.tag == "override" => strip_tags(t.value),
        Value::Mapping(m) => Some(Value::Mapping(
            m.into_iter()
                .filter_map(|(k, v)| strip_tags(v).map(|v| (k, v)))
                .collect(),
        )),
        Value::Sequence(items) => Some(Value::Sequence(
            items.into_iter().filter_map(strip_tags).collect(),
        )),
        v => Some(v),
    }
}

/// Mappings merge recursively, sequences append, scalars are replaced.
pub fn merge_generic(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            for (k, v) in o {
                let merged = resolve_tags(b.remove(&k), v, merge_generic);
                if let Some(m) = merged {
                    b.insert(k, m);
                }
            }
            Value::Mapping(b)
        }
        (Value::Sequence(mut b), Value::Sequence(o)) => {
            b.extend(o);
            Value::Sequence(b)
        }
        (_, over) => over,
    }
}

/// One service merged over another: by a later `-f` file, or over the
/// service it `extends`.
pub(crate) fn merge_service(base: Value, over: Value) -> Value {
    let (mut b, o) = match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => (b, o),
        (_, o) => return o,
    };
    for (k, v) in o {
        let key = k.as_str().unwrap_or_default().to_string();
        let f: fn(Value, Value) -> Value = match key.as_str() {
            "command" | "entrypoint" | "x-cutover" => replace_or_merge_map,
            "environment" | "labels" => merge_keyed_list,
            "networks" | "depends_on" => merge_name_list,
            "volumes" => merge_volumes,
            "ports" | "env_file" | "extra_hosts" => append_unique,
            "build" => merge_build,
            "healthcheck" => merge_healthcheck,
            "logging" => merge_logging,
            _ => merge_generic,
        };
        if let Some(m) = resolve_tags(b.remove(&k), v, f) {
            b.insert(k, m);
        }
    }
    Value::Mapping(b)
}

/// `command`/`entrypoint` are replaced whole; `x-cutover` merges as a mapping
/// whose lists (hosts) are replaced, since appending hosts would surprise.
fn replace_or_merge_map(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            for (k, v) in o {
                let merged = resolve_tags(b.remove(&k), v, replace_or_merge_map);
                if let Some(m) = merged {
                    b.insert(k, m);
                }
            }
            Value::Mapping(b)
        }
        (_, over) => over,
    }
}

/// `KEY=VALUE` lists (environment, labels) or `host:ip` lists (extra_hosts)
/// become mappings, so a later file overrides one key.
pub fn keyed_list_to_map(v: Value) -> Value {
    match v {
        Value::Sequence(items) => {
            let mut m = Mapping::new();
            for item in items {
                match item.as_str() {
                    Some(s) => {
                        let (k, val) = match s.split_once('=') {
                            Some((k, val)) => (k.to_string(), Value::String(val.to_string())),
                            None => (s.to_string(), Value::Null),
                        };
                        m.insert(Value::String(k), val);
                    }
                    // Left for the resolver to report with its position.
                    None => return Value::Sequence(vec![item]),
                }
            }
            Value::Mapping(m)
        }
        v => v,
    }
}

fn merge_keyed_list(base: Value, over: Value) -> Value {
    merge_generic(keyed_list_to_map(base), keyed_list_to_map(over))
}

/// `networks: [a, b]` / `depends_on: [a]` become `{a: null}` so they merge
/// with the long form.
fn name_list_to_map(v: Value) -> Value {
    match v {
        Value::Sequence(items) if items.iter().all(|i| i.is_string()) => {
            Value::Mapping(items.into_iter().map(|i| (i, Value::Null)).collect())
        }
        v => v,
    }
}

fn merge_name_list(base: Value, over: Value) -> Value {
    match (name_list_to_map(base), name_list_to_map(over)) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            for (k, v) in o {
                let merged = match b.remove(&k) {
                    Some(old) if !v.is_null() => merge_generic(old, v),
                    Some(old) => old,
                    None => v,
                };
                b.insert(k, merged);
            }
            Value::Mapping(b)
        }
        (_, o) => o,
    }
}

/// Mount target of a short (`src:target[:mode]`) or long volume entry.
pub fn volume_target(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            Some(clean_container_path(if parts.len() == 1 {
                parts[0]
            } else {
                parts[1]
            }))
        }
        Value::Mapping(m) => m
            .get("target")
            .and_then(|t| t.as_str())
            .map(clean_container_path),
        _ => None,
    }
}

fn merge_volumes(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Sequence(mut b), Value::Sequence(o)) => {
            for item in o {
                let target = volume_target(&item);
                match b
                    .iter()
                    .position(|x| target.is_some() && volume_target(x) == target)
                {
                    Some(i) => b[i] = item,
                    None => b.push(item),
                }
            }
            Value::Sequence(b)
        }
        (_, o) => o,
    }
}

fn append_unique(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Sequence(mut b), Value::Sequence(o)) => {
            for item in o {
                if !b.contains(&item) {
                    b.push(item);
                }
            }
            Value::Sequence(b)
        }
        (Value::Sequence(mut b), o @ Value::String(_)) => {
            if !b.contains(&o) {
                b.push(o);
            }
            Value::Sequence(b)
        }
        (b @ Value::String(_), o) => append_unique(Value::Sequence(vec![b]), o),
        (_, o) => o,
    }
}

fn build_to_map(v: Value) -> Value {
    match v {
        Value::String(s) => {
            let mut m = Mapping::new();
            m.insert("context".into(), Value::String(s));
            Value::Mapping(m)
        }
        Value::Mapping(mut m) => {
            if let Some(args) = m.remove("args") {
                m.insert("args".into(), keyed_list_to_map(args));
            }
            Value::Mapping(m)
        }
        v => v,
    }
}

fn merge_build(base: Value, over: Value) -> Value {
    merge_generic(build_to_map(base), build_to_map(over))
}

fn merge_healthcheck(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            for (k, v) in o {
                let f: fn(Value, Value) -> Value = if k.as_str() == Some("test") {
                    |_, o| o
                } else {
                    merge_generic
                };
                if let Some(m) = resolve_tags(b.remove(&k), v, f) {
                    b.insert(k, m);
                }
            }
            Value::Mapping(b)
        }
        (_, o) => o,
    }
}

/// A different driver makes the old options meaningless, so they go.
fn merge_logging(base: Value, over: Value) -> Value {
    let driver = |v: &Value| v.get("driver").and_then(|d| d.as_str()).map(str::to_string);
    match (driver(&base), driver(&over)) {
        (Some(a), Some(b)) if a != b => over,
        _ => merge_generic(base, over),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn service_rules() {
        let base = y(r#"
services:
  web:
    image: app:1
    command: ["a", "b"]
    environment: [A=1, B=2]
    ports: ["80:80"]
    volumes: ["./a:/data", "logs:/log"]
    networks: [front]
    healthcheck: {test: [CMD, a], interval: 5s}
"#);
        let over = y(r#"
services:
  web:
    image: app:2
    command: ["c"]
    environment: {B: "3", C: "4"}
    ports: ["80:80", "443:443"]
    volumes: ["./b:/data"]
    networks: {back: {aliases: [w]}}
    healthcheck: {test: [CMD, b]}
    labels: [x=y]
"#);
        let want = y(r#"
services:
  web:
    image: app:2
    command: ["c"]
    environment: {A: "1", B: "3", C: "4"}
    ports: ["80:80", "443:443"]
    volumes: ["./b:/data", "logs:/log"]
    networks: {front: null, back: {aliases: [w]}}
    healthcheck: {test: [CMD, b], interval: 5s}
    labels: [x=y]
"#);
        assert_eq!(merge_files(base, over), want);
    }

    #[test]
    fn reset_and_override_tags() {
        let base = y("services: {web: {image: a, ports: ['80:80'], environment: {A: '1'}}}");
        let over = y("services: {web: {ports: !reset [], environment: !override {B: '2'}}}");
        let want = y("services: {web: {image: a, environment: {B: '2'}}}");
        assert_eq!(merge_files(base, over), want);
    }

    #[test]
    fn new_service_and_top_level() {
        let base = y("name: a\nservices: {web: {image: a}}\nnetworks: {n: {}}");
        let over = y("name: b\nservices: {redis: {image: r}}\nnetworks: {n: {name: exact}}");
        let want = y(
            "name: b\nservices: {web: {image: a}, redis: {image: r}}\nnetworks: {n: {name: exact}}",
        );
        assert_eq!(merge_files(base, over), want);
    }
}
