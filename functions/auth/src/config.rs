//! The auth function's configuration: tokens, stores, bcrypt, the login and
//! registration limits, trusted proxies and the public URL.

use std::time::Duration;

use edge::client_ip::TrustedProxies;
use mail::MailConfig;
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
    /// Which mailer, from which address, with links into which app.
    pub mail: MailConfig,
    /// Whether login waits for a verified address (`EMAIL_VERIFICATION`).
    pub email_verification: EmailVerification,
    /// How many mails a user, an address and a client may ask for.
    pub mail_limits: MailLimits,
    /// The time every `/password/forgot` answer waits for at least
    /// (`FORGOT_PASSWORD_MIN_MS`), so that an address with an account (a token stored,
    /// a mail sent) answers when one without does.
    pub forgot_floor: Duration,
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
            mail: MailConfig::default(),
            email_verification: EmailVerification::default(),
            mail_limits: MailLimits::default(),
            forgot_floor: DEFAULT_FORGOT_FLOOR,
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
            mail: MailConfig::read(vars)?,
            email_verification: EmailVerification::read(vars)?,
            mail_limits: MailLimits::read(vars)?,
            forgot_floor: vars.millis("FORGOT_PASSWORD_MIN_MS", DEFAULT_FORGOT_FLOOR)?,
        })
    }
}

/// `FORGOT_PASSWORD_MIN_MS` when unset: above a store write and an SES call together.
pub const DEFAULT_FORGOT_FLOOR: Duration = Duration::from_millis(400);

/// Whether an unverified address may log in (`EMAIL_VERIFICATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmailVerification {
    /// Login does not ask (the seed's flow); tokens say `email_verified`.
    #[default]
    Optional,
    /// A correct password of an unverified account is answered 403 "Email not verified".
    Required,
}

impl EmailVerification {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        vars.choice(
            "EMAIL_VERIFICATION",
            [("optional", Self::Optional), ("required", Self::Required)],
        )
    }
}

/// How many mails may be asked for in one window (`MAIL_WINDOW_SECS`, an hour): per
/// signed-in user (`MAIL_MAX_PER_USER`, 3: new verification links and email changes),
/// per address (`MAIL_MAX_PER_ADDRESS`, 3: password resets, counted whether or not the
/// address has an account) and per client address (`MAIL_MAX_PER_CLIENT`, 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailLimits {
    pub per_user: u64,
    pub per_address: u64,
    pub per_client: u64,
    pub window: Duration,
}

impl Default for MailLimits {
    fn default() -> Self {
        Self {
            per_user: 3,
            per_address: 3,
            per_client: 20,
            window: Duration::from_secs(3600),
        }
    }
}

impl MailLimits {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            per_user: count(vars, "MAIL_MAX_PER_USER", d.per_user)?,
            per_address: count(vars, "MAIL_MAX_PER_ADDRESS", d.per_address)?,
            per_client: count(vars, "MAIL_MAX_PER_CLIENT", d.per_client)?,
            window: window(vars, "MAIL_WINDOW_SECS", d.window)?,
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

/// A limit's count `key` (1 to a million; `default` when unset).
fn count(vars: &Vars, key: &str, default: u64) -> Result<u64, ConfigError> {
    vars.between(key, default, 1_000_000, "")
}

/// A limit's window `key` in seconds (at most a day; `default` when unset).
fn window(vars: &Vars, key: &str, default: Duration) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs(vars.between(
        key,
        default.as_secs(),
        86_400,
        "",
    )?))
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
        Ok(Self {
            per_user: count(vars, "LOGIN_MAX_FAILURES_PER_USER", default.per_user)?,
            per_ip: count(vars, "LOGIN_MAX_FAILURES_PER_IP", default.per_ip)?,
            window: window(vars, "LOGIN_FAILURE_WINDOW_SECS", default.window)?,
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
            per_ip: count(vars, "REGISTER_MAX_PER_IP", default.per_ip)?,
            window: window(vars, "REGISTER_WINDOW_SECS", default.window)?,
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
