//! Handlers, one module per resource. Each parses its input into domain types, calls the
//! [`lemonade_domain::ports::Shop`], and returns JSON; errors go through [`crate::error`].

pub mod customers;
pub mod orders;
pub mod products;
pub mod reports;
pub mod stock;
pub mod system;

use lemonade_domain::ports::PageRequest;
use serde::Deserialize;

use crate::error::ApiError;

/// `limit` and `cursor` of a list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn parse(&self) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::parse(self.limit, self.cursor.as_deref())?)
    }
}

/// Parses an id from the path. Something that cannot be an id cannot name anything: 404.
pub fn path_id<T>(raw: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<T, ApiError> {
    parse(raw).ok_or_else(|| lemonade_domain::ShopError::not_found(what).into())
}
