//! Errors as RFC 9457 problem documents (`application/problem+json`): a status, a title, a
//! detail, and for bad declarations one entry per error naming object, field, line and what
//! was expected.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One error on a declaration, as the API reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldError {
    /// `Kind/name` or `Kind/namespace/name`, or "request body".
    pub object: String,
    /// Field path, e.g. `spec.catalog`.
    pub field: String,
    /// Line and column in the request body, when the error is in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// See `line`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl FieldError {
    /// From a model diagnostic; `positioned`: its line and column are in the request body.
    pub fn from_diagnostic(d: atoll_model::Diagnostic, positioned: bool) -> FieldError {
        FieldError {
            object: d.object,
            field: d.path,
            line: (positioned && d.line > 0).then_some(d.line),
            column: (positioned && d.col > 0).then_some(d.col),
            message: d.message,
        }
    }

    /// From a diagnostic about a stored object, whose key is its `file`.
    pub fn about_stored(d: atoll_model::Diagnostic) -> FieldError {
        FieldError {
            object: d.file,
            field: d.path,
            line: None,
            column: None,
            message: d.message,
        }
    }

    /// A syntax error at a position in the request body.
    pub fn in_body(line: usize, column: usize, message: String) -> FieldError {
        FieldError {
            object: "request body".into(),
            field: String::new(),
            line: Some(line),
            column: Some(column),
            message,
        }
    }
}

/// An error response (RFC 9457 problem+json).
#[derive(Debug, Clone)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// A short, fixed summary of the status.
    pub title: &'static str,
    /// What happened, in a sentence.
    pub detail: String,
    /// Errors on declarations, each with object, field and position.
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// A problem with `status`, `title` and `detail`.
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            title,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }
    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "Bad request", detail)
    }
    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "Not found", detail)
    }
    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "Forbidden", detail)
    }
    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
    }
    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "Conflict", detail)
    }
    /// 422, with the errors on declarations.
    pub fn invalid(detail: impl Into<String>, errors: Vec<FieldError>) -> Problem {
        Problem {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            title: "Invalid declaration",
            detail: detail.into(),
            errors,
        }
    }
    /// 500.
    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", detail)
    }
}

impl From<atoll_inventory::StoreError> for Problem {
    fn from(e: atoll_inventory::StoreError) -> Problem {
        use atoll_inventory::StoreError as E;
        match &e {
            E::AlreadyExists { .. } => Problem::conflict(e.to_string()),
            E::Conflict { .. } => Problem::conflict(e.to_string()),
            E::NotFound { .. } => Problem::not_found(e.to_string()),
            _ => Problem::internal(e.to_string()),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "errors": self.errors,
        });
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}
