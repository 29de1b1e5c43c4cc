//! Tokens sent by mail (issue 33): a link that verifies an address, resets a password
//! or confirms an email change. 256 random bits ([`RefreshSecret`]-shaped) handed out
//! in the mail, stored only as their SHA-256, bound to one user, one purpose and the
//! address the mail went to, single use, and retired by the next token issued for the
//! same user and purpose.
//!
//! [`RefreshSecret`]: domain::refresh::RefreshSecret

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use domain::Email;
use domain::refresh::TokenHash;
use errors::Error;

/// What a mailed token is for; a token of one purpose does nothing for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailPurpose {
    /// Proves that the account's address is its owner's.
    VerifyEmail,
    /// Sets a new password without the old one.
    ResetPassword,
    /// Proves the new address of an email change.
    ChangeEmail,
}

impl MailPurpose {
    pub const ALL: [MailPurpose; 3] = [
        MailPurpose::VerifyEmail,
        MailPurpose::ResetPassword,
        MailPurpose::ChangeEmail,
    ];

    /// The stored name of the purpose.
    pub fn as_str(self) -> &'static str {
        match self {
            MailPurpose::VerifyEmail => "verify_email",
            MailPurpose::ResetPassword => "reset_password",
            MailPurpose::ChangeEmail => "change_email",
        }
    }

    /// The purpose stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// How long a token of this purpose lives: a reset 1 hour, a verification and an
    /// email change 24 hours (OWASP's Forgot Password Cheat Sheet; ASVS V6).
    pub fn lifetime(self) -> Duration {
        match self {
            MailPurpose::ResetPassword => Duration::from_secs(3600),
            MailPurpose::VerifyEmail | MailPurpose::ChangeEmail => Duration::from_secs(86_400),
        }
    }
}

/// A mailed token as stored: by its hash only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailToken {
    pub hash: TokenHash,
    pub purpose: MailPurpose,
    pub user_id: Uuid,
    /// The address the mail went to: the account's (verification, reset) or the new one
    /// (email change).
    pub email: Email,
    /// Epoch seconds after which the token is dead (and TTL removes it).
    pub expires_at: i64,
}

/// Why a mailed token did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Unknown, already used, retired by a newer token, expired, or of another purpose.
    Invalid,
    /// Valid, but the account has changed since the mail was sent (its address is no
    /// longer the one the mail went to, or it is gone).
    Stale,
}

/// Mailed tokens in the security table, owned by the auth function. Using one up is a
/// [`CrossTableWrites`](crate::CrossTableWrites) step, as it changes the account.
#[async_trait]
pub trait MailTokenStore: Send + Sync {
    /// Stores `token` as the one live token of its user and purpose, retiring every
    /// earlier one, in one atomic step.
    async fn issue(&self, token: &MailToken) -> Result<(), Error>;

    /// The stored token with this hash, live or not (used tokens are gone).
    async fn find(&self, hash: &TokenHash) -> Result<Option<MailToken>, Error>;
}
