//! In-memory stores: the embedded default for `local` and tests.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::rotation::{RotationStep, rotation_step};
use super::session::{self, SessionFacts};
use super::{
    Account, AccountStore, AttemptKey, Attempts, Cursor, KeyStore, LiveSession, Liveness,
    LoginAttemptStore, Page, Profile, ProfilePatch, ProfileStore, PublicKey, RefreshRecord,
    Rotation, Session, SessionCheck, SessionStore, SessionUse, Settle, UserState, WriteGuard,
};
use domain::Username;
use domain::refresh::TokenHash;
use errors::Error;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
struct Accounts {
    by_username: HashMap<String, Account>,
    email_owners: HashMap<String, Uuid>,
}

/// Accounts under one lock, so claiming a username and an email is one step.
#[derive(Default)]
pub struct MemoryAccountStore {
    inner: Mutex<Accounts>,
}

impl MemoryAccountStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl AccountStore for MemoryAccountStore {
    async fn create(&self, account: &Account) -> Result<(), Error> {
        let mut accounts = lock(&self.inner);
        let username = account.username.key();
        let email = account.email.key();
        if accounts.by_username.contains_key(&username) {
            return Err(Error::UsernameTaken);
        }
        if accounts.email_owners.contains_key(&email) {
            return Err(Error::EmailTaken);
        }
        accounts.email_owners.insert(email, account.user_id);
        accounts.by_username.insert(username, account.clone());
        Ok(())
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<Account>, Error> {
        Ok(lock(&self.inner).by_username.get(&username.key()).cloned())
    }

    async fn rehash(&self, account: &Account, new_hash: &str) -> Result<bool, Error> {
        let mut accounts = lock(&self.inner);
        let stored = accounts
            .by_username
            .get_mut(&account.username.key())
            .filter(|a| a.user_id == account.user_id && a.password_hash == account.password_hash);
        let Some(stored) = stored else {
            return Ok(false);
        };
        stored.password_hash = new_hash.to_owned();
        Ok(true)
    }
}

/// Profiles ordered by `user_id`, which is also the listing order. It holds the state
/// of sessions and users that the [`MemorySessionStore`] over it keeps, so that a
/// write checks its [`WriteGuard`] under the profiles' lock, the one an account
/// deletion also takes.
#[derive(Default)]
pub struct MemoryProfileStore {
    inner: RwLock<BTreeMap<Uuid, Profile>>,
    security: Arc<Mutex<Security>>,
}

impl MemoryProfileStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ProfileStore for MemoryProfileStore {
    async fn create(&self, profile: &Profile, guard: &WriteGuard) -> Result<(), Error> {
        let mut profiles = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let security = lock(&self.security);
        if !security.allows(guard) {
            return Err(Error::Unauthorized);
        }
        if profiles.contains_key(&profile.user_id) {
            return Err(Error::ProfileExists);
        }
        profiles.insert(profile.user_id, profile.clone());
        Ok(())
    }

    async fn get(&self, user_id: Uuid) -> Result<Option<Profile>, Error> {
        let profiles = self.inner.read().unwrap_or_else(|p| p.into_inner());
        Ok(profiles.get(&user_id).cloned())
    }

    async fn update(
        &self,
        user_id: Uuid,
        patch: &ProfilePatch,
        guard: &WriteGuard,
    ) -> Result<(), Error> {
        let mut profiles = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let security = lock(&self.security);
        if !security.allows(guard) {
            return Err(Error::Unauthorized);
        }
        let profile = profiles.get_mut(&user_id).ok_or(Error::UserNotFound)?;
        if let Some(full_name) = &patch.full_name {
            profile.full_name.clone_from(full_name);
        }
        if let Some(bio) = &patch.bio {
            profile.bio.clone_from(bio);
        }
        Ok(())
    }

    async fn delete(&self, user_id: Uuid) -> Result<(), Error> {
        let mut profiles = self.inner.write().unwrap_or_else(|p| p.into_inner());
        profiles
            .remove(&user_id)
            .map(|_| ())
            .ok_or(Error::UserNotFound)
    }

    async fn list(&self, limit: usize, after: Option<Cursor>) -> Result<Page<Profile>, Error> {
        let profiles = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let start = after.map_or(Bound::Unbounded, |c| Bound::Excluded(c.last_key()));
        let mut range = profiles.range((start, Bound::Unbounded));
        let items: Vec<Profile> = range.by_ref().take(limit).map(|(_, p)| p.clone()).collect();
        let more = range.next().is_some();
        let next = match items.last() {
            Some(last) if more => Some(Cursor::after(last.user_id)),
            _ => None,
        };
        Ok(Page { items, next })
    }
}

/// Counts writes so that expired entries are swept every so many of them.
#[derive(Default)]
struct Sweeps {
    writes: u64,
}

impl Sweeps {
    /// How many writes pass between sweeps of expired entries.
    const EVERY: u64 = 1024;

    /// Counts one write; whether it is time to sweep.
    fn wrote(&mut self) -> bool {
        self.writes += 1;
        self.writes.is_multiple_of(Self::EVERY)
    }
}

#[derive(Default)]
struct Security {
    tokens: HashMap<TokenHash, RefreshRecord>,
    sessions: HashMap<Uuid, Session>,
    users: HashMap<Uuid, (UserState, Option<i64>)>,
    sweeps: Sweeps,
}

impl Security {
    fn wrote(&mut self, now: i64) {
        if self.sweeps.wrote() {
            self.tokens.retain(|_, r| r.expires_at > now);
            self.sessions.retain(|_, s| s.expires_at > now);
            self.users
                .retain(|_, (_, expires_at)| expires_at.is_none_or(|at| at > now));
        }
    }

    fn user(&self, user_id: Uuid, now: i64) -> Option<&UserState> {
        self.users
            .get(&user_id)
            .filter(|(_, expires_at)| expires_at.is_none_or(|at| at > now))
            .map(|(state, _)| state)
    }

    fn facts(&self, sid: Uuid) -> Option<SessionFacts> {
        self.sessions.get(&sid).map(|s| SessionFacts {
            user_id: s.user_id,
            generation: s.generation,
            expires_at: s.expires_at,
            ended: s.ended_at.is_some(),
        })
    }

    fn liveness(&self, user_id: Uuid, sid: Uuid, now: i64) -> Liveness {
        let facts = self.facts(sid);
        session::liveness(sid, user_id, facts.as_ref(), self.user(user_id, now), now)
    }

    fn check(&self, user_id: Uuid, sid: Uuid, now: i64) -> Result<LiveSession, Liveness> {
        let facts = self.facts(sid);
        session::check(sid, user_id, facts.as_ref(), self.user(user_id, now), now)
    }

    /// Whether a write under `guard` may happen now.
    fn allows(&self, guard: &WriteGuard) -> bool {
        match guard.session {
            Some(read) => self.check(guard.user_id, read.sid, guard.now) == Ok(read),
            None => self
                .user(guard.user_id, guard.now)
                .is_none_or(|u| u.deleted_at.is_none()),
        }
    }

    fn end(&mut self, sid: Uuid, now: i64) {
        if let Some(session) = self.sessions.get_mut(&sid) {
            session.ended_at.get_or_insert(now);
        }
        self.wrote(now);
    }
}

/// Sessions, refresh tokens and users' states under one lock, held with the profile
/// store it is made over (which checks profile writes against them); the account and
/// profile stores it shares with are locked first (accounts, then profiles) when a
/// step spans them, so that a password change or a deletion is one step. Expired
/// entries are swept every so many writes.
pub struct MemorySessionStore {
    accounts: Arc<MemoryAccountStore>,
    profiles: Arc<MemoryProfileStore>,
    attempts: Arc<MemoryLoginAttemptStore>,
    inner: Arc<Mutex<Security>>,
}

impl MemorySessionStore {
    pub fn new(
        accounts: Arc<MemoryAccountStore>,
        profiles: Arc<MemoryProfileStore>,
        attempts: Arc<MemoryLoginAttemptStore>,
    ) -> Self {
        Self {
            inner: profiles.security.clone(),
            accounts,
            profiles,
            attempts,
        }
    }
}

/// The stored account `account` speaks for, if it still has the hash the caller read.
fn still_current<'a>(accounts: &'a Accounts, account: &Account) -> Option<&'a Account> {
    accounts
        .by_username
        .get(&account.username.key())
        .filter(|a| a.user_id == account.user_id && a.password_hash == account.password_hash)
}

#[async_trait]
impl SessionCheck for MemorySessionStore {
    async fn check_session(
        &self,
        user_id: Uuid,
        sid: Uuid,
        now: i64,
    ) -> Result<Result<LiveSession, Liveness>, Error> {
        Ok(lock(&self.inner).check(user_id, sid, now))
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
            let accounts = lock(&self.accounts.inner);
            if still_current(&accounts, account).is_none() {
                return Ok(false);
            }
            let mut security = lock(&self.inner);
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
        Ok(lock(&self.inner).tokens.get(hash).cloned())
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
        let mut security = lock(&self.inner);
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
        let security = lock(&self.inner);
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
        let mut security = lock(&self.inner);
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

    async fn change_password(
        &self,
        account: &Account,
        new_hash: &str,
        keep: Uuid,
    ) -> Result<bool, Error> {
        let mut accounts = lock(&self.accounts.inner);
        if still_current(&accounts, account).is_none() {
            return Ok(false);
        }
        let mut security = lock(&self.inner);
        let generation = account.generation + 1;
        if let Some(stored) = accounts.by_username.get_mut(&account.username.key()) {
            stored.password_hash = new_hash.to_owned();
            stored.generation = generation;
        }
        let state = UserState {
            generation,
            kept: Some(keep),
            deleted_at: None,
        };
        security.users.insert(account.user_id, (state, None));
        Ok(true)
    }

    async fn delete_account(&self, account: &Account, until: i64, now: i64) -> Result<bool, Error> {
        let mut accounts = lock(&self.accounts.inner);
        if still_current(&accounts, account).is_none() {
            return Ok(false);
        }
        let mut profiles = self
            .profiles
            .inner
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let mut security = lock(&self.inner);
        accounts.by_username.remove(&account.username.key());
        if accounts.email_owners.get(&account.email.key()) == Some(&account.user_id) {
            accounts.email_owners.remove(&account.email.key());
        }
        profiles.remove(&account.user_id);
        let state = UserState {
            generation: account.generation,
            kept: None,
            deleted_at: Some(now),
        };
        security.users.insert(account.user_id, (state, Some(until)));
        security.wrote(now);
        Ok(true)
    }
}

#[derive(Default)]
struct Counters {
    attempts: HashMap<AttemptKey, Attempts>,
    sweeps: Sweeps,
}

/// Login-attempt counters under one lock, so a count is one step; closed windows are
/// swept every so many writes.
#[derive(Default)]
pub struct MemoryLoginAttemptStore {
    inner: Mutex<Counters>,
}

impl MemoryLoginAttemptStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl LoginAttemptStore for MemoryLoginAttemptStore {
    async fn count_attempt(
        &self,
        key: &AttemptKey,
        window: Duration,
        now: i64,
    ) -> Result<Attempts, Error> {
        let mut counters = lock(&self.inner);
        let window_ends_at =
            now.saturating_add(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
        let attempts = counters
            .attempts
            .entry(key.clone())
            .and_modify(|a| {
                if a.window_ends_at > now {
                    a.count += 1;
                } else {
                    *a = Attempts {
                        count: 1,
                        window_ends_at,
                    };
                }
            })
            .or_insert(Attempts {
                count: 1,
                window_ends_at,
            });
        let attempts = *attempts;
        if counters.sweeps.wrote() {
            counters.attempts.retain(|_, a| a.window_ends_at > now);
        }
        Ok(attempts)
    }

    async fn release_attempt(&self, key: &AttemptKey, now: i64) -> Result<(), Error> {
        let mut counters = lock(&self.inner);
        if let Some(a) = counters.attempts.get_mut(key)
            && a.window_ends_at > now
            && a.count > 0
        {
            a.count -= 1;
        }
        Ok(())
    }

    async fn clear_attempts(&self, key: &AttemptKey) -> Result<(), Error> {
        lock(&self.inner).attempts.remove(key);
        Ok(())
    }
}

/// The key registry: the current key first, then retired ones until they expire.
#[derive(Default)]
pub struct MemoryKeyStore {
    keys: Mutex<Vec<PublicKey>>,
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn activate_key(
        &self,
        key: &PublicKey,
        retire_after: Duration,
        now: i64,
    ) -> Result<(), Error> {
        let mut keys = lock(&self.keys);
        if let Some(next) = super::activated(&keys, key, retire_after, now) {
            *keys = next;
        }
        Ok(())
    }

    async fn public_key(&self, kid: &str, now: i64) -> Result<Option<PublicKey>, Error> {
        Ok(lock(&self.keys)
            .iter()
            .find(|k| k.kid == kid && k.alive(now))
            .cloned())
    }

    async fn published_keys(&self, now: i64) -> Result<Vec<PublicKey>, Error> {
        Ok(lock(&self.keys)
            .iter()
            .filter(|k| k.alive(now))
            .cloned()
            .collect())
    }
}
