//! The fake follows the engine's rules the deploy logic depends on.

use std::time::Duration;

use futures_util::stream::StreamExt;

use super::*;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::labels::{self, LabelFilter};
use cutover_core::diag::Diagnose;

fn app_spec(name: &str, project: &str, network: &str) -> ContainerSpec {
    ContainerSpec::new(name, "app:1")
        .label(labels::PROJECT, project)
        .network(NetworkAttachment::new(network).alias("backend"))
}

fn engine_with_network(project: &str, network: &str) -> FakeEngine {
    let fake = FakeEngine::new();
    fake.add_image("app:1");
    fake.add_network(&NetworkSpec::new(network).label(labels::PROJECT, project));
    fake
}

#[tokio::test]
async fn ensure_network_is_idempotent_and_keeps_the_name() {
    let fake = FakeEngine::new();
    let engine: Arc<dyn Engine> = Arc::new(fake.clone());
    let spec = NetworkSpec::new("app-network").label(labels::PROJECT, "athens");
    let first = engine.ensure_network(&spec).await.unwrap();
    let second = engine.ensure_network(&spec).await.unwrap();
    assert!(first.created);
    assert!(!second.created);
    assert_eq!(first.value.id, second.value.id);
    assert_eq!(fake.network_names(), vec!["app-network"]);
    assert_eq!(fake.calls_of(Op::CreateNetwork), vec!["app-network"]);
}

#[tokio::test]
async fn external_network_is_reported_and_never_removed() {
    let fake = FakeEngine::new();
    fake.add_network(&NetworkSpec::new("ubuntu_app-network"));
    let ensured = fake
        .ensure_network(&NetworkSpec::new("ubuntu_app-network").label(labels::PROJECT, "athens"))
        .await
        .unwrap();
    assert!(ensured.value.is_external());
    let err = fake
        .remove_network("ubuntu_app-network", "athens")
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(err.to_string().contains("not created by cutover"), "{err}");
    assert_eq!(fake.network_names(), vec!["ubuntu_app-network"]);
}

#[tokio::test]
async fn list_by_label_ignores_name_lookalikes() {
    let fake = engine_with_network("athens", "app");
    fake.create_container(&app_spec("athens-blue", "athens", "app").label(labels::COLOR, "blue"))
        .await
        .unwrap();
    // Named like an app color but not labelled as one: failure #4.
    fake.create_container(
        &ContainerSpec::new("athens-redis-blue", "app:1").label(labels::PROJECT, "athens-redis"),
    )
    .await
    .unwrap();
    let found = fake
        .list_containers(&LabelFilter::project("athens").with_key(labels::COLOR))
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        vec!["athens-blue"]
    );
}

#[tokio::test]
async fn remove_network_disconnects_our_containers_first() {
    let fake = engine_with_network("athens", "app");
    fake.create_container(&app_spec("athens-blue", "athens", "app"))
        .await
        .unwrap();
    fake.start_container("athens-blue").await.unwrap();
    // The raw call refuses, as the engine does with active endpoints.
    let err = fake.delete_network("app").await.unwrap_err();
    assert!(err.to_string().contains("active endpoints"), "{err}");

    assert_eq!(
        fake.remove_network("app", "athens").await.unwrap(),
        Removal::Removed
    );
    assert_eq!(fake.calls_of(Op::DisconnectNetwork), vec!["app"]);
    assert!(fake.network_names().is_empty());
    let c = fake
        .inspect_container("athens-blue")
        .await
        .unwrap()
        .unwrap();
    assert!(c.networks.is_empty());
    assert_eq!(
        fake.remove_network("app", "athens").await.unwrap(),
        Removal::Absent
    );
}

#[tokio::test]
async fn remove_network_names_foreign_containers() {
    let fake = engine_with_network("athens", "app");
    fake.create_container(&app_spec("athens-blue", "athens", "app"))
        .await
        .unwrap();
    fake.create_container(
        &ContainerSpec::new("someone-else", "app:1").network(NetworkAttachment::new("app")),
    )
    .await
    .unwrap();
    let err = fake.remove_network("app", "athens").await.unwrap_err();
    match &err {
        EngineError::NetworkInUse { containers, .. } => {
            assert_eq!(containers, &vec!["someone-else".to_owned()])
        }
        other => panic!("expected NetworkInUse, got {other:?}"),
    }
    assert!(err.report().to_string().contains("\nhint: "), "{err}");
    // Nothing was disconnected on the way to the refusal.
    assert!(fake.calls_of(Op::DisconnectNetwork).is_empty());
    assert_eq!(fake.network_names(), vec!["app"]);
}

#[tokio::test]
async fn container_lifecycle_and_errors() {
    let fake = engine_with_network("p", "app");
    let spec = app_spec("c1", "p", "app");
    fake.create_container(&spec).await.unwrap();
    let err = fake.create_container(&spec).await.unwrap_err();
    assert!(err.is_conflict());
    let err = fake
        .create_container(&ContainerSpec::new("c2", "missing:1"))
        .await
        .unwrap_err();
    assert!(err.is_not_found());

    fake.start_container("c1").await.unwrap();
    fake.start_container("c1").await.unwrap();
    let info = fake.inspect_container("c1").await.unwrap().unwrap();
    assert_eq!(info.state, ContainerState::Running);
    assert_eq!(info.networks["app"].aliases, vec!["backend"]);
    assert!(info.ip_on("app").is_some());

    fake.stop_container("c1", Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        fake.inspect_container("c1").await.unwrap().unwrap().state,
        ContainerState::Exited
    );
    assert_eq!(fake.remove_container("c1").await.unwrap(), Removal::Removed);
    assert_eq!(fake.remove_container("c1").await.unwrap(), Removal::Absent);
    assert!(fake.start_container("c1").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn addresses_stay_distinct_past_one_subnet() {
    let fake = engine_with_network("p", "app");
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..300 {
        let name = format!("c{i}");
        fake.create_container(&app_spec(&name, "p", "app"))
            .await
            .unwrap();
        let info = fake.inspect_container(&name).await.unwrap().unwrap();
        assert!(seen.insert(info.ip_on("app").unwrap()));
    }
}

#[tokio::test]
async fn injected_failures_count_down() {
    let fake = engine_with_network("p", "app");
    fake.create_container(&app_spec("c", "p", "app"))
        .await
        .unwrap();
    fake.fail(
        Op::StartContainer,
        Some("c"),
        Failure::Api {
            status: 500,
            message: "port is already allocated".into(),
        },
        1,
    );
    let err = fake.start_container("c").await.unwrap_err();
    assert!(
        err.to_string().contains("port is already allocated"),
        "{err}"
    );
    fake.start_container("c").await.unwrap();
}

#[tokio::test]
async fn volumes_survive_containers_and_refuse_removal_in_use() {
    let fake = engine_with_network("p", "app");
    let vol = VolumeSpec::new("redis-data").label(labels::PROJECT, "p");
    assert!(fake.ensure_volume(&vol).await.unwrap().created);
    assert!(!fake.ensure_volume(&vol).await.unwrap().created);
    let spec = app_spec("redis", "p", "app").mount(MountSpec::Volume {
        name: "redis-data".into(),
        target: "/data".into(),
        read_only: false,
        nocopy: false,
    });
    fake.create_container(&spec).await.unwrap();
    assert!(fake
        .remove_volume("redis-data")
        .await
        .unwrap_err()
        .is_conflict());
    fake.remove_container("redis").await.unwrap();
    assert_eq!(
        fake.list_volumes(&LabelFilter::project("p"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        fake.remove_volume("redis-data").await.unwrap(),
        Removal::Removed
    );
}

#[tokio::test]
async fn ensure_image_pulls_only_what_is_missing() {
    let fake = FakeEngine::new();
    fake.add_image("local:1");
    fake.add_registry_image("remote:1");
    fake.ensure_image("local:1").await.unwrap();
    fake.ensure_image("remote:1").await.unwrap();
    let err = fake.ensure_image("nowhere:1").await.unwrap_err();
    assert!(
        err.report()
            .to_string()
            .contains("hint: the engine must reach"),
        "{err}"
    );
    assert_eq!(fake.calls_of(Op::PullImage), vec!["remote:1", "nowhere:1"]);
}

#[tokio::test]
async fn logs_tail_returns_the_last_lines() {
    let fake = engine_with_network("p", "app");
    fake.create_container(&app_spec("c", "p", "app"))
        .await
        .unwrap();
    for i in 0..5 {
        fake.push_log("c", LogSource::Stdout, &format!("line {i}"));
    }
    let tail = fake.logs_tail("c", 2).await.unwrap();
    assert_eq!(
        tail.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
        vec!["line 3", "line 4"]
    );
    let options = LogOptions {
        tail: 1,
        follow: true,
        ..LogOptions::default()
    };
    let followed: Vec<_> = fake.logs("c", &options).collect().await;
    assert_eq!(followed.len(), 1);
    assert!(fake.logs_tail("nope", 2).await.unwrap_err().is_not_found());
}

fn with_healthcheck(name: &str) -> ContainerSpec {
    let mut spec = app_spec(name, "p", "app");
    spec.healthcheck = Some(HealthcheckSpec {
        test: HealthTest::Shell("true".into()),
        interval: None,
        timeout: None,
        retries: None,
        start_period: None,
    });
    spec
}

#[tokio::test(start_paused = true)]
async fn wait_healthy_sees_the_status_change() {
    let fake = engine_with_network("p", "app");
    fake.create_container(&with_healthcheck("c")).await.unwrap();
    fake.start_container("c").await.unwrap();
    let waiter = {
        let fake = fake.clone();
        tokio::spawn(async move { fake.wait_healthy("c", Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!waiter.is_finished());
    fake.set_health("c", Some(HealthState::Healthy));
    let info = waiter.await.unwrap().unwrap();
    assert_eq!(info.health, Some(HealthState::Healthy));
}

#[tokio::test(start_paused = true)]
async fn wait_healthy_times_out_with_the_last_output() {
    let fake = engine_with_network("p", "app");
    fake.create_container(&with_healthcheck("c")).await.unwrap();
    fake.start_container("c").await.unwrap();
    fake.set_health_output("c", "connection refused");
    let err = fake
        .wait_healthy("c", Duration::from_secs(5))
        .await
        .unwrap_err();
    match &err {
        EngineError::Timeout { after, .. } => assert_eq!(*after, Duration::from_secs(5)),
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(err.to_string().contains("connection refused"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn wait_healthy_fails_fast_on_exit_unhealthy_or_no_check() {
    let fake = engine_with_network("p", "app");
    fake.create_container(&with_healthcheck("exits"))
        .await
        .unwrap();
    fake.start_container("exits").await.unwrap();
    fake.exit("exits", 3);
    let err = fake
        .wait_healthy("exits", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::NotRunning {
                exit_code: Some(3),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "container exits is not running (exited, exit code 3), so it cannot become healthy"
    );

    fake.create_container(&with_healthcheck("never-started"))
        .await
        .unwrap();
    let err = fake
        .wait_healthy("never-started", Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "container never-started is not running (created), so it cannot become healthy"
    );

    fake.create_container(&with_healthcheck("sick"))
        .await
        .unwrap();
    fake.start_container("sick").await.unwrap();
    fake.set_health("sick", Some(HealthState::Unhealthy));
    match fake.wait_healthy("sick", Duration::from_secs(60)).await {
        Err(EngineError::Unhealthy { .. }) => {}
        other => panic!("expected Unhealthy, got {other:?}"),
    }

    fake.create_container(&app_spec("plain", "p", "app"))
        .await
        .unwrap();
    fake.start_container("plain").await.unwrap();
    match fake.wait_healthy("plain", Duration::from_secs(60)).await {
        Err(EngineError::NoHealthcheck { .. }) => {}
        other => panic!("expected NoHealthcheck, got {other:?}"),
    }
}
