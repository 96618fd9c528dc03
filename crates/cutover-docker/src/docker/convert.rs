//! The engine's answers (bollard's models) to cutover's model, and
//! cutover's container spec to the engine's create body.

use crate::model::*;
use crate::spec::*;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HealthStatusEnum, HostConfig,
    HostConfigLogConfig, NetworkingConfig, PortBinding, RestartPolicyNameEnum,
};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

pub(super) fn btree(map: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    map.unwrap_or_default().into_iter().collect()
}

pub(super) fn hashmap(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub(super) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// An address the engine reports, which may carry a prefix length
/// (`172.18.0.2/16`) or be empty.
pub(super) fn parse_ip(text: Option<&str>) -> Option<IpAddr> {
    let text = text?.split('/').next()?;
    text.parse().ok()
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
    let mut tmpfs = HashMap::new();
    for mount in &spec.mounts {
        match mount {
            MountSpec::Volume {
                name,
                target,
                read_only,
            } => binds.push(format!(
                "{name}:{target}{}",
                if *read_only { ":ro" } else { "" }
            )),
            MountSpec::Bind {
                source,
                target,
                read_only,
            } => binds.push(format!(
                "{}:{target}{}",
                source.display(),
                if *read_only { ":ro" } else { "" }
            )),
            MountSpec::Tmpfs { target } => {
                tmpfs.insert(target.clone(), String::new());
            }
        }
    }

    let mut exposed = Vec::new();
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
    let host_config = HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        restart_policy: Some(restart_policy),
        extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
        log_config: spec.logging.as_ref().map(|l| HostConfigLogConfig {
            typ: Some(l.driver.clone()),
            config: Some(hashmap(&l.options)),
        }),
        // As `docker run --network`: without it the engine would also put
        // the container on the default bridge.
        network_mode: first_network.map(|n| n.network.clone()),
        ..Default::default()
    };

    let networking_config = first_network.map(|n| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            n.network.clone(),
            EndpointSettings {
                aliases: (!n.aliases.is_empty()).then(|| n.aliases.clone()),
                ..Default::default()
            },
        )])),
    });

    let healthcheck = spec.healthcheck.as_ref().map(|h| HealthConfig {
        test: Some(h.test.to_docker()),
        interval: h.interval.map(nanos),
        timeout: h.timeout.map(nanos),
        retries: h.retries.map(i64::from),
        start_period: h.start_period.map(nanos),
        // StartInterval is API 1.44.
        start_interval: None,
    });

    ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: (!spec.env.is_empty())
            .then(|| spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        cmd: spec.cmd.clone(),
        entrypoint: spec.entrypoint.clone(),
        labels: Some(hashmap(&spec.labels)),
        user: spec.user.clone(),
        working_dir: spec.working_dir.clone(),
        hostname: spec.hostname.clone(),
        stop_signal: spec.stop_signal.clone(),
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
