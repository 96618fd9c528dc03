//! The `x-cutover` block that makes a service an app: port, hosts, health
//! check, timeouts and how many old versions to keep.

use super::*;

/// The `x-cutover` block of an app whose container ports are `ports` (its
/// `ports:` targets and `expose:` entries): `port` defaults to the one
/// port there when there is exactly one.
pub(super) fn app_settings(
    cx: &mut Ctx<'_>,
    v: &Value,
    p: &KeyPath,
    ports: &BTreeSet<u16>,
) -> Option<AppSettings> {
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
        None if ports.len() == 1 => ports.first().copied(),
        None => {
            let found = if ports.is_empty() {
                String::new()
            } else {
                format!(
                    "; the service names ports {}",
                    ports
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            cx.error_hint(
                p,
                format!("missing `port`{found}"),
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
        listen: Vec::new(),
        port: port?,
        health,
        hosts,
        path_prefix,
        timeouts,
        keep,
    })
}
