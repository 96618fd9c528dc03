//! examples/athens/compose.yaml through cutover's own compose loader: the
//! file the README and demo.sh deploy must load without an error or warning
//! and describe one app and one accessory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_compose::{load_project, LoadOptions};
use cutover_core::compose::{config_hash, Mount, ResolvedProject};

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(dir: &Path, env: &[(&str, &str)]) -> ResolvedProject {
    let opts = LoadOptions {
        files: vec![PathBuf::from("compose.yaml")],
        working_dir: dir.to_path_buf(),
        process_env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..LoadOptions::default()
    };
    load_project(&opts).unwrap_or_else(|e| panic!("compose.yaml does not load:\n{e}"))
}

// The process environment wins over the `.env` build-local.sh may have
// written, so these values hold on any checkout.
const ENV: &[(&str, &str)] = &[
    ("ATHENS_IMAGE", "athens:test"),
    ("REDIS_IMAGE", "redis:test"),
    ("APP_VERSION", "1.2.3"),
];

#[test]
fn the_example_is_one_app_and_one_accessory() {
    let p = load(&example_dir(), ENV);
    assert_eq!(p.name, "athens");
    assert!(p.warnings.is_empty(), "no warnings: {:?}", p.warnings);

    assert_eq!(p.apps.len(), 1);
    let backend = p.app("backend").expect("backend is the app");
    assert_eq!(backend.service.image, "athens:test");
    assert_eq!(backend.cutover.port, 8080);
    assert_eq!(backend.cutover.health.path, "/api/v1/open/health-check");
    assert!(backend.cutover.hosts.is_empty(), "catch-all");
    assert_eq!(
        backend.cutover.timeouts.websocket_drain,
        Duration::from_secs(30)
    );
    let env = &backend.service.environment;
    assert_eq!(env["REDIS_HOST"], "redis");
    assert_eq!(env["REDIS_PORT"], "6379");
    assert_eq!(env["APP_VERSION"], "1.2.3");
    assert!(backend.service.ports.is_empty(), "the proxy serves the app");

    assert_eq!(p.accessories.len(), 1);
    let redis = p.accessory("redis").expect("redis is an accessory");
    assert_eq!(redis.container_name, "athens-redis");
    assert_eq!(redis.service.image, "redis:test");
    assert!(redis.service.ports.is_empty(), "redis is not published");
    assert_eq!(
        redis.service.command.as_deref().unwrap()[..3],
        ["redis-server", "--appendonly", "yes"]
    );
    assert!(
        matches!(&redis.service.mounts[..], [Mount::Volume { source: Some(s), target, .. }]
            if s == "athens_redis-data" && target == "/data"),
        "{:?}",
        redis.service.mounts
    );
    assert!(p.volumes.iter().any(|v| v.name == "athens_redis-data"));
}

#[test]
fn without_env_it_uses_the_public_images() {
    // A copy without the local `.env`, as a user's checkout has it.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        example_dir().join("compose.yaml"),
        tmp.path().join("compose.yaml"),
    )
    .unwrap();
    let p = load(tmp.path(), &[]);
    assert_eq!(p.app("backend").unwrap().service.image, "athens:local");
    assert_eq!(
        p.accessory("redis").unwrap().service.image,
        "redis:7-bookworm"
    );
    assert_eq!(
        p.app("backend").unwrap().service.environment["APP_VERSION"],
        "dev"
    );
}

#[test]
fn a_new_app_version_changes_the_backend_and_not_redis() {
    let one = load(&example_dir(), ENV);
    let mut env = ENV.to_vec();
    env.retain(|(k, _)| *k != "APP_VERSION");
    env.push(("APP_VERSION", "1.2.4"));
    let two = load(&example_dir(), &env);
    assert_ne!(
        config_hash(&one.app("backend").unwrap().service),
        config_hash(&two.app("backend").unwrap().service),
        "an env change is a new version of the app, deployed blue/green"
    );
    assert_eq!(
        config_hash(&one.accessory("redis").unwrap().service),
        config_hash(&two.accessory("redis").unwrap().service),
        "redis, an accessory, is left alone"
    );
}
