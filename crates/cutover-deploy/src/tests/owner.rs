//! Two daemons on one engine: neither touches what the other owns.

use super::*;

/// Another daemon on the harness's engine: its own state dir (so its own
/// identity) and its own proxy, with the same stand-in origins.
fn second_daemon(h: &Harness) -> (DeployEngine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::new(ProxyConfig::default());
    (engine_on(&h.fake, proxy, dir.path(), &h.origins), dir)
}

/// `down --volumes`.
fn down_volumes() -> crate::down::DownCommand {
    crate::down::DownCommand {
        volumes: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn what_a_daemon_creates_carries_its_identity() {
    let h = Harness::new().await;
    let ev = collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    let id = std::fs::read_to_string(h._dir.path().join("daemon-id")).unwrap();
    for name in ["athens-web-blue", "athens-redis"] {
        let spec = h.fake.spec_of(name).unwrap();
        assert_eq!(
            spec.labels.get(labels::DAEMON).map(String::as_str),
            Some(id.trim()),
            "{name}"
        );
    }
    // The identity survives a restart: a second engine in the same state
    // dir is the same daemon.
    assert_eq!(Owner::load(h._dir.path()).unwrap().id(), id.trim());
}

#[tokio::test]
async fn another_daemons_project_is_refused_with_its_owner_and_left_alone() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let owner = std::fs::read_to_string(h._dir.path().join("daemon-id")).unwrap();
    let before = h.fake.container_names();
    h.fake.clear_calls();

    let (other, _dir) = second_daemon(&h);
    let ev = collect(other.deploy(cmd(compose("bonjour", 2)))).await;
    let (o, msg) = outcome(&ev);
    assert_eq!(o, Outcome::Invalid, "{ev:#?}");
    assert!(
        msg.contains(&format!(
            "project athens belongs to another cutover daemon (id {}",
            owner.trim()
        )),
        "{msg}"
    );
    let ev = collect(other.down("athens".into(), down_volumes())).await;
    assert_eq!(outcome(&ev).0, Outcome::Invalid, "{ev:#?}");
    let ev = collect(other.rollback("athens".into(), super::rollback::rollback_cmd())).await;
    assert_eq!(outcome(&ev).0, Outcome::Invalid, "{ev:#?}");

    // Nothing of the first daemon's was stopped, renamed or removed.
    assert_eq!(h.fake.container_names(), before);
    assert!(h.running("athens-web-blue"));
    assert_eq!(h.fake.volume_names(), vec!["athens_redis-data"]);
    for op in [
        Op::StopContainer,
        Op::RemoveContainer,
        Op::RenameContainer,
        Op::RemoveVolume,
    ] {
        assert!(
            h.fake.calls_of(op).is_empty(),
            "{op:?}: {:?}",
            h.fake.calls_of(op)
        );
    }
    // Its restart does not route or retire the other's project either.
    let report = other.reconcile().await;
    assert!(
        report.routes.is_empty() && report.cleaned.is_empty(),
        "{report:?}"
    );
}

#[tokio::test]
async fn adopt_takes_a_project_over_and_remembers_it() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let (other, dir) = second_daemon(&h);
    let mut take_over = cmd(compose("bonjour", 2));
    take_over.adopt = true;
    let ev = collect(other.deploy(take_over)).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    let adopted = std::fs::read_to_string(dir.path().join("adopted.json")).unwrap();
    assert!(adopted.contains("athens"), "{adopted}");

    // Later operations need no --adopt, across a restart too.
    let restarted = engine_on(
        &h.fake,
        Proxy::new(ProxyConfig::default()),
        dir.path(),
        &h.origins,
    );
    let ev = collect(restarted.down("athens".into(), down_volumes())).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert!(h.fake.volume_names().is_empty());
}
