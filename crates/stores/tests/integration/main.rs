//! The shared crate's integration tests, one binary: the store contract every backend
//! meets, and properties of the parsers.

mod conflicts;
mod mail_contract;
mod parsers_prop;
mod store_contract;
