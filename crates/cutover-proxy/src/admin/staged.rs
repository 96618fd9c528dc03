//! `/v1/services/{name}/staged`: the end of a stage a cluster's coordinator
//! runs on every node, as `cutover promote` and `cutover abort` do on one
//! host. The stage itself is the second phase of a prepared set
//! (`prepared.rs`).

use axum::extract::{Path, State};
use axum::Json;
use cutover_core::fleet::UnstagedAnswer;
use cutover_core::status::ServiceStatus;

use super::error::ApiError;
use super::services::{deploy_error, persist};
use super::Admin;

/// The staged set goes live with a deploy's switch; the active one drains.
pub(super) async fn promote(
    State(admin): State<Admin>,
    Path(name): Path<String>,
) -> Result<Json<ServiceStatus>, ApiError> {
    admin.may_change(&name)?;
    // As a commit: the switch and its state write are not cut apart.
    let task = tokio::spawn(async move {
        let status = admin
            .proxy()
            .promote(&name)
            .map_err(|e| deploy_error(&name, e))?;
        persist(&admin, "the staged version went live").await?;
        tracing::info!(service = %name, "promoted");
        Ok(Json(status))
    });
    task.await
        .map_err(|e| ApiError::internal(format!("the promote task failed: {e}")))?
}

/// The staged set stops being routed to and drains; its id, for
/// `/sets/{id}/drained`.
pub(super) async fn unstage(
    State(admin): State<Admin>,
    Path(name): Path<String>,
) -> Result<Json<UnstagedAnswer>, ApiError> {
    admin.may_change(&name)?;
    let set_id = admin
        .proxy()
        .unstage(&name)
        .map_err(|e| deploy_error(&name, e))?;
    persist(&admin, "the staged version was dropped").await?;
    Ok(Json(UnstagedAnswer { set_id }))
}
