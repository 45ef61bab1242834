//! The HTTP boundary's one error type, and the one place errors become responses:
//! `application/problem+json` (RFC 9457) with a stable `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lemonade_domain::{FieldError, ShopError, Shortage};
use serde::Serialize;

#[derive(Debug)]
pub enum ApiError {
    Shop(ShopError),
    /// The body is not JSON, or not JSON of the right shape.
    BadRequest {
        status: StatusCode,
        detail: String,
    },
    PayloadTooLarge,
    MethodNotAllowed,
    UnsupportedMediaType,
    Unauthorized,
    NotAcceptable,
}

impl From<ShopError> for ApiError {
    fn from(e: ShopError) -> Self {
        ApiError::Shop(e)
    }
}

/// The problem document. `errors` and `shortages` appear only for the codes that have them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortages: Option<Vec<Shortage>>,
}

impl ApiError {
    pub fn problem(&self) -> Problem {
        let (status, code, detail, errors, shortages) = match self {
            ApiError::Shop(e) => {
                let (errors, shortages) = match e {
                    ShopError::ValidationFailed { errors } => (Some(errors.clone()), None),
                    ShopError::InsufficientStock { shortages } => (None, Some(shortages.clone())),
                    _ => (None, None),
                };
                let detail = match e {
                    ShopError::InsufficientStock { shortages } => {
                        let names: Vec<_> = shortages.iter().map(|s| s.name.as_str()).collect();
                        format!("not enough {} in stock", names.join(", "))
                    }
                    ShopError::ValidationFailed { errors } => errors
                        .iter()
                        .map(|f| {
                            if f.field.is_empty() {
                                f.message.clone()
                            } else {
                                format!("{}: {}", f.field, f.message)
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                    other => other.to_string(),
                };
                (
                    StatusCode::from_u16(e.status()).expect("a shop error's status is valid"),
                    e.code(),
                    detail,
                    errors,
                    shortages,
                )
            }
            ApiError::BadRequest { status, detail } => (
                *status,
                "validation_failed",
                detail.clone(),
                Some(vec![FieldError::new("", detail.clone())]),
                None,
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body is larger than {} bytes", crate::BODY_BYTES_MAX),
                None,
                None,
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method (see the Allow header)".into(),
                None,
                None,
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json".into(),
                None,
                None,
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this shop needs its access token: send Authorization: Bearer <token>".into(),
                None,
                None,
            ),
            ApiError::NotAcceptable => (
                StatusCode::NOT_ACCEPTABLE,
                "not_acceptable",
                "this resource is available as application/json or text/csv".into(),
                None,
                None,
            ),
        };
        Problem {
            type_: format!("https://lemonade.example/problems/{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            errors,
            shortages,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status = StatusCode::from_u16(problem.status).expect("statuses above are valid");
        let body = serde_json::to_vec(&problem).expect("problems always serialise");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, ApiError::Unauthorized) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::Shop(ShopError::Unavailable { .. } | ShopError::RequestInProgress) = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
