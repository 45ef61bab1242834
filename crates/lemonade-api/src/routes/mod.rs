//! Handlers, one module per resource. Each parses its input into domain types, calls the
//! [`lemonade_domain::ports::Shop`], and returns JSON; errors go through [`crate::error`].
//!
//! Inputs are read so that every bad field is reported at once: bodies through
//! [`crate::body`], query parameters through [`crate::extract::Query`] as text parsed here (a
//! serde-typed query would stop at the first one that is not a number).

pub mod customers;
pub mod orders;
pub mod products;
pub mod reports;
pub mod stock;
pub mod system;

use lemonade_domain::error::FieldErrors;
use lemonade_domain::ports::{CursorKind, PageRequest};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use lemonade_domain::catalog::CatalogRefs;

/// `limit` and `cursor` of a list whose cursors are ids.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items, at most.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl PageParams {
    pub const CURSOR: CursorKind = CursorKind::Id;

    /// The page asked for, into `errors`.
    pub fn parse(&self, errors: &mut FieldErrors) -> Option<PageRequest> {
        page(errors, self.limit.as_deref(), self.cursor.as_deref(), Self::CURSOR)
    }
}

/// Parses `limit` and a `cursor` of the list's `kind` into `errors`: the one parser of every
/// list's page.
pub fn page(
    errors: &mut FieldErrors,
    limit: Option<&str>,
    cursor: Option<&str>,
    kind: CursorKind,
) -> Option<PageRequest> {
    let limit = crate::query::integer(errors, "limit", limit);
    let page = PageRequest::parse(errors, limit.flatten(), cursor, kind);
    limit.and(page)
}

/// An id naming something in a query filter: empty means no filter; one that cannot be an
/// id is a bad field (recorded, `None`).
pub fn id_param<T>(
    errors: &mut FieldErrors,
    name: &str,
    raw: Option<&str>,
    parse: fn(&str) -> Option<T>,
) -> Option<Option<T>> {
    match raw {
        None | Some("") => Some(None),
        Some(raw) => errors.check(
            name,
            parse(raw)
                .map(Some)
                .ok_or_else(|| "not a valid id: 0-9, A-Z, a-z, - and _ only".to_owned()),
        ),
    }
}

/// Parses an id from the path. Something that cannot be an id cannot name anything: 404.
pub fn path_id<T>(raw: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<T, ApiError> {
    parse(raw).ok_or_else(|| lemonade_domain::ShopError::not_found(what).into())
}

/// The value of a parse that also gave what only the shop can check (a name that must be
/// free, recipe ingredients): when anything was wrong, the shop's errors about those join
/// the answer, so that the client hears of everything at once. Best effort: a shop that
/// cannot tell now leaves them out rather than fail.
pub async fn with_catalog_refs<T>(
    app: &AppState,
    mut errors: FieldErrors,
    (value, refs): (Option<T>, CatalogRefs),
) -> Result<T, ApiError> {
    if let Some(value) = value
        && errors.is_empty()
    {
        return Ok(value);
    }
    if !refs.is_empty() {
        match app.shop.check_catalog_refs(refs).await {
            Ok(more) => errors.extend(more),
            Err(e) => tracing::debug!(error = %e, "could not check a request's references"),
        }
    }
    Err(lemonade_domain::ShopError::from(errors).into())
}

/// Runs a parse over a fresh error collection: its value, or every error it found.
pub fn parsed<T>(parse: impl FnOnce(&mut FieldErrors) -> Option<T>) -> Result<T, ApiError> {
    Ok(FieldErrors::collect(parse)?)
}
