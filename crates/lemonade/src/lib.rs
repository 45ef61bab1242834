//! The `lemonade` binary's library half: starting the shop, one of its services or a whole
//! cluster (used by `main` and by the tests, which start real servers on their own ports).

pub mod cluster;
pub mod faults;
pub mod footprint;
pub mod lock;
pub mod output;
pub mod serve;
