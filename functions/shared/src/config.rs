//! Configuration, read and validated once at cold start into typed parts; every binary
//! reads it whole through [`Config::from_env`], each part through its own `read`.

use std::fmt;
use std::time::Duration;

pub use url::Url;

/// Why the configuration could not be read; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// The JWT signing secret; never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub const MIN_BYTES: usize = 32;

    pub fn new(value: String) -> Result<Self, ConfigError> {
        Self::named("JWT_SECRET", value)
    }

    /// A secret read from the variable `name`, at least [`Secret::MIN_BYTES`] long.
    pub fn named(name: &str, value: String) -> Result<Self, ConfigError> {
        if value.len() < Self::MIN_BYTES {
            return Err(ConfigError(format!(
                "{name} must be at least {} bytes long (it is {})",
                Self::MIN_BYTES,
                value.len()
            )));
        }
        Ok(Self(value))
    }

    /// A random secret for a process that keeps its tokens to itself.
    pub fn random() -> Self {
        use base64::Engine;
        use rand::RngCore;
        let mut bytes = [0u8; 48];
        rand::rng().fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreKind {
    #[default]
    Memory,
    Dynamodb,
}

/// Who sees a profile's `email` (`PROFILE_EMAILS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProfileEmails {
    /// Every signed-in account reads every profile's email, as the seed's contract has
    /// it: a deliberate default, so that clients written for the seed keep working.
    #[default]
    All,
    /// A profile's email is shown to its owner only; others read `null`.
    Owner,
}

impl ProfileEmails {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        vars.choice(
            "PROFILE_EMAILS",
            [("all", ProfileEmails::All), ("owner", ProfileEmails::Owner)],
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// Tokens verified in-process with the shared secret.
    #[default]
    Local,
    /// Tokens sent to `POST {AUTH_SERVICE_URL}/validate`, as the seed did.
    Remote,
}

/// The environment as the part readers see it: any lookup, blank values as unset.
pub struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl<'a> Vars<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self(lookup)
    }

    fn raw(&self, key: &str) -> Option<String> {
        (self.0)(key)
    }

    pub(crate) fn get(&self, key: &str) -> Option<String> {
        self.raw(key).filter(|v| !v.trim().is_empty())
    }

    fn number(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        self.get(key).map_or(Ok(default), |v| {
            v.trim()
                .parse()
                .map_err(|_| ConfigError(format!("{key} must be a whole number, got {v:?}")))
        })
    }

    /// A whole number from 1 to `max`; `unit` ends the refusal message.
    pub(crate) fn between(
        &self,
        key: &str,
        default: u64,
        max: u64,
        unit: &str,
    ) -> Result<u64, ConfigError> {
        let value = self.number(key, default)?;
        if value == 0 || value > max {
            return Err(ConfigError(format!(
                "{key} must be between 1 and {max}{unit}"
            )));
        }
        Ok(value)
    }

    fn hours(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let hours = self.between(key, default.as_secs() / 3600, MAX_TOKEN_HOURS, " hours")?;
        Ok(Duration::from_secs(hours * 3600))
    }

    pub(crate) fn millis(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let ms = self.number(key, default.as_millis() as u64)?;
        if ms == 0 {
            return Err(ConfigError(format!("{key} must be above zero")));
        }
        Ok(Duration::from_millis(ms))
    }

    /// One of `choices` (case-insensitive), the first when unset.
    fn choice<T: Copy>(&self, key: &str, choices: [(&str, T); 2]) -> Result<T, ConfigError> {
        let Some(value) = self.get(key).map(|v| v.to_ascii_lowercase()) else {
            return Ok(choices[0].1);
        };
        choices
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, kind)| *kind)
            .ok_or_else(|| {
                ConfigError(format!(
                    "{key} must be \"{}\" or \"{}\", got {value:?}",
                    choices[0].0, choices[1].0
                ))
            })
    }
}

/// The longest lifetime an access or refresh token may be given: a year.
const MAX_TOKEN_HOURS: u64 = 24 * 365;

/// The whole configuration: one part per concern.
#[derive(Debug, Clone)]
pub struct Config {
    pub tokens: TokenConfig,
    pub bcrypt_cost: u32,
    pub store: StoreConfig,
    pub services: Services,
    pub http: HttpClientConfig,
    pub login_limits: LoginLimits,
    pub register_limits: RegisterLimits,
    /// Origins a browser may call the gateway from (`CORS_ALLOWED_ORIGINS`, comma
    /// separated, `*` for any). `None` when unset, which each binary reads its own way
    /// (the local stack: any origin; the Lambda: no CORS, API Gateway answers it);
    /// an empty list when set but empty, which turns CORS off.
    pub cors_allowed_origins: Option<Vec<String>>,
    /// The circuit breakers on calls to other services.
    pub breaker: crate::breaker::BreakerConfig,
    /// Who sees a profile's `email` (users).
    pub profile_emails: ProfileEmails,
    /// Whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`; by default nobody's).
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    /// This API's own public base URL (`PUBLIC_URL`), where verifiers find its key
    /// set; `None` when unset.
    pub public_url: Option<Url>,
    /// How many bcrypt runs at once, and how long one may wait for its turn.
    pub hashing: HashingLimits,
    /// How the local servers guard their connections.
    pub server: ServerLimits,
}

/// `BCRYPT_COST` when unset.
pub const DEFAULT_BCRYPT_COST: u32 = 12;

impl Default for Config {
    fn default() -> Self {
        Self {
            tokens: TokenConfig::default(),
            bcrypt_cost: DEFAULT_BCRYPT_COST,
            store: StoreConfig::default(),
            services: Services::default(),
            http: HttpClientConfig::default(),
            login_limits: LoginLimits::default(),
            register_limits: RegisterLimits::default(),
            cors_allowed_origins: None,
            breaker: crate::breaker::BreakerConfig::default(),
            profile_emails: ProfileEmails::default(),
            trusted_proxies: crate::client_ip::TrustedProxies::default(),
            public_url: None,
            hashing: HashingLimits::default(),
            server: ServerLimits::default(),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads every part through any lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(&lookup);
        Ok(Self {
            tokens: TokenConfig::read(&vars)?,
            bcrypt_cost: read_bcrypt_cost(&vars)?,
            store: StoreConfig::read(&vars)?,
            services: Services::read(&vars)?,
            http: HttpClientConfig::read(&vars)?,
            breaker: crate::breaker::BreakerConfig::read(&vars)?,
            profile_emails: ProfileEmails::read(&vars)?,
            login_limits: LoginLimits::read(&vars)?,
            register_limits: RegisterLimits::read(&vars)?,
            cors_allowed_origins: vars.raw("CORS_ALLOWED_ORIGINS").map(|v| {
                v.split(',')
                    .map(|o| o.trim().to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            }),
            trusted_proxies: crate::client_ip::TrustedProxies::read(&vars)?,
            public_url: vars
                .get("PUBLIC_URL")
                .map(|v| service_url("PUBLIC_URL", &v))
                .transpose()?,
            hashing: HashingLimits::read(&vars)?,
            server: ServerLimits::read(&vars)?,
        })
    }
}

/// `BCRYPT_COST`, from 4 to 31.
fn read_bcrypt_cost(vars: &Vars) -> Result<u32, ConfigError> {
    let cost = vars.number("BCRYPT_COST", DEFAULT_BCRYPT_COST.into())?;
    if !(4..=31).contains(&cost) {
        return Err(ConfigError("BCRYPT_COST must be between 4 and 31".into()));
    }
    Ok(cost as u32)
}

/// Signing and lifetimes: `JWT_SECRET`, `TOKEN_EXPIRY` and `REFRESH_TOKEN_EXPIRY` (hours),
/// and `REFRESH_REUSE_INTERVAL_SECS`.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// `JWT_SECRET`: HS256, one secret that signs and verifies.
    pub secret: Option<Secret>,
    /// `JWT_SIGNING_KEY` (auth only): EdDSA, the Ed25519 key whose seed is its SHA-256.
    pub signing_key: Option<Secret>,
    /// `JWT_ISSUER` and `JWT_AUDIENCE`: the `iss` and `aud` tokens carry and must carry.
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// `REFRESH_REUSE_INTERVAL_SECS` (0 to [`MAX_REFRESH_REUSE_INTERVAL_SECS`], default
    /// 10; 0 turns it off): for this long after a refresh token is retired, presenting
    /// it again is taken for a retried refresh whose answer was lost, and answered with
    /// a new pair of the same session instead of ending it.
    pub refresh_reuse_interval: Duration,
}

/// The longest `REFRESH_REUSE_INTERVAL_SECS`: five minutes.
pub const MAX_REFRESH_REUSE_INTERVAL_SECS: u64 = 300;

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            secret: None,
            signing_key: None,
            issuer: crate::token::DEFAULT_ISSUER.into(),
            audience: crate::token::DEFAULT_AUDIENCE.into(),
            access_ttl: Duration::from_secs(24 * 3600),
            refresh_ttl: Duration::from_secs(720 * 3600),
            refresh_reuse_interval: Duration::from_secs(10),
        }
    }
}

/// `REFRESH_REUSE_INTERVAL_SECS`: whole seconds from 0 (off) to
/// [`MAX_REFRESH_REUSE_INTERVAL_SECS`].
fn read_reuse_interval(vars: &Vars, default: Duration) -> Result<Duration, ConfigError> {
    let key = "REFRESH_REUSE_INTERVAL_SECS";
    let secs = vars.number(key, default.as_secs())?;
    if secs > MAX_REFRESH_REUSE_INTERVAL_SECS {
        return Err(ConfigError(format!(
            "{key} must be between 0 and {MAX_REFRESH_REUSE_INTERVAL_SECS} seconds"
        )));
    }
    Ok(Duration::from_secs(secs))
}

impl TokenConfig {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let default = Self::default();
        Ok(Self {
            access_ttl: vars.hours("TOKEN_EXPIRY", default.access_ttl)?,
            refresh_ttl: vars.hours("REFRESH_TOKEN_EXPIRY", default.refresh_ttl)?,
            refresh_reuse_interval: read_reuse_interval(vars, default.refresh_reuse_interval)?,
            secret: vars.get("JWT_SECRET").map(Secret::new).transpose()?,
            signing_key: vars
                .get("JWT_SIGNING_KEY")
                .map(|v| Secret::named("JWT_SIGNING_KEY", v))
                .transpose()?,
            issuer: vars.get("JWT_ISSUER").unwrap_or(default.issuer),
            audience: vars.get("JWT_AUDIENCE").unwrap_or(default.audience),
        })
    }

    /// What signs auth's tokens: `JWT_SIGNING_KEY` (EdDSA) or `JWT_SECRET` (HS256),
    /// never both; `None` when neither is set. Public keys are published to `keys`.
    pub fn signer(
        &self,
        keys: std::sync::Arc<dyn crate::store::KeyStore>,
    ) -> Result<Option<crate::token::Tokens>, ConfigError> {
        use crate::token::{Ed25519Key, Tokens};
        let tokens = match (&self.signing_key, &self.secret) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(
                    "set JWT_SIGNING_KEY (EdDSA) or JWT_SECRET (HS256), not both".into(),
                ))
            }
            (Some(key), None) => {
                Tokens::ed25519(Ed25519Key::from_material(key), Some(keys), self.access_ttl)
            }
            (None, Some(secret)) => Tokens::new(secret, self.access_ttl)?,
            (None, None) => return Ok(None),
        };
        Ok(Some(tokens.with_issuer(&self.issuer, &self.audience)))
    }

    /// What checks tokens in a function that does not sign them: HS256 with
    /// `JWT_SECRET` when set, else EdDSA with the public keys auth published to `keys`
    /// (no secret at all).
    pub fn verifier(
        &self,
        keys: std::sync::Arc<dyn crate::store::KeyStore>,
    ) -> Result<crate::token::Tokens, ConfigError> {
        use crate::token::Tokens;
        let tokens = match &self.secret {
            Some(secret) => Tokens::new(secret, self.access_ttl)?,
            None => Tokens::ed25519_verifier(keys, self.access_ttl),
        };
        Ok(tokens.with_issuer(&self.issuer, &self.audience))
    }

    /// The secret a signing or verifying function cannot start without.
    pub fn require_secret(&self) -> Result<&Secret, ConfigError> {
        self.secret.as_ref().ok_or_else(|| {
            ConfigError(format!(
                "JWT_SECRET is not set; set it to a random string of at least {} bytes",
                Secret::MIN_BYTES
            ))
        })
    }
}

/// Where the data lives: `STORE`, the three table names and `DYNAMODB_ENDPOINT`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreConfig {
    pub kind: StoreKind,
    pub tables: Tables,
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub accounts: String,
    pub profiles: String,
    /// Refresh tokens, revocations and login-failure counters (`SECURITY_TABLE`).
    pub security: String,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            accounts: "accounts".into(),
            profiles: "profiles".into(),
            security: "security".into(),
        }
    }
}

impl StoreConfig {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let default = Tables::default();
        let table = |key: &str, default: String| vars.get(key).unwrap_or(default);
        Ok(Self {
            kind: vars.choice(
                "STORE",
                [
                    ("memory", StoreKind::Memory),
                    ("dynamodb", StoreKind::Dynamodb),
                ],
            )?,
            tables: Tables {
                accounts: table("ACCOUNTS_TABLE", default.accounts),
                profiles: table("PROFILES_TABLE", default.profiles),
                security: table("SECURITY_TABLE", default.security),
            },
            endpoint: vars.get("DYNAMODB_ENDPOINT"),
        })
    }
}

/// How tokens are checked (`AUTH_MODE`) and where the other services are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services {
    pub auth_mode: AuthMode,
    /// Base URL of the auth service (`AUTH_SERVICE_URL`): where the gateway forwards
    /// and users in remote mode validates. `None` when unset, as in AWS.
    pub auth_url: Option<Url>,
    /// Base URL of the users service (`USER_SERVICE_URL`); `None` when unset.
    pub users_url: Option<Url>,
}

impl Services {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let url = |key: &str| vars.get(key).map(|v| service_url(key, &v)).transpose();
        Ok(Self {
            auth_mode: vars.choice(
                "AUTH_MODE",
                [("local", AuthMode::Local), ("remote", AuthMode::Remote)],
            )?,
            auth_url: url("AUTH_SERVICE_URL")?,
            users_url: url("USER_SERVICE_URL")?,
        })
    }
}

/// Outbound call bounds (`CONNECT_TIMEOUT_MS`, `REQUEST_TIMEOUT_MS`), for HTTP and
/// DynamoDB alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpClientConfig {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_millis(1000),
            request_timeout: Duration::from_millis(5000),
        }
    }
}

impl HttpClientConfig {
    /// How long an idle pooled connection is kept.
    pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let default = Self::default();
        Ok(Self {
            connect_timeout: vars.millis("CONNECT_TIMEOUT_MS", default.connect_timeout)?,
            request_timeout: vars.millis("REQUEST_TIMEOUT_MS", default.request_timeout)?,
        })
    }
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

/// A service's base URL: http(s) with a host, no query or fragment, the path's
/// trailing slashes trimmed (so `{base}{path}` never doubles one).
fn service_url(var: &str, value: &str) -> Result<Url, ConfigError> {
    let value = value.trim();
    let mut url = Url::parse(value).map_err(|err| {
        ConfigError(format!(
            "{var} must be an http(s) URL, got {value:?}: {err}"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError(format!(
            "{var} must be an http(s) URL with a host, got {value:?}"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError(format!(
            "{var} must not carry a query or fragment, got {value:?}"
        )));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// `base` joined with a request's `path` (which starts with `/`) and `query`. A
/// backslash stays data (`%5C`) instead of becoming a separator; dot segments are the
/// caller's to refuse, as the URL parser would resolve them.
pub fn join_service_url(base: &Url, path: &str, query: Option<&str>) -> Url {
    let mut url = base.clone();
    let path = path.replace('\\', "%5C");
    url.set_path(&format!("{}{path}", base.path().trim_end_matches('/')));
    url.set_query(query);
    url
}

/// The exit code of every binary that cannot start (`EX_CONFIG`).
pub const CANNOT_START: i32 = 78;

/// `result`'s value, or the end of the process: one line `{function}: cannot start:
/// {err}` on stderr (and in the log), exit code [`CANNOT_START`]. Every binary passes
/// its configuration and its state through this.
pub fn or_exit<T, E: fmt::Display>(function: &str, result: Result<T, E>) -> T {
    result.unwrap_or_else(|err| {
        tracing::error!(%err, "{function} cannot start");
        eprintln!("{function}: cannot start: {err}");
        std::process::exit(CANNOT_START)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = config(&[]).unwrap();
        assert_eq!(c.tokens.access_ttl, Duration::from_secs(86400));
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!(c.store.kind, StoreKind::Memory);
        assert_eq!(c.services.auth_mode, AuthMode::Local);
        assert_eq!(c.services.auth_url, None);
        assert_eq!(c.services.users_url, None);
        assert!(c.tokens.secret.is_none());
        assert!(c
            .tokens
            .require_secret()
            .unwrap_err()
            .to_string()
            .contains("JWT_SECRET"));
    }

    #[test]
    fn service_urls_are_parsed_once_with_trailing_slashes_trimmed() {
        let c = config(&[
            ("USER_SERVICE_URL", " http://127.0.0.1:9/ "),
            ("AUTH_SERVICE_URL", "https://auth.example.com/prefix//"),
        ])
        .unwrap();
        let users = c.services.users_url.unwrap();
        assert_eq!(users.as_str(), "http://127.0.0.1:9/");
        let auth = c.services.auth_url.unwrap();
        assert_eq!(auth.as_str(), "https://auth.example.com/prefix");
        assert_eq!(
            join_service_url(&auth, "/users/a%2Fb", Some("limit=1")).as_str(),
            "https://auth.example.com/prefix/users/a%2Fb?limit=1"
        );
        assert_eq!(
            join_service_url(&users, "/register", None).as_str(),
            "http://127.0.0.1:9/register"
        );
        assert_eq!(
            join_service_url(&users, "/users/a\\b", None).as_str(),
            "http://127.0.0.1:9/users/a%5Cb"
        );
        let blank = config(&[("AUTH_SERVICE_URL", "  "), ("USER_SERVICE_URL", "")]).unwrap();
        assert_eq!(
            (blank.services.auth_url, blank.services.users_url),
            (None, None)
        );
    }

    #[test]
    fn a_service_url_the_gateway_cannot_call_is_refused_naming_its_variable() {
        for var in ["AUTH_SERVICE_URL", "USER_SERVICE_URL"] {
            for value in [
                "localhost:3000",
                "users.internal:3001",
                "ftp://example.com",
                "not a url",
                "http://",
                "file:///etc/passwd",
                "http://example.com/?q=1",
                "http://example.com/#top",
                "mailto:ops@example.com",
            ] {
                let err = config(&[(var, value)])
                    .err()
                    .unwrap_or_else(|| panic!("{var}={value:?} was accepted"))
                    .to_string();
                assert!(err.contains(var), "{err}");
            }
        }
    }

    #[test]
    fn breakers_have_defaults_and_can_be_set() {
        let d = config(&[]).unwrap().breaker;
        assert_eq!((d.failures, d.cooldown), (5, Duration::from_secs(5)));
        let c = config(&[("BREAKER_FAILURES", "3"), ("BREAKER_COOLDOWN_MS", "750")])
            .unwrap()
            .breaker;
        assert_eq!((c.failures, c.cooldown), (3, Duration::from_millis(750)));
    }

    #[test]
    fn security_settings_have_defaults_and_can_be_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.store.tables.security, "security");
        assert_eq!(c.tokens.refresh_ttl, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(c.tokens.refresh_reuse_interval, Duration::from_secs(10));
        assert_eq!(c.login_limits, LoginLimits::default());
        assert_eq!((c.login_limits.per_user, c.login_limits.per_ip), (5, 50));
        assert_eq!(c.login_limits.window, Duration::from_secs(900));

        let c = config(&[
            ("SECURITY_TABLE", "sec-prod"),
            ("REFRESH_TOKEN_EXPIRY", "48"),
            ("REFRESH_REUSE_INTERVAL_SECS", "0"),
            ("LOGIN_MAX_FAILURES_PER_USER", "3"),
            ("LOGIN_MAX_FAILURES_PER_IP", " 20 "),
            ("LOGIN_FAILURE_WINDOW_SECS", "2"),
        ])
        .unwrap();
        assert_eq!(c.store.tables.security, "sec-prod");
        assert_eq!(c.tokens.refresh_ttl, Duration::from_secs(48 * 3600));
        assert_eq!(
            c.tokens.refresh_reuse_interval,
            Duration::ZERO,
            "0 turns it off"
        );
        assert_eq!(
            c.login_limits,
            LoginLimits {
                per_user: 3,
                per_ip: 20,
                window: Duration::from_secs(2)
            }
        );
    }

    #[test]
    fn registration_limits_default_to_twenty_an_hour_and_can_be_set() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.register_limits,
            RegisterLimits {
                per_ip: 20,
                window: Duration::from_secs(3600)
            }
        );
        let c = config(&[
            ("REGISTER_MAX_PER_IP", " 500 "),
            ("REGISTER_WINDOW_SECS", "60"),
        ])
        .unwrap();
        assert_eq!(
            c.register_limits,
            RegisterLimits {
                per_ip: 500,
                window: Duration::from_secs(60)
            }
        );
        let message = |key: &str, value: &str| config(&[(key, value)]).unwrap_err().to_string();
        assert_eq!(
            message("REGISTER_MAX_PER_IP", "0"),
            "configuration error: REGISTER_MAX_PER_IP must be between 1 and 1000000"
        );
        assert_eq!(
            message("REGISTER_WINDOW_SECS", "86401"),
            "configuration error: REGISTER_WINDOW_SECS must be between 1 and 86400"
        );
    }

    #[test]
    fn a_short_secret_is_refused_without_being_echoed() {
        let err = config(&[("JWT_SECRET", "tooshort-secret")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 32 bytes"));
        assert!(!err.contains("tooshort-secret"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (key, value) in [
            ("TOKEN_EXPIRY", "abc"),
            ("TOKEN_EXPIRY", "0"),
            ("BCRYPT_COST", "3"),
            ("STORE", "postgres"),
            ("AUTH_MODE", "maybe"),
            ("REQUEST_TIMEOUT_MS", "-1"),
            ("REFRESH_TOKEN_EXPIRY", "0"),
            ("REFRESH_TOKEN_EXPIRY", "8761"),
            ("REFRESH_TOKEN_EXPIRY", "thirty days"),
            ("REFRESH_REUSE_INTERVAL_SECS", "301"),
            ("REFRESH_REUSE_INTERVAL_SECS", "-1"),
            ("REFRESH_REUSE_INTERVAL_SECS", "ten"),
            ("LOGIN_MAX_FAILURES_PER_USER", "0"),
            ("LOGIN_MAX_FAILURES_PER_USER", "-5"),
            ("LOGIN_MAX_FAILURES_PER_IP", "0"),
            ("LOGIN_MAX_FAILURES_PER_IP", "many"),
            ("BREAKER_FAILURES", "0"),
            ("BREAKER_FAILURES", "1001"),
            ("BREAKER_FAILURES", "many"),
            ("BREAKER_COOLDOWN_MS", "0"),
            ("BREAKER_COOLDOWN_MS", "soon"),
            ("LOGIN_FAILURE_WINDOW_SECS", "0"),
            ("LOGIN_FAILURE_WINDOW_SECS", "86401"),
            ("REGISTER_MAX_PER_IP", "0"),
            ("REGISTER_MAX_PER_IP", "1000001"),
            ("REGISTER_MAX_PER_IP", "-1"),
            ("REGISTER_MAX_PER_IP", "twenty"),
            ("REGISTER_WINDOW_SECS", "0"),
            ("REGISTER_WINDOW_SECS", "86401"),
            ("PROFILE_EMAILS", "friends"),
            ("TRUSTED_PROXIES", "localhost"),
            ("PUBLIC_URL", "api.example.com"),
            ("PUBLIC_URL", "https://api.example.com/?x=1"),
            ("BCRYPT_CONCURRENCY", "0"),
            ("BCRYPT_CONCURRENCY", "1025"),
            ("BCRYPT_QUEUE_MS", "0"),
            ("HEADER_READ_TIMEOUT_MS", "0"),
            ("IDLE_TIMEOUT_MS", "soon"),
            ("MAX_CONNECTIONS", "0"),
        ] {
            let err = config(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn profile_emails_are_everyone_s_or_the_owner_s() {
        assert_eq!(config(&[]).unwrap().profile_emails, ProfileEmails::All);
        for (value, want) in [
            ("all", ProfileEmails::All),
            ("owner", ProfileEmails::Owner),
            ("OWNER", ProfileEmails::Owner),
        ] {
            let c = config(&[("PROFILE_EMAILS", value)]).unwrap();
            assert_eq!(c.profile_emails, want, "{value:?}");
        }
    }

    #[test]
    fn serving_and_hashing_limits_have_defaults_and_can_be_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.public_url, None);
        assert!(c.hashing.concurrency >= 1);
        assert_eq!(c.hashing.queue, Duration::from_millis(500));
        assert_eq!(c.server, ServerLimits::default());
        let c = config(&[
            ("PUBLIC_URL", "https://api.example.com/"),
            ("BCRYPT_CONCURRENCY", "3"),
            ("BCRYPT_QUEUE_MS", "50"),
            ("HEADER_READ_TIMEOUT_MS", "1500"),
            ("IDLE_TIMEOUT_MS", "2500"),
            ("MAX_CONNECTIONS", "8"),
        ])
        .unwrap();
        assert_eq!(
            c.public_url.map(String::from).as_deref(),
            Some("https://api.example.com/")
        );
        assert_eq!(
            c.hashing,
            HashingLimits {
                concurrency: 3,
                queue: Duration::from_millis(50)
            }
        );
        assert_eq!(
            c.server,
            ServerLimits {
                header_read_timeout: Duration::from_millis(1500),
                idle_timeout: Duration::from_millis(2500),
                max_connections: 8,
            }
        );
    }

    #[test]
    fn cors_origins_tell_unset_from_explicitly_empty() {
        assert_eq!(config(&[]).unwrap().cors_allowed_origins, None);
        for empty in ["", " ", " , "] {
            let c = config(&[("CORS_ALLOWED_ORIGINS", empty)]).unwrap();
            assert_eq!(c.cors_allowed_origins, Some(vec![]), "{empty:?}");
        }
        let c = config(&[(
            "CORS_ALLOWED_ORIGINS",
            " https://a.example ,http://localhost:5173,",
        )])
        .unwrap();
        assert_eq!(
            c.cors_allowed_origins,
            Some(vec![
                "https://a.example".to_owned(),
                "http://localhost:5173".to_owned()
            ])
        );
    }

    #[test]
    fn an_empty_environment_reads_as_the_defaults() {
        let (read, default) = (config(&[]).unwrap(), Config::default());
        assert_eq!(read.tokens.access_ttl, default.tokens.access_ttl);
        assert_eq!(read.tokens.refresh_ttl, default.tokens.refresh_ttl);
        assert_eq!(
            read.tokens.refresh_reuse_interval,
            default.tokens.refresh_reuse_interval
        );
        assert!(read.tokens.secret.is_none() && default.tokens.secret.is_none());
        assert_eq!(read.bcrypt_cost, default.bcrypt_cost);
        assert_eq!(read.store, default.store);
        assert_eq!(read.services, default.services);
        assert_eq!(read.http, default.http);
        assert_eq!(read.login_limits, default.login_limits);
        assert_eq!(read.register_limits, default.register_limits);
        assert_eq!(read.cors_allowed_origins, default.cors_allowed_origins);
        assert_eq!(read.profile_emails, ProfileEmails::All);
        assert_eq!(
            read.http,
            HttpClientConfig {
                connect_timeout: Duration::from_millis(1000),
                request_timeout: Duration::from_millis(5000),
            }
        );
        assert_eq!(
            (
                read.store.tables.accounts.as_str(),
                read.store.tables.profiles.as_str()
            ),
            ("accounts", "profiles")
        );
    }

    #[test]
    fn each_part_reads_only_its_own_variables() {
        let vars = |k: &str| match k {
            "BCRYPT_COST" => Some("3".to_owned()),
            "STORE" => Some("DynamoDB".to_owned()),
            "PROFILES_TABLE" => Some("p".to_owned()),
            "REQUEST_TIMEOUT_MS" => Some("250".to_owned()),
            _ => None,
        };
        let vars = Vars::new(&vars);
        let store = StoreConfig::read(&vars).unwrap();
        assert_eq!(
            (store.kind, store.tables.profiles.as_str()),
            (StoreKind::Dynamodb, "p")
        );
        let http = HttpClientConfig::read(&vars).unwrap();
        assert_eq!(http.request_timeout, Duration::from_millis(250));
        assert!(Services::read(&vars).is_ok());
        assert!(read_bcrypt_cost(&vars)
            .unwrap_err()
            .to_string()
            .contains("BCRYPT_COST"));
    }

    #[test]
    fn range_messages_keep_their_wording() {
        let message = |key: &str, value: &str| config(&[(key, value)]).unwrap_err().to_string();
        assert_eq!(
            message("TOKEN_EXPIRY", "0"),
            "configuration error: TOKEN_EXPIRY must be between 1 and 8760 hours"
        );
        assert_eq!(
            message("LOGIN_FAILURE_WINDOW_SECS", "86401"),
            "configuration error: LOGIN_FAILURE_WINDOW_SECS must be between 1 and 86400"
        );
        assert_eq!(
            message("STORE", "Postgres"),
            "configuration error: STORE must be \"memory\" or \"dynamodb\", got \"postgres\""
        );
        assert_eq!(
            message("CONNECT_TIMEOUT_MS", "0"),
            "configuration error: CONNECT_TIMEOUT_MS must be above zero"
        );
        assert_eq!(
            message("BCRYPT_COST", "x"),
            "configuration error: BCRYPT_COST must be a whole number, got \"x\""
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::random();
        assert!(s.expose().len() >= Secret::MIN_BYTES);
        assert!(!format!("{s:?}").contains(s.expose()));
    }
}
