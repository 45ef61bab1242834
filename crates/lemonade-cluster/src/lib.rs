//! The distributed mode: the shop as four processes that talk over the network.
//!
//! - the **stock** service ([`stock`]) owns ingredients, the ledger, products, recipes and
//!   reservations;
//! - the **orders** service ([`orders`]) owns orders and the outbox, which its relay
//!   ([`relay`]) delivers to stock and CRM: the one path of events;
//! - the **CRM** service ([`crm`]) owns customers, points and activity;
//! - the **coordinator** ([`coordinator`]) serves the public API, runs order placement as a
//!   saga with its own log, and calls the others.
//!
//! Every service runs the same domain and SQL code as the monolith on its own database. The
//! network ([`transport`]), the clock and ids ([`node`]) come in through seams, so the same
//! code runs over real sockets or a simulated network. Calls between services go through
//! [`client`] (deadlines, retries with backoff and jitter, a retry budget, circuit breakers)
//! and arrive through [`server`] (token, rate limit, concurrency limit, body limit).

pub mod client;
pub mod coordinator;
pub mod crm;
pub mod faults;
pub mod group;
pub mod node;
pub mod orders;
pub mod rate;
pub mod relay;
pub mod rpc;
pub mod server;
pub mod stock;
pub mod switchboard;
pub mod transport;

pub use client::{CallPolicy, Clients};
pub use coordinator::{Coordinator, CoordinatorConfig};
pub use node::Node;
pub use rpc::Service;
pub use server::Protection;
