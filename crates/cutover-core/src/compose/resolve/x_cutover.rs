//! The `x-cutover` block that makes a service an app: port, hosts, health
//! check, timeouts, how many old versions to keep, and HTTPS.

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
    let preview_hosts = get("preview_hosts")
        .map(|h| cx.string_list(h, &p.key("preview_hosts")))
        .unwrap_or_default();
    for host in &preview_hosts {
        let bad = if host.starts_with("*.") || crate::route::validate_host(host).is_err() {
            Some(format!("{host:?} is not a host name"))
        } else if hosts.contains(host) {
            Some(format!("{host} is also in hosts"))
        } else {
            None
        };
        if let Some(bad) = bad {
            cx.error_hint(
                &p.key("preview_hosts"),
                bad,
                "a preview host is one exact name, not in hosts, that reaches only a staged version (deploy --preview), e.g. preview.example.com",
            );
        }
    }
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
    let tls = tls_settings(cx, &e, p, &hosts);
    let hooks = get("hooks")
        .map(|h| hooks(cx, h, &p.key("hooks")))
        .unwrap_or_default();
    Some(AppSettings {
        tls,
        hooks,
        listen: Vec::new(),
        port: port?,
        health,
        hosts,
        preview_hosts,
        path_prefix,
        timeouts,
        keep,
    })
}

/// `tls: true | on_demand | {cert: FILE, key: FILE}`, with `tls_redirect`
/// and `hsts` beside it, which mean nothing without it.
fn tls_settings(
    cx: &mut Ctx<'_>,
    e: &[(String, &Value)],
    p: &KeyPath,
    hosts: &[String],
) -> Option<TlsRoute> {
    let get = |k: &str| lookup(e, k).filter(|v| !v.is_null());
    let tp = p.key("tls");
    let certificate = match get("tls") {
        None => None,
        Some(Value::Bool(true)) => Some(CertificateSource::Automatic),
        Some(Value::Bool(false)) => None,
        Some(Value::String(s)) if s == "on_demand" => Some(CertificateSource::OnDemand),
        Some(Value::Mapping(m)) => {
            let te = cx.entries(m, &tp);
            cx.check_keys(&te, &tp, &["cert", "key"], "x-cutover.tls");
            let file = |cx: &mut Ctx<'_>, k: &str| match lookup(&te, k) {
                Some(v) => cx.string(v, &tp.key(k)).map(|f| {
                    normalize_path(&cx.input.project_dir.join(f))
                        .display()
                        .to_string()
                }),
                None => {
                    cx.error_hint(
                        &tp,
                        format!("missing `{k}`"),
                        "give both PEM files: tls: {cert: ./certs/site.pem, key: ./certs/site.key}",
                    );
                    None
                }
            };
            let (cert, key) = (file(cx, "cert"), file(cx, "key"));
            Some(CertificateSource::Files {
                cert: cert?,
                key: key?,
            })
        }
        Some(v) => {
            cx.error_hint(
                &tp,
                format!(
                    "expected true, false, on_demand or a mapping with cert and key, found {}",
                    show(v)
                ),
                "write tls: true for automatic certificates, or tls: {cert: FILE, key: FILE}",
            );
            None
        }
    };
    let redirect = get("tls_redirect").and_then(|v| cx.boolean(v, &p.key("tls_redirect")));
    let hsts = get("hsts").and_then(|v| match v {
        Value::Bool(true) => Some(Some(HSTS_DEFAULT)),
        Value::Bool(false) => Some(None),
        v => cx.duration(v, &p.key("hsts")).map(Some),
    });
    let Some(certificate) = certificate else {
        for (k, set) in [
            ("tls_redirect", redirect.is_some()),
            ("hsts", hsts.flatten().is_some()),
        ] {
            if set {
                cx.warn(
                    &p.key(k),
                    format!("`{k}` has no effect without `tls`"),
                    None,
                );
            }
        }
        return None;
    };
    // A wildcard host is the daemon's to judge: it needs DNS-01, which only
    // a daemon with `--acme-dns-hook` answers (checked by deploy and plan).
    if certificate == CertificateSource::Automatic && hosts.is_empty() {
        cx.error_hint(
            &tp,
            "automatic certificates need the app's hosts",
            "list the names to order certificates for in x-cutover.hosts, or give the certificate as files",
        );
        return None;
    }
    Some(TlsRoute {
        certificate,
        redirect: redirect.unwrap_or(true),
        hsts: hsts.flatten(),
    })
}
