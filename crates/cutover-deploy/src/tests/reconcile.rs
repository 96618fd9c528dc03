//! What the daemon repairs at its start.

use super::*;

#[tokio::test]
async fn reconcile_removes_the_container_of_an_unfinished_deploy() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    // As if the daemon died after creating green and before the switch.
    h.engine
        .inner
        .journal
        .begin(&crate::journal::InProgress {
            project: "athens".into(),
            service: "web".into(),
            operation: "deploy".into(),
            container: "athens-web-green".into(),
            reused: false,
            started_ms: 0,
        })
        .unwrap();
    let mut spec = h.fake.spec_of("athens-web-blue").unwrap();
    spec.name = "athens-web-green".into();
    spec.labels.insert(labels::COLOR.into(), "green".into());
    cutover_docker::Engine::create_container(&h.fake, &spec)
        .await
        .unwrap();
    cutover_docker::Engine::start_container(&h.fake, "athens-web-green")
        .await
        .unwrap();

    // A new daemon: fresh proxy (its state file held blue's route).
    let proxy = Proxy::new(ProxyConfig::default());
    proxy.restore(h.proxy.state()).unwrap();
    let engine = engine_on(&h.fake, proxy.clone(), h._dir.path(), &h.origins);
    let report = engine.reconcile().await;
    assert_eq!(report.cleaned, vec!["athens-web-green"], "{report:?}");
    assert!(!h
        .fake
        .container_names()
        .contains(&"athens-web-green".to_string()));
    assert!(engine.inner.journal.pending().is_empty());
    let last = engine
        .inner
        .history
        .read("athens", Some("web"))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(last.result, Outcome::Failed, "{last:?}");
    assert_eq!(last.color, Some(cutover_core::service::Color::Green));
    assert!(last.error.unwrap().starts_with("interrupted: "));
    // Blue's route agreed with its container: left as restored.
    assert!(report.routes.is_empty(), "{report:?}");
    // A deploy now converges.
    let ev = collect(engine.deploy(cmd(compose("bonjour", 2)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
}

#[tokio::test]
async fn reconcile_reinstalls_a_route_the_proxy_lost() {
    let h = Harness::new().await;
    collect(h.engine.deploy(cmd(compose("hello", 2)))).await;
    let proxy = Proxy::new(ProxyConfig::default());
    let engine = engine_on(&h.fake, proxy.clone(), h._dir.path(), &h.origins);
    let report = engine.reconcile().await;
    assert_eq!(report.routes, vec!["athens/web"], "{report:?}");
    let st = proxy.status();
    assert_eq!(st[0].active.targets[0].addr, h.blue.target());
}
