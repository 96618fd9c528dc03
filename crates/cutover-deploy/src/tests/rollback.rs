//! Rollback to kept and lost versions.

use super::*;

pub(super) fn rollback_cmd() -> cutover_core::progress::RollbackCommand {
    cutover_core::progress::RollbackCommand {
        service: None,
        to: None,
        wait_lock: std::time::Duration::ZERO,
    }
}

#[tokio::test]
async fn rollback_restarts_the_kept_version() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    collect(h.engine.deploy(cmd(compose("bonjour", 2)))).await;
    h.fake.clear_calls();
    let ev = collect(h.engine.rollback("athens".into(), rollback_cmd())).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Blue);
    // The kept container itself came back: nothing pulled, built or created.
    assert!(h.fake.calls_of(Op::CreateContainer).is_empty());
    assert!(h.fake.calls_of(Op::PullImage).is_empty());
    h.settle().await;
    assert!(h.running("athens-web-blue") && !h.running("athens-web-green"));
    assert_eq!(
        h.fake.spec_of("athens-web-blue").unwrap().env["GREETING"],
        "hello"
    );
}

#[tokio::test]
async fn rollback_recreates_a_lost_version_with_its_recorded_env() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    collect(h.engine.deploy(cmd(compose("bonjour", 2)))).await;
    // Someone removed the kept container by hand.
    cutover_docker::Engine::remove_container(&h.fake, "athens-web-blue")
        .await
        .unwrap();
    let ev = collect(h.engine.rollback("athens".into(), rollback_cmd())).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Blue);
    // Today's compose says "bonjour"; the recorded version said "hello".
    assert_eq!(
        h.fake.spec_of("athens-web-blue").unwrap().env["GREETING"],
        "hello"
    );
    let hist = h.engine.history("athens", Some("web")).await.unwrap();
    assert_eq!(hist.last().unwrap().operation, "rollback");
}

#[tokio::test]
async fn rollback_to_an_unknown_version_is_invalid_and_lists_the_known() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let mut c = cmd(compose("bonjour", 2));
    c.version = Some("v2".into());
    collect(h.engine.deploy(c)).await;
    let mut r = rollback_cmd();
    r.to = Some("v9".into());
    let ev = collect(h.engine.rollback("athens".into(), r)).await;
    let (o, msg) = outcome(&ev);
    assert_eq!(o, Outcome::Invalid);
    assert!(msg.contains("no recorded version v9"), "{msg}");
}
