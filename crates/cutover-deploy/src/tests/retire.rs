//! Old colors that drain in the background after a deploy ends.

use super::rollback::rollback_cmd;
use super::*;

pub(super) type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// A WebSocket through the proxy; the origin greets with its name.
pub(super) async fn ws_connect(addr: SocketAddr) -> Ws {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async("ws://athens.test/ws", stream)
        .await
        .unwrap();
    ws
}

pub(super) async fn next_text(ws: &mut Ws) -> String {
    use futures_util::StreamExt;
    match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => t.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

pub(super) async fn echo(ws: &mut Ws, text: &str) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text(text))
        .await
        .unwrap();
    assert_eq!(next_text(ws).await, text);
}

/// Closes from the client side, as a browser leaving the page does.
pub(super) async fn close(mut ws: Ws) {
    use futures_util::StreamExt;
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
}

pub(super) fn kept_by_version_name(h: &Harness) -> Vec<String> {
    h.fake
        .container_names()
        .into_iter()
        .filter(|n| n.starts_with("athens-web-") && !n.ends_with("blue") && !n.ends_with("green"))
        .collect()
}

#[tokio::test]
async fn a_deploy_ends_at_the_switch_and_the_old_color_retires_once_drained() {
    let h = Harness::new().await;
    let addr = h.serve().await;
    collect(h.engine.deploy(cmd(compose_long_ws_drain("one", 2)))).await;
    let mut ws = ws_connect(addr).await;
    assert_eq!(next_text(&mut ws).await, "blue");

    let ev = collect(h.engine.deploy(cmd(compose_long_ws_drain("two", 2)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    // The deploy is over while blue still holds a WebSocket (its drain
    // deadline is an hour away): blue runs on, listed as retiring.
    assert_eq!(h.live().unwrap().0, Color::Green);
    assert!(h.running("athens-web-blue"));
    let st = h.engine.status("athens").await.unwrap();
    assert!(
        st.apps[0]
            .kept
            .iter()
            .any(|k| k.container == "athens-web-blue" && k.retiring),
        "{:?}",
        st.apps[0].kept
    );
    echo(&mut ws, "still there").await;

    // The next deploy needs blue's slot while blue still drains: blue is
    // renamed aside, keeps running and keeps its WebSocket.
    let ev = collect(h.engine.deploy(cmd(compose_long_ws_drain("three", 2)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Blue);
    assert_eq!(
        h.fake.spec_of("athens-web-blue").unwrap().env["GREETING"],
        "three"
    );
    let moved = kept_by_version_name(&h);
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(h.fake.spec_of(&moved[0]).unwrap().env["GREETING"], "one");
    assert!(h.running(&moved[0]));
    echo(&mut ws, "after the rename").await;

    // The client leaves: the drain of "one" is over, so it is stopped and
    // kept. "two" had no connection left and is stopped too.
    close(ws).await;
    h.settle().await;
    assert!(!h.running(&moved[0]));
    assert!(!h.running("athens-web-green"));
    assert!(h.running("athens-web-blue"));
    let st = h.engine.status("athens").await.unwrap();
    assert!(st.apps[0].kept.iter().all(|k| !k.retiring));
}

#[tokio::test]
async fn a_rollback_takes_back_a_version_that_still_drains() {
    let h = Harness::new().await;
    let addr = h.serve().await;
    collect(h.engine.deploy(cmd(compose_long_ws_drain("one", 2)))).await;
    let ws = ws_connect(addr).await;
    collect(h.engine.deploy(cmd(compose_long_ws_drain("two", 2)))).await;
    assert!(h.running("athens-web-blue"));

    h.fake.clear_calls();
    let ev = collect(h.engine.rollback("athens".into(), rollback_cmd())).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    assert_eq!(h.live().unwrap().0, Color::Blue);
    assert!(h.fake.calls_of(Op::CreateContainer).is_empty());

    // Its old drain ending must not stop it now that it is live again.
    close(ws).await;
    h.settle().await;
    assert!(h.running("athens-web-blue"));
    assert!(!h.running("athens-web-green"));
}

#[tokio::test]
async fn an_old_color_past_keep_is_removed_once_drained() {
    let h = Harness::new().await;
    let addr = h.serve().await;
    collect(h.engine.deploy(cmd(compose_long_ws_drain("one", 0)))).await;
    let ws = ws_connect(addr).await;
    let ev = collect(h.engine.deploy(cmd(compose_long_ws_drain("two", 0)))).await;
    assert_eq!(outcome(&ev).0, Outcome::Ok, "{ev:#?}");
    // Past keep, but its WebSocket is still open: it stays until drained.
    assert!(h.running("athens-web-blue"));
    close(ws).await;
    h.settle().await;
    assert!(!h.exists("athens-web-blue"));
    assert!(h.running("athens-web-green"));
}

#[tokio::test]
async fn the_next_start_stops_an_old_color_whose_drain_a_shutdown_cut_short() {
    let h = Harness::new().await;
    let addr = h.serve().await;
    collect(h.engine.deploy(cmd(compose_long_ws_drain("one", 2)))).await;
    let _ws = ws_connect(addr).await;
    collect(h.engine.deploy(cmd(compose_long_ws_drain("two", 2)))).await;
    // The daemon stops while blue drains: blue is left running.
    h.engine.retirements().cancel_all();
    h.settle().await;
    assert!(h.running("athens-web-blue"));

    // The next daemon over the same engine and state dir.
    let restarted = engine_on(
        &h.fake,
        Proxy::new(ProxyConfig::default()),
        h.engine.state_dir(),
        &h.origins,
    );
    let report = restarted.reconcile().await;
    assert_eq!(
        report.cleaned,
        vec!["athens-web-blue".to_string()],
        "{report:?}"
    );
    assert!(!h.running("athens-web-blue"));
    assert!(h.running("athens-web-green"));
}
