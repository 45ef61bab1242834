//! Extractors whose rejections are our own errors, so that a bad body, query or path is
//! answered in the same problem+json shape as everything else, and read as strictly.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use lemonade_domain::ShopError;
use lemonade_domain::error::FieldErrors;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;
use utoipa::openapi::path::ParameterIn;

use crate::body::Body;
use crate::error::ApiError;

/// A JSON body, read by [`crate::body::parse`] (which notes the keys given twice).
///
/// Its `Content-Type` must be sent once and be `application/json`, with no parameter but an
/// optional `charset=utf-8` (JSON is UTF-8; RFC 8259 §8.1): anything else, another charset
/// and `+json` types included, is a 415. Malformed JSON is a 400, a body over the limit a 413.
pub struct JsonBody(pub Body);

/// Whether the request declares its body as JSON in exactly one accepted way.
fn declares_json(headers: &HeaderMap) -> bool {
    let mut declared = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (declared.next(), declared.next()) else {
        return false;
    };
    let Some(media) = value.to_str().ok().and_then(|v| v.parse::<mime::Mime>().ok()) else {
        return false;
    };
    // `mime` lowercases the type, the parameters' names and a charset's value.
    media.essence_str() == "application/json"
        && media
            .params()
            .all(|(name, value)| name == mime::CHARSET && value.as_str().trim_matches('"') == "utf-8")
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !declares_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = bytes(req, state).await?;
        json(&bytes).map(JsonBody)
    }
}

/// The bytes of a body, at most [`crate::BODY_BYTES_MAX`].
async fn bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest {
                status: StatusCode::BAD_REQUEST,
                detail: e.body_text(),
            }
        }
    })
}

fn json(bytes: &[u8]) -> Result<Body, ApiError> {
    crate::body::parse(bytes).map_err(|e| ApiError::BadRequest {
        status: StatusCode::BAD_REQUEST,
        detail: format!("the body is not well-formed JSON: {e}"),
    })
}

/// The body of an endpoint that takes one but needs none: `None` when no bytes came,
/// whatever the headers say; otherwise read as a [`JsonBody`] is.
pub struct OptionalJsonBody(pub Option<Body>);

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let declared = declares_json(req.headers());
        let bytes = bytes(req, state).await?;
        if bytes.is_empty() {
            return Ok(OptionalJsonBody(None));
        }
        if !declared {
            return Err(ApiError::UnsupportedMediaType);
        }
        json(&bytes).map(|body| OptionalJsonBody(Some(body)))
    }
}

/// A path parameter. Whatever cannot be decoded (say, percent-encoded bytes that are not
/// UTF-8) cannot name anything: 404, like any unknown id.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|_| ShopError::not_found("resource").into())
    }
}

/// The query parameters of an endpoint, `T`: a struct of `Option<String>` fields, one per
/// parameter, that also documents them ([`IntoParams`]), so that the names it takes are the
/// names its document lists. Read by [`crate::query::read`]: what was wrong with the query
/// itself (a parameter it does not take, one given twice) waits in the extractor for
/// [`Query::parse`], which adds what is wrong with the values, so that all of it comes in one
/// 422.
pub struct Query<T> {
    params: T,
    errors: FieldErrors,
}

impl<T> Query<T> {
    /// Parses the parameters with `parse` (which records what is wrong with their values):
    /// its value when nothing at all was wrong, else every error, the query's own first.
    pub fn parse<U>(self, parse: impl FnOnce(&mut FieldErrors, &T) -> Option<U>) -> Result<U, ApiError> {
        let Query { params, mut errors } = self;
        let parsed = parse(&mut errors, &params);
        match parsed {
            Some(value) if errors.is_empty() => Ok(value),
            _ => Err(ShopError::from(errors).into()),
        }
    }
}

/// The names of the query parameters `T` documents.
pub fn query_names<T: IntoParams>() -> Vec<String> {
    T::into_params(|| Some(ParameterIn::Query))
        .into_iter()
        .filter(|p| matches!(p.parameter_in, ParameterIn::Query))
        .map(|p| p.name)
        .collect()
}

impl<T: DeserializeOwned + IntoParams, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let names = query_names::<T>();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut errors = FieldErrors::default();
        let values = crate::query::read(parts.uri.query().unwrap_or(""), &names, &mut errors);
        let object = values
            .into_iter()
            .map(|(name, value)| (name, serde_json::Value::String(value)))
            .collect();
        let params = serde_json::from_value(serde_json::Value::Object(object))
            .expect("query parameter structs have only Option<String> fields");
        Ok(Query { params, errors })
    }
}
