//! The users function's integration tests, one binary: each module a concern, `support`
//! what they share beyond `testkit`.

mod bad_input;
mod config;
mod handlers;
mod lambda;
mod listing;
mod one_round_trip;
mod remote_auth;
mod revocation;
mod support;
mod write_guard;
