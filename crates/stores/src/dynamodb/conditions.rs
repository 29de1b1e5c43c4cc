//! Every condition expression the DynamoDB stores send, each written here once, with
//! the placeholders it names (`TABLES.md` says which call carries which).

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::string_attr;
use crate::Account;

/// A session item that exists and has not ended.
macro_rules! session_open {
    () => {
        "attribute_exists(pk) AND attribute_not_exists(ended_at)"
    };
}

/// A user's marker that records no deletion.
macro_rules! not_deleted {
    () => {
        "attribute_not_exists(deleted_at)"
    };
}

/// An account copy with the hash the caller verified.
macro_rules! verified {
    () => {
        "password_hash = :verified AND user_id = :uid"
    };
}

/// A user's marker that lets a session of generation `:gen` (or the kept `:sid`) live.
macro_rules! user_allows {
    () => {
        concat!("(", not_deleted!(), " AND (gen = :gen OR kept = :sid))")
    };
}

/// An open session of `:uid` not expired at `:now`.
macro_rules! session_live {
    () => {
        concat!(session_open!(), " AND user_id = :uid AND expires_at > :now")
    };
}

/// Nothing is stored under the item's `pk` yet: a claim, a new session or token, the
/// first key registry.
pub(super) const NEW_ITEM: &str = "attribute_not_exists(pk)";

/// An account copy (`USER#`, `USERNAME#`) still has the hash the caller verified:
/// `:verified`, `:uid` (see [`verified_values`]).
pub(super) const VERIFIED: &str = verified!();

/// [`VERIFIED`], and the copy still has the address `:email`.
pub(super) const VERIFIED_AT: &str = concat!(verified!(), " AND email = :email");

/// A mailed token not yet used, of `:purpose`, unexpired at `:now`.
pub(super) const TOKEN_LIVE: &str =
    "attribute_exists(pk) AND purpose = :purpose AND expires_at > :now";

/// The user's latest mailed token of its purpose is still `:hash`.
pub(super) const LATEST_TOKEN: &str = "latest = :hash";

/// An email claim still belongs to the user: `:uid`.
pub(super) const CLAIMED_BY: &str = "user_id = :uid";

/// The values [`VERIFIED`] names, for `account`.
pub(super) fn verified_values(account: &Account) -> [(&'static str, AttributeValue); 2] {
    [
        (":verified", string_attr(&account.password_hash)),
        (":uid", string_attr(account.user_id.to_string())),
    ]
}

/// A user's marker (`USER#` in the security table) records no deletion.
pub(super) const NOT_DELETED: &str = not_deleted!();

/// A user's marker lets a session of generation `:gen` live, or the session `:sid`
/// kept by the last password change.
pub(super) const USER_ALLOWS: &str = user_allows!();

/// [`USER_ALLOWS`] for generation 0, which also holds when the user has no marker.
pub(super) const USER_ALLOWS_FIRST: &str = concat!("attribute_not_exists(pk) OR ", user_allows!());

/// A session that exists and has not ended.
pub(super) const SESSION_OPEN: &str = session_open!();

/// [`SESSION_OPEN`], and the session is `:uid`'s.
pub(super) const SESSION_OPEN_OF: &str = concat!(session_open!(), " AND user_id = :uid");

/// A session of `:uid` that is open and has not expired at `:now`.
pub(super) const SESSION_LIVE: &str = session_live!();

/// [`SESSION_LIVE`], and still of generation `:gen`.
pub(super) const SESSION_LIVE_AT_GENERATION: &str = concat!(session_live!(), " AND gen = :gen");

/// A refresh token not yet retired (`#used`: `used`; `:false`).
pub(super) const TOKEN_UNUSED: &str = "#used = :false";

/// A refresh token already retired (`#used`: `used`; `:true`).
pub(super) const TOKEN_USED: &str = "#used = :true";

/// A profile exists (profiles table, keyed by `user_id`).
pub(super) const PROFILE_EXISTS: &str = "attribute_exists(user_id)";

/// No profile exists yet.
pub(super) const NO_PROFILE: &str = "attribute_not_exists(user_id)";

/// The key registry is still at version `:v` (optimistic locking).
pub(super) const REGISTRY_AT: &str = "version = :v";

/// An attempt counter that does not exist or whose window is still open at `:now`.
pub(super) const WINDOW_OPEN_OR_NEW: &str = "attribute_not_exists(pk) OR expires_at > :now";

/// An attempt counter whose window has closed by `:now`.
pub(super) const WINDOW_CLOSED: &str = "expires_at <= :now";

/// An attempt counter whose window is open at `:now` and that has attempts to give
/// back (`#attempts`: `attempts`; `:zero`).
pub(super) const WINDOW_OPEN_WITH_ATTEMPTS: &str = "expires_at > :now AND #attempts > :zero";
