//! Calls to other services: where they are ([`config`]), the one outbound HTTP client
//! ([`http_client`], feature `http-client`) and the circuit breakers in front of it.

pub mod breaker;
pub mod config;
#[cfg(feature = "http-client")]
pub mod http_client;
