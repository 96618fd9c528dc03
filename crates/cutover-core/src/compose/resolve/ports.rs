//! `ports:`: short and long syntax, ranges, and the warning for a datastore
//! published on every interface.

use super::*;

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

pub(super) fn port_range(s: &str) -> Result<Vec<u16>, String> {
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

pub(super) fn ports(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Vec<PortSpec> {
    let mut out = Vec::new();
    for (ip, item) in cx.items(v, p) {
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

pub(super) fn datastore_warnings(cx: &mut Ctx<'_>, spec: &ServiceSpec, p: &KeyPath) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
