//! The one error type of the [`crate::ports::Shop`] boundary. The HTTP layer maps it to
//! `application/problem+json` in one place; it is serialisable so that an idempotency record
//! can replay a rejection exactly as it was first answered.

use serde::{Deserialize, Serialize};

use crate::ids::IngredientId;

/// One bad field of a request: a JSON-pointer-like path and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An ingredient an order (or a waste record) needs more of than there is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Shortage {
    pub ingredient_id: IngredientId,
    pub name: String,
    pub unit: crate::values::Unit,
    pub needed: u64,
    pub available: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ShopError {
    #[error("the request has invalid fields")]
    ValidationFailed { errors: Vec<FieldError> },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("not enough stock")]
    InsufficientStock { shortages: Vec<Shortage> },
    /// The request is well formed but the resource is in a state that forbids it
    /// (cancelling a cancelled order, a duplicate name).
    #[error("{detail}")]
    Conflict { detail: String },
    #[error("this idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this idempotency key is still in progress")]
    RequestInProgress,
    /// The shop cannot take the request now (storage busy or down, a service unreachable).
    /// Safe to retry with the same idempotency key.
    #[error("{detail}")]
    Unavailable { detail: String },
    /// A message from another process of the cluster carried a hybrid-logical-clock stamp
    /// more than the bound ahead of the receiver's wall clock: refused rather than let one
    /// clock drag the others forward (see [`crate::hlc`]). Not retried by the caller: the
    /// clocks, not the load, must change.
    #[error("{detail}")]
    ClockSkew { detail: String },
}

impl ShopError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ShopError::ValidationFailed {
            errors: vec![FieldError::new(field, message)],
        }
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        ShopError::NotFound { what: what.into() }
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        ShopError::Conflict { detail: detail.into() }
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        ShopError::Unavailable { detail: detail.into() }
    }
    /// A definite "no" about the request itself, the same on every retry: unlike
    /// `Unavailable`, it is an answer, and can be stored and replayed as one.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ShopError::ValidationFailed { .. }
                | ShopError::NotFound { .. }
                | ShopError::InsufficientStock { .. }
                | ShopError::Conflict { .. }
        )
    }
    /// The HTTP status that answers this error, for the public API and the internal one
    /// alike: 422 for a request that cannot be carried out as written (bad fields, a key
    /// reused for another request), 404 for what does not exist, 409 for what the shop's
    /// state forbids now (not enough stock, a conflict, the same key still in progress), 503
    /// for what may work on a retry.
    pub fn status(&self) -> u16 {
        match self {
            ShopError::ValidationFailed { .. } | ShopError::IdempotencyKeyReused => 422,
            ShopError::NotFound { .. } => 404,
            ShopError::InsufficientStock { .. } | ShopError::Conflict { .. } | ShopError::RequestInProgress => 409,
            ShopError::Unavailable { .. } | ShopError::ClockSkew { .. } => 503,
        }
    }
    /// The stable machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            ShopError::ValidationFailed { .. } => "validation_failed",
            ShopError::NotFound { .. } => "not_found",
            ShopError::InsufficientStock { .. } => "insufficient_stock",
            ShopError::Conflict { .. } => "conflict",
            ShopError::IdempotencyKeyReused => "idempotency_key_reused",
            ShopError::RequestInProgress => "request_in_progress",
            ShopError::Unavailable { .. } => "unavailable",
            ShopError::ClockSkew { .. } => "clock_skew",
        }
    }
}

/// Collects field errors while parsing a request, so that a client learns of every bad field
/// at once rather than one per round trip: the HTTP layer adds what it finds in the body's
/// shape (a wrong JSON type, a missing or unknown field), the domain's parsers what they find
/// in the values, and the shop what only it can know (an unknown product).
#[derive(Default, Debug)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }
    /// Runs a parse and records its error under `field`.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(message) => {
                self.push(field, message);
                None
            }
        }
    }
    /// A field the request must have: `None` is recorded as "is required", unless the field
    /// already has an error (it was there, but of the wrong JSON type).
    pub fn require<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() && !self.has(field) {
            self.push(field, "is required");
        }
        value
    }
    /// Adds errors found elsewhere (by the shop, say).
    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.0.extend(errors);
    }
    /// Whether `field` already has an error, or a field that holds it does (`lines[1]` holds
    /// `lines[1].quantity`; `""` is the whole request), so that a second one about it would
    /// only repeat it.
    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|e| {
            let rest = field.strip_prefix(e.field.as_str());
            e.field.is_empty() || rest.is_some_and(|r| r.is_empty() || r.starts_with(['.', '[']))
        })
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
    /// `Ok(value)` when nothing was wrong.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ShopError> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(ShopError::ValidationFailed { errors: self.0 })
        }
    }
    /// Runs a parser that reports into a fresh collection: its value when nothing was wrong,
    /// else every error it found.
    pub fn collect<T>(parse: impl FnOnce(&mut FieldErrors) -> Option<T>) -> Result<T, ShopError> {
        let mut errors = FieldErrors::default();
        let parsed = parse(&mut errors);
        match (parsed, errors.is_empty()) {
            (Some(value), true) => Ok(value),
            (_, false) => Err(ShopError::ValidationFailed { errors: errors.0 }),
            (None, true) => unreachable!("a parser that returns nothing reports why"),
        }
    }
}

/// One bad field is a validation failure naming it.
impl From<FieldError> for ShopError {
    fn from(error: FieldError) -> Self {
        ShopError::ValidationFailed { errors: vec![error] }
    }
}

impl From<FieldErrors> for ShopError {
    fn from(errors: FieldErrors) -> Self {
        assert!(!errors.is_empty(), "a validation failure names at least one field");
        ShopError::ValidationFailed { errors: errors.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_the_status_its_kind_of_failure_has() {
        let cases = [
            (ShopError::validation("f", "bad"), 422),
            (ShopError::IdempotencyKeyReused, 422),
            (ShopError::not_found("order"), 404),
            (ShopError::InsufficientStock { shortages: vec![] }, 409),
            (ShopError::conflict("taken"), 409),
            (ShopError::RequestInProgress, 409),
            (ShopError::unavailable("down"), 503),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status, "{error:?}");
        }
    }
}
