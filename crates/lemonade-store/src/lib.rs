//! Storage for the shop: SQLite in WAL mode, one group-committing writer thread, a pool of
//! readers, the monolith's [`SqliteShop`], and the audit behind `lemonade check`.

pub mod audit;
pub mod conn;
pub mod db;
pub mod inflight;
pub mod maintenance;
pub mod migrations;
pub mod postgres;
pub mod readers;
pub mod seed;
pub mod shop;
pub mod sql;
pub mod system;
pub mod tasks;
mod text_keys;
pub mod tx;
pub mod writer;

pub use db::Database;
pub use shop::{ShopConfig, SqliteShop};
pub use tx::Tx;
pub use writer::WriterConfig;
