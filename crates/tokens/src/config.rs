//! Signing and verifying configuration: `JWT_SECRET`, `JWT_SIGNING_KEY`, `JWT_ISSUER`,
//! `JWT_AUDIENCE`, the lifetimes and the refresh-token reuse interval.

use std::time::Duration;

use settings::{ConfigError, Secret, Vars};

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
            issuer: crate::DEFAULT_ISSUER.into(),
            audience: crate::DEFAULT_AUDIENCE.into(),
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
        keys: std::sync::Arc<dyn stores::KeyStore>,
    ) -> Result<Option<crate::Tokens>, ConfigError> {
        use crate::{Ed25519Key, Tokens};
        let tokens = match (&self.signing_key, &self.secret) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(
                    "set JWT_SIGNING_KEY (EdDSA) or JWT_SECRET (HS256), not both".into(),
                ));
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
        keys: std::sync::Arc<dyn stores::KeyStore>,
    ) -> Result<crate::Tokens, ConfigError> {
        use crate::Tokens;
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
