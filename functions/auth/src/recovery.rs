//! Accounts users can recover (issue 33): email verification, password reset and email
//! change, each by a link mailed to the address it proves. The link's token is 256
//! random bits ([`RefreshSecret`]) the store sees only hashed, single use, bound to the
//! user, its purpose and the address (`stores::mail_tokens`); using one up changes the
//! account in the same atomic step (`CrossTableWrites`).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use domain::refresh::{RefreshSecret, TokenHash};
use domain::{Email, Password};
use edge::client_ip::limited_address;
use errors::{Error, Json};
use mail::Mail;
use stores::{Account, MailPurpose, MailRequest, MailToken, TokenRefusal, Used};

use crate::account::{caller, verified_account};
use crate::{AppState, ClientIp, limits};

/// Mints a token of `purpose` for `account`, sent to `to`: stored (hashed), retiring
/// the earlier ones of the purpose; the secret for the link.
async fn mint(
    state: &AppState,
    account: &Account,
    purpose: MailPurpose,
    to: &Email,
) -> Result<RefreshSecret, Error> {
    let secret = RefreshSecret::generate();
    let lifetime = i64::try_from(purpose.lifetime().as_secs()).unwrap_or(i64::MAX);
    let token = MailToken {
        hash: secret.hash(),
        purpose,
        user_id: account.user_id,
        email: to.clone(),
        expires_at: Utc::now().timestamp().saturating_add(lifetime),
    };
    state.mail_tokens.issue(&token).await?;
    Ok(secret)
}

/// Sends `mail`; a failure is the caller's to answer.
async fn send(state: &AppState, mail: Result<Mail, mail::MailError>) -> Result<(), Error> {
    state.mailer.send(&mail?).await?;
    Ok(())
}

/// Sends `mail` as a notice: a failure is logged, never answered (the change it tells
/// of is done).
async fn notify(state: &AppState, what: &str, mail: Result<Mail, mail::MailError>) {
    if let Err(err) = send(state, mail).await {
        tracing::warn!(error = ?err, notice = what, "notice mail not sent");
    }
}

/// Mails `account` a new verification link.
pub(crate) async fn send_verification(state: &AppState, account: &Account) -> Result<(), Error> {
    let secret = mint(state, account, MailPurpose::VerifyEmail, &account.email).await?;
    let mail = state
        .mails
        .verify_email(&account.email, account.username.as_str(), secret.expose());
    send(state, mail).await
}

/// Mails `account` the notice that its password was changed.
pub(crate) async fn notify_password_changed(state: &AppState, account: &Account) {
    let mail = state
        .mails
        .password_changed(&account.email, account.username.as_str());
    notify(state, "password changed", mail).await;
}

/// A token as presented in a body: its hash, or 400 when it cannot be one of ours.
fn presented(token: &str) -> Result<TokenHash, Error> {
    RefreshSecret::parse(token)
        .map(|secret| secret.hash())
        .ok_or(Error::InvalidMailToken)
}

/// What using up a token did, as an answer: the account as it was, or 400.
fn used(outcome: Used, what: &str) -> Result<Account, Error> {
    outcome.map_err(|refusal| {
        tracing::info!(?refusal, flow = what, "mailed token refused");
        match refusal {
            TokenRefusal::Invalid | TokenRefusal::Stale => Error::InvalidMailToken,
        }
    })
}

#[derive(Deserialize)]
pub struct TokenBody {
    token: String,
}

/// `POST /email/verify {token}`: the account's address is verified.
pub async fn verify_email(
    State(state): State<AppState>,
    Json(req): Json<TokenBody>,
) -> Result<Json<Value>, Error> {
    confirm(&state, &req.token, MailPurpose::VerifyEmail).await?;
    Ok(Json(json!({"message": "Email verified"})))
}

/// Uses up the token of a link that needs nothing else (an address verified, an email
/// change confirmed): the account as it was, or 400 (409 when a new address was taken).
async fn confirm(state: &AppState, token: &str, purpose: MailPurpose) -> Result<Account, Error> {
    let hash = presented(token)?;
    let now = Utc::now().timestamp();
    let outcome = match purpose {
        MailPurpose::VerifyEmail => state.cross_table.verify_email(&hash, now).await?,
        MailPurpose::ChangeEmail => state.cross_table.change_email(&hash, now).await?,
        MailPurpose::ResetPassword => return Err(Error::internal("a reset needs its password")),
    };
    let account = used(outcome, purpose.as_str())?;
    tracing::info!(user_id = %account.user_id, flow = purpose.as_str(), "mailed link used");
    Ok(account)
}

/// `POST /email/verify/resend` (bearer): a new link, at most `MAIL_MAX_PER_USER` an
/// hour; 409 once verified.
pub async fn resend_verification(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), Error> {
    let claims = caller(&state, &headers).await?;
    let account = state
        .accounts
        .find_by_id(claims.user_id())
        .await?
        .ok_or(Error::TokenRevoked)?;
    if account.email_verified {
        return Err(Error::EmailAlreadyVerified);
    }
    let limits = state.mail_limits;
    let who = MailRequest::User(account.user_id);
    limits::count_mail(state.attempts.as_ref(), who, limits.per_user, limits.window).await?;
    send_verification(&state, &account).await?;
    let body = json!({"message": "Verification email sent"});
    Ok((StatusCode::ACCEPTED, Json(body)))
}

#[derive(Deserialize)]
pub struct ForgotRequest {
    email: String,
}

/// `POST /password/forgot {email}`: 202 with the same body whether or not the address
/// has an account, never sooner than `FORGOT_PASSWORD_MIN_MS` after it arrived (the
/// work for a known address, a token stored and a mail sent, runs within that time,
/// so both answer alike). Counted per address and per client before anything else,
/// known or not; a mail that cannot be sent is logged, not answered.
pub async fn forgot_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<ForgotRequest>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let arrived = Instant::now();
    let email = Email::parse(&req.email)?;
    let limits = state.mail_limits;
    let client = ip.map(|ip| (MailRequest::Client(limited_address(ip)), limits.per_client));
    let address = (MailRequest::Address(email.key()), limits.per_address);
    for (who, max) in client.into_iter().chain([address]) {
        limits::count_mail(state.attempts.as_ref(), who, max, limits.window).await?;
    }
    let work = send_reset(&state, &email, ip);
    let (sent, ()) = tokio::join!(work, tokio::time::sleep(state.forgot_floor));
    if let Err(err) = sent {
        tracing::warn!(error = ?err, "password reset mail not sent");
    }
    let late = arrived.elapsed().saturating_sub(state.forgot_floor);
    if late > Duration::from_millis(50) {
        tracing::warn!(
            late_ms = late.as_millis() as u64,
            "password reset took longer than FORGOT_PASSWORD_MIN_MS: its time tells"
        );
    }
    let body =
        json!({"message": "If an account has this email, a password reset link has been sent"});
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// The reset link for the account at `email`, if there is one.
async fn send_reset(state: &AppState, email: &Email, ip: Option<IpAddr>) -> Result<(), Error> {
    let Some(account) = state.accounts.find_by_email(email).await? else {
        tracing::info!(client = ?ip, "password reset asked for an address without an account");
        return Ok(());
    };
    let secret = mint(state, &account, MailPurpose::ResetPassword, &account.email).await?;
    let mail =
        state
            .mails
            .reset_password(&account.email, account.username.as_str(), secret.expose());
    send(state, mail).await?;
    tracing::info!(user_id = %account.user_id, "password reset link sent");
    Ok(())
}

#[derive(Deserialize)]
pub struct ResetRequest {
    token: String,
    new_password: String,
}

/// `POST /password/reset {token, new_password}`: the registration rules apply; every
/// session ends, the address counts as verified, and a notice goes to it.
pub async fn reset_password(
    State(state): State<AppState>,
    Json(req): Json<ResetRequest>,
) -> Result<Json<Value>, Error> {
    let hash = presented(&req.token)?;
    let password = Password::parse(req.new_password)?;
    let new_hash = state.passwords.hash(&password).await?;
    let now = Utc::now().timestamp();
    let outcome = state
        .cross_table
        .reset_password(&hash, &new_hash, now)
        .await?;
    let account = used(outcome, "reset")?;
    tracing::info!(user_id = %account.user_id, "password reset; every session ended");
    let mail = state
        .mails
        .password_reset_done(&account.email, account.username.as_str());
    notify(&state, "password reset", mail).await;
    Ok(Json(json!({"message": "Password reset successfully"})))
}

#[derive(Deserialize)]
pub struct EmailChange {
    new_email: String,
    password: String,
}

/// `POST /email {new_email, password}` (bearer): a confirmation link to the new
/// address and a notice to the old one; the change happens at `POST /email/confirm`.
pub async fn change_email(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(req): Json<EmailChange>,
) -> Result<(StatusCode, Json<Value>), Error> {
    let claims = caller(&state, &headers).await?;
    let new_email = Email::parse(&req.new_email)?;
    let password = Password::parse_attempt(req.password)?;
    let account = verified_account(&state, &claims, ip, &password)
        .await?
        .ok_or(Error::TokenRevoked)?;
    if new_email.key() == account.email.key() {
        return Err(Error::SameEmail);
    }
    if state.accounts.find_by_email(&new_email).await?.is_some() {
        return Err(Error::EmailTaken);
    }
    let limits = state.mail_limits;
    let who = MailRequest::User(account.user_id);
    limits::count_mail(state.attempts.as_ref(), who, limits.per_user, limits.window).await?;
    let secret = mint(&state, &account, MailPurpose::ChangeEmail, &new_email).await?;
    let username = account.username.as_str();
    let confirm = state
        .mails
        .confirm_email_change(&new_email, username, secret.expose());
    send(&state, confirm).await?;
    let notice = state
        .mails
        .email_change_notice(&account.email, username, &new_email);
    notify(&state, "email change asked", notice).await;
    tracing::info!(user_id = %account.user_id, "email change asked; confirmation sent");
    let body = json!({"message": "Confirmation email sent to the new address"});
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// `POST /email/confirm {token}`: the account moves to the new address (verified) in
/// one step; 409 when another account took it since.
pub async fn confirm_email_change(
    State(state): State<AppState>,
    Json(req): Json<TokenBody>,
) -> Result<Json<Value>, Error> {
    confirm(&state, &req.token, MailPurpose::ChangeEmail).await?;
    Ok(Json(json!({"message": "Email changed"})))
}
