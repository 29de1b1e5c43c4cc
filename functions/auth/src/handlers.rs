//! The auth handlers, one per route of the spec.

use axum::extract::State;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use shared::domain::{Email, Password, Username};
use shared::store::Account;
use shared::{Error, Json};

use crate::AppState;

pub async fn health() -> Json<Value> {
    Json(json!({
        "status": "ok",
        "message": "API is running",
        "endpoints": {
            "health": "/",
            "register": "/register",
            "login": "/login",
            "validate": "/validate"
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

pub async fn register(
    State(state): State<AppState>,
    Json(req): Json<RegisterRequest>,
) -> Result<Json<RegisterResponse>, Error> {
    let username = Username::parse(&req.username)?;
    let email = Email::parse(&req.email)?;
    let password = Password::parse(req.password)?;
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

#[derive(Serialize)]
pub struct LoginResponse {
    token: String,
    token_type: &'static str,
    expires_in: u64,
}

pub async fn login(
    State(state): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> Result<Json<LoginResponse>, Error> {
    let password = Password::parse_attempt(req.password)?;
    let account = match Username::parse(&req.username) {
        Ok(username) => state.accounts.find_by_username(&username).await?,
        Err(_) => None,
    };
    let hash = account.as_ref().map(|a| a.password_hash.as_str());
    if !state.passwords.verify(&password, hash).await? {
        return Err(Error::InvalidCredentials);
    }
    let account = account.ok_or(Error::InvalidCredentials)?;
    let issued = state
        .tokens
        .issue(account.user_id, account.username.as_str())?;
    Ok(Json(LoginResponse {
        token: issued.token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
    }))
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
    let claims = state.tokens.verify(&req.token)?;
    Ok(Json(ValidateResponse {
        valid: true,
        user_id: claims.sub,
        username: claims.username,
    }))
}
