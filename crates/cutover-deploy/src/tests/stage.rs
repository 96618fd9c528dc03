//! Stages on the fake engine: what a stage leaves, and the ends a crash
//! can leave half done.

use super::*;
use cutover_core::progress::StageCommand;
use cutover_core::stage::StageMode;

fn staged(project: ResolvedProject, mode: StageMode) -> DeployCommand {
    DeployCommand {
        stage: Some(mode),
        ..cmd(project)
    }
}

#[tokio::test]
async fn a_stage_is_neither_live_nor_a_stray_and_promote_records_it() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let ev = collect(h.engine.deploy(staged(
        compose("bonjour", 2),
        StageMode::Canary { percent: 5 },
    )))
    .await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(
        h.live().unwrap().0,
        Color::Blue,
        "the stage switched nothing"
    );
    assert!(h.running("athens-web-green"));
    // No release until promote: a rollback would not find it.
    let releases = h.engine.inner.releases.list("athens", "web");
    assert_eq!(releases.len(), 1);

    // Refused, and the staged container left as it was.
    let ev = collect(h.engine.deploy(cmd(compose("hola", 2)))).await;
    let (o, message) = outcome(&ev);
    assert_eq!(o, Outcome::Invalid);
    assert!(message.contains("staged beside the live one"), "{message}");
    assert!(h.running("athens-web-green"));

    let ev = collect(h.engine.promote("athens".into(), StageCommand::default())).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Green);
    let releases = h.engine.inner.releases.list("athens", "web");
    assert_eq!(releases.len(), 2);
    assert_eq!(
        h.fake.spec_of("athens-web-green").unwrap().env["GREETING"],
        "bonjour"
    );
    assert!(h.engine.inner.stages.list("athens").is_empty());
    h.settle().await;
    assert!(!h.running("athens-web-blue") && h.exists("athens-web-blue"));
}

/// The daemon stopped between the proxy's switch and the end of the
/// record: `abort` would remove what serves, so it refuses; `promote`
/// finishes the job.
#[tokio::test]
async fn a_promote_cut_short_is_finished_by_promote_and_never_aborted() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    collect(
        h.engine
            .deploy(staged(compose("bonjour", 2), StageMode::Preview)),
    )
    .await;
    // What the promote did before the crash: the proxy's switch.
    h.proxy.promote("athens/web").unwrap();

    let ev = collect(h.engine.abort("athens".into(), StageCommand::default())).await;
    let (o, message) = outcome(&ev);
    assert_eq!(o, Outcome::Invalid, "{ev:#?}");
    assert!(message.contains("already serves"), "{message}");
    assert!(h.running("athens-web-green"));

    let ev = collect(h.engine.promote("athens".into(), StageCommand::default())).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert!(format!("{ev:?}").contains("an earlier promote was cut short"));
    assert_eq!(h.engine.inner.releases.list("athens", "web").len(), 2);
    h.settle().await;
    assert!(h.running("athens-web-green") && !h.running("athens-web-blue"));
}

#[tokio::test]
async fn abort_drains_and_removes_the_staged_container_only() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    collect(
        h.engine
            .deploy(staged(compose("bonjour", 2), StageMode::Preview)),
    )
    .await;
    let ev = collect(h.engine.abort("athens".into(), StageCommand::default())).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    h.settle().await;
    assert!(!h.exists("athens-web-green"));
    assert!(h.running("athens-web-blue"));
    assert_eq!(h.live().unwrap().0, Color::Blue);
    let ev = collect(h.engine.abort("athens".into(), StageCommand::default())).await;
    let (o, message) = outcome(&ev);
    assert_eq!(o, Outcome::Invalid);
    assert!(message.contains("has nothing staged"), "{message}");
}
