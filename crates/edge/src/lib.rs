//! The functions' edge: router plumbing (prefixes, the JSON fallback, panics, the
//! access log, the Lambda entry), telemetry, metrics, the client's address, the request
//! deadline and the local servers' limits.

pub mod client_ip;
pub mod deadline;
pub mod http;
pub mod metrics;
pub mod server;
pub mod telemetry;
