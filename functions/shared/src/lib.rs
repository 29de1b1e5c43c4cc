//! What the auth, users and gateway functions share: domain types, the error, the JSON
//! and query extractors, tokens, configuration, stores and router plumbing.

pub mod breaker;
pub mod client_ip;
pub mod config;
pub mod deadline;
pub mod domain;
pub mod error;
pub mod http;
#[cfg(feature = "http-client")]
pub mod http_client;
pub mod json;
pub mod metrics;
pub mod query;
pub mod refresh;
pub mod store;
pub mod telemetry;
pub mod token;

pub use config::Config;
pub use error::Error;
pub use json::Json;
pub use query::Query;
#[cfg(feature = "testing")]
pub mod testing;
