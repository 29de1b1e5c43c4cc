//! The environment as configuration: the [`Vars`] lookup every part reads through, the
//! error naming the variable, secrets that never print, and how a binary that cannot
//! start ends. Each concern's part lives in its own crate and reads itself
//! (`TokenConfig::read`, `StoreConfig::read`, ...); a binary composes the parts it uses
//! into its own configuration ([`ReadConfig`]).

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

/// The environment as the part readers see it: any lookup, blank values as unset.
pub struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl<'a> Vars<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self(lookup)
    }

    pub fn raw(&self, key: &str) -> Option<String> {
        (self.0)(key)
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.raw(key).filter(|v| !v.trim().is_empty())
    }

    pub fn number(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        self.get(key).map_or(Ok(default), |v| {
            v.trim()
                .parse()
                .map_err(|_| ConfigError(format!("{key} must be a whole number, got {v:?}")))
        })
    }

    /// A whole number from 1 to `max`; `unit` ends the refusal message.
    pub fn between(
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

    pub fn hours(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let hours = self.between(key, default.as_secs() / 3600, MAX_TOKEN_HOURS, " hours")?;
        Ok(Duration::from_secs(hours * 3600))
    }

    pub fn millis(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let ms = self.number(key, default.as_millis() as u64)?;
        if ms == 0 {
            return Err(ConfigError(format!("{key} must be above zero")));
        }
        Ok(Duration::from_millis(ms))
    }

    /// One of `choices` (case-insensitive), the first when unset.
    pub fn choice<T: Copy>(&self, key: &str, choices: [(&str, T); 2]) -> Result<T, ConfigError> {
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

/// A binary's whole configuration: the parts it uses, read at once through any lookup.
pub trait ReadConfig: Sized {
    /// Reads every part through `vars`.
    fn read(vars: &Vars) -> Result<Self, ConfigError>;

    /// Reads every part from the process environment, once at cold start.
    fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads every part through any lookup (tests pass a map).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Vars::new(&lookup))
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

/// A service's base URL: http(s) with a host, no query or fragment, the path's
/// trailing slashes trimmed (so `{base}{path}` never doubles one).
pub fn service_url(var: &str, value: &str) -> Result<Url, ConfigError> {
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
