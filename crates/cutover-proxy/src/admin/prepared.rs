//! `/v1/services/{name}/prepared`: the two phases of a switch a cluster's
//! coordinator runs on every node (`cutover_core::fleet`). A name with a
//! `/` is sent percent-encoded (`athens%2Fweb`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use cutover_core::fleet::{CommitAnswer, PreparedAnswer};
use cutover_core::service::DeployRequest;
use cutover_core::stage::Stage;
use cutover_core::wire::read_json;

use super::error::ApiError;
use super::services::{deploy_error, persist};
use super::Admin;

pub(super) async fn prepare(
    State(admin): State<Admin>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<PreparedAnswer>, ApiError> {
    admin.may_change(&name)?;
    let req: DeployRequest = read_json(&body)?;
    req.validate()?;
    tracing::info!(service = %name, targets = ?req.targets, version = ?req.version, "prepare requested");
    admin
        .proxy()
        .prepare(&name, req)
        .await
        .map(Json)
        .map_err(|e| deploy_error(&name, e))
}

pub(super) async fn commit(
    State(admin): State<Admin>,
    Path((name, id)): Path<(String, u64)>,
) -> Result<Json<CommitAnswer>, ApiError> {
    admin.may_change(&name)?;
    // As a deploy: a client that hangs up must not cancel the commit
    // between the switch and the state write.
    let task = tokio::spawn(async move {
        let answer = admin
            .proxy()
            .commit(&name, id)
            .map_err(|e| deploy_error(&name, e))?;
        persist(&admin, "the switch happened").await?;
        tracing::info!(service = %name, set_id = id, color = %answer.status.active.color, "committed");
        Ok(Json(answer))
    });
    task.await
        .map_err(|e| ApiError::internal(format!("the commit task failed: {e}")))?
}

/// Phase two of a stage: the prepared set is staged beside the active one
/// (`deploy --preview|--canary` on a cluster).
pub(super) async fn stage(
    State(admin): State<Admin>,
    Path((name, id)): Path<(String, u64)>,
    body: Bytes,
) -> Result<Json<CommitAnswer>, ApiError> {
    admin.may_change(&name)?;
    let stage: Stage = read_json(&body)?;
    // As a commit: the stage and its state write are not cut apart.
    let task = tokio::spawn(async move {
        let status = admin
            .proxy()
            .stage_prepared(&name, id, stage)
            .map_err(|e| deploy_error(&name, e))?;
        persist(&admin, "the version was staged").await?;
        tracing::info!(service = %name, set_id = id, "staged across the cluster");
        Ok(Json(CommitAnswer {
            status,
            switched_at_ms: cutover_core::clock::now_ms(),
        }))
    });
    task.await
        .map_err(|e| ApiError::internal(format!("the stage task failed: {e}")))?
}

pub(super) async fn abort(
    State(admin): State<Admin>,
    Path((name, id)): Path<(String, u64)>,
) -> Result<StatusCode, ApiError> {
    admin.may_change(&name)?;
    admin.proxy().abort_prepared(&name, id);
    Ok(StatusCode::NO_CONTENT)
}
