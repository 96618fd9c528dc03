//! A staged set beside the live one: who reaches it (preview header,
//! cookie and host; a canary's share of new sessions, kept by its cookie),
//! and how it ends (promoted with a switch's drain, or aborted and drained).

use std::collections::BTreeMap;
use std::time::Duration;

use cutover_core::service::Color;
use cutover_core::stage::{Stage, StageMode};
use cutover_core::status::Event;
use cutover_proxy::{Proxy, ProxyConfig};
use cutover_test::Origin;
use http::StatusCode;

mod support;

use support::{get_with, next_event, request, Harness, HOST};

const PREVIEW_HOST: &str = "preview.app.test";

fn stage(mode: StageMode, preview_hosts: &[&str]) -> Stage {
    Stage {
        mode,
        preview_hosts: preview_hosts.iter().map(|h| h.to_string()).collect(),
        token: String::new(),
    }
}

#[tokio::test]
async fn a_preview_is_reached_only_by_who_asks_and_promote_switches_to_it() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    let status = h
        .proxy
        .stage(
            "app",
            request(&[&green], Color::Green),
            stage(StageMode::Preview, &[PREVIEW_HOST]),
        )
        .await
        .unwrap();
    let staged = status.staged.expect("staged");
    assert_eq!(staged.stage.mode, StageMode::Preview);
    assert_eq!(staged.set.color, Color::Green);

    let body = |r: (StatusCode, String, Vec<String>)| {
        assert_eq!(r.0, StatusCode::OK);
        assert!(r.2.is_empty(), "a preview sets no cookie: {:?}", r.2);
        r.1
    };
    assert_eq!(body(get_with(&h, HOST, &[]).await), "blue");
    let header = [("cutover-preview", "1")];
    assert_eq!(body(get_with(&h, HOST, &header).await), "green");
    let off = [("cutover-preview", "0")];
    assert_eq!(body(get_with(&h, HOST, &off).await), "blue");
    let cookie = [("cookie", "a=b; cutover-preview=yes")];
    assert_eq!(body(get_with(&h, HOST, &cookie).await), "green");
    assert_eq!(body(get_with(&h, PREVIEW_HOST, &[]).await), "green");
    assert_eq!(blue.requests(), 2);
    assert_eq!(green.requests(), 3);
    let counted = &h.proxy.status()[0];
    assert_eq!(counted.staged.as_ref().unwrap().set.requests, 3);
    assert_eq!(counted.active.requests, 2);

    // A second stage waits for this one to end.
    let again = h
        .proxy
        .stage(
            "app",
            request(&[&green], Color::Green),
            stage(StageMode::Preview, &[]),
        )
        .await
        .unwrap_err();
    assert!(again.to_string().contains("already has"), "{again}");

    // Kept in the state a restarted proxy restores.
    let restarted = Proxy::new(ProxyConfig::default());
    restarted.restore(h.proxy.state()).unwrap();
    let restored = restarted.status()[0].staged.clone().expect("restored");
    assert_eq!(restored.stage.preview_hosts, [PREVIEW_HOST]);

    let mut events = h.proxy.subscribe();
    let promoted = h.proxy.promote("app").unwrap();
    assert_eq!(promoted.active.color, Color::Green);
    assert!(promoted.staged.is_none());
    let Event::Drained { set_id, .. } =
        next_event(&mut events, |e| matches!(e, Event::Drained { .. })).await
    else {
        unreachable!()
    };
    assert_ne!(set_id, promoted.active.id, "the old blue set drained");
    assert_eq!(body(get_with(&h, HOST, &[]).await), "green");
    // The preview host went with the stage.
    assert_eq!(
        get_with(&h, PREVIEW_HOST, &[]).await.0,
        StatusCode::NOT_FOUND
    );
    let none = h.proxy.promote("app").unwrap_err();
    assert!(none.to_string().contains("nothing staged"), "{none}");
}

#[tokio::test]
async fn a_canary_draws_new_sessions_once_and_abort_drains_it() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    h.deploy(&[&blue], Color::Blue).await;
    h.proxy
        .stage(
            "app",
            request(&[&green], Color::Green),
            stage(StageMode::Canary { percent: 50 }, &[]),
        )
        .await
        .unwrap();

    // New sessions: each draws a side and gets a cookie that says which.
    let mut drawn: BTreeMap<String, (String, String)> = BTreeMap::new();
    for i in 0..200 {
        let (status, body, cookies) = get_with(&h, HOST, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(cookies.len(), 1, "{cookies:?}");
        let cookie = &cookies[0];
        assert!(
            cookie.contains("; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax"),
            "{cookie}"
        );
        let value = cookie
            .strip_prefix("cutover-canary=")
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string();
        let side = if value.ends_with(".new") {
            "green"
        } else {
            "blue"
        };
        assert_eq!(body, side, "{cookie}");
        drawn.insert(format!("{i:03}"), (value, body));
    }
    let to_green = drawn.values().filter(|(_, b)| b == "green").count();
    // 50% of 200 draws: outside 60..=140 has a chance below 1e-8.
    assert!((60..=140).contains(&to_green), "{to_green} of 200");

    // A session that has its cookie stays where it was drawn, sets none.
    for (value, side) in drawn.values().take(20) {
        let cookie = format!("session=1; cutover-canary={value}");
        let (_, body, cookies) = get_with(&h, HOST, &[("cookie", &cookie)]).await;
        assert_eq!(&body, side);
        assert!(cookies.is_empty(), "{cookies:?}");
    }
    // One drawn for another stage is drawn again.
    let (_, _, cookies) = get_with(&h, HOST, &[("cookie", "cutover-canary=0000.new")]).await;
    assert_eq!(cookies.len(), 1);

    let status = h.proxy.status();
    let staged = status[0].staged.as_ref().unwrap();
    assert_eq!(staged.set.requests, green.requests());
    assert_eq!(staged.set.errors, 0);
    // Prometheus has both colors while both serve.
    let text = h.proxy.render_metrics();
    for (color, origin) in [("blue", &blue), ("green", &green)] {
        let line = format!(
            "cutover_requests_total{{service=\"app\",class=\"2xx\",color=\"{color}\"}} {}\n",
            origin.requests()
        );
        assert!(text.contains(&line), "{line} in {text}");
    }

    // A failing canary shows in its own errors, not the live color's.
    green.stop();
    let (status, _, _) = get_with(&h, HOST, &[("cutover-preview", "1")]).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let status = h.proxy.status();
    assert_eq!(status[0].staged.as_ref().unwrap().set.errors, 1);
    assert_eq!(status[0].active.errors, 0);

    let mut events = h.proxy.subscribe();
    let aborted = h.proxy.unstage("app").unwrap();
    next_event(
        &mut events,
        |e| matches!(e, Event::Drained { set_id, .. } if *set_id == aborted),
    )
    .await;
    assert!(h.proxy.status()[0].staged.is_none());
    let (value, _) = drawn.values().find(|(_, b)| b == "green").unwrap();
    let cookie = format!("cutover-canary={value}");
    let (_, body, cookies) = get_with(&h, HOST, &[("cookie", &cookie)]).await;
    assert_eq!(body, "blue", "an aborted canary's sessions go back to live");
    assert!(cookies.is_empty());
}

#[tokio::test]
async fn a_stage_needs_a_live_service_and_preview_hosts_of_its_own() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    let preview = || stage(StageMode::Preview, &[]);
    let e = h
        .proxy
        .stage("app", request(&[&green], Color::Green), preview())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("serves nothing yet"), "{e}");

    h.deploy(&[&blue], Color::Blue).await;
    let mut other = request(&[&blue], Color::Blue);
    other.hosts = vec!["other.test".into()];
    h.proxy.deploy("other", other).await.unwrap();
    let e = h
        .proxy
        .stage(
            "app",
            request(&[&green], Color::Green),
            stage(StageMode::Preview, &["other.test"]),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("preview_hosts of app"), "{e}");
    assert!(h.proxy.status().iter().all(|s| s.staged.is_none()));

    // An unhealthy staged set is refused by the gate, as a deploy's is.
    green.set_healthy(false);
    let mut quick = request(&[&green], Color::Green);
    quick.timeouts.deploy = Duration::from_millis(500);
    let e = h.proxy.stage("app", quick, preview()).await.unwrap_err();
    assert!(
        matches!(e, cutover_proxy::DeployError::Unhealthy { .. }),
        "{e}"
    );
    assert_eq!(
        get_with(&h, HOST, &[("cutover-preview", "1")]).await.1,
        "blue"
    );
}
