//! Conversions and helpers of the Docker adapter that need no engine.

use std::collections::BTreeMap;

use bollard::models::RestartPolicyNameEnum;

use super::*;

#[test]
fn references_split_into_name_and_tag() {
    assert_eq!(split_reference("redis"), ("redis", "latest"));
    assert_eq!(split_reference("redis:7"), ("redis", "7"));
    assert_eq!(
        split_reference("registry:5000/team/app"),
        ("registry:5000/team/app", "latest")
    );
    assert_eq!(
        split_reference("registry:5000/team/app:v2"),
        ("registry:5000/team/app", "v2")
    );
    assert_eq!(split_reference("app@sha256:abc"), ("app", "sha256:abc"));
}

#[test]
fn docker_host_defaults_to_the_local_socket() {
    assert_eq!(docker_host(None), DEFAULT_DOCKER_HOST);
    assert_eq!(docker_host(Some("  ")), DEFAULT_DOCKER_HOST);
    assert_eq!(
        docker_host(Some("tcp://1.2.3.4:2375")),
        "tcp://1.2.3.4:2375"
    );
}

#[test]
fn ips_lose_their_prefix_length() {
    assert_eq!(
        parse_ip(Some("172.18.0.2/16")),
        Some("172.18.0.2".parse().unwrap())
    );
    assert_eq!(parse_ip(Some("")), None);
    assert_eq!(parse_ip(None), None);
}

#[test]
fn create_body_maps_the_spec() {
    let spec = ContainerSpec {
        name: "athens-blue".into(),
        image: "athens:1".into(),
        env: BTreeMap::from([("REDIS_HOST".into(), "redis".into())]),
        networks: vec![
            NetworkAttachment::new("app").alias("backend"),
            NetworkAttachment::new("other"),
        ],
        mounts: vec![
            MountSpec::Volume {
                name: "data".into(),
                target: "/data".into(),
                read_only: false,
                nocopy: false,
            },
            MountSpec::Bind {
                source: "/srv/log".into(),
                target: "/log".into(),
                read_only: true,
                create_host_path: true,
            },
        ],
        ports: vec![PortSpec {
            container_port: 8080,
            protocol: Protocol::Tcp,
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: None,
        }],
        restart: RestartPolicy::OnFailure {
            max_retries: Some(3),
        },
        stop_grace: Some(Duration::from_millis(1500)),
        healthcheck: Some(HealthcheckSpec {
            test: HealthTest::Shell("true".into()),
            interval: Some(Duration::from_secs(1)),
            timeout: None,
            retries: Some(3),
            start_period: None,
        }),
        ..Default::default()
    };
    let body = create_body(&spec);
    assert_eq!(body.env.unwrap(), vec!["REDIS_HOST=redis"]);
    assert_eq!(body.stop_timeout, Some(2));
    assert_eq!(body.exposed_ports.unwrap(), vec!["8080/tcp"]);
    let hc = body.healthcheck.unwrap();
    assert_eq!(hc.interval, Some(1_000_000_000));
    assert_eq!(hc.test.unwrap(), vec!["CMD-SHELL", "true"]);
    let host = body.host_config.unwrap();
    assert_eq!(host.binds.unwrap(), vec!["data:/data", "/srv/log:/log:ro"]);
    assert_eq!(host.network_mode.as_deref(), Some("app"));
    let binding = &host.port_bindings.unwrap()["8080/tcp"].clone().unwrap()[0];
    assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(binding.host_port, None);
    let restart = host.restart_policy.unwrap();
    assert_eq!(restart.name, Some(RestartPolicyNameEnum::ON_FAILURE));
    assert_eq!(restart.maximum_retry_count, Some(3));
    let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
    assert_eq!(endpoints.len(), 1, "API 1.41 takes one network at create");
    assert_eq!(endpoints["app"].aliases.clone().unwrap(), vec!["backend"]);
}
