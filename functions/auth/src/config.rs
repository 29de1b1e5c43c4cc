//! The auth function's configuration: tokens, stores, bcrypt, the login and
//! registration limits, trusted proxies and the public URL.

use std::time::Duration;

use edge::client_ip::TrustedProxies;
use settings::{ConfigError, HttpClientConfig, ReadConfig, Url, Vars, service_url};
use stores::config::StoreConfig;
use tokens::config::TokenConfig;

/// What the auth function reads at cold start: only the parts it uses.
#[derive(Debug, Clone)]
pub struct Config {
    pub tokens: TokenConfig,
    pub bcrypt_cost: u32,
    pub store: StoreConfig,
    /// DynamoDB's connect and request timeouts.
    pub http: HttpClientConfig,
    pub login_limits: LoginLimits,
    pub register_limits: RegisterLimits,
    /// Whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`; by default nobody's).
    pub trusted_proxies: TrustedProxies,
    /// This API's own public base URL (`PUBLIC_URL`), where verifiers find its key
    /// set; `None` when unset.
    pub public_url: Option<Url>,
    /// How many bcrypt runs at once, and how long one may wait for its turn.
    pub hashing: HashingLimits,
}

impl Default for Config {
    /// What an empty environment reads as.
    fn default() -> Self {
        Self {
            tokens: TokenConfig::default(),
            bcrypt_cost: DEFAULT_BCRYPT_COST,
            store: StoreConfig::default(),
            http: HttpClientConfig::default(),
            login_limits: LoginLimits::default(),
            register_limits: RegisterLimits::default(),
            trusted_proxies: TrustedProxies::default(),
            public_url: None,
            hashing: HashingLimits::default(),
        }
    }
}

impl ReadConfig for Config {
    fn read(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            tokens: TokenConfig::read(vars)?,
            bcrypt_cost: read_bcrypt_cost(vars)?,
            store: StoreConfig::read(vars)?,
            http: HttpClientConfig::read(vars)?,
            login_limits: LoginLimits::read(vars)?,
            register_limits: RegisterLimits::read(vars)?,
            trusted_proxies: TrustedProxies::read(vars)?,
            public_url: read_public_url(vars)?,
            hashing: HashingLimits::read(vars)?,
        })
    }
}

/// `PUBLIC_URL`, an http(s) base URL; `None` when unset.
pub fn read_public_url(vars: &Vars) -> Result<Option<Url>, ConfigError> {
    vars.get("PUBLIC_URL")
        .map(|v| service_url("PUBLIC_URL", &v))
        .transpose()
}

/// `BCRYPT_COST` when unset.
pub const DEFAULT_BCRYPT_COST: u32 = 12;

/// `BCRYPT_COST`, from 4 to 31.
pub fn read_bcrypt_cost(vars: &Vars) -> Result<u32, ConfigError> {
    let cost = vars.number("BCRYPT_COST", DEFAULT_BCRYPT_COST.into())?;
    if !(4..=31).contains(&cost) {
        return Err(ConfigError("BCRYPT_COST must be between 4 and 31".into()));
    }
    Ok(cost as u32)
}

/// How many failed logins a username and a client IP may have in one window before
/// `/login` answers 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub per_user: u64,
    pub per_ip: u64,
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self {
            per_user: 5,
            per_ip: 50,
            window: Duration::from_secs(900),
        }
    }
}

impl LoginLimits {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let default = Self::default();
        let window = default.window.as_secs();
        Ok(Self {
            per_user: vars.between(
                "LOGIN_MAX_FAILURES_PER_USER",
                default.per_user,
                1_000_000,
                "",
            )?,
            per_ip: vars.between("LOGIN_MAX_FAILURES_PER_IP", default.per_ip, 1_000_000, "")?,
            window: Duration::from_secs(vars.between(
                "LOGIN_FAILURE_WINDOW_SECS",
                window,
                86_400,
                "",
            )?),
        })
    }
}

/// How many registrations one client address may attempt in one window before
/// `/register` answers 429 (`REGISTER_MAX_PER_IP` per `REGISTER_WINDOW_SECS`). The
/// default, 20 an hour, lets a classroom behind one NAT sign up while bounding how
/// much bcrypt one address can make the function run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterLimits {
    pub per_ip: u64,
    pub window: Duration,
}

impl Default for RegisterLimits {
    fn default() -> Self {
        Self {
            per_ip: 20,
            window: Duration::from_secs(3600),
        }
    }
}

impl RegisterLimits {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let default = Self::default();
        Ok(Self {
            per_ip: vars.between("REGISTER_MAX_PER_IP", default.per_ip, 1_000_000, "")?,
            window: Duration::from_secs(vars.between(
                "REGISTER_WINDOW_SECS",
                default.window.as_secs(),
                86_400,
                "",
            )?),
        })
    }
}

/// How much password hashing (bcrypt) one process runs at once: `BCRYPT_CONCURRENCY`
/// runs (by default one per core), and a request that finds them all busy waits at
/// most `BCRYPT_QUEUE_MS` for its turn before it is answered 503 without hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    pub concurrency: usize,
    pub queue: Duration,
}

impl Default for HashingLimits {
    fn default() -> Self {
        Self {
            concurrency: std::thread::available_parallelism().map_or(1, usize::from),
            queue: Duration::from_millis(500),
        }
    }
}

impl HashingLimits {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let default = Self::default();
        Ok(Self {
            concurrency: vars.between("BCRYPT_CONCURRENCY", default.concurrency as u64, 1024, "")?
                as usize,
            queue: vars.millis("BCRYPT_QUEUE_MS", default.queue)?,
        })
    }
}

impl stores::config::StoreSettings for Config {
    fn store(&self) -> &StoreConfig {
        &self.store
    }

    fn timeouts(&self) -> &HttpClientConfig {
        &self.http
    }
}
