//! The auth handlers: the spec's routes, plus refresh and logout.

use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use domain::refresh::RefreshSecret;
use domain::{Email, Password, Username};
use edge::metrics::{self, Event};
use errors::json::OptionalJson;
use errors::{Error, Json};
use stores::session::until_both_expire;
use stores::{Account, RefreshRecord, Rotation, Session, SessionUse};
use tokens::verify_access;

use crate::config::EmailVerification;
use crate::{AppState, ClientIp, limits, recovery};

pub async fn health() -> Json<Value> {
    Json(json!({
        "status": "ok",
        "message": "API is running",
        "endpoints": {
            "health": "/",
            "register": "/register",
            "login": "/login",
            "validate": "/validate",
            "refresh": "/refresh",
            "logout": "/logout",
            "sessions": "/sessions",
            "end_session": "/sessions/{id}",
            "change_password": "/password",
            "delete_account": "/account",
            "verify_email": "/email/verify",
            "resend_verification": "/email/verify/resend",
            "forgot_password": "/password/forgot",
            "reset_password": "/password/reset",
            "change_email": "/email",
            "confirm_email": "/email/confirm",
            "jwks": "/.well-known/jwks.json",
            "discovery": "/.well-known/openid-configuration"
        }
    }))
}

#[derive(Deserialize)]
pub struct RegisterRequest {
    username: String,
    email: String,
    password: String,
}

#[derive(Serialize)]
pub struct RegisterResponse {
    user_id: Uuid,
    username: String,
    message: &'static str,
}

/// The body is checked first (cheap, and a 400 is not counted); then the registration
/// counts against the client address, and past `REGISTER_MAX_PER_IP` it is refused
/// with 429 before bcrypt runs. One refused with 503 for want of a bcrypt slot is
/// given back. A taken username or email is found only by the store's
/// write, after the hash, so a 409 has cost its bcrypt and counts too.
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<RegisterRequest>,
) -> Result<Json<RegisterResponse>, Error> {
    let username = Username::parse(&req.username)?;
    let email = Email::parse(&req.email)?;
    let password = Password::parse(req.password)?;
    limits::count_registration(state.attempts.as_ref(), &state.register_limits, ip).await?;
    let password_hash = match state.passwords.hash(&password).await {
        Err(busy @ Error::PasswordChecksBusy { .. }) => {
            limits::uncount_registration(state.attempts.as_ref(), ip).await;
            return Err(busy);
        }
        hashed => hashed?,
    };
    let account = Account {
        user_id: Uuid::new_v4(),
        username,
        email,
        password_hash,
        created_at: Utc::now(),
        generation: 0,
        email_verified: false,
    };
    state.accounts.create(&account).await?;
    tracing::info!(user_id = %account.user_id, "account registered");
    if let Err(err) = recovery::send_verification(&state, &account).await {
        // The account exists; a new link is one `POST /email/verify/resend` away.
        tracing::warn!(user_id = %account.user_id, error = ?err, "verification mail not sent");
    }
    Ok(Json(RegisterResponse {
        user_id: account.user_id,
        username: account.username.as_str().to_owned(),
        message: "User registered successfully",
    }))
}

#[derive(Deserialize)]
pub struct LoginRequest {
    username: String,
    password: String,
}

/// The answer of `/login` and `/refresh`: an access token and the refresh token that
/// gets the next one.
#[derive(Serialize)]
pub struct LoginResponse {
    token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
}

impl AppState {
    fn refresh_expires_at(&self, now: i64) -> i64 {
        now.saturating_add(i64::try_from(self.refresh_token_expiry.as_secs()).unwrap_or(i64::MAX))
    }

    /// When every token a session issues now has expired: its record lives that long.
    pub(crate) fn session_expires_at(&self, now: i64) -> i64 {
        until_both_expire(now, self.refresh_token_expiry, self.tokens.ttl())
    }

    fn answer(
        &self,
        account: &Account,
        sid: Uuid,
        refresh: RefreshSecret,
    ) -> Result<LoginResponse, Error> {
        let username = account.username.as_str();
        let verified = account.email_verified;
        let issued = self
            .tokens
            .issue_as(account.user_id, username, sid, verified)?;
        Ok(LoginResponse {
            token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            refresh_token: refresh.expose().to_owned(),
        })
    }
}

pub async fn login(
    state: State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    req: Json<LoginRequest>,
) -> Result<Json<LoginResponse>, Error> {
    let outcome = attempt_login(state, ip, headers, req).await;
    match &outcome {
        Ok(_) => metrics::count(Event::LoginSuccess),
        Err(Error::InvalidCredentials) => metrics::count(Event::LoginFailure),
        Err(Error::LoginLocked { .. }) => metrics::count(Event::LoginLockout),
        Err(_) => {}
    }
    outcome
}

/// The login itself; [`login`] counts how it ended.
async fn attempt_login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> Result<Json<LoginResponse>, Error> {
    let password = Password::parse_attempt(req.password)?;
    let username = Username::parse(&req.username).ok();
    let reservation = limits::reserve(
        state.attempts.as_ref(),
        &state.login_limits,
        username.as_ref(),
        ip,
    )
    .await?;
    let account = match &username {
        Some(username) => state.accounts.find_by_username(username).await?,
        None => None,
    };
    let hash = account.as_ref().map(|a| a.password_hash.as_str());
    let checked = state.passwords.verify(&password, hash).await;
    if let Err(Error::PasswordChecksBusy { .. }) = checked {
        reservation.unchecked(state.attempts.as_ref()).await;
    }
    if !checked? {
        return Err(Error::InvalidCredentials);
    }
    let account = account.ok_or(Error::InvalidCredentials)?;
    if state.email_verification == EmailVerification::Required && !account.email_verified {
        // The password was right: the attempt is no failure.
        reservation.succeeded(state.attempts.as_ref()).await;
        return Err(Error::EmailNotVerified);
    }
    let settle = reservation.settle();

    let now = Utc::now().timestamp();
    let refresh = RefreshSecret::generate();
    let session = Session {
        id: Uuid::new_v4(),
        user_id: account.user_id,
        username: account.username.as_str().to_owned(),
        started: now,
        last_used: now,
        ip: ip.map(|ip| ip.to_string()),
        user_agent: user_agent(&headers),
        generation: account.generation,
        expires_at: state.session_expires_at(now),
        ended_at: None,
    };
    let first = RefreshRecord {
        hash: refresh.hash(),
        family: session.id,
        user_id: account.user_id,
        username: session.username.clone(),
        expires_at: state.refresh_expires_at(now),
        used: false,
        used_at: None,
        generation: account.generation,
    };
    if !state
        .sessions
        .start_login(&account, &session, &first, &settle)
        .await?
    {
        // The password changed or the account went between the check and now.
        return Err(Error::InvalidCredentials);
    }
    rehash_if_needed(&state, &account, &password).await;
    state.publish_key().await?;
    state.answer(&account, session.id, refresh).map(Json)
}

/// Stores a hash of `password` at the current `BCRYPT_COST` when `account`'s was made at
/// another, conditional on the hash the login verified (a password changed meanwhile is
/// left alone); the generation and the sessions stay. A failure is logged, not
/// answered: the login has succeeded, and the next one tries again.
async fn rehash_if_needed(state: &AppState, account: &Account, password: &Password) {
    if !state.passwords.needs_rehash(&account.password_hash) {
        return;
    }
    let rehashed = match state.passwords.hash(password).await {
        Ok(new_hash) => state.accounts.rehash(account, &new_hash).await,
        Err(e) => Err(e),
    };
    match rehashed {
        Ok(true) => {
            tracing::info!(user_id = %account.user_id, "password rehashed at the current cost")
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(user_id = %account.user_id, error = ?e, "password rehash failed"),
    }
}

/// The request's `User-Agent`, trimmed and cut to [`Session::MAX_USER_AGENT`]
/// characters, when it has one.
pub(crate) fn user_agent(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(axum::http::header::USER_AGENT)?.to_str().ok()?;
    let cut: String = raw.trim().chars().take(Session::MAX_USER_AGENT).collect();
    (!cut.is_empty()).then_some(cut)
}

#[derive(Deserialize)]
pub struct RefreshRequest {
    refresh_token: String,
}

pub async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(req): Json<RefreshRequest>,
) -> Result<Json<LoginResponse>, Error> {
    let presented = RefreshSecret::parse(&req.refresh_token).ok_or(Error::InvalidRefreshToken)?;
    let next = RefreshSecret::generate();
    let now = Utc::now().timestamp();
    let used = SessionUse {
        now,
        ip: ip.map(|ip| ip.to_string()),
        user_agent: user_agent(&headers),
    };
    let rotation = state
        .sessions
        .rotate_refresh(
            &presented.hash(),
            &next.hash(),
            state.refresh_expires_at(now),
            state.session_expires_at(now),
            &used,
            state.refresh_reuse_interval,
        )
        .await?;
    match rotation {
        Rotation::Rotated(record) => {
            state.publish_key().await?;
            // The account as it is now, for what the new token says of it
            // (`email_verified`): one read of the username's copy.
            let username =
                Username::parse(&record.username).map_err(|_| Error::InvalidRefreshToken)?;
            let account = state
                .accounts
                .find_by_username(&username)
                .await?
                .filter(|a| a.user_id == record.user_id)
                .ok_or(Error::InvalidRefreshToken)?;
            state.answer(&account, record.family, next).map(Json)
        }
        Rotation::Refused => Err(Error::InvalidRefreshToken),
        Rotation::Reused { family } => {
            tracing::warn!(session = %family, "retired refresh token presented again: session ended");
            metrics::count(Event::RefreshReuse);
            Err(Error::InvalidRefreshToken)
        }
    }
}

#[derive(Deserialize)]
pub struct LogoutRequest {
    refresh_token: Option<String>,
}

/// Ends the bearer token's session (every access token of it and its refresh token)
/// and, when the body names a refresh token of the caller's from another session, that
/// session too. A refresh token that is unknown, expired or malformed cannot be used
/// anyway and is ignored; one that belongs to another user refuses the whole request
/// and ends nothing.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<LogoutRequest>,
) -> Result<Json<Value>, Error> {
    let bearer = edge::http::bearer_token(&headers)?;
    let claims = verify_access(&state.tokens, state.checks.as_ref(), bearer).await?;
    let now = Utc::now().timestamp();
    let presented = body
        .and_then(|b| b.refresh_token)
        .and_then(|t| RefreshSecret::parse(&t));
    let mut other = None;
    if let Some(presented) = presented
        && let Some(record) = state.sessions.find_refresh(&presented.hash()).await?
    {
        if record.user_id != claims.user_id() {
            return Err(Error::InvalidRefreshToken);
        }
        other = Some(record.family).filter(|family| *family != claims.session_id());
    }
    // Both sessions are known to be the caller's (the bearer's was just checked live,
    // the other's token names the caller), so each ends with one conditional write.
    for sid in std::iter::once(claims.session_id()).chain(other) {
        state.sessions.end_session(None, sid, now).await?;
    }
    Ok(Json(json!({"message": "Logged out successfully"})))
}

#[derive(Deserialize)]
pub struct ValidateRequest {
    token: String,
}

#[derive(Serialize)]
pub struct ValidateResponse {
    valid: bool,
    user_id: String,
    username: String,
}

pub async fn validate(
    State(state): State<AppState>,
    Json(req): Json<ValidateRequest>,
) -> Result<Json<ValidateResponse>, Error> {
    let claims = verify_access(&state.tokens, state.checks.as_ref(), &req.token).await?;
    Ok(Json(ValidateResponse {
        valid: true,
        user_id: claims.sub,
        username: claims.username,
    }))
}
