//! Configuration, read once at cold start from the environment.

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
        if value.len() < Self::MIN_BYTES {
            return Err(ConfigError(format!(
                "JWT_SECRET must be at least {} bytes long (it is {})",
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Dynamodb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Tokens verified in-process with the shared secret.
    Local,
    /// Tokens sent to `POST {AUTH_SERVICE_URL}/validate`, as the seed did.
    Remote,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub jwt_secret: Option<Secret>,
    pub token_expiry: Duration,
    /// Lifetime of each refresh token, from `REFRESH_TOKEN_EXPIRY` in hours.
    pub refresh_token_expiry: Duration,
    pub bcrypt_cost: u32,
    pub store: StoreKind,
    pub accounts_table: String,
    pub profiles_table: String,
    /// Refresh tokens, revocations and login-failure counters (`SECURITY_TABLE`).
    pub security_table: String,
    pub dynamodb_endpoint: Option<String>,
    pub auth_mode: AuthMode,
    /// Base URL of the auth service (`AUTH_SERVICE_URL`): where the gateway forwards
    /// and users in remote mode validates. `None` when unset, as in AWS.
    pub auth_service_url: Option<Url>,
    /// Base URL of the users service (`USER_SERVICE_URL`); `None` when unset.
    pub user_service_url: Option<Url>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Origins a browser may call the gateway from (`CORS_ALLOWED_ORIGINS`, comma
    /// separated, `*` for any). `None` when unset, which each binary reads its own way
    /// (the local stack: any origin; the Lambda: no CORS, API Gateway answers it);
    /// an empty list when set but empty, which turns CORS off.
    pub cors_allowed_origins: Option<Vec<String>>,
    pub login_limits: LoginLimits,
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

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the configuration through any lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let number = |key: &str, default: u64| -> Result<u64, ConfigError> {
            get(key).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .map_err(|_| ConfigError(format!("{key} must be a whole number, got {v:?}")))
            })
        };
        let token_hours = number("TOKEN_EXPIRY", 24)?;
        if token_hours == 0 || token_hours > 24 * 365 {
            return Err(ConfigError(
                "TOKEN_EXPIRY must be between 1 and 8760 hours".into(),
            ));
        }
        let refresh_hours = number("REFRESH_TOKEN_EXPIRY", 720)?;
        if refresh_hours == 0 || refresh_hours > 24 * 365 {
            return Err(ConfigError(
                "REFRESH_TOKEN_EXPIRY must be between 1 and 8760 hours".into(),
            ));
        }
        let between = |key: &str, default: u64, max: u64| -> Result<u64, ConfigError> {
            let value = number(key, default)?;
            if value == 0 || value > max {
                return Err(ConfigError(format!("{key} must be between 1 and {max}")));
            }
            Ok(value)
        };
        let login_limits = LoginLimits {
            per_user: between("LOGIN_MAX_FAILURES_PER_USER", 5, 1_000_000)?,
            per_ip: between("LOGIN_MAX_FAILURES_PER_IP", 50, 1_000_000)?,
            window: Duration::from_secs(between("LOGIN_FAILURE_WINDOW_SECS", 900, 86_400)?),
        };
        let bcrypt_cost = number("BCRYPT_COST", 12)?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(ConfigError("BCRYPT_COST must be between 4 and 31".into()));
        }
        let store = match get("STORE")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("memory") => StoreKind::Memory,
            Some("dynamodb") => StoreKind::Dynamodb,
            Some(other) => {
                return Err(ConfigError(format!(
                    "STORE must be \"memory\" or \"dynamodb\", got {other:?}"
                )))
            }
        };
        let auth_mode = match get("AUTH_MODE")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("local") => AuthMode::Local,
            Some("remote") => AuthMode::Remote,
            Some(other) => {
                return Err(ConfigError(format!(
                    "AUTH_MODE must be \"local\" or \"remote\", got {other:?}"
                )))
            }
        };
        let millis = |key: &str, default: u64| -> Result<Duration, ConfigError> {
            let ms = number(key, default)?;
            if ms == 0 {
                return Err(ConfigError(format!("{key} must be above zero")));
            }
            Ok(Duration::from_millis(ms))
        };
        Ok(Self {
            jwt_secret: get("JWT_SECRET").map(Secret::new).transpose()?,
            token_expiry: Duration::from_secs(token_hours * 3600),
            refresh_token_expiry: Duration::from_secs(refresh_hours * 3600),
            bcrypt_cost: bcrypt_cost as u32,
            store,
            accounts_table: get("ACCOUNTS_TABLE").unwrap_or_else(|| "accounts".into()),
            profiles_table: get("PROFILES_TABLE").unwrap_or_else(|| "profiles".into()),
            security_table: get("SECURITY_TABLE").unwrap_or_else(|| "security".into()),
            dynamodb_endpoint: get("DYNAMODB_ENDPOINT"),
            auth_mode,
            auth_service_url: get("AUTH_SERVICE_URL")
                .map(|v| service_url("AUTH_SERVICE_URL", &v))
                .transpose()?,
            user_service_url: get("USER_SERVICE_URL")
                .map(|v| service_url("USER_SERVICE_URL", &v))
                .transpose()?,
            connect_timeout: millis("CONNECT_TIMEOUT_MS", 1000)?,
            request_timeout: millis("REQUEST_TIMEOUT_MS", 5000)?,
            cors_allowed_origins: lookup("CORS_ALLOWED_ORIGINS").map(|v| {
                v.split(',')
                    .map(|o| o.trim().to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            }),
            login_limits,
        })
    }

    /// The secret a signing or verifying function cannot start without.
    pub fn require_jwt_secret(&self) -> Result<&Secret, ConfigError> {
        self.jwt_secret.as_ref().ok_or_else(|| {
            ConfigError(format!(
                "JWT_SECRET is not set; set it to a random string of at least {} bytes",
                Secret::MIN_BYTES
            ))
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

/// Ends the process with a clear one-line message when start-up configuration fails.
pub fn or_exit<T>(function: &str, result: Result<T, ConfigError>) -> T {
    result.unwrap_or_else(|err| {
        tracing::error!(%err, "{function} cannot start");
        eprintln!("{function}: cannot start: {err}");
        std::process::exit(78)
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
        assert_eq!(c.token_expiry, Duration::from_secs(86400));
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!(c.store, StoreKind::Memory);
        assert_eq!(c.auth_mode, AuthMode::Local);
        assert_eq!(c.auth_service_url, None);
        assert_eq!(c.user_service_url, None);
        assert!(c.jwt_secret.is_none());
        assert!(c
            .require_jwt_secret()
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
        let users = c.user_service_url.unwrap();
        assert_eq!(users.as_str(), "http://127.0.0.1:9/");
        let auth = c.auth_service_url.unwrap();
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
            (blank.auth_service_url, blank.user_service_url),
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
    fn security_settings_have_defaults_and_can_be_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.security_table, "security");
        assert_eq!(c.refresh_token_expiry, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(c.login_limits, LoginLimits::default());
        assert_eq!((c.login_limits.per_user, c.login_limits.per_ip), (5, 50));
        assert_eq!(c.login_limits.window, Duration::from_secs(900));

        let c = config(&[
            ("SECURITY_TABLE", "sec-prod"),
            ("REFRESH_TOKEN_EXPIRY", "48"),
            ("LOGIN_MAX_FAILURES_PER_USER", "3"),
            ("LOGIN_MAX_FAILURES_PER_IP", " 20 "),
            ("LOGIN_FAILURE_WINDOW_SECS", "2"),
        ])
        .unwrap();
        assert_eq!(c.security_table, "sec-prod");
        assert_eq!(c.refresh_token_expiry, Duration::from_secs(48 * 3600));
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
            ("LOGIN_MAX_FAILURES_PER_USER", "0"),
            ("LOGIN_MAX_FAILURES_PER_USER", "-5"),
            ("LOGIN_MAX_FAILURES_PER_IP", "0"),
            ("LOGIN_MAX_FAILURES_PER_IP", "many"),
            ("LOGIN_FAILURE_WINDOW_SECS", "0"),
            ("LOGIN_FAILURE_WINDOW_SECS", "86401"),
        ] {
            let err = config(&[(key, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
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
    fn secrets_do_not_print() {
        let s = Secret::random();
        assert!(s.expose().len() >= Secret::MIN_BYTES);
        assert!(!format!("{s:?}").contains(s.expose()));
    }
}
