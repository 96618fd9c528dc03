//! The one error answer of the control API: a status and a
//! [`Report`], encoded as [`ErrorBody`] (docs/api.md, "Errors"). The deploy
//! engine's routes answer with it too.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cutover_core::diag::Report;
use cutover_core::wire::ErrorBody;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub report: Report,
}

impl ApiError {
    pub fn new(status: StatusCode, report: impl Into<Report>) -> ApiError {
        ApiError {
            status,
            report: report.into(),
        }
    }

    pub fn bad_request(report: impl Into<Report>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, report)
    }

    pub fn not_found(report: impl Into<Report>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, report)
    }

    pub fn internal(report: impl Into<Report>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, report)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> ApiError {
        self.report = self.report.hint(hint);
        self
    }
}

/// A request that fails a check of the wire contract (its JSON, a
/// `validate()`) is the client's to fix.
impl From<Report> for ApiError {
    fn from(report: Report) -> ApiError {
        ApiError::bad_request(report)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody::from(self.report))).into_response()
    }
}
