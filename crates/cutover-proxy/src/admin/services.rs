//! `/v1/services` and `/v1/services/{name}`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use cutover_core::diag::{Diagnose, Report};
use cutover_core::service::{is_project_route, validate_service_name, DeployRequest};
use cutover_core::status::ServiceStatus;
use cutover_core::wire::read_json;

use super::error::ApiError;
use super::Admin;
use crate::DeployError;

pub(super) async fn list(State(admin): State<Admin>) -> Json<Vec<ServiceStatus>> {
    let mut all = admin.proxy().status();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Json(all)
}

pub(super) async fn get_one(
    State(admin): State<Admin>,
    Path(name): Path<String>,
) -> Result<Json<ServiceStatus>, ApiError> {
    validate_service_name(&name)?;
    admin
        .proxy()
        .status()
        .into_iter()
        .find(|s| s.name == name)
        .map(Json)
        .ok_or_else(|| unknown_service(&name))
}

pub(super) async fn deploy(
    State(admin): State<Admin>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<ServiceStatus>, ApiError> {
    admin.may_change(&name)?;
    let req: DeployRequest = read_json(&body)?;
    req.validate()?;
    tracing::info!(service = %name, targets = ?req.targets, version = ?req.version, "deploy requested");
    // A client that hangs up must not cancel the deploy between the switch
    // and the state write: the work runs on its own task.
    let task = tokio::spawn(async move {
        let status = admin
            .proxy()
            .deploy(&name, req)
            .await
            .map_err(|e| deploy_error(&name, e))?;
        persist(&admin, "the switch happened").await?;
        tracing::info!(service = %name, set_id = status.active.id, color = %status.active.color, "deployed");
        Ok(Json(status))
    });
    task.await
        .map_err(|e| ApiError::internal(format!("the deploy task failed: {e}")))?
}

pub(super) async fn remove(
    State(admin): State<Admin>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    validate_service_name(&name)?;
    let task = tokio::spawn(async move {
        admin
            .proxy()
            .remove(&name)
            .map_err(|e| deploy_error(&name, e))?;
        persist(&admin, "the service no longer receives traffic").await?;
        tracing::info!(service = %name, "removed");
        Ok(StatusCode::NO_CONTENT)
    });
    task.await
        .map_err(|e| ApiError::internal(format!("the remove task failed: {e}")))?
}

impl Admin {
    /// A compose app's route (`project/service`) is the deploy engine's on
    /// a host; on an edge node it is the coordinator's, which sends it here.
    pub(super) fn may_change(&self, name: &str) -> Result<(), ApiError> {
        validate_service_name(name)?;
        if is_project_route(name) && !self.inner.edge {
            return Err(ApiError::bad_request(
                Report::new(format!("{name:?} is the route of a compose app"))
                    .hint("`cutover deploy` owns project/service routes; PUT a name without '/'"),
            ));
        }
        Ok(())
    }
}

/// A change the proxy made but the state file did not record would be undone
/// by the next restart: the caller must hear about it.
pub(super) async fn persist(admin: &Admin, what_happened: &str) -> Result<(), ApiError> {
    admin.persist().await.map_err(|e| {
        tracing::error!(error = %e, "cannot persist state");
        ApiError::internal(
            Report::new(format!(
                "{what_happened}, but the state could not be saved: {e}"
            ))
            .detail("the change is live now and will be lost at the next restart of the daemon")
            .opt_hint(e.hint()),
        )
    })
}

fn unknown_service(name: &str) -> ApiError {
    ApiError::not_found(
        Report::new(format!("no service named {name:?}"))
            .hint("GET /v1/services lists the services"),
    )
}

pub(super) fn deploy_error(name: &str, e: DeployError) -> ApiError {
    match &e {
        DeployError::Unhealthy { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.report().map_message(|_| e.describe(name)),
        ),
        DeployError::Invalid(_) => ApiError::bad_request(e.report()),
        DeployError::UnknownService(_) => unknown_service(name),
        DeployError::NotPrepared { .. } => ApiError::new(StatusCode::CONFLICT, e.report()),
    }
}
