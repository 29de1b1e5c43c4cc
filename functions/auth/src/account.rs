//! A signed-in user's own account: the sessions they can see and end, the password
//! they can change and the account they can delete. Every route needs a bearer token
//! of a live session; the password routes count a wrong password like a failed login.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use domain::{Password, Username};
use errors::{Error, Json};
use stores::{Account, Liveness, Session};
use tokens::{Claims, verify_access, verify_session};

use crate::{AppState, ClientIp, limits};

/// At most this many sessions are listed, newest first.
pub const MAX_LISTED: usize = 100;

/// How many of a user's other sessions a password change counts when it says how many
/// it ended (they all end, counted or not).
const MAX_COUNTED: usize = 5000;

pub(crate) async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Claims, Error> {
    let bearer = edge::http::bearer_token(headers)?;
    verify_access(&state.tokens, state.checks.as_ref(), bearer).await
}

fn rfc3339(epoch: i64) -> String {
    DateTime::<Utc>::from_timestamp(epoch, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Serialize)]
pub struct SessionView {
    id: Uuid,
    created_at: String,
    last_used_at: String,
    ip_address: Option<String>,
    user_agent: Option<String>,
    current: bool,
}

#[derive(Serialize)]
pub struct SessionList {
    sessions: Vec<SessionView>,
}

/// `GET /sessions`: the caller's live sessions, newest first.
pub async fn sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionList>, Error> {
    let claims = caller(&state, &headers).await?;
    let now = Utc::now().timestamp();
    let current = claims.session_id();
    let sessions = state
        .sessions
        .list_sessions(claims.user_id(), MAX_LISTED, now)
        .await?;
    Ok(Json(SessionList {
        sessions: sessions
            .into_iter()
            .map(|s: Session| SessionView {
                id: s.id,
                created_at: rfc3339(s.started),
                last_used_at: rfc3339(s.last_used),
                ip_address: s.ip,
                user_agent: s.user_agent,
                current: s.id == current,
            })
            .collect(),
    }))
}

/// `DELETE /sessions/{id}`: ends one of the caller's live sessions (the current one
/// too); anything else is 404, whoever's it is.
pub async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let claims = caller(&state, &headers).await?;
    let sid = Uuid::parse_str(&id).map_err(|_| Error::SessionNotFound)?;
    let now = Utc::now().timestamp();
    if !state
        .sessions
        .end_session(Some(claims.user_id()), sid, now)
        .await?
    {
        return Err(Error::SessionNotFound);
    }
    tracing::info!(user_id = %claims.user_id(), session = %sid, "session ended by its user");
    Ok(Json(json!({"message": "Session ended"})))
}

/// The caller's account when `password` is its password; a wrong password is counted
/// against the username and the address like a failed login (and refused with 429 past
/// the limits). `None` when the account is gone.
pub(crate) async fn verified_account(
    state: &AppState,
    claims: &Claims,
    ip: Option<std::net::IpAddr>,
    password: &Password,
) -> Result<Option<Account>, Error> {
    let username = Username::parse(&claims.username).map_err(|_| Error::InvalidToken)?;
    let reservation = limits::reserve(
        state.attempts.as_ref(),
        &state.login_limits,
        Some(&username),
        ip,
    )
    .await?;
    let account = state
        .accounts
        .find_by_username(&username)
        .await?
        .filter(|a| a.user_id == claims.user_id());
    let hash = account.as_ref().map(|a| a.password_hash.as_str());
    let checked = state.passwords.verify(password, hash).await;
    if let Err(Error::PasswordChecksBusy { .. }) = checked {
        reservation.unchecked(state.attempts.as_ref()).await;
    }
    if !checked? {
        return match account {
            Some(_) => Err(Error::WrongPassword),
            None => Ok(None),
        };
    }
    reservation.succeeded(state.attempts.as_ref()).await;
    Ok(account)
}

#[derive(Deserialize)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

#[derive(Serialize)]
pub struct PasswordChanged {
    message: &'static str,
    sessions_ended: usize,
}

/// `POST /password`: a new password under the registration rules; every other session
/// of the user ends at once, and the answer says how many there were.
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(req): Json<PasswordChange>,
) -> Result<Json<PasswordChanged>, Error> {
    let claims = caller(&state, &headers).await?;
    let current = Password::parse_attempt(req.current_password)?;
    let new = Password::parse(req.new_password)?;
    if new.expose() == current.expose() {
        return Err(Error::bad_request(
            "New password must differ from the current one",
        ));
    }
    let account = verified_account(&state, &claims, ip, &current)
        .await?
        .ok_or(Error::TokenRevoked)?;
    let now = Utc::now().timestamp();
    let sid = claims.session_id();
    let others = state
        .sessions
        .list_sessions(account.user_id, MAX_COUNTED, now)
        .await?
        .iter()
        .filter(|s| s.id != sid)
        .count();
    let new_hash = state.passwords.hash(&new).await?;
    if !state
        .cross_table
        .change_password(&account, &new_hash, sid)
        .await?
    {
        // Changed or deleted by another request since the check.
        return Err(Error::WrongPassword);
    }
    tracing::info!(user_id = %account.user_id, sessions_ended = others, "password changed");
    crate::recovery::notify_password_changed(&state, &account).await;
    Ok(Json(PasswordChanged {
        message: "Password changed successfully",
        sessions_ended: others,
    }))
}

#[derive(Deserialize)]
pub struct AccountDeletion {
    password: String,
}

fn deleted() -> Json<Value> {
    Json(json!({"message": "Account deleted successfully"}))
}

/// `DELETE /account`: the account, its claims, its profile and every session go in one
/// step. Asked again with a token of the deleted account, the answer is the same.
pub async fn delete_account(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(req): Json<AccountDeletion>,
) -> Result<Json<Value>, Error> {
    let bearer = edge::http::bearer_token(&headers)?;
    let (claims, liveness) = verify_session(&state.tokens, state.checks.as_ref(), bearer).await?;
    match liveness {
        Liveness::Live => {}
        Liveness::UserDeleted => return Ok(deleted()),
        Liveness::Ended => return Err(Error::TokenRevoked),
    }
    let password = Password::parse_attempt(req.password)?;
    let account = verified_account(&state, &claims, ip, &password).await?;
    let now = Utc::now().timestamp();
    let done = match &account {
        Some(account) => {
            let until = state.session_expires_at(now);
            state
                .cross_table
                .delete_account(account, until, now)
                .await?
        }
        None => false,
    };
    if !done {
        // Deleted by a concurrent request (the same answer), or the password changed.
        let again = state
            .checks
            .liveness(claims.user_id(), claims.session_id(), now)
            .await?;
        return match again {
            Liveness::UserDeleted => Ok(deleted()),
            _ => Err(Error::WrongPassword),
        };
    }
    tracing::info!(user_id = %claims.user_id(), "account deleted");
    Ok(deleted())
}
