//! One compose file's text to a value: YAML parsed (merge keys applied),
//! every string interpolated with the environment it is read with.

use super::*;

/// Parses one compose file and interpolates it with `env`; it becomes a
/// source diagnostics can point into.
pub(super) fn parse_source(
    cx: &mut Ctx<'_>,
    shown: String,
    content: &str,
    env: &BTreeMap<String, String>,
) -> Option<Value> {
    cx.sources.push((shown.clone(), Positions::of(content)));
    let i = cx.sources.len() - 1;
    let mut v: Value = match serde_norway::from_str(content) {
        Ok(v) => v,
        Err(e) => {
            let at = e.location().map(|l| (l.line(), l.column()));
            let syntax = yaml_syntax::explain(&e.to_string(), at, content);
            cx.errors.push(Diagnostic {
                file: Some(shown),
                line: Some(syntax.line),
                column: Some(syntax.column),
                key: String::new(),
                message: syntax.message,
                hint: Some(syntax.hint),
            });
            return None;
        }
    };
    if let Err(e) = v.apply_merge() {
        cx.errors.push(Diagnostic {
            file: Some(shown),
            line: None,
            column: None,
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
            column: None,
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
    interpolate_value(cx, i, env, &mut v, &KeyPath::root(), &mut unset);
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
    env: &BTreeMap<String, String>,
    v: &mut Value,
    p: &KeyPath,
    unset: &mut BTreeMap<String, KeyPath>,
) {
    match v {
        Value::String(s) => {
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
                interpolate_value(cx, file, env, item, &p.index(n), unset);
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                let key = k.as_str().map(str::to_string).unwrap_or_default();
                interpolate_value(cx, file, env, item, &p.key(&key), unset);
            }
        }
        Value::Tagged(t) => interpolate_value(cx, file, env, &mut t.value, p, unset),
        _ => {}
    }
}
