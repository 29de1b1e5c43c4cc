//! Sessions and their refresh tokens in the security table; a login also checks the
//! account it starts for in the accounts table.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryTables;
use crate::rotation::{RotationStep, rotation_step};
use crate::{
    Account, LiveSession, Liveness, LoginAttemptStore, RefreshRecord, Rotation, Session,
    SessionCheck, SessionStore, SessionUse, Settle,
};
use domain::refresh::TokenHash;
use errors::Error;

/// The session store over [`MemoryTables`]; a login settles its attempts through
/// `attempts`.
pub struct MemorySessionStore {
    tables: Arc<MemoryTables>,
    attempts: Arc<dyn LoginAttemptStore>,
}

impl MemorySessionStore {
    /// The session store over `tables`, settling logins' attempts in `attempts`.
    pub fn over(tables: Arc<MemoryTables>, attempts: Arc<dyn LoginAttemptStore>) -> Self {
        Self { tables, attempts }
    }
}

#[async_trait]
impl SessionCheck for MemorySessionStore {
    async fn check_session(
        &self,
        user_id: Uuid,
        sid: Uuid,
        now: i64,
    ) -> Result<Result<LiveSession, Liveness>, Error> {
        Ok(self.tables.security().check(user_id, sid, now))
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn start_login(
        &self,
        account: &Account,
        session: &Session,
        first: &RefreshRecord,
        settle: &Settle,
    ) -> Result<bool, Error> {
        {
            let mut accounts = self.tables.accounts();
            if accounts.still_current(account).is_none() {
                return Ok(false);
            }
            let mut security = self.tables.security();
            if security.tokens.contains_key(&first.hash)
                || security.sessions.contains_key(&session.id)
            {
                return Err(Error::internal(
                    "session id or refresh token hash collision",
                ));
            }
            security.sessions.insert(session.id, session.clone());
            security.tokens.insert(first.hash.clone(), first.clone());
            security.wrote(session.started);
        }
        settle.apply(self.attempts.as_ref()).await?;
        Ok(true)
    }

    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, Error> {
        Ok(self.tables.security().tokens.get(hash).cloned())
    }

    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        next: &TokenHash,
        next_expires_at: i64,
        session_expires_at: i64,
        used: &SessionUse,
        reuse_interval: Duration,
    ) -> Result<Rotation, Error> {
        let now = used.now;
        let mut security = self.tables.security();
        let old = security.tokens.get(presented);
        let ended =
            old.is_some_and(|o| security.liveness(o.user_id, o.family, now) != Liveness::Live);
        match rotation_step(old, ended, next, next_expires_at, now, reuse_interval) {
            RotationStep::Refuse => Ok(Rotation::Refused),
            RotationStep::RevokeFamily { family, .. } => {
                security.end(family, now);
                Ok(Rotation::Reused { family })
            }
            RotationStep::Rotate(successor) | RotationStep::Reissue(successor) => {
                if security.tokens.contains_key(next) {
                    return Err(Error::internal("refresh token hash collision"));
                }
                if let Some(old) = security.tokens.get_mut(presented)
                    && !old.used
                {
                    old.used = true;
                    old.used_at = Some(now);
                }
                if let Some(session) = security.sessions.get_mut(&successor.family) {
                    session.last_used = now;
                    session.expires_at = session.expires_at.max(session_expires_at);
                    session.ip.clone_from(&used.ip);
                    session.user_agent.clone_from(&used.user_agent);
                }
                security.tokens.insert(next.clone(), successor.clone());
                security.wrote(now);
                Ok(Rotation::Rotated(successor))
            }
        }
    }

    async fn list_sessions(
        &self,
        user_id: Uuid,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Session>, Error> {
        let security = self.tables.security();
        let mut live: Vec<Session> = security
            .sessions
            .values()
            .filter(|s| s.user_id == user_id)
            .filter(|s| security.liveness(user_id, s.id, now) == Liveness::Live)
            .cloned()
            .collect();
        live.sort_by(|a, b| b.started.cmp(&a.started).then(b.id.cmp(&a.id)));
        live.truncate(limit);
        Ok(live)
    }

    async fn end_session(&self, user_id: Option<Uuid>, sid: Uuid, now: i64) -> Result<bool, Error> {
        let mut security = self.tables.security();
        let Some(owner) = security.sessions.get(&sid).map(|s| s.user_id) else {
            return Ok(false);
        };
        if user_id.is_some_and(|u| u != owner)
            || security.liveness(owner, sid, now) != Liveness::Live
        {
            return Ok(false);
        }
        security.end(sid, now);
        Ok(true)
    }
}
