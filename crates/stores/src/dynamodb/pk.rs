//! Every partition key the three tables hold, built here and nowhere else (the layout
//! is in `TABLES.md`): an account and its claims in the accounts table; a user's marker,
//! sessions, refresh tokens, login attempts and public keys in the security table.

use uuid::Uuid;

use crate::{AttemptKey, MailPurpose, MailRequest};
use domain::refresh::TokenHash;
use domain::{Email, Username};

/// The prefix of a user's items: the account (accounts table) and the user's marker
/// (security table) share it, each in its own table.
pub const USER: &str = "USER#";
/// The prefix of a session's item (security table).
pub const SESSION: &str = "SESSION#";
/// The prefix of a username claim (accounts table).
pub const USERNAME: &str = "USERNAME#";
/// The prefix of an email claim (accounts table).
pub const EMAIL: &str = "EMAIL#";
/// The prefix of a public key (security table).
pub const KEY: &str = "KEY#";
/// The partition key of the key registry item (security table).
pub const REGISTRY: &str = "KEYS";

/// `USER#<id>`: the account in the accounts table, the user's marker in the security
/// table.
pub fn user(user_id: Uuid) -> String {
    format!("{USER}{user_id}")
}

/// `USERNAME#<lowercased name>`: the username claim.
pub fn username(username: &Username) -> String {
    format!("{USERNAME}{}", username.key())
}

/// `EMAIL#<lowercased email>`: the email claim.
pub fn email(email: &Email) -> String {
    format!("{EMAIL}{}", email.key())
}

/// `SESSION#<sid>`.
pub fn session(sid: Uuid) -> String {
    format!("{SESSION}{sid}")
}

/// The session id of a `SESSION#<sid>` key.
pub fn session_id(pk: &str) -> Option<Uuid> {
    pk.strip_prefix(SESSION)
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// `REFRESH#<SHA-256>`.
pub fn refresh(hash: &TokenHash) -> String {
    format!("REFRESH#{}", hash.as_str())
}

/// `KEY#<kid>`: a public key.
pub fn key(kid: &str) -> String {
    format!("{KEY}{kid}")
}

/// The counter of an [`AttemptKey`]: `ATTEMPTS#USER#<name>`, `ATTEMPTS#IP#<ip>`,
/// `REGISTER#<ip>`, or `MAILREQ#USER#<id>`, `MAILREQ#EMAIL#<address>`, `MAILREQ#IP#<ip>`.
pub fn attempt(key: &AttemptKey) -> String {
    match key {
        AttemptKey::User(name) => format!("ATTEMPTS#{USER}{name}"),
        AttemptKey::Ip(ip) => format!("ATTEMPTS#IP#{ip}"),
        AttemptKey::Register(ip) => format!("REGISTER#{ip}"),
        AttemptKey::Mail(MailRequest::User(id)) => format!("MAILREQ#USER#{id}"),
        AttemptKey::Mail(MailRequest::Address(address)) => {
            format!("MAILREQ#EMAIL#{}", address.to_ascii_lowercase())
        }
        AttemptKey::Mail(MailRequest::Client(ip)) => format!("MAILREQ#IP#{ip}"),
    }
}

/// `MAIL#<SHA-256>`: a mailed token.
pub fn mail_token(hash: &TokenHash) -> String {
    format!("MAIL#{}", hash.as_str())
}

/// `MAILS#<user_id>#<purpose>`: which mailed token of the user's for `purpose` is the
/// live one.
pub fn latest_mail_token(user_id: Uuid, purpose: MailPurpose) -> String {
    format!("MAILS#{user_id}#{}", purpose.as_str())
}
