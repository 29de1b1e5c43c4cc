//! The local stack's configuration: each function's own, read from the same
//! environment ([`auth::Config`], [`users::Config`], [`gateway::Config`]), and the
//! local servers' limits.

use edge::server::ServerLimits;
use settings::{ConfigError, HttpClientConfig, ReadConfig, Vars};
use stores::config::StoreConfig;

/// The whole configuration: each function's part as it reads it in Lambda, and how the
/// local servers guard their connections.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub auth: auth::Config,
    pub users: users::Config,
    pub gateway: gateway::Config,
    pub server: ServerLimits,
}

impl ReadConfig for Config {
    fn read(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            auth: auth::Config::read(vars)?,
            users: users::Config::read(vars)?,
            gateway: gateway::Config::read(vars)?,
            server: ServerLimits::read(vars)?,
        })
    }
}

/// The stack's stores: one set, shared by auth and users (the same variables).
impl stores::config::StoreSettings for Config {
    fn store(&self) -> &StoreConfig {
        &self.auth.store
    }

    fn timeouts(&self) -> &HttpClientConfig {
        &self.auth.http
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth::config::{HashingLimits, LoginLimits, RegisterLimits, read_bcrypt_cost};
    use outbound::config::Services;
    use outbound::config::{AuthMode, join_service_url};
    use settings::Secret;
    use std::collections::HashMap;
    use std::time::Duration;
    use stores::config::StoreKind;
    use users::config::ProfileEmails;

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
        assert_eq!(c.auth.tokens.access_ttl, Duration::from_secs(86400));
        assert_eq!(c.auth.bcrypt_cost, 12);
        assert_eq!(c.auth.store.kind, StoreKind::Memory);
        assert_eq!(c.users.services.auth_mode, AuthMode::Local);
        assert_eq!(c.users.services.auth_url, None);
        assert_eq!(c.users.services.users_url, None);
        assert!(c.auth.tokens.secret.is_none());
        assert!(
            c.auth
                .tokens
                .require_secret()
                .unwrap_err()
                .to_string()
                .contains("JWT_SECRET")
        );
    }

    #[test]
    fn service_urls_are_parsed_once_with_trailing_slashes_trimmed() {
        let c = config(&[
            ("USER_SERVICE_URL", " http://127.0.0.1:9/ "),
            ("AUTH_SERVICE_URL", "https://auth.example.com/prefix//"),
        ])
        .unwrap();
        let users = c.users.services.users_url.unwrap();
        assert_eq!(users.as_str(), "http://127.0.0.1:9/");
        let auth = c.users.services.auth_url.unwrap();
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
            (
                blank.users.services.auth_url,
                blank.users.services.users_url
            ),
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
        let d = config(&[]).unwrap().users.breaker;
        assert_eq!((d.failures, d.cooldown), (5, Duration::from_secs(5)));
        let c = config(&[("BREAKER_FAILURES", "3"), ("BREAKER_COOLDOWN_MS", "750")])
            .unwrap()
            .users
            .breaker;
        assert_eq!((c.failures, c.cooldown), (3, Duration::from_millis(750)));
    }

    #[test]
    fn security_settings_have_defaults_and_can_be_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.auth.store.tables.security, "security");
        assert_eq!(
            c.auth.tokens.refresh_ttl,
            Duration::from_secs(30 * 24 * 3600)
        );
        assert_eq!(
            c.auth.tokens.refresh_reuse_interval,
            Duration::from_secs(10)
        );
        assert_eq!(c.auth.login_limits, LoginLimits::default());
        assert_eq!(
            (c.auth.login_limits.per_user, c.auth.login_limits.per_ip),
            (5, 50)
        );
        assert_eq!(c.auth.login_limits.window, Duration::from_secs(900));

        let c = config(&[
            ("SECURITY_TABLE", "sec-prod"),
            ("REFRESH_TOKEN_EXPIRY", "48"),
            ("REFRESH_REUSE_INTERVAL_SECS", "0"),
            ("LOGIN_MAX_FAILURES_PER_USER", "3"),
            ("LOGIN_MAX_FAILURES_PER_IP", " 20 "),
            ("LOGIN_FAILURE_WINDOW_SECS", "2"),
        ])
        .unwrap();
        assert_eq!(c.auth.store.tables.security, "sec-prod");
        assert_eq!(c.auth.tokens.refresh_ttl, Duration::from_secs(48 * 3600));
        assert_eq!(
            c.auth.tokens.refresh_reuse_interval,
            Duration::ZERO,
            "0 turns it off"
        );
        assert_eq!(
            c.auth.login_limits,
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
            c.auth.register_limits,
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
            c.auth.register_limits,
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
        assert_eq!(
            config(&[]).unwrap().users.profile_emails,
            ProfileEmails::All
        );
        for (value, want) in [
            ("all", ProfileEmails::All),
            ("owner", ProfileEmails::Owner),
            ("OWNER", ProfileEmails::Owner),
        ] {
            let c = config(&[("PROFILE_EMAILS", value)]).unwrap();
            assert_eq!(c.users.profile_emails, want, "{value:?}");
        }
    }

    #[test]
    fn serving_and_hashing_limits_have_defaults_and_can_be_set() {
        let c = config(&[]).unwrap();
        assert_eq!(c.auth.public_url, None);
        assert!(c.auth.hashing.concurrency >= 1);
        assert_eq!(c.auth.hashing.queue, Duration::from_millis(500));
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
            c.auth.public_url.map(String::from).as_deref(),
            Some("https://api.example.com/")
        );
        assert_eq!(
            c.auth.hashing,
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
        assert_eq!(config(&[]).unwrap().gateway.cors_allowed_origins, None);
        for empty in ["", " ", " , "] {
            let c = config(&[("CORS_ALLOWED_ORIGINS", empty)]).unwrap();
            assert_eq!(c.gateway.cors_allowed_origins, Some(vec![]), "{empty:?}");
        }
        let c = config(&[(
            "CORS_ALLOWED_ORIGINS",
            " https://a.example ,http://localhost:5173,",
        )])
        .unwrap();
        assert_eq!(
            c.gateway.cors_allowed_origins,
            Some(vec![
                "https://a.example".to_owned(),
                "http://localhost:5173".to_owned()
            ])
        );
    }

    #[test]
    fn an_empty_environment_reads_as_the_defaults() {
        let (read, default) = (config(&[]).unwrap(), Config::default());
        assert_eq!(read.auth.tokens.access_ttl, default.auth.tokens.access_ttl);
        assert_eq!(
            read.auth.tokens.refresh_ttl,
            default.auth.tokens.refresh_ttl
        );
        assert_eq!(
            read.auth.tokens.refresh_reuse_interval,
            default.auth.tokens.refresh_reuse_interval
        );
        assert!(read.auth.tokens.secret.is_none() && default.auth.tokens.secret.is_none());
        assert_eq!(read.auth.bcrypt_cost, default.auth.bcrypt_cost);
        assert_eq!(read.auth.store, default.auth.store);
        assert_eq!(read.users.services, default.users.services);
        assert_eq!(read.auth.http, default.auth.http);
        assert_eq!(read.auth.login_limits, default.auth.login_limits);
        assert_eq!(read.auth.register_limits, default.auth.register_limits);
        assert_eq!(
            read.gateway.cors_allowed_origins,
            default.gateway.cors_allowed_origins
        );
        assert_eq!(read.users.profile_emails, ProfileEmails::All);
        assert_eq!(
            read.auth.http,
            HttpClientConfig {
                connect_timeout: Duration::from_millis(1000),
                request_timeout: Duration::from_millis(5000),
            }
        );
        assert_eq!(
            (
                read.auth.store.tables.accounts.as_str(),
                read.auth.store.tables.profiles.as_str()
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
        assert!(
            read_bcrypt_cost(&vars)
                .unwrap_err()
                .to_string()
                .contains("BCRYPT_COST")
        );
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
