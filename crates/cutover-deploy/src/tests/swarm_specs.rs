//! The compose model as Swarm services, and what a Swarm deploy refuses
//! before it starts.

use cutover_core::service::Color;
use cutover_core::stage::StageMode;
use cutover_docker::labels;
use cutover_swarm::{Mode, MountKind};

use super::{cmd, compose, parse};
use crate::swarm::specs::{accessory_service, app_service, own_volumes, refusals};

#[test]
fn an_app_color_is_a_service_on_its_networks_and_the_edge_network() {
    let project = compose("hi", 1);
    let app = project.app("web").unwrap();
    let s = app_service("athens", app, Color::Green, "v7", "cutover");
    assert_eq!(s.name, "athens_web_green");
    assert_eq!(s.mode, Mode::Replicated(1));
    let networks: Vec<&str> = s.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(networks, ["athens_default", "cutover"]);
    for labels in [&s.labels, &s.container_labels] {
        assert_eq!(labels[labels::COLOR], "green");
        assert_eq!(labels[labels::VERSION], "v7");
        assert_eq!(labels[labels::PROJECT], "athens");
        assert_eq!(labels[labels::ROLE], "app");
        assert_eq!(
            labels[labels::CONFIG_HASH],
            cutover_core::compose::config_hash(&app.service)
        );
    }
    assert!(s.env.contains(&"GREETING=hi".to_string()), "{:?}", s.env);
    assert!(
        s.env.contains(&"CUTOVER_COLOR=green".to_string()),
        "{:?}",
        s.env
    );
    assert!(
        s.env.contains(&"CUTOVER_VERSION=v7".to_string()),
        "{:?}",
        s.env
    );
}

/// A node that lacks the project's volume makes it as the file says, with
/// the project's label (what `down --volumes` removes by); an external
/// one is the node's own and gets nothing.
#[test]
fn a_node_makes_the_projects_volumes_as_declared_and_never_an_external_one() {
    let project = parse(
        r#"
name: shop
services:
  db:
    image: redis:7
    volumes: [data:/data, outside:/outside, /srv/x:/x]
volumes:
  data:
    driver: local
    driver_opts: {type: tmpfs, device: tmpfs}
    labels: {tier: db}
  outside:
    external: true
    name: theirs
"#
        .to_string(),
    );
    let mut s = accessory_service("shop", project.accessory("db").unwrap());
    own_volumes(&mut s, "shop", &project.volumes);
    let by_target = |t: &str| s.mounts.iter().find(|m| m.target == t).unwrap();
    let made = by_target("/data")
        .create
        .clone()
        .expect("the project's volume");
    assert_eq!(by_target("/data").source, "shop_data");
    assert_eq!(made.driver.as_deref(), Some("local"));
    assert_eq!(made.driver_opts["type"], "tmpfs");
    assert_eq!(made.labels["tier"], "db");
    assert_eq!(made.labels[labels::PROJECT], "shop");
    assert_eq!(by_target("/outside").source, "theirs");
    assert_eq!(by_target("/outside").create, None, "external");
    assert_eq!(by_target("/x").create, None, "a bind");
}

#[test]
fn an_accessory_answers_to_its_name_and_keeps_its_named_volume() {
    let project = compose("hi", 1);
    let s = accessory_service("athens", project.accessory("redis").unwrap());
    assert_eq!(s.name, "athens_redis");
    assert_eq!(s.mode, Mode::Replicated(1));
    assert_eq!(s.networks[0].name, "athens_default");
    assert!(s.networks[0].aliases.contains(&"redis".to_string()));
    assert_eq!(s.mounts.len(), 1);
    assert_eq!(s.mounts[0].kind, MountKind::Volume);
    assert_eq!(
        (s.mounts[0].source.as_str(), s.mounts[0].target.as_str()),
        ("athens_redis-data", "/data")
    );
    assert_eq!(s.labels[labels::ROLE], "accessory");
}

#[test]
fn deploy_placement_places_a_colors_tasks() {
    let project = parse(
        r#"
name: shop
services:
  web:
    image: web:1
    deploy:
      replicas: 3
      placement:
        constraints: ["node.role == worker", "node.labels.zone == a"]
        max_replicas_per_node: 1
    x-cutover:
      port: 8080
"#
        .to_string(),
    );
    assert!(
        project.warnings.iter().any(|w| w
            .message
            .contains("deploy.placement is applied on a Swarm only")),
        "{:?}",
        project.warnings
    );
    let command = cmd(project);
    assert!(refusals(&command).is_empty(), "{:?}", refusals(&command));
    let s = app_service(
        "shop",
        command.project.app("web").unwrap(),
        Color::Blue,
        "v1",
        "cutover",
    );
    assert_eq!(s.mode, Mode::Replicated(3));
    assert_eq!(
        s.constraints,
        ["node.role == worker", "node.labels.zone == a"]
    );
    assert_eq!(s.max_per_node, Some(1));
}

#[test]
fn what_a_swarm_cannot_do_yet_is_refused_by_field_before_anything_starts() {
    assert!(refusals(&cmd(compose("hi", 1))).is_empty());
    // Ordered certificates are shared by the edges; files are not.
    let ordered = parse(
        r#"
name: shop
services:
  web:
    image: web:1
    x-cutover:
      port: 8080
      hosts: [shop.example]
      tls: true
"#
        .to_string(),
    );
    assert!(refusals(&cmd(ordered)).is_empty());
    let project = parse(
        r#"
name: shop
services:
  web:
    build: .
    ports: ["8080:8080"]
    x-cutover:
      port: 8080
      hosts: [shop.example]
      tls: {cert: /certs/shop.pem, key: /certs/shop.key}
      hooks:
        pre_deploy: ["migrate"]
  worker:
    image: worker:1
    volumes:
      - /scratch
      - type: tmpfs
        target: /tmp
    user: "1000"
    cap_add: [NET_ADMIN]
    ports: ["127.0.0.1:9000:9000"]
    secrets:
      - {source: token, uid: app}
secrets:
  token: {external: true}
"#
        .to_string(),
    );
    // A stage is no refusal: it runs on a Swarm as on one host.
    let mut command = cmd(project);
    command.stage = Some(StageMode::Preview);
    let messages: Vec<String> = refusals(&command).into_iter().map(|r| r.message).collect();
    let all = messages.join("\n");
    assert!(!all.contains("--preview"), "{all}");
    for field in [
        "services.web.build",
        "services.web.ports",
        "services.web.x-cutover.tls",
        "services.worker.volumes: the anonymous volume at /scratch",
        "services.worker.volumes: the tmpfs at /tmp",
        "services.worker.ports: an accessory's published ports",
        "services.worker: user, cap_add not carried to a Swarm service yet",
        "services.worker: secret token: uid \"app\" is not a number",
    ] {
        assert!(all.contains(field), "{field} is not refused:\n{all}");
    }
}
