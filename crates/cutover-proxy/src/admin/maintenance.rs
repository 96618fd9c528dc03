//! `/v1/services/{name}/maintenance`: a route's maintenance page, put on
//! and taken off over the control API. A cluster's coordinator sets it on
//! every node's edge (`cutover maintenance` on a Swarm); on one host the
//! deploy engine sets it in process.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use cutover_core::maintenance::Maintenance;
use cutover_core::status::ServiceStatus;
use cutover_core::wire::read_json;

use super::error::ApiError;
use super::services::{deploy_error, persist};
use super::Admin;

/// `PUT`: the route answers the maintenance page (or holds requests).
pub(super) async fn on(
    State(admin): State<Admin>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<ServiceStatus>, ApiError> {
    let maintenance: Maintenance = read_json(&body)?;
    set(admin, name, Some(maintenance)).await
}

/// `DELETE`: the route serves again; held requests are released.
pub(super) async fn off(
    State(admin): State<Admin>,
    Path(name): Path<String>,
) -> Result<Json<ServiceStatus>, ApiError> {
    set(admin, name, None).await
}

async fn set(
    admin: Admin,
    name: String,
    maintenance: Option<Maintenance>,
) -> Result<Json<ServiceStatus>, ApiError> {
    admin.may_change(&name)?;
    let status = admin
        .proxy()
        .set_maintenance(&name, maintenance)
        .map_err(|e| deploy_error(&name, e))?;
    persist(&admin, "the maintenance changed").await?;
    Ok(Json(status))
}
