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
pub mod timeline;

use lemonade_domain::ShopError;
use lemonade_domain::customer::Standing;
use lemonade_domain::order::OrderStatus;
use lemonade_domain::saga::machine::Phase;

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

/// A state of the domain that the store keeps as a word: an order's status, a saga's phase,
/// a customer's standing.
pub(crate) trait StoredWord: Copy {
    /// The word stored for it (its `as_str`).
    fn word(self) -> &'static str;
}

impl StoredWord for OrderStatus {
    fn word(self) -> &'static str {
        self.as_str()
    }
}

impl StoredWord for Phase {
    fn word(self) -> &'static str {
        self.as_str()
    }
}

impl StoredWord for Standing {
    fn word(self) -> &'static str {
        self.as_str()
    }
}

/// `{value} IN ('a', 'b')` for the stored names of `statuses`: how a query filters by a rule
/// the domain states as a list of statuses (`OrderStatus::without_points`,
/// `OrderStatus::counting_as_sales`, `Phase::unfinished`), so the rule keeps one home. `value`
/// is a column or a parameter. One status gives `{value} = 'a'` (the form a partial index
/// on one state is written in); no statuses give a condition that is false.
pub(crate) fn status_in<S: StoredWord>(value: &str, statuses: impl IntoIterator<Item = S>) -> String {
    let names: Vec<String> = statuses.into_iter().map(|s| format!("'{}'", s.word())).collect();
    match names.as_slice() {
        [] => "1 = 0".to_owned(),
        [one] => format!("{value} = {one}"),
        many => format!("{value} IN ({})", many.join(", ")),
    }
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

/// A value read from a stored row that may not parse: what could not be read becomes
/// [`DbError::Stored`], naming the table and the row, instead of a panic.
pub(crate) trait Stored<T> {
    /// The value, or an error saying that row `row` of `table` has `what` (`what()` is only
    /// called on failure: `|| format!("an unknown status '{status}'")`).
    fn stored(self, table: &'static str, row: &str, what: impl FnOnce() -> String) -> Result<T, DbError>;
}

impl<T> Stored<T> for Option<T> {
    fn stored(self, table: &'static str, row: &str, what: impl FnOnce() -> String) -> Result<T, DbError> {
        self.ok_or_else(|| DbError::Stored {
            table,
            row: row.to_owned(),
            what: what(),
        })
    }
}

impl<T, E: std::fmt::Display> Stored<T> for Result<T, E> {
    fn stored(self, table: &'static str, row: &str, what: impl FnOnce() -> String) -> Result<T, DbError> {
        self.map_err(|e| DbError::Stored {
            table,
            row: row.to_owned(),
            what: format!("{} ({e})", what()),
        })
    }
}

/// Reads a stored id, naming `table`'s row `row` when it is not a valid one.
pub(crate) fn stored_id<T>(
    parse: impl FnOnce(&str) -> Option<T>,
    raw: &str,
    table: &'static str,
    row: &str,
) -> Result<T, DbError> {
    parse(raw).stored(table, row, || format!("an invalid id '{raw}'"))
}

#[cfg(test)]
mod tests {
    use lemonade_domain::ShopError;
    use lemonade_domain::ids::{IngredientId, OrderId};

    use super::*;

    #[test]
    fn a_stored_value_that_does_not_parse_names_its_table_and_row() {
        let e = None::<u8>
            .stored("orders", "o1", || "an unknown status 'lost'".into())
            .unwrap_err();
        assert_eq!(e.to_string(), "stored row o1 of orders has an unknown status 'lost'");
        let e = stored_id(IngredientId::parse, "", "stock_moves", "7").unwrap_err();
        assert_eq!(e.to_string(), "stored row 7 of stock_moves has an invalid id ''");
    }

    #[test]
    fn rows_no_binary_wrote_are_refused_as_unavailable_rather_than_a_panic() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::migrations::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "PRAGMA ignore_check_constraints = ON;
             INSERT INTO orders (id, status, total, points, created_at, updated_at)
                 VALUES ('o1', 'lost', 0, 0, 1, 1);
             INSERT INTO ingredients (id, name, unit, on_hand, reorder_level, created_at)
                 VALUES ('i1', 'Salt', 'pinch', 0, 0, 1);",
        )
        .unwrap();
        let order = orders::get(&conn, &OrderId::parse("o1").unwrap());
        assert!(matches!(order, Err(ShopError::Unavailable { .. })), "{order:?}");
        let ingredient = stock::get(&conn, &IngredientId::parse("i1").unwrap());
        assert!(
            matches!(ingredient, Err(ShopError::Unavailable { .. })),
            "{ingredient:?}"
        );
    }

    #[test]
    fn a_list_of_statuses_renders_as_an_in_condition() {
        assert_eq!(
            status_in("status", [OrderStatus::Failed, OrderStatus::Cancelled]),
            "status IN ('failed', 'cancelled')"
        );
        assert_eq!(status_in::<OrderStatus>("?2", []), "1 = 0");
        assert_eq!(
            status_in("o.status", OrderStatus::counting_as_sales()),
            "o.status = 'confirmed'"
        );
        assert_eq!(
            status_in("state", Phase::unfinished()),
            "state IN ('running', 'compensating')",
            "as the partial index on unfinished sagas is written"
        );
    }
}
