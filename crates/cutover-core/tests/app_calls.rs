//! Which names each service maps to the daemon, so its calls to an app go
//! through cutover (`compose/resolve/app_calls.rs`).

use cutover_core::compose::*;

mod common;

const SHOP: &str = r#"
name: shop
services:
  api:
    image: api
    container_name: shop-api
    depends_on: [db]
    networks:
      front: {aliases: [api.internal]}
      back: {}
    x-cutover: {port: 8080}
  nginx:
    image: nginx
    depends_on: [api]
    networks: [front]
  worker:
    image: api
    extra_hosts: ["api:10.0.0.9"]
    networks: [back, front]
  db:
    image: postgres
    networks: [back]
  sidecar:
    image: tool
    network_mode: service:nginx
networks:
  front: {}
  back: {}
"#;

fn shop() -> ResolvedProject {
    common::ok(SHOP)
}

/// `name=network` for each name `service` maps.
fn hosts(p: &ResolvedProject, service: &str) -> Vec<String> {
    p.apps
        .iter()
        .map(|a| &a.service)
        .chain(p.accessories.iter().map(|a| &a.service))
        .find(|s| s.name == service)
        .unwrap()
        .app_hosts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

#[test]
fn callers_map_an_apps_names_to_a_network_they_share_with_it() {
    let p = shop();
    // Every name of the app: service name, container_name, its aliases.
    assert_eq!(
        hosts(&p, "nginx"),
        [
            "api=shop_front",
            "api.internal=shop_front",
            "shop-api=shop_front"
        ]
    );
    // The caller's own mapping wins; every other name goes by the first of
    // the caller's networks where it is one.
    assert_eq!(
        hosts(&p, "worker"),
        ["api.internal=shop_front", "shop-api=shop_back"]
    );
    // The app reaches itself by name through cutover too.
    assert_eq!(hosts(&p, "api")[0], "api=shop_front");
}

#[test]
fn what_the_app_depends_on_and_shared_stacks_map_nothing() {
    let p = shop();
    // db serves the app (and is not recreated when apps change).
    assert!(hosts(&p, "db").is_empty());
    // sidecar lives in nginx's network stack, and its /etc/hosts.
    assert!(hosts(&p, "sidecar").is_empty());
}

#[test]
fn the_mapping_is_part_of_the_callers_config_hash() {
    let p = shop();
    let nginx = &p.accessory("nginx").unwrap().service;
    let mut without = nginx.clone();
    without.app_hosts.clear();
    assert_ne!(config_hash(nginx), config_hash(&without));
}

#[test]
fn on_a_swarm_the_gateway_answers_where_the_app_is_called() {
    let p = shop();
    let api = p.apps.iter().find(|a| a.service.name == "api").unwrap();
    let on = called_on(&p, api);
    let on: Vec<String> = on
        .iter()
        .map(|(net, names)| format!("{net}: {}", names.join(" ")))
        .collect();
    // front: nginx and the app itself call it there; back: the worker
    // calls it by its container_name there (its own `api` stays its own).
    assert_eq!(
        on,
        [
            "shop_back: api shop-api",
            "shop_front: api shop-api api.internal"
        ]
    );
}
