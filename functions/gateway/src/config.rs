//! The gateway function's configuration: where the services are, the outbound
//! client's bounds and breakers, CORS and trusted proxies. No bcrypt, tokens or login
//! limits: the gateway reads none of them.

use edge::client_ip::TrustedProxies;
use outbound::breaker::BreakerConfig;
use outbound::config::Services;
use settings::{ConfigError, HttpClientConfig, ReadConfig, Vars};

/// What the gateway function reads at cold start: only the parts it uses.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub services: Services,
    pub http: HttpClientConfig,
    /// Origins a browser may call the gateway from (`CORS_ALLOWED_ORIGINS`, comma
    /// separated, `*` for any). `None` when unset, which each binary reads its own way
    /// (the local stack: any origin; the Lambda: no CORS, API Gateway answers it);
    /// an empty list when set but empty, which turns CORS off.
    pub cors_allowed_origins: Option<Vec<String>>,
    /// The circuit breakers on calls to other services.
    pub breaker: BreakerConfig,
    /// Whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`; by default nobody's).
    pub trusted_proxies: TrustedProxies,
}

impl ReadConfig for Config {
    fn read(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            services: Services::read(vars)?,
            http: HttpClientConfig::read(vars)?,
            cors_allowed_origins: read_cors_origins(vars),
            breaker: BreakerConfig::read(vars)?,
            trusted_proxies: TrustedProxies::read(vars)?,
        })
    }
}

/// `CORS_ALLOWED_ORIGINS`: `None` when unset, the trimmed non-empty entries otherwise.
pub fn read_cors_origins(vars: &Vars) -> Option<Vec<String>> {
    vars.raw("CORS_ALLOWED_ORIGINS").map(|v| {
        v.split(',')
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect()
    })
}
