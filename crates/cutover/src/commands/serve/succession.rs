//! The predecessor's side of a handoff (`handoff.rs` has the protocol and
//! its lifecycle): `POST /v1/upgrade` starts the successor process, the
//! handoff socket hears it say hello, and [`hand_over`] pauses this daemon
//! and gives it the listeners, or resumes when it fails.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use cutover_core::diag::Report;
use cutover_core::status::UpgradeAnswer;
use cutover_proxy::admin::{Admin, ApiError};
use tokio::sync::{mpsc, oneshot};

use super::control::Control;
use super::deploys::Deploys;
use crate::handoff::{self, HandoffSocket, Successor};

pub(super) type Reply = oneshot::Sender<Result<UpgradeAnswer, ApiError>>;

/// `POST /v1/upgrade`: asks the main loop for a successor and answers once
/// it serves, or why it does not.
pub(super) fn router(requests: mpsc::Sender<Reply>) -> axum::Router {
    axum::Router::new()
        .route("/v1/upgrade", post(upgrade))
        .with_state(requests)
}

async fn upgrade(State(requests): State<mpsc::Sender<Reply>>) -> Response {
    let (tx, rx) = oneshot::channel();
    if requests.send(tx).await.is_err() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Report::new("the daemon is shutting down").hint("start it again"),
        )
        .into_response();
    }
    match rx.await {
        Ok(Ok(answer)) => Json(answer).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Report::new("the upgrade ended without an answer")
                .hint("see the daemon's log; `cutover status` tells whether it serves"),
        )
        .into_response(),
    }
}

/// Starts the `cutover` this daemon was started as (by name or path, so a
/// binary replaced on disk is the new version) with the same arguments
/// and `--takeover`. Its output goes where this daemon's goes.
pub(super) fn spawn_successor() -> std::io::Result<tokio::process::Child> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let program = args.remove(0);
    args.retain(|a| a != "--takeover");
    tokio::process::Command::new(program)
        .args(args)
        .arg("--takeover")
        .stdin(std::process::Stdio::null())
        .spawn()
}

/// Successors that said hello on the handoff socket, from a thread that
/// blocks on it for the daemon's life.
pub(super) fn successors(socket: Arc<HandoffSocket>) -> mpsc::Receiver<Successor> {
    let (tx, rx) = mpsc::channel(1);
    std::thread::Builder::new()
        .name("cutover-handoff".into())
        .spawn(move || loop {
            match socket.accept() {
                Ok(successor) => {
                    if tx.blocking_send(successor).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the handoff socket failed; upgrades are off until a restart");
                    return;
                }
            }
        })
        .expect("a thread starts");
    rx
}

/// What a handoff pauses and, when it fails, resumes.
pub(super) struct Paused<'a> {
    pub control: &'a mut Control,
    pub deploys: &'a Deploys,
    pub admin: &'a Admin,
    pub lock: &'a mut Option<cutover_proxy::state::DirLock>,
    pub state_dir: &'a std::path::Path,
    pub listeners: &'a handoff::Listeners,
}

/// Hands the listeners to `successor`: running deploys finish first (new
/// ones are refused meanwhile), the control listeners stop accepting, the
/// routes are saved and the state dir's lock let go. On success returns
/// the successor's pid, and this daemon must only drain and exit; on
/// failure everything is as it was.
pub(super) async fn hand_over(p: Paused<'_>, successor: Successor) -> Result<u32, Report> {
    if let Some(engine) = p.deploys.engine() {
        if !engine.pause(handoff::PAUSE_TIMEOUT).await {
            engine.resume();
            let reason = format!(
                "deploys were still running after {}",
                humantime::format_duration(handoff::PAUSE_TIMEOUT)
            );
            successor.refuse(&reason);
            return Err(Report::new(format!("not handing over: {reason}")));
        }
    }
    let idle = p.control.pause().await;
    let result = async {
        p.admin.persist().await.map_err(Report::from)?;
        // The successor takes the lock when it has the listeners.
        p.lock.take();
        // The apps' ports as they are now: deploys since the start may
        // have opened or closed some.
        let ports = handoff::Listeners {
            ports: p
                .admin
                .proxy()
                .port_listeners()
                .map_err(|e| Report::new(format!("cannot duplicate an app's port: {e}")))?,
            ..handoff::Listeners::default()
        };
        let fds: Vec<_> = handoff::borrowed(p.listeners)
            .into_iter()
            .chain(handoff::borrowed(&ports))
            .map(|(role, fd)| fd.try_clone_to_owned().map(|fd| (role, fd)))
            .collect::<Result<_, _>>()
            .map_err(|e| Report::new(format!("cannot duplicate a listener: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let borrowed: Vec<_> = fds.iter().map(|(r, fd)| (*r, fd.as_fd())).collect();
            successor.hand_over(&borrowed)
        })
        .await
        .map_err(|e| Report::new(format!("the handoff task failed: {e}")))?
        .map_err(|e| cutover_core::diag::Diagnose::report(&e))
    }
    .await;
    if result.is_ok() {
        p.admin.hand_over();
    } else {
        // Take everything back: this daemon keeps serving. A successor that
        // failed after it took the lock lets go of it as it exits.
        match super::listeners::lock_after_handoff(p.state_dir).await {
            Ok(lock) => *p.lock = Some(lock),
            Err(e) => {
                tracing::error!(error = %e, "cannot lock the state dir again after a failed handoff; routes changed from now on are not saved")
            }
        }
        if let Some(idle) = idle {
            p.control.start(idle);
        }
        if let Some(engine) = p.deploys.engine() {
            engine.resume();
        }
    }
    result
}
