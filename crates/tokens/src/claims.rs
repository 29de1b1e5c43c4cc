//! What a token says: its claims, as issued and as a verifier reads them, and why one
//! is refused.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use errors::Error;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub username: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// The session the token was issued in.
    pub sid: String,
    pub iss: String,
    pub aud: String,
    /// Whether the account's address was verified when the token was issued (absent in
    /// tokens from before: false).
    #[serde(default)]
    pub email_verified: bool,
}

impl Claims {
    /// The user id the token speaks for (checked to be a UUID at verification).
    pub fn user_id(&self) -> Uuid {
        Uuid::parse_str(&self.sub).unwrap_or_default()
    }

    /// The session the token belongs to (checked to be a UUID at verification).
    pub fn session_id(&self) -> Uuid {
        Uuid::parse_str(&self.sid).unwrap_or_default()
    }
}

/// What a verifier reads of a token: its claims, and `nbf` when it has one (our tokens
/// have none, but a token that says it is not valid yet is refused).
#[derive(Deserialize)]
pub(crate) struct Presented {
    #[serde(flatten)]
    pub(crate) claims: Claims,
    pub(crate) nbf: Option<i64>,
}

/// A freshly issued token.
#[derive(Debug)]
pub struct Issued {
    pub token: String,
    pub expires_in: u64,
    pub claims: Claims,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    Expired,
    Invalid,
    /// Well formed and of the right algorithm, but signed under a key id this verifier
    /// does not know yet (it may ask its key source, then verify again).
    UnknownKey(String),
}

impl From<Rejected> for Error {
    fn from(r: Rejected) -> Self {
        match r {
            Rejected::Expired => Error::TokenExpired,
            Rejected::Invalid | Rejected::UnknownKey(_) => Error::InvalidToken,
        }
    }
}
