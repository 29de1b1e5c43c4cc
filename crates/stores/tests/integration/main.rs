//! The shared crate's integration tests, one binary: the store contract every backend
//! meets, and properties of the parsers.

mod conflicts;
mod parsers_prop;
mod store_contract;
