//! The engine's answers (bollard's models) to cutover's model, and
//! cutover's specs to what the engine takes: the create body, the archive
//! of files copied in before a start, a registry login.

use crate::model::*;
use crate::spec::*;
use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointIpamConfig, EndpointSettings, HealthConfig,
    HealthStatusEnum, HostConfig, HostConfigCgroupnsModeEnum, HostConfigLogConfig, Ipam,
    IpamConfig, Mount, MountType, NetworkingConfig, PortBinding, ResourcesUlimits,
    RestartPolicyNameEnum,
};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

pub(super) fn btree(map: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

/// A label map in the engine's form; the Swarm adapter's specs use it too.
pub fn hashmap(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub(super) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// An address the engine reports, which may carry a prefix length
/// (`172.18.0.2/16`) or be empty.
pub fn parse_ip(text: Option<&str>) -> Option<IpAddr> {
    let text = text?.split('/').next()?;
    text.parse().ok()
}

/// The first IPv4 gateway of a network's address plan.
pub(super) fn gateway(ipam: Option<&bollard::models::Ipam>) -> Option<IpAddr> {
    ipam?
        .config
        .as_ref()?
        .iter()
        .filter_map(|c| parse_ip(c.gateway.as_deref()))
        .find(IpAddr::is_ipv4)
}

pub(super) fn network_info(net: bollard::models::NetworkInspect) -> NetworkInfo {
    let mut containers: Vec<AttachedContainer> = net
        .containers
        .unwrap_or_default()
        .into_iter()
        .map(|(id, ep)| AttachedContainer {
            id,
            name: ep.name.unwrap_or_default(),
            ipv4: parse_ip(ep.ipv4_address.as_deref()),
        })
        .collect();
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    NetworkInfo {
        id: net.id.unwrap_or_default(),
        name: net.name.unwrap_or_default(),
        driver: net.driver.unwrap_or_default(),
        internal: net.internal.unwrap_or(false),
        labels: btree(net.labels),
        gateway: gateway(net.ipam.as_ref()),
        containers,
    }
}

pub(super) fn volume_info(v: bollard::models::Volume) -> VolumeInfo {
    VolumeInfo {
        name: v.name,
        driver: v.driver,
        labels: v.labels.into_iter().collect(),
    }
}

pub(super) fn parse_port_key(key: &str) -> Option<(u16, Protocol)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some((port.parse().ok()?, protocol))
}

pub(super) fn container_info(c: bollard::models::ContainerInspectResponse) -> ContainerInfo {
    let state = c.state.unwrap_or_default();
    let health = state.health.as_ref();
    let health_state = health.and_then(|h| match h.status {
        Some(HealthStatusEnum::STARTING) => Some(HealthState::Starting),
        Some(HealthStatusEnum::HEALTHY) => Some(HealthState::Healthy),
        Some(HealthStatusEnum::UNHEALTHY) => Some(HealthState::Unhealthy),
        _ => None,
    });
    let last_health_output = health
        .and_then(|h| h.log.as_ref())
        .and_then(|log| log.last())
        .and_then(|r| r.output.clone());
    let config = c.config.unwrap_or_default();
    let settings = c.network_settings.unwrap_or_default();
    let networks = settings
        .networks
        .unwrap_or_default()
        .into_iter()
        .map(|(name, ep)| {
            (
                name,
                EndpointInfo {
                    ip: parse_ip(ep.ip_address.as_deref()),
                    aliases: ep.aliases.unwrap_or_default(),
                },
            )
        })
        .collect();
    let mut ports = Vec::new();
    for (key, bindings) in settings.ports.unwrap_or_default() {
        let Some((container_port, protocol)) = parse_port_key(&key) else {
            continue;
        };
        for binding in bindings.unwrap_or_default() {
            if let Some(host_port) = binding.host_port.as_deref().and_then(|p| p.parse().ok()) {
                ports.push(PublishedPort {
                    container_port,
                    protocol,
                    host_ip: parse_ip(binding.host_ip.as_deref()),
                    host_port,
                });
            }
        }
    }
    ports.sort_by_key(|p| (p.container_port, p.host_port));
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        image: config.image.unwrap_or_default(),
        image_id: c.image.unwrap_or_default(),
        labels: btree(config.labels),
        state: state
            .status
            .map(|s| ContainerState::parse(s.as_ref()))
            .unwrap_or(ContainerState::Unknown),
        exit_code: state.exit_code,
        health: health_state,
        last_health_output,
        restart_count: c.restart_count.unwrap_or(0),
        networks,
        ports,
    }
}

/// The create call's body for `spec`, attached to its first network only.
pub(crate) fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    let mut tmpfs = HashMap::new();
    for entry in &spec.options.tmpfs {
        let (path, opts) = entry.split_once(':').unwrap_or((entry, ""));
        tmpfs.insert(path.to_owned(), opts.to_owned());
    }
    for mount in &spec.mounts {
        match mount {
            MountSpec::Volume {
                name,
                target,
                read_only,
                nocopy,
            } => {
                let mut modes: Vec<&str> = Vec::new();
                if *read_only {
                    modes.push("ro");
                }
                if *nocopy {
                    modes.push("nocopy");
                }
                binds.push(bind_entry(name, target, &modes));
            }
            MountSpec::Bind {
                source,
                target,
                read_only,
                create_host_path: true,
            } => binds.push(bind_entry(
                &source.display().to_string(),
                target,
                if *read_only { &["ro"] } else { &[] },
            )),
            // `Binds` creates a missing source; a `Mounts` entry fails on
            // one, which is what compose's long syntax means by default.
            MountSpec::Bind {
                source,
                target,
                read_only,
                create_host_path: false,
            } => mounts.push(Mount {
                typ: Some(MountType::BIND),
                source: Some(source.display().to_string()),
                target: Some(target.clone()),
                read_only: Some(*read_only),
                ..Default::default()
            }),
            MountSpec::Tmpfs { target, size, mode } => {
                let mut opts = Vec::new();
                if let Some(s) = size {
                    opts.push(format!("size={s}"));
                }
                if let Some(m) = mode {
                    opts.push(format!("mode={m:o}"));
                }
                tmpfs.insert(target.clone(), opts.join(","));
            }
        }
    }

    // `expose:` entries go to the engine as written, as Compose sends them
    // (`8080`, `9000-9001/udp`); they are image metadata only.
    let mut exposed = spec.expose.clone();
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in &spec.ports {
        let key = format!("{}/{}", port.container_port, port.protocol.as_str());
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: port.host_ip.map(|ip| ip.to_string()),
                host_port: port.host_port.map(|p| p.to_string()),
            });
    }

    let restart_policy = match spec.restart {
        RestartPolicy::No => bollard::models::RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        },
        RestartPolicy::Always => bollard::models::RestartPolicy {
            name: Some(RestartPolicyNameEnum::ALWAYS),
            maximum_retry_count: None,
        },
        RestartPolicy::UnlessStopped => bollard::models::RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        },
        RestartPolicy::OnFailure { max_retries } => bollard::models::RestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: max_retries.map(i64::from),
        },
    };

    let first_network = spec.networks.first();
    let o = &spec.options;
    let some_vec = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let host_config = HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        cap_add: capabilities(&o.cap_add),
        cap_drop: capabilities(&o.cap_drop),
        privileged: o.privileged.then_some(true),
        dns: some_vec(&o.dns),
        dns_search: some_vec(&o.dns_search),
        dns_options: some_vec(&o.dns_opt),
        sysctls: (!o.sysctls.is_empty()).then(|| hashmap(&o.sysctls)),
        ulimits: (!o.ulimits.is_empty()).then(|| {
            o.ulimits
                .iter()
                .map(|(name, l)| {
                    let (soft, hard) = l.soft_hard();
                    ResourcesUlimits {
                        name: Some(name.clone()),
                        soft: Some(soft),
                        hard: Some(hard),
                    }
                })
                .collect()
        }),
        init: o.init,
        shm_size: o.shm_size.map(saturating_i64),
        devices: (!o.devices.is_empty()).then(|| {
            o.devices
                .iter()
                .map(|d| DeviceMapping {
                    path_on_host: Some(d.source.clone()),
                    path_in_container: Some(d.target.clone()),
                    cgroup_permissions: Some(d.permissions.clone()),
                })
                .collect()
        }),
        security_opt: some_vec(&o.security_opt),
        readonly_rootfs: o.read_only.then_some(true),
        group_add: some_vec(&o.group_add),
        pid_mode: o.pid.clone(),
        ipc_mode: o.ipc.clone(),
        memory: o.memory().map(saturating_i64),
        memory_swap: o.memswap_limit,
        memory_reservation: o.memory_reservation().map(saturating_i64),
        nano_cpus: o.cpus_nano().map(saturating_i64),
        cpu_shares: o.cpu_shares.map(saturating_i64),
        pids_limit: o.pids(),
        oom_score_adj: o.oom_score_adj,
        annotations: (!o.annotations.is_empty()).then(|| hashmap(&o.annotations)),
        runtime: o.runtime.clone(),
        userns_mode: o.userns_mode.clone(),
        uts_mode: o.uts.clone(),
        cgroupns_mode: o.cgroup.as_deref().map(|m| match m {
            "host" => HostConfigCgroupnsModeEnum::HOST,
            _ => HostConfigCgroupnsModeEnum::PRIVATE,
        }),
        cgroup_parent: o.cgroup_parent.clone(),
        cpuset_cpus: o.cpuset.clone(),
        cpu_period: o.cpu_period,
        cpu_quota: o.cpu_quota,
        cpu_realtime_runtime: o.cpu_rt_runtime,
        cpu_realtime_period: o.cpu_rt_period,
        memory_swappiness: o.mem_swappiness,
        oom_kill_disable: o.oom_kill_disable,
        device_cgroup_rules: some_vec(&o.device_cgroup_rules),
        storage_opt: (!o.storage_opt.is_empty()).then(|| hashmap(&o.storage_opt)),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        restart_policy: Some(restart_policy),
        extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
        log_config: spec.logging.as_ref().map(|l| HostConfigLogConfig {
            typ: Some(l.driver.clone()),
            config: Some(hashmap(&l.options)),
        }),
        // As `docker run --network`: without it the engine would also put
        // the container on the default bridge. `network_mode:` (host, none,
        // container:<name>) replaces the networks; the resolver allows one
        // or the other.
        network_mode: o
            .network_mode
            .clone()
            .or_else(|| first_network.map(|n| n.network.clone())),
        ..Default::default()
    };

    let networking_config = first_network.map(|n| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            n.network.clone(),
            EndpointSettings {
                mac_address: o.mac_address.clone(),
                ..endpoint(n)
            },
        )])),
    });

    let healthcheck = spec.healthcheck.as_ref().map(health_config);

    ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: (!spec.env.is_empty())
            .then(|| spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        cmd: spec.cmd.clone(),
        entrypoint: spec.entrypoint.clone(),
        labels: Some(hashmap(&spec.labels)),
        user: spec.user.clone(),
        working_dir: spec.working_dir.clone(),
        hostname: o.hostname.clone(),
        domainname: o.domainname.clone(),
        stop_signal: o.stop_signal.clone(),
        tty: o.tty.then_some(true),
        open_stdin: o.stdin_open.then_some(true),
        // The engine takes whole seconds; round up so the grace is never
        // shorter than asked.
        stop_timeout: spec
            .stop_grace
            .map(|g| i64::try_from(g.as_millis().div_ceil(1000)).unwrap_or(i64::MAX)),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        healthcheck,
        host_config: Some(host_config),
        networking_config,
        ..Default::default()
    }
}

/// A `Binds` entry, `source:target[:mode,...]`.
fn bind_entry(source: &str, target: &str, modes: &[&str]) -> String {
    if modes.is_empty() {
        format!("{source}:{target}")
    } else {
        format!("{source}:{target}:{}", modes.join(","))
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Capabilities with the kernel's `CAP_` prefix, as Compose sends them, so
/// `NET_ADMIN` and `CAP_NET_ADMIN` are one setting; `ALL` stays `ALL`.
fn capabilities(caps: &[String]) -> Option<Vec<String>> {
    let out: Vec<String> = caps
        .iter()
        .map(|c| {
            let upper = c.to_ascii_uppercase();
            if upper == "ALL" || upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            }
        })
        .collect();
    (!out.is_empty()).then_some(out)
}

/// A container's settings on one network: its aliases and static addresses.
pub(crate) fn endpoint(n: &NetworkAttachment) -> EndpointSettings {
    let ipam = (n.ipv4_address.is_some() || n.ipv6_address.is_some()).then(|| EndpointIpamConfig {
        ipv4_address: n.ipv4_address.clone(),
        ipv6_address: n.ipv6_address.clone(),
        ..Default::default()
    });
    EndpointSettings {
        aliases: (!n.aliases.is_empty()).then(|| n.aliases.clone()),
        ipam_config: ipam,
        ..Default::default()
    }
}

/// A compose `ipam:` as the engine's network create takes it.
pub(crate) fn ipam(i: &cutover_core::compose::Ipam) -> Ipam {
    Ipam {
        driver: i.driver.clone(),
        config: (!i.config.is_empty()).then(|| {
            i.config
                .iter()
                .map(|p| IpamConfig {
                    subnet: p.subnet.clone(),
                    ip_range: p.ip_range.clone(),
                    gateway: p.gateway.clone(),
                    auxiliary_addresses: (!p.aux_addresses.is_empty())
                        .then(|| hashmap(&p.aux_addresses)),
                })
                .collect()
        }),
        options: (!i.options.is_empty()).then(|| hashmap(&i.options)),
    }
}

/// A tar of `files` at their absolute paths. No folder entries: the
/// engine makes a missing folder (0755) itself, and an entry for one the
/// image has would change its mode (`/tmp` is 1777).
pub(crate) fn files_archive(files: &[FileSpec]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for f in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(f.mode);
        h.set_uid(f.uid);
        h.set_gid(f.gid);
        h.set_size(f.content.len() as u64);
        builder.append_data(&mut h, f.path.trim_start_matches('/'), f.content.as_slice())?;
    }
    builder.into_inner()
}

/// A login as the X-Registry-Auth header `docker pull` sends carries it.
pub(crate) fn credentials(
    reference: &str,
    a: &cutover_core::registry::RegistryAuth,
) -> bollard::auth::DockerCredentials {
    bollard::auth::DockerCredentials {
        username: Some(a.username.clone()),
        password: Some(a.password.clone()),
        identitytoken: a.identity_token.clone(),
        serveraddress: Some(cutover_core::registry::registry_of(reference).to_owned()),
        ..Default::default()
    }
}

/// The engine's form of a healthcheck; the Swarm adapter's tasks use it too.
pub fn health_config(h: &HealthcheckSpec) -> HealthConfig {
    HealthConfig {
        test: Some(h.test.to_docker()),
        interval: h.interval.map(nanos),
        timeout: h.timeout.map(nanos),
        retries: h.retries.map(i64::from),
        start_period: h.start_period.map(nanos),
        // StartInterval is API 1.44.
        start_interval: None,
    }
}
