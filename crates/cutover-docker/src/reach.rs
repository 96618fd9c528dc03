//! Which address the daemon uses to reach an app container.
//!
//! On Linux the daemon runs on the engine's host and routes to container IPs
//! on the project network directly, so nothing needs publishing. Docker
//! Desktop runs containers in a VM: their IPs are not routable from the host,
//! and the container must publish its port on 127.0.0.1 instead.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::error::EngineError;
use crate::model::{ContainerInfo, EngineInfo};
use crate::spec::Protocol;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    /// The container's IP on the project network.
    ContainerIp,
    /// A port the container publishes on the loopback interface.
    PublishedLoopback,
}

impl Reachability {
    /// What works with this engine, unless configuration says otherwise.
    pub fn detect(info: &EngineInfo) -> Reachability {
        if info.is_docker_desktop() {
            Reachability::PublishedLoopback
        } else {
            Reachability::ContainerIp
        }
    }
}

/// The address to send traffic for `port` of the container to.
pub fn container_address(
    container: &ContainerInfo,
    network: &str,
    port: u16,
    how: Reachability,
) -> Result<SocketAddr, EngineError> {
    let unreachable = |reason: String, hint: Option<String>| EngineError::NotReachable {
        name: container.name.clone(),
        port,
        reason,
        hint,
    };
    match how {
        Reachability::ContainerIp => match container.ip_on(network) {
            Some(ip) => Ok(SocketAddr::new(ip, port)),
            None if container.networks.contains_key(network) => Err(unreachable(
                format!("it has no address on network {network} (is it running?)"),
                None,
            )),
            None => Err(unreachable(
                format!(
                    "it is not attached to network {network} (attached: {})",
                    container
                        .networks
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None,
            )),
        },
        Reachability::PublishedLoopback => {
            let published = container.published(port, Protocol::Tcp);
            // Loopback first: it is what cutover publishes; an all-interfaces
            // binding is reachable on loopback too.
            let pick = published
                .iter()
                .find(|p| p.host_ip.is_some_and(|ip| ip.is_loopback()))
                .or_else(|| {
                    published
                        .iter()
                        .find(|p| p.host_ip.is_none_or(|ip| ip.is_unspecified()))
                });
            match pick {
                Some(p) => {
                    let ip = match p.host_ip {
                        Some(ip) if ip.is_loopback() => ip,
                        Some(IpAddr::V6(_)) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    };
                    Ok(SocketAddr::new(ip, p.host_port))
                }
                None => Err(unreachable(
                    format!("port {port}/tcp is not published on the loopback interface"),
                    Some(format!(
                        "container IPs are not routable from this host (Docker Desktop); \
                         publish the port on 127.0.0.1 (host port left to the engine): \
                         `127.0.0.1::{port}`"
                    )),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use cutover_core::diag::Diagnose;
    use std::collections::BTreeMap;

    fn container() -> ContainerInfo {
        ContainerInfo {
            id: "id".into(),
            name: "athens-blue".into(),
            image: "athens".into(),
            image_id: "sha256:x".into(),
            labels: BTreeMap::new(),
            state: ContainerState::Running,
            exit_code: None,
            health: None,
            last_health_output: None,
            restart_count: 0,
            networks: BTreeMap::from([(
                "app".to_owned(),
                EndpointInfo {
                    ip: Some("172.20.0.5".parse().unwrap()),
                    aliases: vec![],
                },
            )]),
            ports: vec![
                PublishedPort {
                    container_port: 8080,
                    protocol: Protocol::Tcp,
                    host_ip: Some("0.0.0.0".parse().unwrap()),
                    host_port: 40001,
                },
                PublishedPort {
                    container_port: 8080,
                    protocol: Protocol::Tcp,
                    host_ip: Some("127.0.0.1".parse().unwrap()),
                    host_port: 40002,
                },
            ],
        }
    }

    #[test]
    fn linux_uses_the_network_ip() {
        let addr = container_address(&container(), "app", 8080, Reachability::ContainerIp).unwrap();
        assert_eq!(addr, "172.20.0.5:8080".parse().unwrap());
        let err = container_address(&container(), "other", 8080, Reachability::ContainerIp)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not attached to network other (attached: app)"),
            "{err}"
        );
    }

    #[test]
    fn desktop_prefers_the_loopback_binding() {
        let addr =
            container_address(&container(), "app", 8080, Reachability::PublishedLoopback).unwrap();
        assert_eq!(addr, "127.0.0.1:40002".parse().unwrap());

        let mut c = container();
        c.ports.retain(|p| p.host_port == 40001);
        let addr = container_address(&c, "app", 8080, Reachability::PublishedLoopback).unwrap();
        assert_eq!(addr, "127.0.0.1:40001".parse().unwrap());

        let err = container_address(&c, "app", 9000, Reachability::PublishedLoopback)
            .unwrap_err()
            .report()
            .to_string();
        assert!(
            err.contains("\nhint: container IPs are not routable"),
            "{err}"
        );
    }

    #[test]
    fn detection_reads_the_operating_system() {
        let info = |os: &str| EngineInfo {
            operating_system: os.into(),
            server_version: "20.10".into(),
            api_version: "1.41".into(),
        };
        assert_eq!(
            Reachability::detect(&info("Docker Desktop")),
            Reachability::PublishedLoopback
        );
        assert_eq!(
            Reachability::detect(&info("Debian GNU/Linux 12 (bookworm)")),
            Reachability::ContainerIp
        );
    }
}
