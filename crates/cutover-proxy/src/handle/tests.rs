//! The handle's bookkeeping, without a listener.

use super::*;

fn req(targets: &[&str]) -> DeployRequest {
    serde_json::from_value(serde_json::json!({ "targets": targets })).unwrap()
}

#[tokio::test]
async fn a_removed_service_counts_until_its_sets_have_drained() {
    let proxy = Proxy::new(ProxyConfig::default());
    let mut r = req(&["127.0.0.1:9"]);
    r.timeouts.drain = Duration::from_secs(90);
    proxy
        .restore(ProxyState {
            services: vec![PersistedService {
                name: "web".into(),
                request: r,
                active_since_ms: 1_796_303_826_799,
                maintenance: None,
                staged: None,
            }],
        })
        .unwrap();
    let set = proxy.inner.lock().live["web"].active.clone();
    // Restored, the set says when it was switched to, not when it came back.
    assert_eq!(proxy.status()[0].active.since_ms, 1_796_303_826_799);
    assert_eq!(proxy.state().services[0].active_since_ms, 1_796_303_826_799);
    let request = crate::target::InFlight::enter(&set, 0).expect("the set is active");
    proxy.remove("web").unwrap();

    assert!(proxy.status().is_empty(), "no longer routed");
    assert_eq!(proxy.inner.max_drain(), Duration::from_secs(90));
    let metrics = proxy.render_metrics();
    assert!(
        metrics.contains("cutover_draining_connections{service=\"web\",kind=\"http\"} 1\n"),
        "{metrics}"
    );

    let mut events = proxy.subscribe();
    drop(request);
    while !matches!(events.recv().await, Ok(Event::Drained { .. })) {}
    assert!(proxy.inner.lock().removed.is_empty());
    assert_eq!(
        proxy.inner.max_drain(),
        cutover_core::service::Timeouts::default().drain
    );
}

#[test]
fn deploy_requests_are_validated() {
    assert!(validate("web", &req(&["127.0.0.1:8080", "athens-green:8080"])).is_ok());
    assert!(validate("athens/backend", &req(&["127.0.0.1:8080"])).is_ok());
    // As a user reads it: the message, then the hint.
    let bad = |service: &str, r: DeployRequest| match validate(service, &r) {
        Err(DeployError::Invalid(report)) => report.to_string(),
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert!(bad("web", req(&[])).contains("hint:"));
    assert!(bad("web", req(&["no-port"])).contains("host:port"));
    assert!(bad("web", req(&["host:0"])).contains("host:port"));
    assert!(bad("web", req(&[":80"])).contains("host:port"));
    assert!(bad("", req(&["a:1"])).contains("service name"));
    let mut r = req(&["a:1"]);
    r.hosts = vec!["a.*.com".into()];
    assert!(bad("web", r).contains("host pattern"));
    let mut r = req(&["a:1"]);
    r.path_prefix = Some("api".into());
    assert!(bad("web", r).contains("path prefix"));
    let mut r = req(&["a:1"]);
    r.health.path = "up".into();
    assert!(bad("web", r).contains("health.path"));
}
