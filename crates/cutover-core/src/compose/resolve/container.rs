//! The service keys cutover passes to the engine unchanged (see
//! `compose/options.rs`), read with Compose's shapes: a string or a list,
//! a list or a mapping, sizes with units, ulimits as a number or a pair.

use super::*;
use crate::compose::options::{
    ContainerOptions, Device, Placement, ResourceSet, Resources, Ulimit,
};

/// The keys this module reads; `service.rs` accepts them.
pub(super) const CONTAINER_KEYS: &[&str] = &[
    "stop_signal",
    "cap_add",
    "cap_drop",
    "privileged",
    "hostname",
    "domainname",
    "dns",
    "dns_search",
    "dns_opt",
    "sysctls",
    "ulimits",
    "init",
    "tmpfs",
    "shm_size",
    "devices",
    "security_opt",
    "read_only",
    "group_add",
    "pid",
    "ipc",
    "network_mode",
    "mem_limit",
    "memswap_limit",
    "mem_reservation",
    "cpus",
    "cpu_shares",
    "pids_limit",
    "oom_score_adj",
    "platform",
    "stdin_open",
    "tty",
    "annotations",
    "runtime",
    "userns_mode",
    "uts",
    "cgroup",
    "cgroup_parent",
    "cpuset",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_runtime",
    "cpu_rt_period",
    "mem_swappiness",
    "oom_kill_disable",
    "device_cgroup_rules",
    "storage_opt",
    "mac_address",
];

pub(super) fn container_options(
    cx: &mut Ctx<'_>,
    entries: &[(String, &Value)],
    p: &KeyPath,
    is_app: bool,
) -> ContainerOptions {
    let get = |k: &str| lookup(entries, k).filter(|v| !v.is_null());
    let list = |cx: &mut Ctx<'_>, k: &str| {
        get(k)
            .map(|v| cx.string_list(v, &p.key(k)))
            .unwrap_or_default()
    };
    let text = |cx: &mut Ctx<'_>, k: &str| cx.opt_string(get(k), &p.key(k));
    let flag = |cx: &mut Ctx<'_>, k: &str| get(k).and_then(|v| cx.boolean(v, &p.key(k)));
    let size = |cx: &mut Ctx<'_>, k: &str| get(k).and_then(|v| cx.bytes(v, &p.key(k)));
    let int = |cx: &mut Ctx<'_>, k: &str| get(k).and_then(|v| cx.int(v, &p.key(k)));
    let map = |cx: &mut Ctx<'_>, k: &str| {
        get(k)
            .map(|v| cx.str_map(v, &p.key(k), false))
            .unwrap_or_default()
    };

    let network_mode = text(cx, "network_mode");
    if is_app && network_mode.is_some() {
        cx.error_hint(
            &p.key("network_mode"),
            "an app cannot set network_mode: cutover reaches each color on its own address on the project network",
            "remove network_mode, or make the service an accessory by removing its x-cutover block",
        );
    }
    let memswap_limit = get("memswap_limit").and_then(|v| match v {
        Value::Number(n) if n.as_i64() == Some(-1) => Some(-1),
        Value::String(s) if s.trim() == "-1" => Some(-1),
        v => cx.bytes(v, &p.key("memswap_limit")).map(|b| b as i64),
    });
    let options = ContainerOptions {
        stop_signal: text(cx, "stop_signal"),
        cap_add: list(cx, "cap_add"),
        cap_drop: list(cx, "cap_drop"),
        privileged: flag(cx, "privileged").unwrap_or(false),
        hostname: text(cx, "hostname"),
        domainname: text(cx, "domainname"),
        dns: list(cx, "dns"),
        dns_search: list(cx, "dns_search"),
        dns_opt: list(cx, "dns_opt"),
        sysctls: map(cx, "sysctls"),
        ulimits: get("ulimits")
            .map(|v| ulimits(cx, v, &p.key("ulimits")))
            .unwrap_or_default(),
        init: flag(cx, "init"),
        tmpfs: list(cx, "tmpfs"),
        shm_size: size(cx, "shm_size"),
        devices: get("devices")
            .map(|v| devices(cx, v, &p.key("devices")))
            .unwrap_or_default(),
        security_opt: list(cx, "security_opt"),
        read_only: flag(cx, "read_only").unwrap_or(false),
        group_add: list(cx, "group_add"),
        pid: text(cx, "pid"),
        ipc: text(cx, "ipc"),
        network_mode: network_mode.filter(|_| !is_app),
        mem_limit: size(cx, "mem_limit"),
        memswap_limit,
        mem_reservation: size(cx, "mem_reservation"),
        nano_cpus: get("cpus").and_then(|v| cx.cpus(v, &p.key("cpus"))),
        cpu_shares: get("cpu_shares").and_then(|v| cx.uint(v, &p.key("cpu_shares"), u64::MAX)),
        pids_limit: int(cx, "pids_limit"),
        oom_score_adj: int(cx, "oom_score_adj"),
        platform: text(cx, "platform"),
        stdin_open: flag(cx, "stdin_open").unwrap_or(false),
        tty: flag(cx, "tty").unwrap_or(false),
        annotations: map(cx, "annotations"),
        runtime: text(cx, "runtime"),
        userns_mode: text(cx, "userns_mode"),
        uts: text(cx, "uts"),
        cgroup: match text(cx, "cgroup").as_deref() {
            None => None,
            Some(m @ ("host" | "private")) => Some(m.to_string()),
            Some(other) => {
                cx.error_hint(
                    &p.key("cgroup"),
                    format!("unknown cgroup namespace mode {other:?}"),
                    "use host or private",
                );
                None
            }
        },
        cgroup_parent: text(cx, "cgroup_parent"),
        cpuset: text(cx, "cpuset"),
        cpu_period: int(cx, "cpu_period"),
        cpu_quota: int(cx, "cpu_quota"),
        // Compose also takes these as durations; cutover takes microseconds.
        cpu_rt_runtime: int(cx, "cpu_rt_runtime"),
        cpu_rt_period: int(cx, "cpu_rt_period"),
        mem_swappiness: int(cx, "mem_swappiness"),
        oom_kill_disable: flag(cx, "oom_kill_disable"),
        device_cgroup_rules: list(cx, "device_cgroup_rules"),
        storage_opt: map(cx, "storage_opt"),
        mac_address: text(cx, "mac_address"),
        resources: get("deploy")
            .map(|d| resources(cx, d, &p.key("deploy")))
            .unwrap_or_default(),
        placement: get("deploy")
            .and_then(|d| placement(cx, d, &p.key("deploy")))
            .unwrap_or_default(),
    };
    check_resource_conflicts(cx, &options, p);
    options
}

/// `ulimits: {nofile: 20000}` or `{nofile: {soft: 20000, hard: 40000}}`.
fn ulimits(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> BTreeMap<String, Ulimit> {
    let mut out = BTreeMap::new();
    let Some(m) = cx.mapping(v, p) else {
        return out;
    };
    for (name, val) in cx.entries(m, p) {
        let kp = p.key(&name);
        let limit = match val {
            Value::Mapping(pair) => {
                let e = cx.entries(pair, &kp);
                cx.check_keys(&e, &kp, &["soft", "hard"], "a ulimit");
                let soft = lookup(&e, "soft").and_then(|s| cx.int(s, &kp.key("soft")));
                let hard = lookup(&e, "hard").and_then(|h| cx.int(h, &kp.key("hard")));
                match (soft, hard) {
                    (Some(soft), Some(hard)) => Some(Ulimit::Pair { soft, hard }),
                    _ => {
                        cx.error(&kp, "a ulimit needs both `soft` and `hard`");
                        None
                    }
                }
            }
            v => cx.int(v, &kp).map(Ulimit::Single),
        };
        if let Some(l) = limit {
            out.insert(name, l);
        }
    }
    out
}

/// `devices: ["/dev/fuse", "/dev/sda:/dev/xvda:rwm"]` or the long form.
fn devices(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Vec<Device> {
    let mut out = Vec::new();
    for (ip, item) in cx.items(v, p) {
        let device = match item {
            Value::Mapping(m) => {
                let e = cx.entries(m, &ip);
                cx.check_keys(&e, &ip, &["source", "target", "permissions"], "a device");
                let source = cx.opt_string(lookup(&e, "source"), &ip.key("source"));
                let target = cx.opt_string(lookup(&e, "target"), &ip.key("target"));
                let permissions = cx.opt_string(lookup(&e, "permissions"), &ip.key("permissions"));
                source.map(|s| Device {
                    target: target.unwrap_or_else(|| s.clone()),
                    permissions: permissions.unwrap_or_else(|| "rwm".into()),
                    source: s,
                })
            }
            v => cx.string(v, &ip).and_then(|s| {
                let parts: Vec<&str> = s.split(':').collect();
                match parts.as_slice() {
                    [src] => Some((*src, *src, "rwm")),
                    [src, dst] => Some((*src, *dst, "rwm")),
                    [src, dst, perm] => Some((*src, *dst, *perm)),
                    _ => None,
                }
                .map(|(s, t, perm)| Device {
                    source: s.into(),
                    target: t.into(),
                    permissions: perm.into(),
                })
                .or_else(|| {
                    cx.error_hint(
                        &ip,
                        format!(
                            "expected \"host path[:container path[:permissions]]\", found {s:?}"
                        ),
                        "e.g. \"/dev/net/tun:/dev/net/tun:rwm\"",
                    );
                    None
                })
            }),
        };
        out.extend(device);
    }
    out
}

/// `deploy:`: its `resources` are honoured (`replicas` is read with
/// `scale`, in `service.rs`); the rest is Swarm's placement, update and
/// rollback settings, which on one host do not apply, and it says so.
fn resources(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> Resources {
    let mut out = Resources::default();
    let Some(m) = cx.mapping(v, p) else {
        return out;
    };
    for (k, val) in cx.entries(m, p) {
        let kp = p.key(&k);
        match k.as_str() {
            "resources" => {
                let Some(rm) = cx.mapping(val, &kp) else {
                    continue;
                };
                for (rk, rv) in cx.entries(rm, &kp) {
                    let rp = kp.key(&rk);
                    match rk.as_str() {
                        "limits" => out.limits = resource_set(cx, rv, &rp),
                        "reservations" => out.reservations = resource_set(cx, rv, &rp),
                        other => cx.error_hint(
                            &rp,
                            format!("unknown key `{other}`"),
                            "deploy.resources has limits and reservations",
                        ),
                    }
                }
            }
            // Read by `placement` below, and by `replicas.rs`.
            "replicas" | "placement" | "mode" => {}
            "update_config" | "rollback_config" | "restart_policy" | "labels"
            | "endpoint_mode" => cx.warn(
                &kp,
                format!("deploy.{k} is ignored: cutover runs its own updates and rollbacks, on one host as on a Swarm"),
                None,
            ),
            other => cx.error_hint(
                &kp,
                format!("unknown key `{other}`"),
                "deploy accepts resources, replicas, mode and placement (honoured), and Swarm's update settings (ignored)",
            ),
        }
    }
    out
}

/// `deploy.placement`: honoured on a Swarm; a deploy to one host ignores
/// it, and the warning says so.
fn placement(cx: &mut Ctx<'_>, deploy: &Value, p: &KeyPath) -> Option<Placement> {
    let m = deploy.as_mapping()?;
    let v = m.get("placement")?;
    let pp = p.key("placement");
    let pm = cx.mapping(v, &pp)?;
    let mut out = Placement::default();
    for (k, val) in cx.entries(pm, &pp) {
        let kp = pp.key(&k);
        match k.as_str() {
            "constraints" => out.constraints = cx.string_list(val, &kp),
            "max_replicas_per_node" => {
                out.max_replicas_per_node = cx.uint(val, &kp, u64::from(u32::MAX))
            }
            "preferences" => cx.warn(
                &kp,
                "deploy.placement.preferences is ignored: cutover does not spread by them"
                    .to_string(),
                None,
            ),
            other => cx.error_hint(
                &kp,
                format!("unknown key `{other}`"),
                "deploy.placement has constraints, max_replicas_per_node and preferences",
            ),
        }
    }
    cx.warn(
        &pp,
        "deploy.placement is applied on a Swarm only: a deploy to one host ignores it".to_string(),
        None,
    );
    Some(out)
}

fn resource_set(cx: &mut Ctx<'_>, v: &Value, p: &KeyPath) -> ResourceSet {
    let mut out = ResourceSet::default();
    let Some(m) = cx.mapping(v, p) else {
        return out;
    };
    for (k, val) in cx.entries(m, p) {
        let kp = p.key(&k);
        match k.as_str() {
            "cpus" => out.nano_cpus = cx.cpus(val, &kp),
            "memory" => out.memory = cx.bytes(val, &kp),
            "pids" => out.pids = cx.int(val, &kp),
            "devices" | "generic_resources" => cx.error_hint(
                &kp,
                format!("deploy.resources.*.{k} is not supported by cutover"),
                "GPUs and generic resources need a device request cutover does not make yet; run this service with docker compose",
            ),
            other => cx.error_hint(
                &kp,
                format!("unknown key `{other}`"),
                "use cpus, memory or pids",
            ),
        }
    }
    out
}

/// Compose refuses `mem_limit: 512m` beside `deploy.resources.limits.memory:
/// 256m`, since one would be dropped silently.
fn check_resource_conflicts(cx: &mut Ctx<'_>, o: &ContainerOptions, p: &KeyPath) {
    let pairs = [
        (
            "cpus",
            o.nano_cpus.map(i128::from),
            "limits.cpus",
            o.resources.limits.nano_cpus.map(i128::from),
        ),
        (
            "mem_limit",
            o.mem_limit.map(i128::from),
            "limits.memory",
            o.resources.limits.memory.map(i128::from),
        ),
        (
            "pids_limit",
            o.pids_limit.map(i128::from),
            "limits.pids",
            o.resources.limits.pids.map(i128::from),
        ),
        (
            "mem_reservation",
            o.mem_reservation.map(i128::from),
            "reservations.memory",
            o.resources.reservations.memory.map(i128::from),
        ),
    ];
    for (key, a, deploy_key, b) in pairs {
        if let (Some(a), Some(b)) = (a, b) {
            if a != b {
                cx.error_hint(
                    &p.key(key),
                    format!("`{key}` and `deploy.resources.{deploy_key}` set different values"),
                    "keep one of them",
                );
            }
        }
    }
}
