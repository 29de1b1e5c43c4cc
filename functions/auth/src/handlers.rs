//! The auth handlers: the spec's routes, plus refresh and logout.

use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use shared::domain::{Email, Password, Username};
use shared::json::OptionalJson;
use shared::refresh::RefreshSecret;
use shared::store::{Account, RefreshRecord, Rotation};
use shared::token::verify_access;
use shared::{Error, Json};

use crate::{limits, AppState, ClientIp};

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
            "logout": "/logout"
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
/// with 429 before bcrypt runs. A taken username or email is found only by the store's
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
    let password_hash = state.passwords.hash(&password).await?;
    let account = Account {
        user_id: Uuid::new_v4(),
        username,
        email,
        password_hash,
        created_at: Utc::now(),
    };
    state.accounts.create(&account).await?;
    tracing::info!(user_id = %account.user_id, "account registered");
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

    fn answer(
        &self,
        user_id: Uuid,
        username: &str,
        refresh: RefreshSecret,
    ) -> Result<LoginResponse, Error> {
        let issued = self.tokens.issue(user_id, username)?;
        Ok(LoginResponse {
            token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            refresh_token: refresh.expose().to_owned(),
        })
    }
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
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
    if !state.passwords.verify(&password, hash).await? {
        return Err(Error::InvalidCredentials);
    }
    let account = account.ok_or(Error::InvalidCredentials)?;
    reservation.succeeded().await;

    let refresh = RefreshSecret::generate();
    state
        .refresh
        .put_refresh(&RefreshRecord {
            hash: refresh.hash(),
            family: Uuid::new_v4(),
            user_id: account.user_id,
            username: account.username.as_str().to_owned(),
            expires_at: state.refresh_expires_at(Utc::now().timestamp()),
            used: false,
        })
        .await?;
    state
        .answer(account.user_id, account.username.as_str(), refresh)
        .map(Json)
}

#[derive(Deserialize)]
pub struct RefreshRequest {
    refresh_token: String,
}

pub async fn refresh(
    State(state): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> Result<Json<LoginResponse>, Error> {
    let presented = RefreshSecret::parse(&req.refresh_token).ok_or(Error::InvalidRefreshToken)?;
    let next = RefreshSecret::generate();
    let now = Utc::now().timestamp();
    let rotation = state
        .refresh
        .rotate_refresh(
            &presented.hash(),
            &next.hash(),
            state.refresh_expires_at(now),
            now,
        )
        .await?;
    match rotation {
        Rotation::Rotated(record) => state
            .answer(record.user_id, &record.username, next)
            .map(Json),
        Rotation::Refused => Err(Error::InvalidRefreshToken),
        Rotation::Reused { family } => {
            tracing::warn!(%family, "retired refresh token presented again: family revoked");
            Err(Error::InvalidRefreshToken)
        }
    }
}

#[derive(Deserialize)]
pub struct LogoutRequest {
    refresh_token: Option<String>,
}

/// Revokes the bearer access token until it expires and, when the body names one of
/// the caller's refresh tokens, that token's whole family. A refresh token that is
/// unknown, expired or malformed cannot be used anyway and is ignored; one that belongs
/// to another user refuses the whole request and revokes nothing.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    OptionalJson(body): OptionalJson<LogoutRequest>,
) -> Result<Json<Value>, Error> {
    let bearer = shared::http::bearer_token(&headers)?;
    let claims = verify_access(&state.tokens, state.revocations.as_ref(), bearer).await?;
    let now = Utc::now().timestamp();
    let presented = body
        .and_then(|b| b.refresh_token)
        .and_then(|t| RefreshSecret::parse(&t));
    if let Some(presented) = presented {
        if let Some(record) = state.refresh.find_refresh(&presented.hash()).await? {
            if record.user_id != claims.user_id() {
                return Err(Error::InvalidRefreshToken);
            }
            state
                .refresh
                .revoke_family(record.family, state.refresh_expires_at(now))
                .await?;
        }
    }
    state
        .revocations
        .revoke_access(&claims.jti, claims.exp)
        .await?;
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
    let claims = verify_access(&state.tokens, state.revocations.as_ref(), &req.token).await?;
    Ok(Json(ValidateResponse {
        valid: true,
        user_id: claims.sub,
        username: claims.username,
    }))
}
