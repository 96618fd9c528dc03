use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cutover_core::compose::*;
use cutover_core::plan::*;
use cutover_core::service::Color;

mod common;

struct EnvFiles(Vec<(String, String)>);

impl ProjectFiles for EnvFiles {
    fn read_file(&self, path: &Path) -> Result<Option<String>, cutover_core::diag::Report> {
        Ok((path == Path::new("/srv/athens/.env"))
            .then(|| self.0.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect()))
    }
}

const IMAGE: &str = "athens:42";
const IMAGE_ID: &str = "sha256:1111";

/// The field report's project, with `.env` holding these pairs and `extra`
/// appended to the compose file.
fn project(env_file: &[(&str, &str)], redis_image: &str, extra: &str) -> ResolvedProject {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/field-report/compose.yaml"),
    )
    .unwrap()
    .replace("image: redis:7", &format!("image: {redis_image}"))
        + extra;
    let input = LoadInput {
        files: vec![ComposeFile {
            path: PathBuf::from("compose.yaml"),
            content: src,
        }],
        project_dir: PathBuf::from("/srv/athens"),
        project_name: None,
        env: BTreeMap::from([("DOCKER_IMAGE".to_string(), IMAGE.to_string())]),
    };
    let env = EnvFiles(
        env_file
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    load(&input, &env).unwrap_or_else(|e| panic!("{e}"))
}

fn base() -> ResolvedProject {
    project(
        &[("REDIS_HOST", "redis"), ("REDIS_PASSWORD", "hunter2")],
        "redis:7",
        "",
    )
}

/// What the host looks like after `desired` was deployed with backend live on `color`.
fn deployed(desired: &ResolvedProject, color: Color) -> Observed {
    let app = &desired.app("backend").unwrap().service;
    let redis = desired.accessory("redis").unwrap();
    let hash = config_hash(app);
    Observed {
        networks: desired.networks.iter().map(|n| n.name.clone()).collect(),
        volumes: desired.volumes.iter().map(|v| v.name.clone()).collect(),
        accessories: BTreeMap::from([(
            "redis".to_string(),
            ObservedAccessory {
                container: redis.container_name.clone(),
                config_hash: config_hash(&redis.service),
                image_id: Some("sha256:redis".into()),
                running: true,
                spec: Some(redis.service.clone()),
            },
        )]),
        apps: BTreeMap::from([(
            "backend".to_string(),
            ObservedApp {
                live: Some(ObservedVersion {
                    color,
                    version_id: version_id(IMAGE_ID, &hash),
                    config_hash: hash,
                    image_id: IMAGE_ID.into(),
                    container: cutover_core::naming::app_slot("athens", "backend", color),
                    spec: Some(app.clone()),
                }),
                kept: Vec::new(),
                settings: Some(desired.app("backend").unwrap().cutover.clone()),
            },
        )]),
        images: BTreeMap::from([
            (IMAGE.to_string(), IMAGE_ID.to_string()),
            ("redis:7".to_string(), "sha256:redis".to_string()),
        ]),
    }
}

fn backend_hash(p: &ResolvedProject) -> String {
    config_hash(&p.app("backend").unwrap().service)
}

#[test]
fn fresh_project_creates_everything() {
    let desired = base();
    let observed = Observed {
        images: BTreeMap::from([(IMAGE.to_string(), IMAGE_ID.to_string())]),
        ..Observed::default()
    };
    let plan = plan(&desired, &observed).unwrap();
    assert_eq!(
        plan.steps,
        [
            Step::CreateNetwork {
                key: "app-network".into(),
                name: "athens_app-network".into()
            },
            Step::CreateVolume {
                key: "redis-data".into(),
                name: "athens_redis-data".into()
            },
            Step::StartAccessory {
                service: "redis".into(),
                container: "athens-redis".into(),
                reason: StartReason::Missing
            },
            Step::DeployApp {
                service: "backend".into(),
                color: Color::Blue,
                container: "athens-backend-blue".into(),
                version: Some(version_id(IMAGE_ID, &backend_hash(&desired))),
                reuse: None,
                replicas: 1,
                reason: DeployReason::New,
            },
        ]
    );
    assert!(plan.warnings.is_empty());
    assert!(!plan.is_noop());
}

#[test]
fn unchanged_project_is_up_to_date() {
    let desired = base();
    let plan = plan(&desired, &deployed(&desired, Color::Green)).unwrap();
    assert_eq!(
        plan.steps,
        [
            Step::LeaveAccessory {
                service: "redis".into(),
                container: "athens-redis".into()
            },
            Step::AppUpToDate {
                service: "backend".into(),
                color: Color::Green,
                version: version_id(IMAGE_ID, &backend_hash(&desired)),
            },
        ]
    );
    assert!(plan.is_noop());
}

#[test]
fn env_only_change_deploys_the_other_color_and_names_keys_only() {
    let observed = deployed(&base(), Color::Blue);
    let desired = project(
        &[
            ("REDIS_HOST", "redis"),
            ("REDIS_PASSWORD", "hunter3"),
            ("NEW_FLAG", "on"),
        ],
        "redis:7",
        "",
    );
    let plan = plan(&desired, &observed).unwrap();
    let deploy = plan
        .steps
        .iter()
        .find(|s| matches!(s, Step::DeployApp { .. }))
        .unwrap();
    assert_eq!(
        deploy,
        &Step::DeployApp {
            service: "backend".into(),
            color: Color::Green,
            container: "athens-backend-green".into(),
            version: Some(version_id(IMAGE_ID, &backend_hash(&desired))),
            reuse: None,
            replicas: 1,
            reason: DeployReason::ConfigChanged(ConfigChange {
                fields: vec!["environment".into()],
                env: EnvChanges {
                    added: vec!["NEW_FLAG".into()],
                    removed: vec![],
                    changed: vec!["REDIS_PASSWORD".into()]
                },
            }),
        }
    );
    let json = serde_json::to_string(&plan).unwrap();
    assert!(
        !json.contains("hunter"),
        "a plan must not carry env values: {json}"
    );
    assert!(plan.steps.contains(&Step::LeaveAccessory {
        service: "redis".into(),
        container: "athens-redis".into()
    }));
}

#[test]
fn changed_accessory_is_recreated_with_a_warning() {
    let observed = deployed(&base(), Color::Blue);
    let desired = project(
        &[("REDIS_HOST", "redis"), ("REDIS_PASSWORD", "hunter2")],
        "redis:7.4",
        "",
    );
    let plan = plan(&desired, &observed).unwrap();
    assert_eq!(
        plan.steps[0],
        Step::RecreateAccessory {
            service: "redis".into(),
            container: "athens-redis".into(),
            reason: RecreateReason::ConfigChanged(ConfigChange {
                fields: vec!["image".into()],
                env: EnvChanges::default()
            }),
        }
    );
    insta::assert_snapshot!("recreate_warning", texts(&plan.warnings).join("\n"));
    assert!(matches!(plan.steps[1], Step::AppUpToDate { .. }));
}

#[test]
fn moved_image_tag_redeploys() {
    let desired = base();
    let mut observed = deployed(&desired, Color::Blue);
    observed.images.insert(IMAGE.into(), "sha256:2222".into());
    let plan = plan(&desired, &observed).unwrap();
    assert!(plan.steps.contains(&Step::DeployApp {
        service: "backend".into(),
        color: Color::Green,
        container: "athens-backend-green".into(),
        version: Some(version_id("sha256:2222", &backend_hash(&desired))),
        reuse: None,
        replicas: 1,
        reason: DeployReason::ImageChanged {
            from: IMAGE_ID.into(),
            to: "sha256:2222".into()
        },
    }));
}

#[test]
fn force_redeploys_an_up_to_date_app() {
    let desired = base();
    let plan = plan_with(
        &desired,
        &deployed(&desired, Color::Blue),
        &PlanOptions {
            force: true,
            ..PlanOptions::default()
        },
    )
    .unwrap();
    assert!(plan.steps.iter().any(|s| matches!(
        s,
        Step::DeployApp {
            reason: DeployReason::Forced,
            color: Color::Green,
            ..
        }
    )));
}

#[test]
fn missing_external_network_is_an_error() {
    let src = "services:\n  redis:\n    image: redis:7\n    networks: [shared]\nnetworks:\n  shared:\n    name: ubuntu_app-network\n    external: true\n";
    let input = LoadInput {
        files: vec![ComposeFile {
            path: "compose.yaml".into(),
            content: src.into(),
        }],
        project_dir: "/srv/athens".into(),
        project_name: None,
        env: BTreeMap::new(),
    };
    let desired = load(&input, &EnvFiles(vec![])).unwrap();
    let err = plan(&desired, &Observed::default()).unwrap_err();
    assert_eq!(
        err.0,
        [PlanError::MissingExternalNetwork {
            key: "shared".into(),
            name: "ubuntu_app-network".into()
        }]
    );
    insta::assert_snapshot!(
        "missing_external_network",
        cutover_core::diag::Report::from(err.clone()).to_string()
    );
    let observed = Observed {
        networks: ["ubuntu_app-network".to_string()].into(),
        ..Observed::default()
    };
    assert!(plan(&desired, &observed).is_ok());
}

#[test]
fn rollback_reuses_a_kept_version_and_old_ones_are_pruned() {
    let old = project(&[("REDIS_HOST", "redis"), ("V", "1")], "redis:7", "");
    let current = base();
    let mut observed = deployed(&current, Color::Green);
    let old_hash = backend_hash(&old);
    let kept = |n: u32, hash: &str| ObservedVersion {
        color: Color::Blue,
        version_id: version_id(IMAGE_ID, hash),
        config_hash: hash.to_string(),
        image_id: IMAGE_ID.into(),
        container: format!("athens-backend-kept{n}"),
        spec: None,
    };
    let app = observed.apps.get_mut("backend").unwrap();
    app.kept = vec![
        kept(1, &old_hash),
        kept(2, "h2"),
        kept(3, "h3"),
        kept(4, "h4"),
    ];
    let plan = plan(&old, &observed).unwrap();
    let steps: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| !matches!(s, Step::LeaveAccessory { .. }))
        .collect();
    assert_eq!(
        steps,
        [
            &Step::DeployApp {
                service: "backend".into(),
                color: Color::Blue,
                container: "athens-backend-blue".into(),
                version: Some(version_id(IMAGE_ID, &old_hash)),
                reuse: Some("athens-backend-kept1".into()),
                replicas: 1,
                reason: DeployReason::ConfigChanged(ConfigChange {
                    fields: vec!["environment".into()],
                    env: EnvChanges {
                        added: vec!["V".into()],
                        removed: vec!["REDIS_PASSWORD".into()],
                        changed: vec![]
                    },
                }),
            },
            // The retiring green plus kept2..kept4 are four; keep is 3.
            &Step::RemoveOldVersions {
                service: "backend".into(),
                containers: vec!["athens-backend-kept4".into()]
            },
        ]
    );
}

#[test]
fn orphaned_accessory_is_reported_not_removed() {
    let desired = base();
    let mut observed = deployed(&desired, Color::Blue);
    observed.accessories.insert(
        "postgres".into(),
        ObservedAccessory {
            container: "athens-postgres".into(),
            config_hash: "x".into(),
            image_id: None,
            running: true,
            spec: None,
        },
    );
    let plan = plan(&desired, &observed).unwrap();
    assert!(plan.is_noop());
    assert_eq!(
        texts(&plan.warnings),
        ["container athens-postgres belongs to service postgres, which is no longer in the compose file; it is left running\nhint: remove it with `docker rm -f athens-postgres`"]
    );
}

#[test]
fn stopped_accessory_is_started() {
    let desired = base();
    let mut observed = deployed(&desired, Color::Blue);
    observed.accessories.get_mut("redis").unwrap().running = false;
    let plan = plan(&desired, &observed).unwrap();
    assert_eq!(
        plan.steps[0],
        Step::StartAccessory {
            service: "redis".into(),
            container: "athens-redis".into(),
            reason: StartReason::Stopped
        }
    );
}

#[test]
fn routing_change_updates_the_route_and_port_change_redeploys() {
    let desired = base();
    let mut observed = deployed(&desired, Color::Blue);
    let settings = observed
        .apps
        .get_mut("backend")
        .unwrap()
        .settings
        .as_mut()
        .unwrap();
    settings.hosts = vec!["old.example".into()];
    settings.health.path = "/up".into();
    let p = plan(&desired, &observed).unwrap();
    assert!(p.steps.contains(&Step::UpdateRoute {
        service: "backend".into(),
        changed: vec!["hosts".into(), "health".into()]
    }));
    assert!(!p.steps.iter().any(|s| matches!(s, Step::DeployApp { .. })));

    observed
        .apps
        .get_mut("backend")
        .unwrap()
        .settings
        .as_mut()
        .unwrap()
        .port = 9090;
    let p = plan(&desired, &observed).unwrap();
    assert!(p.steps.iter().any(|s| matches!(
        s,
        Step::DeployApp { reason: DeployReason::ConfigChanged(c), .. } if c.fields == ["x-cutover.port"]
    )));
}

/// Warnings as the CLI prints them after `warning: `.
fn texts(reports: &[cutover_core::diag::Report]) -> Vec<String> {
    reports.iter().map(ToString::to_string).collect()
}

#[test]
fn an_accessory_that_depends_on_an_app_starts_after_it() {
    let src = "name: athens\nservices:\n  edge:\n    image: nginx:1.27\n    depends_on: [backend]\n  backend:\n    image: app:1\n    depends_on: [redis]\n    x-cutover: {port: 8080}\n  redis:\n    image: redis:7\n";
    let input = LoadInput {
        files: vec![ComposeFile {
            path: PathBuf::from("compose.yaml"),
            content: src.into(),
        }],
        project_dir: PathBuf::from("/srv/athens"),
        project_name: None,
        env: BTreeMap::new(),
    };
    let desired = load(&input, &NoFiles).unwrap();
    let observed = Observed {
        images: BTreeMap::from([("app:1".to_string(), IMAGE_ID.to_string())]),
        ..Observed::default()
    };
    let plan = plan(&desired, &observed).unwrap();
    let order: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::StartAccessory { service, .. } | Step::DeployApp { service, .. } => {
                Some(service.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(order, ["redis", "backend", "edge"]);
}

#[test]
fn the_plan_lists_each_image_and_where_it_comes_from() {
    let src = "name: shop\nservices:\n  web:\n    build: ./web\n    x-cutover: {port: 8080}\n  cache:\n    image: redis:7\n  db:\n    image: postgres:16\n    pull_policy: always\n  jobs:\n    image: postgres:16\n";
    let desired = common::ok(src);
    let observed = Observed {
        images: BTreeMap::from([
            ("redis:7".to_string(), "sha256:redis".to_string()),
            ("postgres:16".to_string(), "sha256:pg".to_string()),
        ]),
        ..Observed::default()
    };
    let plan = plan(&desired, &observed).unwrap();
    let actions: Vec<(&str, &[String], &ImageAction)> = plan
        .images
        .iter()
        .map(|i| (i.image.as_str(), i.services.as_slice(), &i.action))
        .collect();
    assert_eq!(
        actions,
        [
            (
                "redis:7",
                &["cache".to_string()][..],
                &ImageAction::Local {
                    id: "sha256:redis".into()
                }
            ),
            // The first service that runs it decides: db asks to pull always.
            (
                "postgres:16",
                &["db".to_string(), "jobs".to_string()][..],
                &ImageAction::Pull {
                    local: Some("sha256:pg".into())
                }
            ),
            (
                "shop-web",
                &["web".to_string()][..],
                &ImageAction::Build {
                    context: "/srv/shop/web".into()
                }
            ),
        ]
    );
    // Never pulled and not here: the plan says so before anything runs.
    let never = plan_with(
        &common::ok("services:\n  cache:\n    image: redis:8\n    pull_policy: never\n"),
        &observed,
        &PlanOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        never.to_string(),
        "image redis:8 (service cache) is not on this host and pulling is off"
    );
}
