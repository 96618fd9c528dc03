//! The resolved project in Docker Compose's canonical form, the shape
//! `docker compose config --format json` prints: what `cutover config`
//! shows, and what the conformance suite compares field by field with
//! Compose's own output.
//!
//! Written from the resolved model, not from the YAML, so it shows what
//! cutover will deploy: defaults filled in, paths absolute, `x-cutover`
//! with every setting it resolved to. Like Compose, every `$` in a value
//! is written `$$`, so the output is itself a compose file.

use crate::tls::CertificateSource;
use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Map, Value};

use super::model::*;
use crate::naming;

/// The project as Compose's canonical JSON.
pub fn canonical(p: &ResolvedProject) -> Value {
    let volume_keys: BTreeMap<&str, &str> = p
        .volumes
        .iter()
        .map(|v| (v.name.as_str(), v.key.as_str()))
        .collect();
    let mut services = Map::new();
    for app in &p.apps {
        let mut s = service(&app.service, &volume_keys, false);
        if let Some(n) = &app.container_name {
            s.insert("container_name".into(), json!(n));
        }
        s.insert("x-cutover".into(), x_cutover(&app.cutover));
        services.insert(app.service.name.clone(), Value::Object(s));
    }
    // `container:<name>` that cutover resolved from `service:<name>`.
    let stacks: BTreeMap<String, &str> = p
        .accessories
        .iter()
        .map(|a| {
            (
                format!("container:{}", a.container_name),
                a.service.name.as_str(),
            )
        })
        .collect();
    for acc in &p.accessories {
        let mut s = service(&acc.service, &volume_keys, true);
        if let Some(mode) = &acc.service.options.network_mode {
            if let Some(other) = stacks.get(mode) {
                s.insert("network_mode".into(), json!(format!("service:{other}")));
            }
        }
        if acc.container_name != naming::accessory(&p.name, &acc.service.name) {
            s.insert("container_name".into(), json!(acc.container_name));
        }
        services.insert(acc.service.name.clone(), Value::Object(s));
    }
    let mut out = Map::new();
    out.insert("name".into(), json!(p.name));
    out.insert("services".into(), Value::Object(services));
    let networks: Map<String, Value> = p
        .networks
        .iter()
        .map(|n| (n.key.clone(), network(n)))
        .collect();
    if !networks.is_empty() {
        out.insert("networks".into(), Value::Object(networks));
    }
    let volumes: Map<String, Value> = p
        .volumes
        .iter()
        .map(|v| (v.key.clone(), volume(v)))
        .collect();
    if !volumes.is_empty() {
        out.insert("volumes".into(), Value::Object(volumes));
    }
    // The definitions the services use, as Compose lists them.
    for (what, secret) in [("secrets", true), ("configs", false)] {
        let mut defs = Map::new();
        let all = p
            .apps
            .iter()
            .map(|a| &a.service)
            .chain(p.accessories.iter().map(|a| &a.service));
        for s in all {
            let refs = if secret { &s.secrets } else { &s.configs };
            for r in refs {
                defs.insert(r.source.clone(), file_def(&p.name, r));
            }
        }
        if !defs.is_empty() {
            out.insert(what.into(), Value::Object(defs));
        }
    }
    escape_dollars(Value::Object(out))
}

fn service(
    s: &ServiceSpec,
    volume_keys: &BTreeMap<&str, &str>,
    accessory: bool,
) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            m.insert(k.to_string(), v);
        }
    };
    put("image", json!(s.image));
    put("build", s.build.as_ref().map_or(Value::Null, build));
    put("command", json!(s.command));
    put("entrypoint", json!(s.entrypoint));
    put("environment", non_empty_map(&s.environment));
    put("labels", non_empty_map(&s.labels));
    put(
        "volumes",
        non_empty(s.mounts.iter().map(|m| mount(m, volume_keys))),
    );
    put("networks", networks_of(s, accessory));
    put("ports", non_empty(s.ports.iter().map(port)));
    let depends_on: Map<String, Value> = s
        .depends_on
        .iter()
        .map(|d| {
            let v = json!({"condition": condition(d.condition), "required": d.required});
            (d.service.clone(), v)
        })
        .collect();
    if !depends_on.is_empty() {
        put("depends_on", Value::Object(depends_on));
    }
    put(
        "healthcheck",
        s.healthcheck.as_ref().map_or(Value::Null, healthcheck),
    );
    put("restart", json!(s.restart));
    put("user", json!(s.user));
    put("working_dir", json!(s.working_dir));
    put(
        "stop_grace_period",
        json!(s.stop_grace_period.map(go_duration)),
    );
    put(
        "extra_hosts",
        non_empty(s.extra_hosts.iter().map(|h| json!(h.replacen(':', "=", 1)))),
    );
    put(
        "logging",
        s.logging.as_ref().map_or(Value::Null, |l| {
            let mut o = Map::new();
            if let Some(d) = &l.driver {
                o.insert("driver".into(), json!(d));
            }
            if !l.options.is_empty() {
                o.insert("options".into(), json!(l.options));
            }
            Value::Object(o)
        }),
    );
    put("expose", non_empty(s.expose.iter().map(|e| json!(e))));
    put(
        "secrets",
        non_empty(s.secrets.iter().map(|r| file_ref(r, true))),
    );
    put(
        "configs",
        non_empty(s.configs.iter().map(|r| file_ref(r, false))),
    );
    put("pull_policy", json!(s.pull_policy));
    // `scale` and `deploy.replicas` are one setting; Compose prints each as
    // written, cutover the shorter.
    if s.replicas != 1 {
        put("scale", json!(s.replicas));
    }
    put("profiles", non_empty(s.profiles.iter().map(|p| json!(p))));
    options(&s.options, &mut m);
    if s.global {
        let deploy = m.entry("deploy").or_insert_with(|| json!({}));
        if let Some(d) = deploy.as_object_mut() {
            d.insert("mode".into(), json!("global"));
        }
    }
    m
}

/// The engine options, each where and how Compose writes it: sizes as
/// strings of bytes, CPUs as a number, a ulimit as a number or a pair.
fn options(o: &ContainerOptions, m: &mut Map<String, Value>) {
    let mut put = |k: &str, v: Value| {
        let empty = match &v {
            Value::Null | Value::Bool(false) => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            m.insert(k.to_string(), v);
        }
    };
    let bytes = |b: Option<u64>| b.map(|b| b.to_string());
    put("stop_signal", json!(o.stop_signal));
    put("cap_add", json!(o.cap_add));
    put("cap_drop", json!(o.cap_drop));
    put("privileged", json!(o.privileged));
    put("hostname", json!(o.hostname));
    put("domainname", json!(o.domainname));
    put("dns", json!(o.dns));
    put("dns_search", json!(o.dns_search));
    put("dns_opt", json!(o.dns_opt));
    put("sysctls", json!(o.sysctls));
    put("ulimits", json!(o.ulimits));
    put("init", json!(o.init));
    put("tmpfs", json!(o.tmpfs));
    put("shm_size", json!(bytes(o.shm_size)));
    put("devices", json!(o.devices));
    put("security_opt", json!(o.security_opt));
    put("read_only", json!(o.read_only));
    put("group_add", json!(o.group_add));
    put("pid", json!(o.pid));
    put("ipc", json!(o.ipc));
    put("network_mode", json!(o.network_mode));
    put("mem_limit", json!(bytes(o.mem_limit)));
    put(
        "memswap_limit",
        json!(o.memswap_limit.map(|b| b.to_string())),
    );
    put("mem_reservation", json!(bytes(o.mem_reservation)));
    put("cpus", json!(o.nano_cpus.map(cpus)));
    put("cpu_shares", json!(o.cpu_shares));
    put("pids_limit", json!(o.pids_limit));
    put("oom_score_adj", json!(o.oom_score_adj));
    put("platform", json!(o.platform));
    put("stdin_open", json!(o.stdin_open));
    put("tty", json!(o.tty));
    put("annotations", json!(o.annotations));
    put("runtime", json!(o.runtime));
    put("userns_mode", json!(o.userns_mode));
    put("uts", json!(o.uts));
    put("cgroup", json!(o.cgroup));
    put("cgroup_parent", json!(o.cgroup_parent));
    put("cpuset", json!(o.cpuset));
    put("cpu_period", json!(o.cpu_period));
    put("cpu_quota", json!(o.cpu_quota));
    put("cpu_rt_runtime", json!(o.cpu_rt_runtime));
    put("cpu_rt_period", json!(o.cpu_rt_period));
    // Compose writes it as a string.
    put(
        "mem_swappiness",
        json!(o.mem_swappiness.map(|s| s.to_string())),
    );
    put("oom_kill_disable", json!(o.oom_kill_disable));
    put("device_cgroup_rules", json!(o.device_cgroup_rules));
    put("storage_opt", json!(o.storage_opt));
    put("mac_address", json!(o.mac_address));
    let set = |r: &ResourceSet| {
        let mut s = Map::new();
        if let Some(c) = r.nano_cpus {
            s.insert("cpus".into(), json!(cpus(c)));
        }
        if let Some(b) = r.memory {
            s.insert("memory".into(), json!(b.to_string()));
        }
        if let Some(n) = r.pids {
            s.insert("pids".into(), json!(n));
        }
        Value::Object(s)
    };
    let mut resources = Map::new();
    for (k, r) in [
        ("limits", &o.resources.limits),
        ("reservations", &o.resources.reservations),
    ] {
        if !r.is_empty() {
            resources.insert(k.into(), set(r));
        }
    }
    if !resources.is_empty() {
        put("deploy", json!({ "resources": resources }));
    }
}

/// A service's entry: Compose writes a secret's default target, not a
/// config's, and the mode in octal.
fn file_ref(r: &FileRef, secret: bool) -> Value {
    let mut o = Map::new();
    o.insert("source".into(), json!(r.source));
    if secret || r.target.is_some() {
        o.insert("target".into(), json!(r.path(secret)));
    }
    if let Some(u) = &r.uid {
        o.insert("uid".into(), json!(u));
    }
    if let Some(g) = &r.gid {
        o.insert("gid".into(), json!(g));
    }
    if let Some(m) = r.mode {
        o.insert("mode".into(), json!(format!("{m:04o}")));
    }
    Value::Object(o)
}

/// A top-level definition: never an environment variable's value.
fn file_def(project: &str, r: &FileRef) -> Value {
    let mut o = Map::new();
    if let FileSource::External { name } = &r.from {
        o.insert("name".into(), json!(name));
        o.insert("external".into(), json!(true));
        return Value::Object(o);
    }
    o.insert(
        "name".into(),
        json!(naming::project_scoped(project, &r.source)),
    );
    match &r.from {
        FileSource::File(path) => o.insert("file".into(), json!(path.display().to_string())),
        FileSource::Environment { var, .. } => o.insert("environment".into(), json!(var)),
        FileSource::Content(text) => o.insert("content".into(), json!(text)),
        FileSource::External { .. } => None,
    };
    Value::Object(o)
}

fn cpus(nano: u64) -> f64 {
    nano as f64 / 1e9
}

fn build(b: &BuildSpec) -> Value {
    let mut o = Map::new();
    o.insert("context".into(), json!(b.context));
    o.insert(
        "dockerfile".into(),
        json!(b.dockerfile.as_deref().unwrap_or("Dockerfile")),
    );
    if !b.args.is_empty() {
        o.insert("args".into(), json!(b.args));
    }
    if let Some(t) = &b.target {
        o.insert("target".into(), json!(t));
    }
    Value::Object(o)
}

fn mount(m: &Mount, volume_keys: &BTreeMap<&str, &str>) -> Value {
    let mut o = Map::new();
    match m {
        Mount::Volume {
            source,
            target,
            read_only,
            nocopy,
        } => {
            o.insert("type".into(), json!("volume"));
            if let Some(s) = source {
                let key = volume_keys.get(s.as_str()).copied().unwrap_or(s);
                o.insert("source".into(), json!(key));
            }
            o.insert("target".into(), json!(target));
            if *read_only {
                o.insert("read_only".into(), json!(true));
            }
            o.insert(
                "volume".into(),
                if *nocopy {
                    json!({"nocopy": true})
                } else {
                    json!({})
                },
            );
        }
        Mount::Bind {
            source,
            target,
            read_only,
            create_host_path,
            selinux,
        } => {
            o.insert("type".into(), json!("bind"));
            o.insert("source".into(), json!(source.display().to_string()));
            o.insert("target".into(), json!(target));
            if *read_only {
                o.insert("read_only".into(), json!(true));
            }
            let mut bind = Map::new();
            if *create_host_path {
                bind.insert("create_host_path".into(), json!(true));
            }
            if let Some(z) = selinux {
                bind.insert("selinux".into(), json!(z));
            }
            if !bind.is_empty() {
                o.insert("bind".into(), Value::Object(bind));
            }
        }
        Mount::Tmpfs { target, size, mode } => {
            o.insert("type".into(), json!("tmpfs"));
            o.insert("target".into(), json!(target));
            let mut t = Map::new();
            if let Some(s) = size {
                // Compose writes byte sizes as strings.
                t.insert("size".into(), json!(s.to_string()));
            }
            if let Some(m) = mode {
                t.insert("mode".into(), json!(m));
            }
            if !t.is_empty() {
                o.insert("tmpfs".into(), Value::Object(t));
            }
        }
    }
    Value::Object(o)
}

/// `{key: null}`, or `{key: {aliases: [...]}}` with the aliases written in
/// the file; the service-name alias cutover adds for an accessory is
/// Compose's implicit one, which Compose does not print.
fn networks_of(s: &ServiceSpec, accessory: bool) -> Value {
    let o: Map<String, Value> = s
        .networks
        .iter()
        .map(|n| {
            let aliases: Vec<&String> = n
                .aliases
                .iter()
                .enumerate()
                .filter(|(i, a)| !(accessory && *i == 0 && **a == s.name))
                .map(|(_, a)| a)
                .collect();
            let mut o = Map::new();
            if !aliases.is_empty() {
                o.insert("aliases".into(), json!(aliases));
            }
            if let Some(a) = &n.ipv4_address {
                o.insert("ipv4_address".into(), json!(a));
            }
            if let Some(a) = &n.ipv6_address {
                o.insert("ipv6_address".into(), json!(a));
            }
            let v = if o.is_empty() {
                Value::Null
            } else {
                Value::Object(o)
            };
            (n.key.clone(), v)
        })
        .collect();
    Value::Object(o)
}

fn port(p: &PortSpec) -> Value {
    let mut o = Map::new();
    o.insert("mode".into(), json!("ingress"));
    if let Some(ip) = &p.host_ip {
        o.insert("host_ip".into(), json!(ip));
    }
    o.insert("target".into(), json!(p.target));
    if let Some(published) = p.published {
        o.insert("published".into(), json!(published.to_string()));
    }
    o.insert("protocol".into(), json!(p.protocol));
    Value::Object(o)
}

fn condition(c: DependsCondition) -> &'static str {
    match c {
        DependsCondition::ServiceStarted => "service_started",
        DependsCondition::ServiceHealthy => "service_healthy",
        DependsCondition::ServiceCompletedSuccessfully => "service_completed_successfully",
    }
}

fn healthcheck(h: &Healthcheck) -> Value {
    if h.test.first().is_some_and(|t| t == "NONE") {
        return json!({ "disable": true });
    }
    let mut o = Map::new();
    o.insert("test".into(), json!(h.test));
    let durations = [
        ("interval", h.interval),
        ("timeout", h.timeout),
        ("start_period", h.start_period),
        ("start_interval", h.start_interval),
    ];
    for (k, d) in durations {
        if let Some(d) = d {
            o.insert(k.into(), json!(go_duration(d)));
        }
    }
    if let Some(r) = h.retries {
        o.insert("retries".into(), json!(r));
    }
    Value::Object(o)
}

fn x_cutover(c: &AppSettings) -> Value {
    let mut health = Map::new();
    health.insert("path".into(), json!(c.health.path));
    health.insert("interval".into(), json!(go_duration(c.health.interval)));
    health.insert("timeout".into(), json!(go_duration(c.health.timeout)));
    if let Some(h) = &c.health.host {
        health.insert("host".into(), json!(h));
    }
    let mut o = Map::new();
    o.insert("port".into(), json!(c.port));
    o.insert("health".into(), Value::Object(health));
    if !c.hosts.is_empty() {
        o.insert("hosts".into(), json!(c.hosts));
    }
    if !c.preview_hosts.is_empty() {
        o.insert("preview_hosts".into(), json!(c.preview_hosts));
    }
    if let Some(p) = &c.path_prefix {
        o.insert("path_prefix".into(), json!(p));
    }
    o.insert(
        "deploy_timeout".into(),
        json!(go_duration(c.timeouts.deploy)),
    );
    o.insert("drain_timeout".into(), json!(go_duration(c.timeouts.drain)));
    o.insert(
        "websocket_drain_timeout".into(),
        json!(go_duration(c.timeouts.websocket_drain)),
    );
    o.insert("keep".into(), json!(c.keep));
    if let Some(tls) = &c.tls {
        let source = match &tls.certificate {
            CertificateSource::Automatic => json!(true),
            CertificateSource::OnDemand => json!("on_demand"),
            CertificateSource::Files { cert, key } => json!({"cert": cert, "key": key}),
        };
        o.insert("tls".into(), source);
        o.insert("tls_redirect".into(), json!(tls.redirect));
        if let Some(max_age) = tls.hsts {
            o.insert("hsts".into(), json!(go_duration(max_age)));
        }
    }
    let hooks: Map<String, Value> = [
        (HookKind::PreDeploy, &c.hooks.pre_deploy),
        (HookKind::PostDeploy, &c.hooks.post_deploy),
        (HookKind::OnFailure, &c.hooks.on_failure),
    ]
    .into_iter()
    .filter_map(|(kind, hook)| {
        let h = hook.as_ref()?;
        Some((
            kind.as_str().to_string(),
            json!({"command": h.command, "timeout": go_duration(h.timeout)}),
        ))
    })
    .collect();
    if !hooks.is_empty() {
        o.insert("hooks".into(), Value::Object(hooks));
    }
    Value::Object(o)
}

fn network(n: &NetworkSpec) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), json!(n.name));
    if n.external {
        o.insert("external".into(), json!(true));
        return Value::Object(o);
    }
    if let Some(d) = &n.driver {
        o.insert("driver".into(), json!(d));
    }
    if !n.driver_opts.is_empty() {
        o.insert("driver_opts".into(), json!(n.driver_opts));
    }
    if !n.labels.is_empty() {
        o.insert("labels".into(), json!(n.labels));
    }
    if n.internal {
        o.insert("internal".into(), json!(true));
    }
    if n.attachable {
        o.insert("attachable".into(), json!(true));
    }
    if n.enable_ipv6 {
        o.insert("enable_ipv6".into(), json!(true));
    }
    o.insert("ipam".into(), json!(n.ipam.clone().unwrap_or_default()));
    Value::Object(o)
}

fn volume(v: &VolumeSpec) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), json!(v.name));
    if v.external {
        o.insert("external".into(), json!(true));
        return Value::Object(o);
    }
    if let Some(d) = &v.driver {
        o.insert("driver".into(), json!(d));
    }
    if !v.driver_opts.is_empty() {
        o.insert("driver_opts".into(), json!(v.driver_opts));
    }
    if !v.labels.is_empty() {
        o.insert("labels".into(), json!(v.labels));
    }
    Value::Object(o)
}

fn non_empty_map(m: &BTreeMap<String, String>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        json!(m)
    }
}

fn non_empty(items: impl Iterator<Item = Value>) -> Value {
    let v: Vec<Value> = items.collect();
    if v.is_empty() {
        Value::Null
    } else {
        Value::Array(v)
    }
}

/// A duration as Go prints one (`1m30s`, `500ms`, `1h0m0s`), which is how
/// Compose writes every duration.
pub fn go_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let total = d.as_nanos();
    if total < 1_000_000_000 {
        return match total {
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n < 1_000 => format!("{n}ns"),
            n if n < 1_000_000 => format!("{}µs", trim_fraction(n, 1_000)),
            n => format!("{}ms", trim_fraction(n, 1_000_000)),
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let frac = d.subsec_nanos();
    let seconds = if frac == 0 {
        s.to_string()
    } else {
        trim_fraction(
            u128::from(s) * 1_000_000_000 + u128::from(frac),
            1_000_000_000,
        )
    };
    match (h, m) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `n / unit` with its decimals, trailing zeros dropped.
fn trim_fraction(n: u128, unit: u128) -> String {
    let digits = unit.ilog10() as usize;
    let s = format!("{}.{:0digits$}", n / unit, n % unit);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape_dollars(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace('$', "$$")),
        Value::Array(a) => Value::Array(a.into_iter().map(escape_dollars).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, escape_dollars(v))).collect())
        }
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_writes_them() {
        let cases = [
            (Duration::from_secs(5), "5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::ZERO, "0s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }
}
