//! Deploys on the fake engine: what is created, kept, pruned and reported.

use super::*;

#[tokio::test]
async fn fresh_deploy_creates_everything_with_labels_and_routes_blue() {
    let h = Harness::new().await;
    let saved = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = saved.clone();
    let engine = h.engine.clone().on_routes_changed(Arc::new(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async {})
    }));
    let ev = collect(engine.deploy(cmd(compose("hello", 2)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    // The daemon gets to persist the proxy's state right after the switch.
    assert_eq!(saved.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(h.fake.network_names(), vec!["athens_default"]);
    assert_eq!(h.fake.volume_names(), vec!["athens_redis-data"]);
    assert!(h.running("athens-redis") && h.running("athens-web-blue"));
    let spec = h.fake.spec_of("athens-web-blue").unwrap();
    assert_eq!(spec.labels[labels::PROJECT], "athens");
    assert_eq!(spec.labels[labels::SERVICE], "web");
    assert_eq!(spec.labels[labels::COLOR], "blue");
    assert_eq!(spec.labels[labels::ROLE], "app");
    assert_eq!(spec.labels[labels::VERSION].len(), 12);
    assert!(spec.labels.contains_key(labels::CONFIG_HASH));
    // The app answers to its service name on the project network, and
    // redis to its own (failure #3).
    assert!(spec.networks[0].aliases.contains(&"web".to_string()));
    let redis = h.fake.spec_of("athens-redis").unwrap();
    assert!(redis.networks[0].aliases.contains(&"redis".to_string()));
    assert_eq!(redis.labels[labels::ROLE], "accessory");
    assert!(redis.ports.is_empty());
    assert_eq!(h.live().unwrap().0, Color::Blue);
    assert!(ev.iter().any(|e| matches!(
        e,
        ProgressEvent::Switched {
            color: Color::Blue,
            ..
        }
    )));
    // Traffic reached the blue origin's health endpoint through the gate.
    assert!(h.blue.probes() > 0);
    let hist = h.engine.history("athens", Some("web")).await.unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].result, Outcome::Ok);
}

#[tokio::test]
async fn unchanged_version_is_up_to_date_and_force_redeploys() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    h.fake.clear_calls();
    let ev = collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let (o, msg) = outcome(&ev);
    assert_eq!(o, Outcome::UpToDate, "{ev:#?}");
    assert!(msg.starts_with("up to date: web "), "{msg}");
    assert!(h.fake.calls_of(Op::CreateContainer).is_empty());

    let mut forced = cmd(compose("hello", 2));
    forced.force = true;
    let ev = collect(h.engine.deploy(forced)).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Green);
}

#[tokio::test]
async fn env_change_rolls_out_to_the_other_color_and_keeps_the_old_stopped() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let ev = collect(h.engine.deploy(cmd(compose("bonjour", 2)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Green);
    let green = h.fake.spec_of("athens-web-green").unwrap();
    assert_eq!(green.env["GREETING"], "bonjour");
    assert!(h.running("athens-web-green"));
    // Drained, stopped, kept for rollback.
    h.settle().await;
    assert!(!h.running("athens-web-blue"));
    assert!(h
        .fake
        .container_names()
        .contains(&"athens-web-blue".to_string()));
    // The accessory was left alone.
    assert_eq!(
        h.fake
            .calls_of(Op::CreateContainer)
            .iter()
            .filter(|c| c.as_str() == "athens-redis")
            .count(),
        1
    );
}

#[tokio::test]
async fn failed_health_leaves_nothing_behind_and_the_old_color_serving() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    h.green.set_healthy(false);
    let ev = collect(h.engine.deploy(cmd(compose("broken", 2)))).await;
    let (o, msg) = outcome(&ev);
    assert_eq!(o, Outcome::Failed, "{ev:#?}");
    assert!(msg.contains("athens-web-blue"), "{msg}");
    assert!(ev.iter().any(
        |e| matches!(e, ProgressEvent::Logs { container, .. } if container == "athens-web-green")
    ));
    assert!(ev
        .iter()
        .any(|e| matches!(e, ProgressEvent::StepFailed { .. })));
    assert!(!h
        .fake
        .container_names()
        .contains(&"athens-web-green".to_string()));
    assert_eq!(h.live().unwrap().0, Color::Blue);
    assert!(h.running("athens-web-blue"));
    assert!(h.engine.inner.journal.pending().is_empty());
    let hist = h.engine.history("athens", Some("web")).await.unwrap();
    assert_eq!(hist.last().unwrap().result, Outcome::Failed);
}

#[tokio::test]
async fn a_held_lock_times_out_naming_the_holder() {
    let h = Harness::new().await;
    let _held = h
        .engine
        .inner
        .locks
        .acquire(
            "athens",
            crate::lock::Holder {
                operation: "rollback".into(),
                version: Some("v7".into()),
                since: std::time::SystemTime::now(),
            },
            std::time::Duration::ZERO,
            |_| {},
        )
        .await
        .unwrap();
    let ev = collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let (o, msg) = outcome(&ev);
    assert_eq!(o, Outcome::LockTimeout);
    assert!(msg.contains("locked by rollback of version v7"), "{msg}");
    assert!(h.fake.calls_of(Op::CreateContainer).is_empty());
}

#[tokio::test]
async fn keep_prunes_versions_past_it() {
    let h = Harness::new().await;
    for g in ["one", "two", "three", "four"] {
        let ev = collect(h.engine.deploy(cmd(compose(g, 1)))).await;
        assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    }
    // Live: "four"; kept: "three" only.
    let mut apps: Vec<String> = h
        .fake
        .container_names()
        .into_iter()
        .filter(|n| n.starts_with("athens-web"))
        .collect();
    apps.sort();
    assert_eq!(apps.len(), 2, "{apps:?}");
    let envs: Vec<String> = apps
        .iter()
        .map(|n| h.fake.spec_of(n).unwrap().env["GREETING"].clone())
        .collect();
    assert!(
        envs.contains(&"four".to_string()) && envs.contains(&"three".to_string()),
        "{envs:?}"
    );
}

#[tokio::test]
async fn keep_two_moves_the_kept_version_aside_by_version_name() {
    let h = Harness::new().await;
    for g in ["one", "two", "three"] {
        let ev = collect(h.engine.deploy(cmd(compose(g, 2)))).await;
        assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    }
    // "one" was in blue, which "three" needed: it lives on by version name.
    let names = h.fake.container_names();
    let moved: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("athens-web-") && !n.ends_with("blue") && !n.ends_with("green"))
        .collect();
    assert_eq!(moved.len(), 1, "{names:?}");
    assert_eq!(h.fake.spec_of(moved[0]).unwrap().env["GREETING"], "one");
    h.settle().await;
    assert!(!h.running(moved[0]));
}

#[tokio::test]
async fn a_disconnected_client_does_not_stop_the_deploy() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    // The client goes away while the new color is being health-gated.
    h.green.set_healthy(false);
    let mut rx = h.engine.deploy(cmd(compose("bonjour", 2)));
    loop {
        match rx.recv().await {
            Some(ProgressEvent::StepStarted { what, .. }) if what.starts_with("health check") => {
                break
            }
            Some(_) => {}
            None => panic!("the deploy ended before its health gate"),
        }
    }
    drop(rx);
    h.green.set_healthy(true);
    h.engine.tasks().close();
    h.engine.tasks().wait().await;
    h.settle().await;
    assert_eq!(h.live().unwrap().0, Color::Green);
    assert!(!h.running("athens-web-blue"));
    let hist = h.engine.history("athens", Some("web")).await.unwrap();
    assert_eq!(hist.last().unwrap().result, Outcome::Ok);
}

#[tokio::test]
async fn plan_has_no_side_effects_and_names_env_keys_only() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    h.fake.clear_calls();
    let plan = h
        .engine
        .plan(&cmd(compose("secret-value", 2)))
        .await
        .unwrap();
    let json = serde_json::to_string(&plan).unwrap();
    assert!(json.contains("GREETING"), "{json}");
    assert!(!json.contains("secret-value"), "{json}");
    assert!(json.contains("deploy_app"), "{json}");
    for op in [
        Op::CreateContainer,
        Op::PullImage,
        Op::CreateNetwork,
        Op::StartContainer,
    ] {
        assert!(h.fake.calls_of(op).is_empty(), "{op:?}");
    }
}

#[tokio::test]
async fn a_missing_external_network_is_invalid_with_a_hint() {
    let h = Harness::new().await;
    let mut p = compose("hello", 2);
    for n in &mut p.networks {
        n.external = true;
        n.name = "ubuntu_app-network".into();
    }
    let ev = collect(h.engine.deploy(cmd(p))).await;
    let (o, _) = outcome(&ev);
    assert_eq!(o, Outcome::Invalid);
    match ev.last().unwrap() {
        ProgressEvent::Finished { hint, message, .. } => {
            assert!(message.contains("ubuntu_app-network"), "{message}");
            assert!(hint
                .as_deref()
                .unwrap_or("")
                .contains("docker network create"));
        }
        _ => unreachable!(),
    }
    assert!(h.fake.calls_of(Op::CreateContainer).is_empty());
}

#[tokio::test]
async fn an_external_secret_is_refused_on_one_host_before_anything_starts() {
    let h = Harness::new().await;
    let mut p = compose("hello", 2);
    p.apps[0]
        .service
        .secrets
        .push(cutover_core::compose::FileRef {
            source: "api_key".into(),
            target: None,
            uid: None,
            gid: None,
            mode: None,
            from: cutover_core::compose::FileSource::External {
                name: "api_key".into(),
            },
        });
    let ev = collect(h.engine.deploy(cmd(p))).await;
    assert_eq!(outcome(&ev).0, Outcome::Invalid, "{ev:#?}");
    let ProgressEvent::Finished { hint, message, .. } = ev.last().unwrap() else {
        unreachable!()
    };
    assert!(
        message.starts_with("services.web.secrets: api_key is an external secret"),
        "{message}"
    );
    assert!(
        hint.as_deref().unwrap_or("").contains("docs/swarm.md"),
        "{hint:?}"
    );
    for op in [Op::PullImage, Op::CreateNetwork, Op::CreateContainer] {
        assert!(h.fake.calls_of(op).is_empty(), "{op:?}");
    }
}

#[tokio::test]
async fn a_failed_deploy_does_not_cost_the_kept_version() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("one", 1)))).await;
    collect(h.engine.deploy(cmd(compose("two", 1)))).await;
    // "three" needs blue, where "one" is kept; it fails its health gate.
    h.blue.set_healthy(false);
    let ev = collect(h.engine.deploy(cmd(compose("three", 1)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Failed, "{ev:#?}");
    // "one" was moved aside, not removed: past `keep` only after a success.
    let kept: Vec<String> = h
        .fake
        .container_names()
        .into_iter()
        .filter(|n| n.starts_with("athens-web-") && !n.ends_with("green"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(h.fake.spec_of(&kept[0]).unwrap().env["GREETING"], "one");
    h.blue.set_healthy(true);
    let ev = collect(h.engine.deploy(cmd(compose("three", 1)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    // Now it goes: live "three", kept "two".
    let mut envs: Vec<String> = h
        .fake
        .container_names()
        .into_iter()
        .filter(|n| n.starts_with("athens-web-"))
        .map(|n| h.fake.spec_of(&n).unwrap().env["GREETING"].clone())
        .collect();
    envs.sort();
    assert_eq!(envs, vec!["three", "two"]);
}

#[tokio::test]
async fn a_datastore_published_everywhere_is_warned_about() {
    let h = Harness::new().await;
    let p = compose_with("hello", 2, "    ports: [\"6379:6379\"]\n");
    let ev = collect(h.engine.deploy(cmd(p))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert!(
        ev.iter().any(
            |e| matches!(e, ProgressEvent::Warning { message, .. } if message.contains("6379"))
        ),
        "{ev:#?}"
    );
    // Published as written: the user asked for it.
    let spec = h.fake.spec_of("athens-redis").unwrap();
    assert_eq!(spec.ports[0].host_port, Some(6379));
}

/// What a deploy had done before it failed is a fact below the error, not
/// text glued onto its hint.
#[tokio::test]
async fn a_failure_after_a_switch_says_what_was_switched_in_the_detail() {
    let h = Harness::new().await;
    let yaml = compose_yaml("hello", 2, "").replace(
        "  redis:\n",
        "  worker:\n    image: athens:1\n    depends_on: [web]\n    x-cutover: {port: 8081, hosts: [worker.test]}\n  redis:\n",
    );
    let ev = collect(h.engine.deploy(cmd(parse(yaml)))).await;
    let Some(ProgressEvent::Finished {
        outcome,
        message,
        detail,
        hint,
        ..
    }) = ev.last()
    else {
        panic!("no Finished: {ev:#?}");
    };
    assert_eq!(*outcome, Outcome::Failed, "{ev:#?}");
    // The worker has no origin in this harness, so its address fails.
    assert!(message.contains("worker"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert_eq!(
        detail.as_deref(),
        Some("already switched in this deploy: web (blue)")
    );
    assert!(
        hint.as_deref().is_none_or(|h| !h.contains("switched")),
        "{hint:?}"
    );
}

/// An engine error that has a hint of its own, met while waiting for an
/// accessory, ends the deploy with one hint, not two run together.
#[tokio::test]
async fn an_accessory_that_cannot_be_checked_fails_with_one_hint() {
    let h = Harness::new().await;
    let yaml = compose_yaml("hello", 2, "")
        .replace(
            "    depends_on: [redis]\n",
            "    depends_on: {redis: {condition: service_healthy}}\n",
        )
        .replace(
            "    image: redis:7\n",
            "    image: redis:7\n    healthcheck: {test: [\"CMD\", \"true\"]}\n",
        );
    // Redis starts in a first deploy; the second leaves it alone and only
    // waits for it, and that wait meets the engine error.
    let fake = h.fake.clone();
    let healthy = tokio::spawn(async move {
        for _ in 0..2_000 {
            if fake.container_names().iter().any(|n| n == "athens-redis") {
                fake.set_health("athens-redis", Some(cutover_docker::HealthState::Healthy));
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    });
    let ev = collect(h.engine.deploy(cmd(parse(yaml.clone())))).await;
    healthy.await.unwrap();
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    h.fake.fail_always(
        cutover_docker::fake::Op::InspectContainer,
        Some("athens-redis"),
        cutover_docker::fake::Failure::Unreachable,
    );
    let yaml = yaml.replace("GREETING: \"hello\"", "GREETING: \"again\"");
    let ev = collect(h.engine.deploy(cmd(parse(yaml)))).await;
    let Some(ProgressEvent::Finished {
        outcome,
        message,
        hint,
        ..
    }) = ev.last()
    else {
        panic!("no Finished: {ev:#?}");
    };
    assert_eq!(*outcome, Outcome::Failed, "{ev:#?}");
    assert!(
        message.starts_with("accessory athens-redis is not healthy: "),
        "{message}"
    );
    assert!(!message.contains("hint:"), "{message}");
    assert_eq!(
        hint.as_deref(),
        Some("`docker logs athens-redis` tells why")
    );
}

/// `container_name:` on an app names its colors, and the version it keeps.
#[tokio::test]
async fn an_apps_container_name_names_its_colors_and_kept_versions() {
    let h = Harness::new().await;
    let named = |greeting: &str| {
        let mut p = compose(greeting, 2);
        p.apps[0].container_name = Some("athens-backend".into());
        p
    };
    for (name, origin) in [
        ("athens-backend-blue", h.blue.addr()),
        ("athens-backend-green", h.green.addr()),
    ] {
        h.origins.lock().unwrap().insert(name.into(), origin);
    }
    for greeting in ["one", "two", "three"] {
        let ev = collect(h.engine.deploy(cmd(named(greeting)))).await;
        assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
        h.settle().await;
    }
    // Three versions: blue (three), green (two), and one moved out of
    // blue's slot under the same base name.
    let names = h.fake.container_names();
    assert!(
        h.exists("athens-backend-blue") && h.exists("athens-backend-green"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("athens-backend-")
            && !n.ends_with("-blue")
            && !n.ends_with("-green")),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("athens-web-")),
        "{names:?}"
    );
}

fn steps(ev: &[ProgressEvent]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match e {
            ProgressEvent::StepDone { what, detail, .. } => {
                Some(format!("{what}: {}", detail.as_deref().unwrap_or("")))
            }
            _ => None,
        })
        .collect()
}

/// Forced redeploys of one version under new labels (`--force --version`)
/// keep no copy of it as if it were another version, and every view names
/// the label asked for last, also when a kept container is reused.
#[tokio::test]
async fn forced_redeploys_of_one_version_keep_no_duplicates() {
    let h = Harness::new().await;
    let deploy = |greeting: &str, version: &str| {
        let mut c = cmd(compose(greeting, 2));
        c.force = true;
        c.version = Some(version.into());
        h.engine.deploy(c)
    };
    for v in ["1", "2", "3"] {
        let ev = collect(deploy("hello", v)).await;
        assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
        if v != "1" {
            assert!(
                steps(&ev)
                    .iter()
                    .any(|s| s.contains("removed: the same version now serves from")),
                "{:#?}",
                steps(&ev)
            );
        }
        h.settle().await;
    }
    let st = h.engine.status("athens").await.unwrap();
    let web = &st.apps[0];
    assert_eq!(web.live.as_ref().unwrap().version, "3");
    assert!(web.kept.is_empty(), "{:#?}", web.kept);
    let apps: Vec<String> = h
        .fake
        .container_names()
        .into_iter()
        .filter(|n| n.starts_with("athens-web"))
        .collect();
    assert_eq!(apps.len(), 1, "{apps:?}");

    // Another version, then the first content again under a new label: the
    // kept container of that content is reused, and reads as the new label.
    collect(deploy("bonjour", "4")).await;
    h.settle().await;
    let ev = collect(deploy("hello", "5")).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    h.settle().await;
    let st = h.engine.status("athens").await.unwrap();
    let web = &st.apps[0];
    assert_eq!(web.live.as_ref().unwrap().version, "5");
    let kept: Vec<&str> = web.kept.iter().map(|k| k.version.as_str()).collect();
    assert_eq!(kept, ["4"]);
}

/// A rollback to a version moved out of its slot moves that very container
/// back instead of making a new one and removing it "past keep".
#[tokio::test]
async fn a_rollback_moves_the_kept_version_back_into_the_slot() {
    let h = Harness::new().await;
    for (greeting, v) in [("one", "1"), ("two", "2"), ("three", "3")] {
        let mut c = cmd(compose(greeting, 2));
        c.version = Some(v.into());
        collect(h.engine.deploy(c)).await;
        h.settle().await;
    }
    // Version 1 was moved out of blue by version 3.
    let st = h.engine.status("athens").await.unwrap();
    let one = st.apps[0]
        .kept
        .iter()
        .find(|k| k.version == "1")
        .unwrap()
        .container
        .clone();
    assert!(!one.ends_with("-blue") && !one.ends_with("-green"), "{one}");
    let mut rb = super::rollback::rollback_cmd();
    rb.to = Some("1".into());
    let ev = collect(h.engine.rollback("athens".into(), rb)).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    let steps = steps(&ev);
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with(&format!("move {one} back into athens-web-green"))),
        "{steps:#?}"
    );
    assert!(
        !steps.iter().any(|s| s.contains(&format!("remove {one}"))),
        "{steps:#?}"
    );
    assert!(
        steps.iter().any(|s| s.contains("kept version 1")),
        "{steps:#?}"
    );
    h.settle().await;
    assert_eq!(
        h.fake.spec_of("athens-web-green").unwrap().env["GREETING"],
        "one"
    );
}
