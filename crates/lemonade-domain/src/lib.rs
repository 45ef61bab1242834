//! The shop's domain core.
//!
//! Everything here is pure: no HTTP, no SQL, no clock and no randomness. Time and identity
//! come in through the seams in [`ports`]; storage sits behind the [`ports::Shop`] trait, which
//! the monolith implements over one SQLite database and the distributed mode over services.
//! Values are parsed at the edge into types that cannot hold an illegal state
//! ([`values::Quantity`] is never zero, [`values::Money`] is never negative, ...).

pub mod catalog;
pub mod customer;
pub mod error;
pub mod hlc;
pub mod ids;
pub mod order;
pub mod ports;
pub mod report;
pub mod saga;
pub mod stock;
pub mod text;
pub mod values;

pub use error::{FieldError, ShopError, Shortage};
