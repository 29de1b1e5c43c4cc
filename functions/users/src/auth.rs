//! Who is calling: the bearer token checked in-process, with its session (local mode),
//! or by auth's `/validate` (remote mode), as the [`AuthUser`] extractor.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lru::LruCache;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use axum::body::Bytes;
use axum::http::{HeaderValue, Method, Uri, header};
use http_body_util::Full;

use crate::config::Config;
use errors::Error;
use outbound::breaker::{Breaker, BreakerConfig, Outcome};
use outbound::http_client;
use settings::{ConfigError, HttpClientConfig, Url};
use stores::{LiveSession, SessionCheck, WriteGuard};
use tokens::{MAX_TOKEN_BYTES, Tokens};

/// The caller a valid bearer token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub username: String,
    /// The token's `exp` (epoch seconds): it is refused after that.
    pub expires_at: i64,
    /// The token's session as the check found it live; `None` in remote mode, where
    /// auth read it.
    pub session: Option<LiveSession>,
}

impl AuthUser {
    /// What a write for this caller at `now` must still find when it is written:
    /// [`Error::Unauthorized`] once the token has expired (as it may have while a body
    /// was arriving). In remote mode the write can only be held to the account not
    /// being deleted: users cannot read the session, which `/validate` does not name.
    pub fn write_guard(&self, now: i64) -> Result<WriteGuard, Error> {
        if now > self.expires_at {
            return Err(Error::Unauthorized);
        }
        Ok(WriteGuard {
            user_id: self.user_id,
            session: self.session,
            now,
        })
    }
}

/// Checks bearer tokens; cheap to clone.
#[derive(Clone)]
pub struct Authenticator(Arc<Mode>);

enum Mode {
    Local {
        tokens: Arc<Tokens>,
        checks: Arc<dyn SessionCheck>,
    },
    Remote(Box<Remote>),
}

impl Authenticator {
    /// Verifies tokens in-process with the signing secret auth uses, then refuses those
    /// whose session has ended, or whose user changed the password elsewhere or deleted
    /// the account (one consistent read of the session and the user's state per
    /// request).
    pub fn local(tokens: Arc<Tokens>, checks: Arc<dyn SessionCheck>) -> Self {
        Self(Arc::new(Mode::Local { tokens, checks }))
    }

    /// Asks `POST {auth_service_url}/validate` through the HTTP client `http` builds,
    /// remembering valid answers for at most [`Authenticator::REMOTE_CACHE_TTL`]: a token revoked by a logout can still pass
    /// here for that long after it was last validated.
    pub fn remote(auth_service_url: &Url, http: &HttpClientConfig) -> Result<Self, ConfigError> {
        Self::remote_with(auth_service_url, http, BreakerConfig::default())
    }

    /// [`Authenticator::remote`] behind a circuit breaker with these thresholds: after
    /// a run of failed calls to auth, requests are refused at once (503) until one
    /// probe after the cool-down succeeds.
    pub fn remote_with(
        auth_service_url: &Url,
        http: &HttpClientConfig,
        breaker: BreakerConfig,
    ) -> Result<Self, ConfigError> {
        let auth = http_client::Service::new(
            "AUTH_SERVICE_URL",
            auth_service_url,
            &http_client::connector(http)?,
        )?;
        let validate = auth.target("/validate", None).ok_or_else(|| {
            ConfigError("AUTH_SERVICE_URL cannot be joined with /validate".into())
        })?;
        Ok(Self(Arc::new(Mode::Remote(Box::new(Remote {
            auth,
            validate,
            timeout: http.request_timeout,
            cache: Cache::new(Cache::CAPACITY, Cache::TTL),
            breaker: Breaker::new(breaker),
        })))))
    }

    /// Remote mode at `config`'s `AUTH_SERVICE_URL` with its timeouts; there is no
    /// remote mode without `AUTH_SERVICE_URL`.
    pub fn remote_from_config(config: &Config) -> Result<Self, ConfigError> {
        let url = config.services.auth_url.as_ref().ok_or_else(|| {
            ConfigError(
                "AUTH_MODE=remote needs AUTH_SERVICE_URL, the base URL of the auth service \
                 (e.g. http://localhost:3000)"
                    .into(),
            )
        })?;
        Self::remote_with(url, &config.http, config.breaker)
    }

    /// How long remote mode trusts a valid answer of auth without asking again.
    pub const REMOTE_CACHE_TTL: Duration = Cache::TTL;

    /// The caller `token` speaks for, or [`Error::Unauthorized`] (also for a revoked
    /// token); in remote mode [`Error::AuthServiceUnavailable`] when auth cannot answer.
    pub async fn check(&self, token: &str) -> Result<AuthUser, Error> {
        self.check_with(token, std::future::ready(()))
            .await
            .map(|(user, ())| user)
    }

    /// [`check`](Self::check), running `read` meanwhile: in local mode once the
    /// token's signature has verified, beside the lookup of its session, so a read
    /// that needs both costs one storage round trip instead of two; in remote mode
    /// after auth has answered (users cannot tell a forged token from a real one
    /// without it). `read`'s output is only handed back when the token is good.
    pub async fn check_with<T>(
        &self,
        token: &str,
        read: impl std::future::Future<Output = T>,
    ) -> Result<(AuthUser, T), Error> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(Error::Unauthorized);
        }
        let unauthorized = |e| match e {
            Error::InvalidToken | Error::TokenExpired | Error::TokenRevoked => Error::Unauthorized,
            other => other,
        };
        match self.0.as_ref() {
            Mode::Local { tokens, checks } => {
                let claims = tokens.verify_resolving(token).await.map_err(unauthorized)?;
                let now = chrono::Utc::now().timestamp();
                let (checked, output) = tokio::join!(
                    checks.check_session(claims.user_id(), claims.session_id(), now),
                    read
                );
                let Ok(session) = checked.map_err(unauthorized)? else {
                    return Err(Error::Unauthorized);
                };
                let user = AuthUser {
                    user_id: claims.user_id(),
                    username: claims.username,
                    expires_at: claims.exp,
                    session: Some(session),
                };
                Ok((user, output))
            }
            Mode::Remote(remote) => {
                let user = remote.check(token).await?;
                Ok((user, read.await))
            }
        }
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let token = edge::http::bearer_token(&parts.headers)?;
        Authenticator::from_ref(state).check(token).await
    }
}

struct Remote {
    auth: http_client::Service,
    /// `/validate` below `AUTH_SERVICE_URL`.
    validate: Uri,
    /// How long one call to `/validate` may take, answer and body together.
    timeout: Duration,
    cache: Cache,
    breaker: Breaker,
}

#[derive(Deserialize)]
struct ValidateAnswer {
    valid: bool,
    user_id: String,
    username: String,
}

/// The most of an answer of `/validate` read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

impl Remote {
    /// `POST /validate {"token": token}`.
    fn request(&self, token: &str) -> hyper::Request<Full<Bytes>> {
        #[derive(Serialize)]
        struct Question<'a> {
            token: &'a str,
        }
        // Serializing a string field cannot fail; an empty body would be auth's 400.
        let body = serde_json::to_vec(&Question { token }).unwrap_or_default();
        let mut request = hyper::Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.validate.clone();
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        request
    }

    async fn check(&self, token: &str) -> Result<AuthUser, Error> {
        let now = Instant::now();
        if let Some(user) = self.cache.get(token, now) {
            return Ok(user);
        }
        let unavailable = |cause: &dyn std::fmt::Display| {
            tracing::warn!(
                host = self.auth.host(),
                cause = %cause,
                "auth service unavailable"
            );
            Error::AuthServiceUnavailable
        };
        if !self.breaker.allow(Instant::now()) {
            return Err(unavailable(&"circuit open: not called"));
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let called = self
            .auth
            .call(
                self.request(token),
                deadline,
                self.timeout,
                MAX_ANSWER_BYTES,
            )
            .await;
        let outcome = match &called {
            Ok(r) if !r.status().is_server_error() => Outcome::Success,
            Err(failure) if !failure.is_no_answer() => Outcome::Success,
            _ => Outcome::Failure,
        };
        self.breaker.record(outcome, Instant::now());
        let response = called.map_err(|failure| unavailable(&failure))?;
        let status = response.status();
        if matches!(
            status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST
        ) {
            return Err(Error::Unauthorized);
        }
        if status != StatusCode::OK {
            return Err(unavailable(&format_args!("answered {status}")));
        }
        let bytes = response.into_body();
        let answer: ValidateAnswer = serde_json::from_slice(&bytes).map_err(|e| {
            unavailable(&format_args!(
                "answered a body that is not a /validate answer: {e}"
            ))
        })?;
        if !answer.valid {
            return Err(Error::Unauthorized);
        }
        let user_id = Uuid::parse_str(&answer.user_id)
            .map_err(|_| unavailable(&"answered a user_id that is not a UUID"))?;
        let user = AuthUser {
            user_id,
            username: answer.username,
            expires_at: expiry(token).unwrap_or(i64::MIN),
            session: None,
        };
        if let Some(left) = lifetime_left(token, SystemTime::now()) {
            self.cache.put(token, &user, now, left);
        }
        Ok(user)
    }
}

/// The `exp` of `token`, read from its payload without verifying the signature: only
/// ever used for a token auth has just called valid, to cut a cache entry or a write
/// short.
fn expiry(token: &str) -> Option<i64> {
    #[derive(Deserialize)]
    struct Exp {
        exp: i64,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    Some(serde_json::from_slice::<Exp>(&bytes).ok()?.exp)
}

/// How long `token` has until its `exp` ([`expiry`]).
fn lifetime_left(token: &str, now: SystemTime) -> Option<Duration> {
    let exp = expiry(token)?;
    let exp = UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(exp).ok()?))?;
    exp.duration_since(now).ok().filter(|d| !d.is_zero())
}

/// Valid answers of auth by token, each kept for at most `ttl` and never past the
/// token's own expiry; never more than `capacity` of them: when full, the least recently
/// used answer makes room (in constant time, as every request that misses inserts one).
struct Cache {
    /// `None` with a capacity of 0: nothing is kept.
    entries: Option<Mutex<LruCache<String, (AuthUser, Instant)>>>,
    ttl: Duration,
}

impl Cache {
    const CAPACITY: usize = 1024;
    const TTL: Duration = Duration::from_secs(30);

    fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
            ttl,
        }
    }

    fn lock(&self) -> Option<MutexGuard<'_, LruCache<String, (AuthUser, Instant)>>> {
        let entries = self.entries.as_ref()?;
        Some(entries.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn get(&self, token: &str, now: Instant) -> Option<AuthUser> {
        let mut entries = self.lock()?;
        let live = entries
            .get(token)
            .map(|(user, deadline)| (now < *deadline).then(|| user.clone()));
        if live == Some(None) {
            entries.pop(token);
        }
        live.flatten()
    }

    fn put(&self, token: &str, user: &AuthUser, now: Instant, token_left: Duration) {
        let deadline = now + self.ttl.min(token_left);
        if let Some(mut entries) = self.lock() {
            entries.put(token.to_owned(), (user.clone(), deadline));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().map_or(0, |e| e.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with(payload: &serde_json::Value) -> String {
        format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload.to_string())
        )
    }

    #[test]
    fn the_lifetime_left_comes_from_exp() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let left = lifetime_left(&token_with(&serde_json::json!({"exp": 1_000_090})), now);
        assert_eq!(left, Some(Duration::from_secs(90)));
        for payload in [
            serde_json::json!({"exp": 999_999}),
            serde_json::json!({"exp": 1_000_000}),
            serde_json::json!({"exp": -5}),
            serde_json::json!({"exp": "soon"}),
            serde_json::json!({"sub": "x"}),
        ] {
            assert_eq!(lifetime_left(&token_with(&payload), now), None, "{payload}");
        }
        for garbage in ["", "a", "a.!!!.c", "a.e30.c"] {
            assert_eq!(lifetime_left(garbage, now), None, "{garbage:?}");
        }
    }

    fn user(n: u128) -> AuthUser {
        AuthUser {
            user_id: Uuid::from_u128(n),
            username: format!("user{n}"),
            expires_at: 2_000_000_000,
            session: None,
        }
    }

    #[test]
    fn a_cached_answer_lasts_the_ttl_or_until_the_token_expires() {
        let cache = Cache::new(8, Duration::from_secs(30));
        let now = Instant::now();
        cache.put("long", &user(1), now, Duration::from_secs(3600));
        cache.put("short", &user(2), now, Duration::from_secs(5));
        assert_eq!(
            cache.get("long", now + Duration::from_secs(29)),
            Some(user(1))
        );
        assert_eq!(cache.get("long", now + Duration::from_secs(30)), None);
        assert_eq!(
            cache.get("short", now + Duration::from_secs(4)),
            Some(user(2))
        );
        assert_eq!(cache.get("short", now + Duration::from_secs(5)), None);
        assert_eq!(cache.get("other", now), None);
        assert_eq!(cache.len(), 0, "expired entries are dropped when looked up");
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = Cache::new(4, Duration::from_secs(30));
        let now = Instant::now();
        for n in 0..100u64 {
            cache.put(
                &format!("t{n}"),
                &user(n.into()),
                now,
                Duration::from_secs(1000 - n),
            );
            assert!(cache.len() <= 4);
        }
        assert_eq!(cache.len(), 4);
        for n in 96..100u64 {
            assert_eq!(cache.get(&format!("t{n}"), now), Some(user(n.into())));
        }
        assert_eq!(cache.get("t95", now), None, "the oldest made room");
        let later = now + Duration::from_secs(60);
        cache.put("fresh", &user(7), later, Duration::from_secs(60));
        assert_eq!(cache.get("fresh", later), Some(user(7)));
        for n in 97..100u64 {
            assert_eq!(cache.get(&format!("t{n}"), later), None, "expired: t{n}");
        }
        assert_eq!(cache.len(), 1, "expired entries are dropped when looked up");
    }

    #[test]
    fn the_least_recently_used_answer_makes_room() {
        let cache = Cache::new(2, Duration::from_secs(30));
        let now = Instant::now();
        let long = Duration::from_secs(3600);
        cache.put("a", &user(1), now, long);
        cache.put("b", &user(2), now, long);
        assert_eq!(cache.get("a", now), Some(user(1)));
        cache.put("c", &user(3), now, long);
        assert_eq!(cache.get("b", now), None, "b was used least recently");
        assert_eq!(cache.get("a", now), Some(user(1)));
        assert_eq!(cache.get("c", now), Some(user(3)));
    }

    #[test]
    fn a_cache_of_no_capacity_keeps_nothing() {
        let cache = Cache::new(0, Duration::from_secs(30));
        let now = Instant::now();
        cache.put("a", &user(1), now, Duration::from_secs(3600));
        assert_eq!(cache.get("a", now), None);
        assert_eq!(cache.len(), 0);
    }
}
