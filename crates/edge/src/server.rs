//! What the local servers allow a connection.

use std::time::Duration;

use settings::{ConfigError, Vars};

/// What each local server (`cargo run -p local`, `local emulate`) allows a connection,
/// as a reverse proxy would: its request head within `HEADER_READ_TIMEOUT_MS` of
/// waiting for one (idle keep-alive time included), no silence (nothing read or
/// written) longer than `IDLE_TIMEOUT_MS`, and at most `MAX_CONNECTIONS` open at once
/// (more wait to be accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
        }
    }
}

impl ServerLimits {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let default = Self::default();
        Ok(Self {
            header_read_timeout: vars
                .millis("HEADER_READ_TIMEOUT_MS", default.header_read_timeout)?,
            idle_timeout: vars.millis("IDLE_TIMEOUT_MS", default.idle_timeout)?,
            max_connections: vars.between(
                "MAX_CONNECTIONS",
                default.max_connections as u64,
                100_000,
                "",
            )? as usize,
        })
    }
}
