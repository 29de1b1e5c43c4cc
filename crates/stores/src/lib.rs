//! Store traits, one per owner, and the types they speak in.

pub mod config;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod mail_tokens;
pub mod memory;
pub mod rotation;
pub mod session;
mod wiring;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use domain::refresh::TokenHash;
use domain::{Email, Username};
use errors::Error;

pub use mail_tokens::{MailPurpose, MailToken, MailTokenStore, TokenRefusal};
pub use wiring::Stores;

/// A registered user's credentials.
#[derive(Clone)]
pub struct Account {
    pub user_id: Uuid,
    pub username: Username,
    pub email: Email,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// The password generation: 0 at registration, one more at each password change.
    pub generation: u64,
    /// Whether the owner of `email` has proven it (a verification link, a password
    /// reset or an email change); false at registration.
    pub email_verified: bool,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password_hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("generation", &self.generation)
            .field("email_verified", &self.email_verified)
            .finish()
    }
}

/// Credentials, owned by the auth function.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates the account in one atomic step. A taken username gives
    /// [`Error::UsernameTaken`] (checked first), a taken email [`Error::EmailTaken`].
    async fn create(&self, account: &Account) -> Result<(), Error>;

    /// The account whose username matches case-insensitively.
    async fn find_by_username(&self, username: &Username) -> Result<Option<Account>, Error>;

    /// The account with this id.
    async fn find_by_id(&self, user_id: Uuid) -> Result<Option<Account>, Error>;

    /// The account whose address matches case-insensitively.
    async fn find_by_email(&self, email: &Email) -> Result<Option<Account>, Error>;

    /// Replaces the password hash of `account` with `new_hash`, a hash of the same
    /// password at another cost, in both copies of the account in one atomic step, if
    /// they still have the hash the caller verified: `false` (nothing written)
    /// otherwise. The password generation stays, and so does every session.
    async fn rehash(&self, account: &Account, new_hash: &str) -> Result<bool, Error>;
}

/// A user's public profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub user_id: Uuid,
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub bio: String,
    pub created_at: DateTime<Utc>,
}

/// The fields a partial update may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfilePatch {
    pub full_name: Option<String>,
    pub bio: Option<String>,
}

/// One page of a listing and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// An opaque position in a listing: the last key of the page before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor(Uuid);

impl Cursor {
    const PREFIX: &'static str = "v1:";

    pub fn after(last: Uuid) -> Self {
        Self(last)
    }

    pub fn last_key(&self) -> Uuid {
        self.0
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}{}", Self::PREFIX, self.0))
    }

    pub fn decode(raw: &str) -> Result<Self, Error> {
        let invalid = || Error::bad_request("Invalid cursor");
        if raw.len() > 128 {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        let key = text.strip_prefix(Self::PREFIX).ok_or_else(invalid)?;
        Uuid::parse_str(key).map(Self).map_err(|_| invalid())
    }
}

/// A session as the token check found it live: what a write on its behalf must still
/// find ([`WriteGuard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSession {
    pub sid: Uuid,
    /// The password generation the session started under.
    pub generation: u64,
}

/// What must still hold when a profile is written for a caller, checked in the same
/// atomic step as the write, at `now`: the caller's account has not been deleted, and,
/// when the token check read the caller's session (`session`), that session is still
/// live as it was read (not ended, not expired, its generation still the user's or the
/// one a password change kept). Else the write is refused with
/// [`Error::Unauthorized`] and nothing is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteGuard {
    pub user_id: Uuid,
    /// `None` when the check did not read the session (users' remote mode, where auth
    /// did): then only the account's deletion marker is checked.
    pub session: Option<LiveSession>,
    /// Epoch seconds.
    pub now: i64,
}

/// Profiles, owned by the users function. Every write on a caller's behalf carries a
/// [`WriteGuard`], checked first: a refused guard is [`Error::Unauthorized`] whatever
/// the profile's state.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// Creates the profile if `guard` holds; [`Error::ProfileExists`] when one has its
    /// `user_id`.
    async fn create(&self, profile: &Profile, guard: &WriteGuard) -> Result<(), Error>;

    async fn get(&self, user_id: Uuid) -> Result<Option<Profile>, Error>;

    /// Changes only the fields present if `guard` holds; [`Error::UserNotFound`] when
    /// there is no profile.
    async fn update(
        &self,
        user_id: Uuid,
        patch: &ProfilePatch,
        guard: &WriteGuard,
    ) -> Result<(), Error>;

    /// [`Error::UserNotFound`] when there is no profile.
    async fn delete(&self, user_id: Uuid) -> Result<(), Error>;

    /// At most `limit` profiles in a stable order, starting after `after`.
    async fn list(&self, limit: usize, after: Option<Cursor>) -> Result<Page<Profile>, Error>;
}

/// A refresh token as stored: its hash, never the token itself. Every token a login
/// starts belongs to one family, and each refresh adds the next member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub hash: TokenHash,
    /// Its session's id.
    pub family: Uuid,
    pub user_id: Uuid,
    pub username: String,
    /// Epoch seconds; the token is refused from then on.
    pub expires_at: i64,
    /// Retired by a refresh: presenting it again is reuse, or a retried refresh within
    /// the reuse interval of `used_at`.
    pub used: bool,
    /// Epoch seconds at which a refresh retired it; `None` while unused (and for a
    /// token retired before this was recorded, which counts as retired long ago).
    pub used_at: Option<i64>,
    /// The password generation of its session ([`Session::gen`]).
    pub generation: u64,
}

/// What came of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token is now retired (or was, less than the reuse interval ago);
    /// this is its successor in the same family.
    Rotated(RefreshRecord),
    /// Unknown, expired, or its session has ended.
    Refused,
    /// The token had already been retired: its whole session has now ended.
    Reused { family: Uuid },
}

/// A token-signing public key (Ed25519) as verifiers read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// Its RFC 7638 thumbprint, the `kid` of the tokens it verifies.
    pub kid: String,
    /// The public key, base64url (the JWK's `x`).
    pub x: String,
    /// Epoch seconds.
    pub created_at: i64,
    /// Set when a newer key took over: epoch seconds after which no token it signed can
    /// still be alive, and the key is no longer published or trusted.
    pub expires_at: Option<i64>,
}

impl PublicKey {
    /// Whether the key still verifies tokens at `now`.
    pub fn alive(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// Token-signing public keys: auth makes the key it signs with the current one before
/// its first token, which retires the one before; verifiers (users) read a key the
/// first time a token names it, and again now and then. Never a private key.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Makes `key` the current signing key, if it is not already: every other current
    /// key is retired and expires `retire_after` from `now`, when the last token it
    /// signed has expired. One atomic step.
    async fn activate_key(
        &self,
        key: &PublicKey,
        retire_after: Duration,
        now: i64,
    ) -> Result<(), Error>;

    /// The key with this id, if published and alive at `now`.
    async fn public_key(&self, kid: &str, now: i64) -> Result<Option<PublicKey>, Error>;

    /// Every key alive at `now`, the current one first: the JWKS.
    async fn published_keys(&self, now: i64) -> Result<Vec<PublicKey>, Error>;
}

/// The keys of `registry` after making `key` current at `now`; `None` when it already
/// is. Shared by the stores so that they retire keys alike.
pub fn activated(
    registry: &[PublicKey],
    key: &PublicKey,
    retire_after: Duration,
    now: i64,
) -> Option<Vec<PublicKey>> {
    let current = registry
        .iter()
        .any(|k| k.kid == key.kid && k.expires_at.is_none());
    if current {
        return None;
    }
    let retire_at = now.saturating_add(i64::try_from(retire_after.as_secs()).unwrap_or(i64::MAX));
    let mut keys = vec![PublicKey {
        expires_at: None,
        ..key.clone()
    }];
    keys.extend(
        registry
            .iter()
            .filter(|k| k.kid != key.kid && k.alive(now))
            .map(|k| PublicKey {
                expires_at: Some(k.expires_at.unwrap_or(retire_at).min(retire_at)),
                ..k.clone()
            }),
    );
    Some(keys)
}

/// Who a login or registration attempt is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttemptKey {
    /// The username tried, as its lowercased key; build it with [`AttemptKey::user`].
    User(String),
    /// The client address the attempt came from.
    Ip(IpAddr),
    /// Registrations attempted from a client address (counted by `/register`, apart
    /// from its login attempts).
    Register(IpAddr),
    /// Mails asked for ([`MailRequest`]), counted per user, address or client.
    Mail(MailRequest),
}

/// Who asked for mails, for their limits: a signed-in user (a new verification link, an
/// email change), an address (a password reset, whether or not it has an account), or
/// the client address a reset was asked from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MailRequest {
    User(Uuid),
    Address(String),
    Client(IpAddr),
}

impl AttemptKey {
    /// The key of `username`, the same in any case.
    pub fn user(username: &Username) -> Self {
        Self::User(username.key())
    }
}

/// A counter of login attempts after counting one more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    /// Attempts in the current window, this one included.
    pub count: u64,
    /// Epoch seconds at which the window closes and the count starts again.
    pub window_ends_at: i64,
}

/// One login and everything it leads to: the refresh-token family it starts and every
/// access token issued in it (their `sid` claim). Times are epoch seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The session id: the `sid` claim and the refresh-token family.
    pub id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    pub started: i64,
    /// The last login or refresh of the session.
    pub last_used: i64,
    /// The client address of the last login or refresh, when known.
    pub ip: Option<String>,
    /// The `User-Agent` of the last login or refresh, when sent (cut to
    /// [`Session::MAX_USER_AGENT`] characters).
    pub user_agent: Option<String>,
    /// The account's password generation when the session started.
    pub generation: u64,
    /// When every token of the session has expired; the record may go from then on.
    pub expires_at: i64,
    /// When the session was ended, if it was.
    pub ended_at: Option<i64>,
}

impl Session {
    pub const MAX_USER_AGENT: usize = 256;
}

/// What changed about a user since their sessions started: written by a password
/// change (`gen`, `kept`) and by account deletion (`deleted_at`). No record means
/// generation 0, nothing deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserState {
    pub generation: u64,
    /// The session that changed the password last, which stays live.
    pub kept: Option<Uuid>,
    pub deleted_at: Option<i64>,
}

/// Whether an access token's session still lets it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Live,
    /// Logged out, ended by the user, by refresh-token reuse or by a password change;
    /// or unknown or expired.
    Ended,
    /// The account has been deleted.
    UserDeleted,
}

/// Who a session is checked or used for, and what its request looked like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUse {
    pub now: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The per-request check of an access token's session: read by auth (`/validate`) and
/// by the users function, which holds nothing else of the security table.
#[async_trait]
pub trait SessionCheck: Send + Sync {
    /// The session `sid` of `user_id` as found live at `now`, or why it is not (never
    /// [`Liveness::Live`]): on DynamoDB one consistent `BatchGetItem` of the session
    /// and the user's state.
    async fn check_session(
        &self,
        user_id: Uuid,
        sid: Uuid,
        now: i64,
    ) -> Result<Result<LiveSession, Liveness>, Error>;

    /// Whether session `sid` of `user_id` is live at `now` ([`check_session`](Self::check_session)).
    async fn liveness(&self, user_id: Uuid, sid: Uuid, now: i64) -> Result<Liveness, Error> {
        let checked = self.check_session(user_id, sid, now).await?;
        Ok(checked.err().unwrap_or(Liveness::Live))
    }
}

/// Sessions and their refresh tokens, owned by the auth function (the account changes
/// that end sessions are [`CrossTableWrites`]). A record whose time has passed counts
/// as absent even before the store's TTL removes it.
#[async_trait]
pub trait SessionStore: SessionCheck {
    /// Starts `session` with its first refresh token, in one atomic step that also
    /// checks that `account` still has the password hash the login verified: `false`
    /// (nothing written) when it has changed or the account is gone.
    async fn start_session(
        &self,
        account: &Account,
        session: &Session,
        first: &RefreshRecord,
    ) -> Result<bool, Error> {
        self.start_login(account, session, first, &Settle::default())
            .await
    }

    /// [`start_session`](Self::start_session) for a login, which in the same step
    /// settles the attempts it counted ([`Settle`]): nothing is settled when the
    /// session does not start.
    async fn start_login(
        &self,
        account: &Account,
        session: &Session,
        first: &RefreshRecord,
        settle: &Settle,
    ) -> Result<bool, Error>;

    /// The stored token with this hash, used or not, expired or not.
    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, Error>;

    /// Retires `presented` and stores `next` (expiring at `next_expires_at`) in its
    /// session, in one atomic step, as [`rotation::rotation_step`] decides; the session
    /// is marked used and lives until `session_expires_at`. Presenting a token retired
    /// less than `reuse_interval` ago stores `next` in its session as well (a retried
    /// refresh: the token stays retired, its earlier successors stay valid); presenting
    /// one retired longer ago ends its session.
    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        next: &TokenHash,
        next_expires_at: i64,
        session_expires_at: i64,
        used: &SessionUse,
        reuse_interval: Duration,
    ) -> Result<Rotation, Error>;

    /// The live sessions of `user_id`, newest first, at most `limit`.
    async fn list_sessions(
        &self,
        user_id: Uuid,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Session>, Error>;

    /// Ends session `sid` when it is a live session of `user_id` (`None`: of anyone);
    /// whether it was.
    async fn end_session(&self, user_id: Option<Uuid>, sid: Uuid, now: i64) -> Result<bool, Error>;
}

/// The account changes that span the accounts, profiles and security tables, each one
/// atomic step (on DynamoDB one `TransactWriteItems` across the tables), owned by the
/// auth function.
#[async_trait]
pub trait CrossTableWrites: Send + Sync {
    /// Sets the password hash of `account` to `new_hash` and ends every session of the
    /// user but `keep`, in one atomic step, if the account still has the hash the
    /// caller verified: `false` (nothing written) otherwise.
    async fn change_password(
        &self,
        account: &Account,
        new_hash: &str,
        keep: Uuid,
    ) -> Result<bool, Error>;

    /// Deletes `account`, its username and email claims and its profile, and refuses
    /// every token of the user until `until`, in one atomic step, if the account still
    /// has the hash the caller verified: `false` (nothing written) otherwise.
    async fn delete_account(&self, account: &Account, until: i64, now: i64) -> Result<bool, Error>;

    /// Uses up the [`MailPurpose::VerifyEmail`] token `hash` and marks its account's
    /// address verified, in one atomic step: the account as it was, or why nothing
    /// happened.
    async fn verify_email(&self, hash: &TokenHash, now: i64) -> Result<Used, Error>;

    /// Uses up the [`MailPurpose::ResetPassword`] token `hash`, sets the password hash
    /// to `new_hash` (the next generation: every session ends) and marks the address
    /// verified, in one atomic step: the account as it was, or why nothing happened.
    async fn reset_password(
        &self,
        hash: &TokenHash,
        new_hash: &str,
        now: i64,
    ) -> Result<Used, Error>;

    /// Uses up the [`MailPurpose::ChangeEmail`] token `hash` and moves its account to
    /// the token's address (the claim on the old address freed, the new one taken,
    /// verified; the profile's copy too), in one atomic step: the account as it was, or
    /// why nothing happened; [`Error::EmailTaken`] when the new address was claimed
    /// since.
    async fn change_email(&self, hash: &TokenHash, now: i64) -> Result<Used, Error>;
}

/// What using up a mailed token did: the account as it was before, or why nothing
/// happened.
pub type Used = Result<Account, TokenRefusal>;

/// What a successful login does to the attempts it counted: the username's failures
/// are forgotten (`clear`) and the client address gets its attempt back (`release`,
/// if its window is still open at `now`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settle {
    pub clear: Option<AttemptKey>,
    pub release: Option<AttemptKey>,
    pub now: i64,
}

impl Settle {
    /// Applies this settlement to `store` in calls of their own (where no transaction
    /// carries it): both steps are tried; the first failure is returned.
    pub async fn apply(&self, store: &dyn LoginAttemptStore) -> Result<(), Error> {
        let cleared = match &self.clear {
            Some(key) => store.clear_attempts(key).await,
            None => Ok(()),
        };
        let released = match &self.release {
            Some(key) => store.release_attempt(key, self.now).await,
            None => Ok(()),
        };
        cleared.and(released)
    }
}

/// Login- and registration-attempt counters, owned by the auth function. Times are epoch seconds, and a
/// window that has closed counts as absent even before the store's TTL removes it.
#[async_trait]
pub trait LoginAttemptStore: Send + Sync {
    /// Counts one attempt against `key`. A window opens at the first attempt and lasts
    /// `window`; when it has closed, counting starts again at 1.
    async fn count_attempt(
        &self,
        key: &AttemptKey,
        window: Duration,
        now: i64,
    ) -> Result<Attempts, Error>;

    /// Takes back one attempt counted in the still-open window, if there is one.
    async fn release_attempt(&self, key: &AttemptKey, now: i64) -> Result<(), Error>;

    /// Forgets every attempt counted against `key`.
    async fn clear_attempts(&self, key: &AttemptKey) -> Result<(), Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor::after(Uuid::new_v4());
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        let forged = URL_SAFE_NO_PAD.encode("v2:whatever");
        for bad in ["", "!!!", "djE6", &forged, &"A".repeat(200)] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?}");
        }
    }
}
