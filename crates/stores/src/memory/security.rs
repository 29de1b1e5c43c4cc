//! The security table: sessions, refresh tokens and users' states, with the checks
//! every store that spans it makes (a session's liveness, a guarded profile write).

use std::collections::HashMap;

use uuid::Uuid;

use super::Sweeps;
use crate::session::{self, SessionFacts};
use crate::{
    LiveSession, Liveness, MailPurpose, MailToken, RefreshRecord, Session, UserState, WriteGuard,
};
use domain::refresh::TokenHash;

/// Sessions, refresh tokens by hash and users' states (each with when it expires,
/// if it does); expired entries are swept every so many writes.
#[derive(Default)]
pub(super) struct Security {
    pub(super) tokens: HashMap<TokenHash, RefreshRecord>,
    pub(super) sessions: HashMap<Uuid, Session>,
    users: HashMap<Uuid, (UserState, Option<i64>)>,
    mail_tokens: HashMap<TokenHash, MailToken>,
    /// The one live mailed token of each user and purpose.
    latest_mail_token: HashMap<(Uuid, MailPurpose), TokenHash>,
    sweeps: Sweeps,
}

impl Security {
    /// Counts one write at `now`, sweeping what has expired every so many.
    pub(super) fn wrote(&mut self, now: i64) {
        if self.sweeps.wrote() {
            self.tokens.retain(|_, r| r.expires_at > now);
            self.sessions.retain(|_, s| s.expires_at > now);
            self.users
                .retain(|_, (_, expires_at)| expires_at.is_none_or(|at| at > now));
            self.mail_tokens.retain(|_, t| t.expires_at > now);
            let tokens = &self.mail_tokens;
            self.latest_mail_token
                .retain(|_, hash| tokens.contains_key(hash));
        }
    }

    /// Stores `token` as its user's one live token of its purpose.
    pub(super) fn issue(&mut self, token: &MailToken, now: i64) {
        let latest = (token.user_id, token.purpose);
        self.latest_mail_token.insert(latest, token.hash.clone());
        self.mail_tokens.insert(token.hash.clone(), token.clone());
        self.wrote(now);
    }

    pub(super) fn mail_token(&self, hash: &TokenHash) -> Option<&MailToken> {
        self.mail_tokens.get(hash)
    }

    /// The token `hash` if it is live for `purpose` at `now`: stored (so unused), of
    /// that purpose, unexpired and its user's latest.
    pub(super) fn live_mail_token(
        &self,
        hash: &TokenHash,
        purpose: MailPurpose,
        now: i64,
    ) -> Option<MailToken> {
        let token = self.mail_tokens.get(hash)?;
        let latest = self.latest_mail_token.get(&(token.user_id, purpose));
        (token.purpose == purpose && token.expires_at > now && latest == Some(hash))
            .then(|| token.clone())
    }

    /// Uses up the token `hash`.
    pub(super) fn use_mail_token(&mut self, hash: &TokenHash, now: i64) {
        if let Some(token) = self.mail_tokens.remove(hash) {
            self.latest_mail_token
                .remove(&(token.user_id, token.purpose));
        }
        self.wrote(now);
    }

    /// The user's state as of `now`.
    fn user(&self, user_id: Uuid, now: i64) -> Option<&UserState> {
        self.users
            .get(&user_id)
            .filter(|(_, expires_at)| expires_at.is_none_or(|at| at > now))
            .map(|(state, _)| state)
    }

    /// Records the user's state, kept until `expires_at` (`None`: for good).
    pub(super) fn set_user(&mut self, user_id: Uuid, state: UserState, expires_at: Option<i64>) {
        self.users.insert(user_id, (state, expires_at));
    }

    fn facts(&self, sid: Uuid) -> Option<SessionFacts> {
        self.sessions.get(&sid).map(|s| SessionFacts {
            user_id: s.user_id,
            generation: s.generation,
            expires_at: s.expires_at,
            ended: s.ended_at.is_some(),
        })
    }

    pub(super) fn liveness(&self, user_id: Uuid, sid: Uuid, now: i64) -> Liveness {
        let facts = self.facts(sid);
        session::liveness(sid, user_id, facts.as_ref(), self.user(user_id, now), now)
    }

    pub(super) fn check(
        &self,
        user_id: Uuid,
        sid: Uuid,
        now: i64,
    ) -> Result<LiveSession, Liveness> {
        let facts = self.facts(sid);
        session::check(sid, user_id, facts.as_ref(), self.user(user_id, now), now)
    }

    /// Whether a write under `guard` may happen now.
    pub(super) fn allows(&self, guard: &WriteGuard) -> bool {
        match guard.session {
            Some(read) => self.check(guard.user_id, read.sid, guard.now) == Ok(read),
            None => self
                .user(guard.user_id, guard.now)
                .is_none_or(|u| u.deleted_at.is_none()),
        }
    }

    /// Marks session `sid` ended at `now` (if it is not already).
    pub(super) fn end(&mut self, sid: Uuid, now: i64) {
        if let Some(session) = self.sessions.get_mut(&sid) {
            session.ended_at.get_or_insert(now);
        }
        self.wrote(now);
    }
}
