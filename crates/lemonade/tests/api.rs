//! The black-box API suite: every endpoint of `/api/v1` over real HTTP.
//!
//! By default each test starts its own in-process shop (and audits its database at the end).
//! With `LEMONADE_TEST_URL=http://host:port` (and `LEMONADE_TEST_TOKEN` if it wants one) the
//! same tests run against that deployment; see `support/mod.rs`.

mod support;

#[path = "api/auth.rs"]
mod auth;
#[path = "api/concurrency.rs"]
mod concurrency;
#[path = "api/customers.rs"]
mod customers;
#[path = "api/errors.rs"]
mod errors;
#[path = "api/every_field.rs"]
mod every_field;
#[path = "api/idempotency.rs"]
mod idempotency;
#[path = "api/orders.rs"]
mod orders;
#[path = "api/pagination.rs"]
mod pagination;
#[path = "api/products.rs"]
mod products;
#[path = "api/reports.rs"]
mod reports;
#[path = "api/settings.rs"]
mod settings;
#[path = "api/stock.rs"]
mod stock;
#[path = "api/strict_input.rs"]
mod strict_input;
#[path = "api/system.rs"]
mod system;
