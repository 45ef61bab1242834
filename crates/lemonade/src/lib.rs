//! The `lemonade` binary's library half: starting the shop (used by `main` and by the tests,
//! which start real servers on their own ports).

pub mod serve;
