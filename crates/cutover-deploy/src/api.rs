//! The deploy engine's HTTP API (merged by the daemon with the proxy's
//! control API on the same Unix socket). Operations answer with NDJSON
//! progress streams; the operation runs in a daemon task, so a client that
//! goes away does not stop it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cutover_core::diag::Report;
use cutover_core::maintenance::{MaintenanceCommand, MaintenanceState};
use cutover_core::plan::Plan;
use cutover_core::progress::{
    DeployCommand, Outcome, RollbackCommand, StageCommand, OPERATION_ID_HEADER,
};
use cutover_core::wire::read_json;
use cutover_proxy::admin::ApiError;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde::de::DeserializeOwned;

use crate::down::DownCommand;
use crate::events::Receiver;
use crate::executor::Stop;
use crate::history::Entry;
use crate::status::LogsQuery;
use crate::DeployEngine;

pub const NDJSON: &str = "application/x-ndjson";

pub fn router(engine: DeployEngine) -> Router {
    Router::new()
        .route("/v1/projects", get(projects))
        .route(
            "/v1/projects/{project}/deploy",
            post(deploy::<DeployEngine>),
        )
        .route("/v1/projects/{project}/plan", post(plan::<DeployEngine>))
        .route(
            "/v1/projects/{project}/rollback",
            post(rollback::<DeployEngine>),
        )
        .route(
            "/v1/projects/{project}/promote",
            post(promote::<DeployEngine>),
        )
        .route("/v1/projects/{project}/abort", post(abort::<DeployEngine>))
        .route("/v1/projects/{project}/down", post(down::<DeployEngine>))
        .route(
            "/v1/projects/{project}/maintenance",
            post(maintenance::<DeployEngine>),
        )
        .route("/v1/projects/{project}/status", get(status))
        .route(
            "/v1/projects/{project}/history",
            get(history::<DeployEngine>),
        )
        .route("/v1/projects/{project}/logs", get(logs::<DeployEngine>))
        .route(
            "/v1/projects/{project}/operations/{id}",
            get(follow::<DeployEngine>),
        )
        .route("/v1/build-contexts/{digest}", get(has_upload).put(upload))
        .with_state(engine)
}

/// An error answer, in the one shape of the control API (docs/api.md, Errors).
pub(crate) fn error(status: StatusCode, report: impl Into<Report>) -> Response {
    ApiError::new(status, report).into_response()
}

/// Reads a body with the control API's one JSON reader; an error is a 400
/// that names the field.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    read_json(body).map_err(|report| {
        let report = report
            .hint("see the Deploy engine section of docs/api.md for the request body of this call");
        Box::new(error(StatusCode::BAD_REQUEST, report))
    })
}

fn ndjson(rx: Receiver) -> Response {
    let id = rx.id().to_owned();
    let body = stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        let mut line = serde_json::to_vec(&event).expect("progress events serialize");
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, NDJSON)
        .header(OPERATION_ID_HEADER, id)
        .body(Body::from_stream(body))
        .expect("ids are checked header values")
}

/// What the deploy, rollback and follow routes need of an engine: one
/// host's, or a Swarm's (`crate::swarm`), behind the same handlers.
pub(crate) trait Operator: Clone + Send + Sync + 'static {
    fn deploy(&self, cmd: DeployCommand) -> Receiver;
    fn rollback(&self, project: String, cmd: RollbackCommand) -> Receiver;
    fn down(&self, project: String, cmd: DownCommand) -> Receiver;
    /// `promote`: the staged versions go live.
    fn promote(&self, project: String, cmd: StageCommand) -> Receiver;
    /// `abort`: the staged versions are dropped.
    fn abort(&self, project: String, cmd: StageCommand) -> Receiver;
    fn follow(&self, project: &str, id: &str) -> Option<Receiver>;
    /// `maintenance on|off` of the project's apps (no project lock).
    fn maintenance(
        &self,
        project: &str,
        cmd: MaintenanceCommand,
    ) -> impl std::future::Future<Output = Result<Vec<MaintenanceState>, Report>> + Send;
    /// What a deploy of `cmd` would do, with nothing changed.
    fn plan(
        &self,
        cmd: &DeployCommand,
    ) -> impl std::future::Future<Output = Result<Plan, Stop>> + Send;
    /// The project's history lines (of `service` when given), oldest first.
    fn history(
        &self,
        project: &str,
        service: Option<&str>,
    ) -> impl std::future::Future<Output = Result<Vec<Entry>, Report>> + Send;
    /// Log lines of the live color (every color with `all`), as text.
    fn logs(
        &self,
        project: &str,
        q: &LogsQuery,
    ) -> impl std::future::Future<Output = Result<BoxStream<'static, Bytes>, Report>> + Send;
}

impl Operator for DeployEngine {
    fn deploy(&self, cmd: DeployCommand) -> Receiver {
        DeployEngine::deploy(self, cmd)
    }

    fn rollback(&self, project: String, cmd: RollbackCommand) -> Receiver {
        DeployEngine::rollback(self, project, cmd)
    }

    fn down(&self, project: String, cmd: DownCommand) -> Receiver {
        DeployEngine::down(self, project, cmd)
    }

    fn promote(&self, project: String, cmd: StageCommand) -> Receiver {
        DeployEngine::promote(self, project, cmd)
    }

    fn abort(&self, project: String, cmd: StageCommand) -> Receiver {
        DeployEngine::abort(self, project, cmd)
    }

    fn follow(&self, project: &str, id: &str) -> Option<Receiver> {
        self.inner.operations.follow(project, id)
    }

    async fn maintenance(
        &self,
        project: &str,
        cmd: MaintenanceCommand,
    ) -> Result<Vec<MaintenanceState>, Report> {
        DeployEngine::maintenance(self, project, cmd).await
    }

    async fn plan(&self, cmd: &DeployCommand) -> Result<Plan, Stop> {
        DeployEngine::plan(self, cmd).await
    }

    async fn history(&self, project: &str, service: Option<&str>) -> Result<Vec<Entry>, Report> {
        DeployEngine::history(self, project, service).await
    }

    async fn logs(
        &self,
        project: &str,
        q: &LogsQuery,
    ) -> Result<BoxStream<'static, Bytes>, Report> {
        DeployEngine::logs(self, project, q).await
    }
}

/// An operation's events from its first, then live: `cutover wait`.
pub(crate) async fn follow<E: Operator>(
    State(engine): State<E>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    match engine.follow(&project, &id) {
        Some(rx) => ndjson(rx),
        None => error(
            StatusCode::NOT_FOUND,
            Report::new(format!("project {project} has no operation {id:?}"))
                .hint("an operation can be followed while it runs and for an hour after it ends; `cutover history` shows older ones"),
        ),
    }
}

fn digest_checked(digest: &str) -> Result<(), Box<Response>> {
    if cutover_core::progress::is_digest(digest) {
        return Ok(());
    }
    Err(Box::new(error(
        StatusCode::BAD_REQUEST,
        Report::new(format!("{digest:?} is not a digest"))
            .hint("name the upload sha256:<64 lowercase hex digits of the tar's SHA-256>"),
    )))
}

/// 204 when the daemon has the upload (HEAD asks the same), else 404.
async fn has_upload(State(engine): State<DeployEngine>, Path(digest): Path<String>) -> Response {
    if let Err(r) = digest_checked(&digest) {
        return *r;
    }
    if engine.inner.uploads.has(&digest) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no upload {digest}"))
    }
}

async fn upload(
    State(engine): State<DeployEngine>,
    Path(digest): Path<String>,
    body: Body,
) -> Response {
    if let Err(r) = digest_checked(&digest) {
        return *r;
    }
    match engine
        .inner
        .uploads
        .store(&digest, body.into_data_stream())
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e @ crate::uploads::UploadError::Store { .. }) => error(
            StatusCode::INSUFFICIENT_STORAGE,
            cutover_core::diag::Diagnose::report(&e),
        ),
        Err(e @ crate::uploads::UploadError::TooLarge) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            cutover_core::diag::Diagnose::report(&e),
        ),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            cutover_core::diag::Diagnose::report(&e),
        ),
    }
}

/// The body of `deploy` and `plan`: a resolved project, which must be the one
/// the URL names.
fn deploy_command(project: &str, body: &[u8]) -> Result<DeployCommand, Box<Response>> {
    let cmd: DeployCommand = parse(body)?;
    cmd.validate(project)
        .map_err(|report| Box::new(error(StatusCode::BAD_REQUEST, report)))?;
    Ok(cmd)
}

/// A body whose fields all have defaults may be left out entirely.
fn parse_or_default<T: DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    parse(if body.is_empty() { b"{}" } else { body })
}

pub(crate) async fn deploy<E: Operator>(
    State(engine): State<E>,
    Path(project): Path<String>,
    body: Bytes,
) -> Response {
    match deploy_command(&project, &body) {
        Ok(cmd) => ndjson(engine.deploy(cmd)),
        Err(r) => *r,
    }
}

pub(crate) async fn plan<E: Operator>(
    State(engine): State<E>,
    Path(project): Path<String>,
    body: Bytes,
) -> Response {
    let cmd = match deploy_command(&project, &body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match engine.plan(&cmd).await {
        Ok(plan) => Json(plan).into_response(),
        Err(stop) if stop.outcome == Outcome::Invalid => {
            error(StatusCode::UNPROCESSABLE_ENTITY, stop.report)
        }
        Err(stop) => error(StatusCode::BAD_GATEWAY, stop.report),
    }
}

pub(crate) async fn rollback<E: Operator>(
    State(engine): State<E>,
    Path(project): Path<String>,
    body: Bytes,
) -> Response {
    match parse_or_default::<RollbackCommand>(&body) {
        Ok(cmd) => ndjson(engine.rollback(project, cmd)),
        Err(r) => *r,
    }
}

pub(crate) async fn promote<E: Operator>(
    State(engine): State<E>,
    Path(project): Path<String>,
    body: Bytes,
) -> Response {
    match parse_or_default::<StageCommand>(&body) {
        Ok(cmd) => ndjson(engine.promote(project, cmd)),
        Err(r) => *r,
    }
}

pub(crate) async fn abort<E: Operator>(
    State(engine): State<E>,
    Path(project): Path<String>,
    body: Bytes,
) -> Response {
    match parse_or_default::<StageCommand>(&body) {
        Ok(cmd) => ndjson(engine.abort(project, cmd)),
        Err(r) => *r,
    }
}

pub(crate) async fn down<E: Operator>(
    State(engine): State<E>,
    Path(project): Path<String>,
    body: Bytes,
) -> Response {
    match parse_or_default::<DownCommand>(&body) {
        Ok(cmd) => ndjson(engine.down(project, cmd)),
        Err(r) => *r,
    }
}

pub(crate) async fn maintenance<E: Operator>(
    State(engine): State<E>,
    Path(project): Path<String>,
    body: Bytes,
) -> Response {
    let cmd = match parse_or_default::<MaintenanceCommand>(&body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match engine.maintenance(&project, cmd).await {
        Ok(states) => Json(states).into_response(),
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
    }
}

async fn projects(State(engine): State<DeployEngine>) -> Response {
    match engine.projects().await {
        Ok(p) => Json(p).into_response(),
        Err(e) => error(StatusCode::BAD_GATEWAY, e),
    }
}

async fn status(State(engine): State<DeployEngine>, Path(project): Path<String>) -> Response {
    match engine.status(&project).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => error(StatusCode::BAD_GATEWAY, e),
    }
}

pub(crate) async fn history<E: Operator>(
    State(engine): State<E>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(k) = q.keys().find(|k| k.as_str() != "service") {
        return error(
            StatusCode::BAD_REQUEST,
            Report::new(format!("unknown query parameter `{k}`"))
                .hint("history takes service=<name>"),
        );
    }
    match engine
        .history(&project, q.get("service").map(String::as_str))
        .await
    {
        Ok(entries) => Json(entries).into_response(),
        Err(report) => error(StatusCode::SERVICE_UNAVAILABLE, report),
    }
}

fn flag(q: &HashMap<String, String>, name: &str) -> Result<bool, Box<Response>> {
    match q.get(name).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("") | Some("true") | Some("1") => Ok(true),
        Some(v) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("query parameter `{name}` must be true or false, not {v:?}"),
        ))),
    }
}

pub(crate) async fn logs<E: Operator>(
    State(engine): State<E>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(k) = q
        .keys()
        .find(|k| !["service", "tail", "follow", "all", "since"].contains(&k.as_str()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            Report::new(format!("unknown query parameter `{k}`"))
                .hint("logs takes service, tail, follow, all, since"),
        );
    }
    let since = match q.get("since").map(|s| parse_since(s, SystemTime::now())) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(())) => {
            return error(
                StatusCode::BAD_REQUEST,
                "query parameter `since` must be a duration back from now (`10m`, `90s`) \
                 or an RFC 3339 time (`2026-11-24T16:00:00Z`)",
            )
        }
    };
    let tail = match q.get("tail").map(|t| t.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "query parameter `tail` must be a number of lines",
            )
        }
    };
    let (follow, all) = match (flag(&q, "follow"), flag(&q, "all")) {
        (Ok(f), Ok(a)) => (f, a),
        (Err(r), _) | (_, Err(r)) => return *r,
    };
    let query = LogsQuery {
        service: q.get("service").cloned(),
        tail,
        follow,
        all,
        since,
    };
    match engine.logs(&project, &query).await {
        Ok(s) => Response::builder()
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from_stream(s.map(Ok::<_, Infallible>)))
            .expect("static response parts are valid"),
        Err(e) => error(StatusCode::NOT_FOUND, e),
    }
}

/// `since` as `docker logs` takes it: a duration back from `now`, or a time.
fn parse_since(value: &str, now: SystemTime) -> Result<SystemTime, ()> {
    if let Ok(ago) = humantime::parse_duration(value) {
        // SystemTime reaches before the epoch; the engine's `since` does not.
        return Ok(now
            .checked_sub(ago)
            .filter(|t| *t >= SystemTime::UNIX_EPOCH)
            .unwrap_or(SystemTime::UNIX_EPOCH));
    }
    humantime::parse_rfc3339_weak(value).map_err(|_| ())
}

#[cfg(test)]
mod since_tests {
    use std::time::{Duration, SystemTime};

    use super::parse_since;

    #[test]
    fn since_is_a_duration_back_or_a_time() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_since("10m", now), Ok(now - Duration::from_secs(600)));
        assert_eq!(
            parse_since("1970-01-01T00:00:10Z", now),
            Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(10))
        );
        // Further back than the epoch reads everything.
        assert_eq!(parse_since("100000h", now), Ok(SystemTime::UNIX_EPOCH));
        assert_eq!(parse_since("yesterday-ish", now), Err(()));
    }
}
