//! Responses every route shares.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// A JSON error (`{"error": message}`) that no cache may keep: errors describe a moment (not
/// live yet, starting, gone).
pub fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}
