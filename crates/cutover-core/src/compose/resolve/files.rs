//! `secrets:` and `configs:`, top-level and per service, read as Compose
//! reads them: a definition names a file, a variable of the project's
//! environment, (configs only) inline content, or a Swarm's own object
//! (`external: true`); a service lists which it gets, where, and with which
//! owner and mode.

use super::*;

/// Top-level `secrets:` or `configs:` (`what`), by key.
pub(super) fn top_files(
    cx: &mut Ctx<'_>,
    what: &str,
    v: Option<&Value>,
) -> BTreeMap<String, FileSource> {
    let mut out = BTreeMap::new();
    let p = KeyPath::root().key(what);
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return out;
    };
    let Some(m) = cx.mapping(v, &p) else {
        return out;
    };
    let secret = what == "secrets";
    let mut allowed = vec!["file", "environment", "name", "external", "labels"];
    if !secret {
        allowed.push("content");
    }
    for (key, def) in cx.entries(m, &p) {
        let kp = p.key(&key);
        let Some(dm) = cx.mapping(def, &kp) else {
            continue;
        };
        let e = cx.entries(dm, &kp);
        cx.check_keys(&e, &kp, &allowed, &format!("a top-level {what} entry"));
        let get = |k: &str| lookup(&e, k).filter(|v| !v.is_null());
        let sources: Vec<&str> = ["file", "environment", "content"]
            .into_iter()
            .filter(|k| get(k).is_some())
            .collect();
        // Made outside the project, in a Swarm (`docker secret create`): it
        // is found by name when the deploy runs, and one host refuses it.
        if get("external")
            .is_some_and(|x| matches!(x, Value::Bool(true)) || x.as_str() == Some("true"))
        {
            // The definition still counts as made, so the services that
            // name it are not refused too.
            if let Some(other) = sources.first() {
                cx.error_hint(
                    &kp.key(other),
                    format!(
                        "{key} is external, and an external {} has no `{other}:`",
                        &what[..what.len() - 1]
                    ),
                    format!("remove `external: true` so cutover creates it, or `{other}:` to use the Swarm's own"),
                );
            }
            let name = cx
                .opt_string(get("name"), &kp.key("name"))
                .unwrap_or_else(|| key.clone());
            out.insert(key, FileSource::External { name });
            continue;
        }
        let source = match sources.as_slice() {
            ["file"] => get("file")
                .and_then(|f| cx.string(f, &kp.key("file")))
                .and_then(|f| self_path(cx, &f, &kp.key("file")))
                .map(FileSource::File),
            ["environment"] => {
                let var = cx.opt_string(get("environment"), &kp.key("environment"));
                var.and_then(|var| match cx.env(&var) {
                    Some(value) => Some(FileSource::Environment { var, value }),
                    None => {
                        cx.error_hint(
                            &kp.key("environment"),
                            format!("{key} is read from ${var}, which is not set"),
                            format!("set {var} in the environment of `cutover deploy` or in .env"),
                        );
                        None
                    }
                })
            }
            ["content"] => cx
                .opt_string(get("content"), &kp.key("content"))
                .map(FileSource::Content),
            [] => {
                cx.error_hint(
                    &kp,
                    format!("{key} has no source"),
                    if secret {
                        "add `file: ./path` or `environment: VARIABLE`"
                    } else {
                        "add `file: ./path`, `environment: VARIABLE` or `content: ...`"
                    },
                );
                None
            }
            _ => {
                cx.error(
                    &kp,
                    format!("{key} has more than one source ({})", sources.join(", ")),
                );
                None
            }
        };
        if let Some(s) = source {
            out.insert(key, s);
        }
    }
    out
}

/// A service's `secrets:` or `configs:` list: `name`, or `{source, target,
/// uid, gid, mode}`.
pub(super) fn service_files(
    cx: &mut Ctx<'_>,
    defs: &BTreeMap<String, FileSource>,
    what: &str,
    v: &Value,
    p: &KeyPath,
) -> Vec<FileRef> {
    let mut out = Vec::new();
    for (ip, item) in cx.items(v, p) {
        let (source, target, uid, gid, mode) = match item {
            Value::Mapping(m) => {
                let e = cx.entries(m, &ip);
                cx.check_keys(
                    &e,
                    &ip,
                    &["source", "target", "uid", "gid", "mode"],
                    "an entry",
                );
                let get = |k: &str| lookup(&e, k).filter(|v| !v.is_null());
                let Some(source) = cx.opt_string(get("source"), &ip.key("source")) else {
                    cx.error(&ip, "missing `source`");
                    continue;
                };
                let mode = get("mode").and_then(|m| file_mode(cx, m, &ip.key("mode")));
                (
                    source,
                    cx.opt_string(get("target"), &ip.key("target")),
                    cx.opt_string(get("uid"), &ip.key("uid")),
                    cx.opt_string(get("gid"), &ip.key("gid")),
                    mode,
                )
            }
            v => match cx.string(v, &ip) {
                Some(s) => (s, None, None, None, None),
                None => continue,
            },
        };
        match defs.get(&source) {
            Some(from) => out.push(FileRef {
                source,
                target,
                uid,
                gid,
                mode,
                from: from.clone(),
            }),
            None => cx.error_hint(
                &ip,
                format!("{what} {source:?} is not declared"),
                format!("add it under the top-level `{what}:` with its `file:` or `environment:`"),
            ),
        }
    }
    out
}

/// `mode: 0440` (YAML reads a leading 0 as octal only in YAML 1.1) or
/// `"0440"`: Compose takes both as octal.
fn file_mode(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<u32> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let parsed = u32::from_str_radix(text.trim(), 8)
        .ok()
        .filter(|m| *m <= 0o7777);
    if parsed.is_none() {
        cx.error_hint(
            p,
            format!("expected a file mode, found {}", show(v)),
            "e.g. 0440",
        );
    }
    parsed
}
