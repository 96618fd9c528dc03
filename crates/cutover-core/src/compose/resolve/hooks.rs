//! `x-cutover.hooks`: `pre_deploy`, `post_deploy` and `on_failure`, each a
//! command (a string or a list, as `command:` is) or a mapping with
//! `command` and `timeout`.

use super::*;

const HOOK_KEYS: &[&str] = &["pre_deploy", "post_deploy", "on_failure"];

pub(super) fn hooks(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Hooks {
    let mut out = Hooks::default();
    let Some(m) = cx.mapping(v, p) else {
        return out;
    };
    let e = cx.entries(m, p);
    cx.check_keys(&e, p, HOOK_KEYS, "x-cutover.hooks");
    for (k, val) in &e {
        let slot = match k.as_str() {
            "pre_deploy" => &mut out.pre_deploy,
            "post_deploy" => &mut out.post_deploy,
            "on_failure" => &mut out.on_failure,
            _ => continue,
        };
        *slot = hook(cx, val, &p.key(k));
    }
    out
}

fn hook(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<Hook> {
    let (command, timeout) = match v {
        Value::Null => return None,
        Value::Mapping(m) => {
            let e = cx.entries(m, p);
            cx.check_keys(&e, p, &["command", "timeout"], "a hook");
            let Some(c) = lookup(&e, "command") else {
                cx.error_hint(
                    p,
                    "missing `command`",
                    "e.g. command: [\"bin/rails\", \"db:migrate\"]",
                );
                return None;
            };
            let command = command_words(cx, c, &p.key("command"))?;
            let timeout = cx.opt_duration(lookup(&e, "timeout"), &p.key("timeout"));
            (command, timeout)
        }
        v => (
            match v {
                Value::Sequence(_) | Value::String(_) => command_words(cx, v, p)?,
                v => {
                    cx.error_hint(
                        p,
                        format!("expected a command (a string or a list) or a mapping, found {}", kind(v)),
                        "e.g. pre_deploy: [\"bin/rails\", \"db:migrate\"], or a mapping with command and timeout",
                    );
                    return None;
                }
            },
            None,
        ),
    };
    if command.is_empty() {
        cx.error_hint(
            p,
            "the hook's command is empty",
            "give the command to run, e.g. [\"bin/rails\", \"db:migrate\"], or remove the hook",
        );
        return None;
    }
    Some(Hook {
        command,
        timeout: timeout.unwrap_or(HOOK_TIMEOUT),
    })
}

/// A `command:`, `entrypoint:` or hook: a list as written, or a string
/// split as a shell would (Compose's rule).
pub(super) fn command_words(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<Vec<String>> {
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
