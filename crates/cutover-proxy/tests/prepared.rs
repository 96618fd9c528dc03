//! The node's side of a coordinated switch over the control API, driven
//! with curl: a prepared set is gated but serves nothing until its commit;
//! commit switches as a deploy does; abort, a wrong id and a failed gate
//! leave the route as it was.

use std::path::{Path, PathBuf};
use std::process::Command;

use cutover_core::fleet::{CommitAnswer, PreparedAnswer, UnstagedAnswer};
use cutover_core::service::{Color, DeployRequest};
use cutover_core::status::Event;
use cutover_proxy::admin::{serve_control, Admin, ControlTimeouts};
use cutover_test::Origin;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod support;

use support::{get_with, next_event, request, Harness, HOST};

const TIMEOUTS: ControlTimeouts = ControlTimeouts {
    header: std::time::Duration::from_secs(10),
    body: std::time::Duration::from_secs(10),
};

/// The route of a compose app, as a coordinator names it.
const ROUTE: &str = "shop%2Fweb";

struct Control {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    shutdown: CancellationToken,
}

impl Control {
    fn start(h: &Harness, edge: bool) -> Control {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let shutdown = CancellationToken::new();
        let admin = Admin::new(h.proxy.clone(), None, shutdown.clone());
        let admin = if edge { admin.as_edge() } else { admin };
        tokio::spawn(serve_control(
            listener,
            admin.router(),
            TIMEOUTS,
            shutdown.clone(),
            TaskTracker::new(),
        ));
        Control {
            _dir: dir,
            socket,
            shutdown,
        }
    }

    /// `curl -X METHOD` on the control socket: the status and the body.
    async fn curl(&self, method: &str, path: &str, body: Option<String>) -> (u16, String) {
        let socket = self.socket.clone();
        let path = path.to_string();
        let method = method.to_string();
        tokio::task::spawn_blocking(move || curl(&socket, &method, &path, body))
            .await
            .unwrap()
    }

    async fn prepare(&self, req: &DeployRequest) -> (u16, String) {
        let body = serde_json::to_string(req).unwrap();
        self.curl("PUT", &format!("/v1/services/{ROUTE}/prepared"), Some(body))
            .await
    }

    /// A prepare that must succeed: the set held.
    async fn prepared(&self, req: &DeployRequest) -> PreparedAnswer {
        let (code, body) = self.prepare(req).await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A proxy whose route serves `blue`, and its edge control API.
async fn serving(blue: &Origin) -> (Harness, Control) {
    let h = Harness::start().await;
    h.proxy
        .deploy("shop/web", request(&[blue], Color::Blue))
        .await
        .unwrap();
    let control = Control::start(&h, true);
    (h, control)
}

fn curl(socket: &Path, method: &str, path: &str, body: Option<String>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "60", "-X", method, "--unix-socket"])
        .arg(socket)
        .args(["-w", "\n%{http_code}"]);
    if let Some(body) = body {
        cmd.args([
            "-H",
            "content-type: application/json",
            "--data-binary",
            &body,
        ]);
    }
    let out = cmd.arg(format!("http://cutover{path}")).output().unwrap();
    assert!(out.status.success(), "curl failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

#[tokio::test]
async fn a_prepared_set_serves_nothing_until_its_commit_switches_to_it() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    let control = Control::start(&h, true);

    // The first switch of a route that serves nothing yet.
    let (code, body) = control.prepare(&request(&[&blue], Color::Blue)).await;
    assert_eq!(code, 200, "{body}");
    let first: PreparedAnswer = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (first.color, first.healthy, first.targets),
        (Color::Blue, 1, 1)
    );
    assert_eq!(h.get("/").await.0, 404, "prepared is routed nowhere");
    let commit = format!("/v1/services/{ROUTE}/prepared/{}/commit", first.set_id);
    let (code, body) = control.curl("POST", &commit, None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(h.get("/").await.1, "blue");

    // The next one is gated while blue keeps every request.
    let (code, body) = control.prepare(&request(&[&green], Color::Green)).await;
    assert_eq!(code, 200, "{body}");
    let second: PreparedAnswer = serde_json::from_str(&body).unwrap();
    let gated = green.requests();
    for _ in 0..5 {
        assert_eq!(h.get("/").await.1, "blue");
    }
    assert_eq!(green.requests(), gated, "only probes reach a prepared set");

    let mut events = h.proxy.subscribe();
    let commit = format!("/v1/services/{ROUTE}/prepared/{}/commit", second.set_id);
    let (code, body) = control.curl("POST", &commit, None).await;
    assert_eq!(code, 200, "{body}");
    let answer: CommitAnswer = serde_json::from_str(&body).unwrap();
    assert_eq!(answer.status.active.color, Color::Green);
    assert_eq!(answer.status.active.id, second.set_id);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(answer.switched_at_ms <= now && now - answer.switched_at_ms < 60_000);
    assert_eq!(h.get("/").await.1, "green");
    // The old color drains as after any switch.
    next_event(
        &mut events,
        |e| matches!(e, Event::Drained { set_id, .. } if *set_id == first.set_id),
    )
    .await;

    // A commit is not replayed.
    let (code, body) = control.curl("POST", &commit, None).await;
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("prepare the set again"), "{body}");
}

#[tokio::test]
async fn abort_a_wrong_id_and_a_failed_gate_leave_the_route_as_it_was() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let (h, control) = serving(&blue).await;

    let prepared = control.prepared(&request(&[&green], Color::Green)).await;
    let wrong = format!(
        "/v1/services/{ROUTE}/prepared/{}/commit",
        prepared.set_id + 100
    );
    assert_eq!(control.curl("POST", &wrong, None).await.0, 409);
    let set = format!("/v1/services/{ROUTE}/prepared/{}", prepared.set_id);
    assert_eq!(control.curl("DELETE", &set, None).await.0, 204);
    assert_eq!(
        control.curl("DELETE", &set, None).await.0,
        204,
        "abort is idempotent"
    );
    let commit = format!("{set}/commit");
    assert_eq!(control.curl("POST", &commit, None).await.0, 409);
    assert_eq!(h.get("/").await.1, "blue");

    // A later prepare replaces an earlier one.
    let earlier = control.prepared(&request(&[&green], Color::Green)).await;
    let later = control.prepared(&request(&[&green], Color::Green)).await;
    let earlier_commit = format!("/v1/services/{ROUTE}/prepared/{}/commit", earlier.set_id);
    assert_eq!(control.curl("POST", &earlier_commit, None).await.0, 409);
    let later_set = format!("/v1/services/{ROUTE}/prepared/{}", later.set_id);
    assert_eq!(control.curl("DELETE", &later_set, None).await.0, 204);

    // A target that refuses connections fails the gate: 422, nothing held.
    let mut dead = request(&[&green], Color::Green);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    dead.targets = vec![closed.local_addr().unwrap().to_string()];
    drop(closed);
    dead.timeouts.deploy = std::time::Duration::from_millis(500);
    let (code, body) = control.prepare(&dead).await;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("did not become healthy"), "{body}");
    assert_eq!(h.get("/").await.1, "blue");
    assert_eq!(h.proxy.status()[0].active.color, Color::Blue);
}

#[tokio::test]
async fn only_an_edge_node_takes_a_compose_apps_route_from_its_control_api() {
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    let control = Control::start(&h, false);
    let (code, body) = control.prepare(&request(&[&green], Color::Green)).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("route of a compose app"), "{body}");
    assert!(h.proxy.status().is_empty());
}

#[tokio::test]
async fn a_prepared_set_never_committed_is_dropped_after_its_ttl() {
    let green = Origin::start("green").await.unwrap();
    let h = Harness::start().await;
    let prepared = h
        .proxy
        .prepare("shop/web", request(&[&green], Color::Green))
        .await
        .unwrap();
    // The timer starts when the proxy's task first runs: before the clock
    // stops, or it would start after the jump.
    tokio::task::yield_now().await;
    tokio::time::pause();
    tokio::time::advance(cutover_proxy::PREPARED_TTL + std::time::Duration::from_secs(1)).await;
    // The drop runs on the proxy's task; let it.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let err = h.proxy.commit("shop/web", prepared.set_id).unwrap_err();
    assert!(err.to_string().contains("is prepared here"), "{err}");
    assert!(h.proxy.status().is_empty(), "nothing was switched");
}

/// A stage across a cluster: the prepared set is staged under the
/// coordinator's token, serves only who asks for it, goes live at
/// promote, or drains at unstage; a stage without a token is refused.
#[tokio::test]
async fn a_prepared_set_staged_with_the_coordinators_token_serves_the_preview_until_promote() {
    let blue = Origin::start("blue").await.unwrap();
    let green = Origin::start("green").await.unwrap();
    let (h, control) = serving(&blue).await;
    let preview = [("cutover-preview", "1")];

    // No token: every node would draw its own canary cookie.
    let prepared = control.prepared(&request(&[&green], Color::Green)).await;
    let stage = format!("/v1/services/{ROUTE}/prepared/{}/stage", prepared.set_id);
    let (code, body) = control
        .curl("POST", &stage, Some(r#"{"mode":"preview"}"#.into()))
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("has no token"), "{body}");

    // Staged: the live color keeps every request that does not ask.
    let (code, body) = control
        .curl(
            "POST",
            &stage,
            Some(r#"{"mode":"preview","token":"c0ffee01"}"#.into()),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let staged: CommitAnswer = serde_json::from_str(&body).unwrap();
    let on = staged.status.staged.as_ref().expect("a staged set");
    assert_eq!(
        (on.set.id, on.stage.token.as_str()),
        (prepared.set_id, "c0ffee01")
    );
    assert_eq!(h.get("/").await.1, "blue");
    assert_eq!(get_with(&h, HOST, &preview).await.1, "green");
    // A second stage beside it is refused.
    let again = control.prepared(&request(&[&green], Color::Green)).await;
    let stage_again = format!("/v1/services/{ROUTE}/prepared/{}/stage", again.set_id);
    let (code, body) = control
        .curl(
            "POST",
            &stage_again,
            Some(r#"{"mode":"preview","token":"c0ffee02"}"#.into()),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("already has"), "{body}");

    // Unstaged: it drains, and the route is blue's alone.
    let mut events = h.proxy.subscribe();
    let (code, body) = control
        .curl("DELETE", &format!("/v1/services/{ROUTE}/staged"), None)
        .await;
    assert_eq!(code, 200, "{body}");
    let dropped: UnstagedAnswer = serde_json::from_str(&body).unwrap();
    assert_eq!(dropped.set_id, prepared.set_id);
    next_event(
        &mut events,
        |e| matches!(e, Event::Drained { set_id, .. } if *set_id == prepared.set_id),
    )
    .await;
    assert_eq!(get_with(&h, HOST, &preview).await.1, "blue");

    // Staged again and promoted: green is live, blue drains.
    let third = control.prepared(&request(&[&green], Color::Green)).await;
    let stage = format!("/v1/services/{ROUTE}/prepared/{}/stage", third.set_id);
    let (code, body) = control
        .curl(
            "POST",
            &stage,
            Some(r#"{"mode":"canary","percent":10,"token":"c0ffee03"}"#.into()),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let promote = format!("/v1/services/{ROUTE}/staged/promote");
    let (code, body) = control.curl("POST", &promote, None).await;
    assert_eq!(code, 200, "{body}");
    let live: cutover_core::status::ServiceStatus = serde_json::from_str(&body).unwrap();
    assert_eq!(live.active.id, third.set_id);
    assert!(live.staged.is_none());
    assert_eq!(h.get("/").await.1, "green");
    // Nothing is staged any more: both ends say so.
    let (code, body) = control.curl("POST", &promote, None).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("has nothing staged"), "{body}");
}

/// The maintenance page a coordinator puts on every node: on, the route
/// answers 503 with its message; off, it serves again. A route the edge
/// does not have is a 404.
#[tokio::test]
async fn maintenance_is_set_and_lifted_over_the_control_api() {
    let blue = Origin::start("blue").await.unwrap();
    let (h, control) = serving(&blue).await;
    let path = format!("/v1/services/{ROUTE}/maintenance");
    let (code, body) = control
        .curl(
            "PUT",
            &path,
            Some(r#"{"message":"back at ten","since_ms":1796303826799}"#.into()),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let status: cutover_core::status::ServiceStatus = serde_json::from_str(&body).unwrap();
    assert_eq!(status.maintenance.unwrap().since_ms, 1_796_303_826_799);
    let (code, page) = h.get("/").await;
    assert_eq!(code, 503);
    assert!(page.contains("back at ten"), "{page}");
    let (code, body) = control.curl("DELETE", &path, None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(h.get("/").await.1, "blue");
    let other = "/v1/services/shop%2Fapi/maintenance";
    let (code, body) = control.curl("DELETE", other, None).await;
    assert_eq!(code, 404, "{body}");
}
