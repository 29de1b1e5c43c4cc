//! The local crate's integration tests, one binary: the stack over real HTTP, its
//! binary, logs, faults, DynamoDB calls and the OpenAPI contract.

mod account_e2e;
mod auth_e2e;
mod binary;
mod dynamodb_calls;
mod emulate;
mod faults;
mod gateway_e2e;
mod jwt_attacks_e2e;
mod keys_e2e;
mod listing_e2e;
mod logs;
mod metrics;
mod openapi_contract;
mod profile_guard_e2e;
mod security_e2e;
mod support;
mod users_e2e;
