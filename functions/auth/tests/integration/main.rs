//! The auth function's integration tests, one binary: each module a concern, `support`
//! what they share beyond `testkit`.

mod bad_input;
mod binary;
mod concurrency;
mod dynamodb;
mod handlers;
mod lambda;
mod logs;
mod recovery;
mod security;
mod support;
