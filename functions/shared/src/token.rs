//! HS256 access tokens: issued by auth, verified in-process by auth and users, and
//! accepted only while their session is live (not logged out, ended, or ended by a
//! password change or the account's deletion).

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{ConfigError, Secret};
use crate::store::{Liveness, SessionCheck};
use crate::Error;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub username: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The session the token was issued in.
    pub sid: String,
}

impl Claims {
    /// The user id the token speaks for (checked to be a UUID at verification).
    pub fn user_id(&self) -> Uuid {
        Uuid::parse_str(&self.sub).unwrap_or_default()
    }

    /// The session the token belongs to (checked to be a UUID at verification).
    pub fn session_id(&self) -> Uuid {
        Uuid::parse_str(&self.sid).unwrap_or_default()
    }
}

/// A freshly issued token.
#[derive(Debug)]
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
    pub claims: Claims,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Expired,
    Invalid,
}

impl From<Rejected> for Error {
    fn from(r: Rejected) -> Self {
        match r {
            Rejected::Expired => Error::TokenExpired,
            Rejected::Invalid => Error::InvalidToken,
        }
    }
}

/// Signs and verifies tokens with one HS256 secret.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn new(secret: &Secret, ttl: Duration) -> Result<Self, ConfigError> {
        let key_error =
            |e: jsonwebtoken::errors::Error| ConfigError(format!("JWT_SECRET unusable: {e}"));
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "sid"]);
        validation.leeway = 0;
        validation.validate_exp = true;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()).map_err(key_error)?,
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()).map_err(key_error)?,
            validation,
            ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A token for `user_id` in session `sid`.
    pub fn issue(&self, user_id: Uuid, username: &str, sid: Uuid) -> Result<Issued, Error> {
        let now = chrono::Utc::now().timestamp();
        let expires_in = self.ttl.as_secs();
        let claims = Claims {
            sub: user_id.to_string(),
            username: username.to_owned(),
            iat: now,
            exp: now.saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX)),
            jti: Uuid::new_v4().to_string(),
            sid: sid.to_string(),
        };
        self.sign(&claims).map(|token| Issued {
            token,
            expires_in,
            claims,
        })
    }

    /// Signs arbitrary claims; `issue` is the normal way in.
    pub fn sign(&self, claims: &Claims) -> Result<String, Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| Error::TokenGeneration(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, Rejected> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(Rejected::Invalid);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => Rejected::Expired,
                _ => Rejected::Invalid,
            })?;
        if Uuid::parse_str(&data.claims.sub).is_err() || Uuid::parse_str(&data.claims.sid).is_err()
        {
            return Err(Rejected::Invalid);
        }
        Ok(data.claims)
    }
}

/// The claims of `token` when it verifies, and its session's liveness (one consistent
/// read of the session and the user's state): [`Error::TokenExpired`] or
/// [`Error::InvalidToken`] without reading anything, or the store's error.
pub async fn verify_session(
    tokens: &Tokens,
    checks: &dyn SessionCheck,
    token: &str,
) -> Result<(Claims, Liveness), Error> {
    let claims = tokens.verify(token)?;
    let now = chrono::Utc::now().timestamp();
    let liveness = checks
        .liveness(claims.user_id(), claims.session_id(), now)
        .await?;
    Ok((claims, liveness))
}

/// The claims of `token` when it verifies and its session is live: else
/// [`Error::TokenExpired`], [`Error::InvalidToken`] or [`Error::TokenRevoked`], or the
/// store's error when sessions cannot be read.
pub async fn verify_access(
    tokens: &Tokens,
    checks: &dyn SessionCheck,
    token: &str,
) -> Result<Claims, Error> {
    match verify_session(tokens, checks, token).await? {
        (claims, Liveness::Live) => Ok(claims),
        _ => Err(Error::TokenRevoked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn tokens() -> Tokens {
        Tokens::new(
            &Secret::new("an-example-secret-of-at-least-32-bytes".into()).unwrap(),
            Duration::from_secs(3600),
        )
        .unwrap()
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let t = tokens();
        let id = Uuid::new_v4();
        let issued = t.issue(id, "alice", Uuid::from_u128(5)).unwrap();
        assert_eq!(issued.expires_in, 3600);
        let claims = t.verify(&issued.token).unwrap();
        assert_eq!(claims.user_id(), id);
        assert_eq!(claims.username, "alice");
        assert_eq!(claims.exp - claims.iat, 3600);
        assert!(Uuid::parse_str(&claims.jti).is_ok());
        assert_eq!(claims.session_id(), Uuid::from_u128(5));
    }

    /// A correctly signed token that expired ten seconds ago.
    fn expired_token(t: &Tokens) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = t
            .issue(Uuid::new_v4(), "bob", Uuid::new_v4())
            .unwrap()
            .claims;
        claims.exp = now - 10;
        claims.iat = now - 100;
        t.sign(&claims).unwrap()
    }

    #[test]
    fn an_expired_token_is_told_apart_from_a_bad_one() {
        let t = tokens();
        let expired = expired_token(&t);
        assert_eq!(t.verify(&expired), Err(Rejected::Expired));
        assert_eq!(t.verify("not.a.token"), Err(Rejected::Invalid));
        assert_eq!(t.verify(""), Err(Rejected::Invalid));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_invalid() {
        let other = Tokens::new(
            &Secret::new("another-secret-that-is-32-bytes-long!!".into()).unwrap(),
            Duration::from_secs(60),
        )
        .unwrap();
        let token = other
            .issue(Uuid::new_v4(), "eve", Uuid::new_v4())
            .unwrap()
            .token;
        assert_eq!(tokens().verify(&token), Err(Rejected::Invalid));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let t = tokens();
        let good = t
            .issue(Uuid::new_v4(), "mallory", Uuid::new_v4())
            .unwrap()
            .token;
        let payload = good.split('.').nth(1).unwrap();
        for alg in ["none", "None", "HS512", "RS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            for sig in ["", "AAAA"] {
                let forged = format!("{header}.{payload}.{sig}");
                assert_eq!(t.verify(&forged), Err(Rejected::Invalid), "alg {alg}");
            }
        }
    }

    #[test]
    fn a_token_without_exp_or_with_a_non_uuid_subject_is_invalid() {
        let t = tokens();
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: "not-a-uuid".into(),
            username: "x".into(),
            iat: now,
            exp: now + 60,
            jti: "j".into(),
            sid: Uuid::new_v4().to_string(),
        };
        assert_eq!(t.verify(&t.sign(&claims).unwrap()), Err(Rejected::Invalid));
        let (sub, sid) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
        let complete = serde_json::json!({"sub": sub, "username": "x", "iat": now, "exp": now + 60, "jti": "j", "sid": sid});
        let sign = |claims: &serde_json::Value| {
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                claims,
                &EncodingKey::from_secret(b"an-example-secret-of-at-least-32-bytes").unwrap(),
            )
            .unwrap()
        };
        assert!(t.verify(&sign(&complete)).is_ok());
        for (field, bad) in [("exp", None), ("sid", None), ("sid", Some("not-a-uuid"))] {
            let mut claims = complete.clone();
            match bad {
                None => claims.as_object_mut().unwrap().remove(field),
                Some(v) => claims
                    .as_object_mut()
                    .unwrap()
                    .insert(field.into(), v.into()),
            };
            assert_eq!(
                t.verify(&sign(&claims)),
                Err(Rejected::Invalid),
                "{field} {bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_access_token_is_accepted_while_its_session_is_live() {
        use crate::domain::{Email, Username};
        use crate::refresh::RefreshSecret;
        use crate::store::{Account, RefreshRecord, Session, Stores};
        let t = tokens();
        let stores = Stores::memory();
        let account = Account {
            user_id: Uuid::new_v4(),
            username: Username::parse("alice").unwrap(),
            email: Email::parse("alice@example.com").unwrap(),
            password_hash: "h".into(),
            created_at: chrono::Utc::now(),
            gen: 0,
        };
        stores.accounts.create(&account).await.unwrap();
        let now = chrono::Utc::now().timestamp();
        let session = Session {
            id: Uuid::new_v4(),
            user_id: account.user_id,
            username: "alice".into(),
            started: now,
            last_used: now,
            ip: None,
            user_agent: None,
            gen: 0,
            expires_at: now + 3600,
            ended_at: None,
        };
        let first = RefreshRecord {
            hash: RefreshSecret::generate().hash(),
            family: session.id,
            user_id: account.user_id,
            username: "alice".into(),
            expires_at: now + 3600,
            used: false,
            gen: 0,
        };
        assert!(stores
            .sessions
            .start_session(&account, &session, &first)
            .await
            .unwrap());
        let issued = t.issue(account.user_id, "alice", session.id).unwrap();
        let claims = verify_access(&t, stores.checks.as_ref(), &issued.token)
            .await
            .unwrap();
        assert_eq!(claims, issued.claims);
        let elsewhere = t.issue(account.user_id, "alice", Uuid::new_v4()).unwrap();
        assert!(matches!(
            verify_access(&t, stores.checks.as_ref(), &elsewhere.token).await,
            Err(Error::TokenRevoked)
        ));

        assert!(stores
            .sessions
            .end_session(Some(account.user_id), session.id, now)
            .await
            .unwrap());
        assert!(matches!(
            verify_access(&t, stores.checks.as_ref(), &issued.token).await,
            Err(Error::TokenRevoked)
        ));
    }

    #[tokio::test]
    async fn a_bad_token_is_refused_before_sessions_are_read() {
        struct Down;
        #[async_trait::async_trait]
        impl SessionCheck for Down {
            async fn liveness(&self, _: Uuid, _: Uuid, _: i64) -> Result<Liveness, Error> {
                Err(Error::unavailable("sessions down"))
            }
        }
        let t = tokens();
        let expired = expired_token(&t);
        assert!(matches!(
            verify_access(&t, &Down, &expired).await,
            Err(Error::TokenExpired)
        ));
        assert!(matches!(
            verify_access(&t, &Down, "not.a.token").await,
            Err(Error::InvalidToken)
        ));
        let good = t
            .issue(Uuid::new_v4(), "bob", Uuid::new_v4())
            .unwrap()
            .token;
        assert!(matches!(
            verify_access(&t, &Down, &good).await,
            Err(Error::Unavailable(_))
        ));
    }
}
