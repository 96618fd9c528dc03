use crate::DeployEngine;
pub fn router(_engine: DeployEngine) -> axum::Router { axum::Router::new() }
