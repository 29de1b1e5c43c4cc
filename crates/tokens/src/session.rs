//! An access token as a request presents it: verified, and its session checked.

use errors::Error;
use stores::{Liveness, SessionCheck};

use crate::{Claims, Tokens};

/// The claims of `token` when it verifies, and its session's liveness (one consistent
/// read of the session and the user's state): [`Error::TokenExpired`] or
/// [`Error::InvalidToken`] without reading anything (but a new key id), or the store's
/// error.
pub async fn verify_session(
    tokens: &Tokens,
    checks: &dyn SessionCheck,
    token: &str,
) -> Result<(Claims, Liveness), Error> {
    let claims = tokens.verify_resolving(token).await?;
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
    use uuid::Uuid;

    use super::*;
    use crate::tests::{expired_token, tokens};

    #[tokio::test]
    async fn an_access_token_is_accepted_while_its_session_is_live() {
        use domain::refresh::RefreshSecret;
        use domain::{Email, Username};
        use stores::{Account, RefreshRecord, Session, Stores};
        let t = tokens();
        let stores = Stores::memory();
        let account = Account {
            user_id: Uuid::new_v4(),
            username: Username::parse("alice").unwrap(),
            email: Email::parse("alice@example.com").unwrap(),
            password_hash: "h".into(),
            created_at: chrono::Utc::now(),
            generation: 0,
            email_verified: false,
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
            generation: 0,
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
            used_at: None,
            generation: 0,
        };
        assert!(
            stores
                .sessions
                .start_session(&account, &session, &first)
                .await
                .unwrap()
        );
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

        assert!(
            stores
                .sessions
                .end_session(Some(account.user_id), session.id, now)
                .await
                .unwrap()
        );
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
            async fn check_session(
                &self,
                _: Uuid,
                _: Uuid,
                _: i64,
            ) -> Result<Result<stores::LiveSession, Liveness>, Error> {
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
