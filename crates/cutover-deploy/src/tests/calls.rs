//! Calls by name from other services go through the daemon
//! (cutover-core's `resolve/app_calls.rs`).

use super::*;

/// The usual project with `front` calling `web` (as nginx in front of it).
fn with_front(greeting: &str) -> ResolvedProject {
    compose_with(
        greeting,
        2,
        "  front:\n    image: redis:7\n    depends_on: [web]\n",
    )
}

#[tokio::test]
async fn other_services_reach_the_live_color_by_name_through_the_daemon() {
    let h = Harness::new().await;
    h.fake.with_gateways();
    h.serve().await;
    let ev = collect(h.engine.deploy(cmd(with_front("hello")))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    let gateway = futures_util::FutureExt::now_or_never(cutover_docker::Engine::inspect_network(
        &h.fake,
        "athens_default",
    ))
    .unwrap()
    .unwrap()
    .and_then(|n| n.gateway)
    .expect("the fake reports a gateway");

    // No color answers to `web` itself; front maps it to the gateway, and
    // redis, which web depends on, is left as it was.
    let blue = h.fake.spec_of("athens-web-blue").unwrap();
    assert!(blue.networks[0].aliases.is_empty(), "{blue:?}");
    let front = h.fake.spec_of("athens-front").unwrap();
    assert!(
        front.extra_hosts.contains(&format!("web:{gateway}")),
        "{front:?}"
    );
    let redis = h.fake.spec_of("athens-redis").unwrap();
    assert!(redis.extra_hosts.is_empty(), "{redis:?}");

    // Where front's calls land: the live color, whatever the Host.
    let web = SocketAddr::new(gateway, 8080);
    let (_, body) = cutover_test::client::get(web, "web", "/").await.unwrap();
    assert_eq!(body, "blue");
    let ev = collect(h.engine.deploy(cmd(with_front("bonjour")))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    let (_, body) = cutover_test::client::get(web, "web", "/").await.unwrap();
    assert_eq!(body, "green");
    // front was not recreated for web's new version.
    assert_eq!(
        h.fake.calls_of(Op::CreateContainer),
        [
            "athens-redis",
            "athens-web-blue",
            "athens-front",
            "athens-web-green"
        ]
    );
}
