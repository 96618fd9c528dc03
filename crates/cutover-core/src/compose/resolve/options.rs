//! Service keys with a small shape of their own: `healthcheck:`,
//! `extra_hosts:` and `logging:`.

use super::*;

pub(super) fn healthcheck(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<Healthcheck> {
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

pub(super) fn extra_hosts(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Vec<String> {
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
    // Order carries no meaning in /etc/hosts entries here; sorted and
    // without repeats, as Compose keeps them, so merged files agree.
    out.sort();
    out.dedup();
    out
}

pub(super) fn logging(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Option<Logging> {
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
