//! SQL for each part of the shop, as plain functions over a connection. The writer and the
//! readers decide the transaction; these functions never begin or commit one, which is what
//! lets the monolith run a whole order in one transaction and a service run its own part.

pub mod cache;
pub mod catalog;
pub mod crm;
pub mod directory;
pub mod events;
pub mod idempotency;
pub mod orders;
pub mod reservations;
pub mod sagas;
pub mod steps;
pub mod stock;

use lemonade_domain::ShopError;
use lemonade_domain::order::OrderStatus;

use crate::conn::DbError;
use lemonade_domain::values::Timestamp;

/// Maps a storage error to the shop's error. Constraint violations are the caller's fault
/// only where a caller checks first; here they mean a bug or a race the schema caught, so they
/// are logged and answered as "unavailable", never as a 500 with internals.
pub fn storage_error(e: impl Into<DbError>) -> ShopError {
    let e = e.into();
    tracing::error!(error = %e, "storage error");
    ShopError::unavailable("the database could not complete the request")
}

pub(crate) trait SqlResult<T> {
    fn db(self) -> Result<T, ShopError>;
}

impl<T> SqlResult<T> for crate::conn::DbResult<T> {
    fn db(self) -> Result<T, ShopError> {
        self.map_err(storage_error)
    }
}

/// `{value} IN ('a', 'b')` for the stored names of `statuses`: how a query filters by a rule
/// the domain states as a list of statuses (`OrderStatus::without_points`), so the rule keeps
/// one home. `value` is a column or a parameter. No statuses give a condition that is false.
pub(crate) fn status_in(value: &str, statuses: impl IntoIterator<Item = OrderStatus>) -> String {
    let names: Vec<String> = statuses.into_iter().map(|s| format!("'{}'", s.as_str())).collect();
    if names.is_empty() {
        return "1 = 0".to_owned();
    }
    format!("{value} IN ({})", names.join(", "))
}

/// `query_row` that treats "no row" as `None`.
pub(crate) fn optional<T>(r: crate::conn::DbResult<T>) -> Result<Option<T>, ShopError> {
    crate::conn::optional(r).map_err(storage_error)
}

pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp(ms)
}

/// Converts a stored non-negative integer; the schema's CHECKs guarantee the sign.
pub(crate) fn unsigned(v: i64) -> u64 {
    assert!(v >= 0, "a CHECK constraint keeps this column non-negative");
    v as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_of_statuses_renders_as_an_in_condition() {
        assert_eq!(
            status_in("status", [OrderStatus::Failed, OrderStatus::Cancelled]),
            "status IN ('failed', 'cancelled')"
        );
        assert_eq!(status_in("?2", []), "1 = 0");
    }
}
