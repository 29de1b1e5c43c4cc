//! Domain newtypes parsed at the boundary: a value of these types is valid by construction.

pub mod refresh;

use std::fmt;

use email_address::{EmailAddress, Options};

use errors::Error;

/// What a text newtype unique case-insensitively (`$name(String)`) has besides its
/// `parse`: `as_str` (documented `$as_str`), `key` (its lowercase form, which
/// uniqueness is decided on), `Debug` as `$name("…")` and `Display` as the text itself.
macro_rules! unique_text {
    ($name:ident, $as_str:literal) => {
        impl $name {
            #[doc = $as_str]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The key uniqueness is decided on.
            pub fn key(&self) -> String {
                self.0.to_ascii_lowercase()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A login name: 3 to 32 ASCII letters, digits, `_`, `.` or `-`; unique case-insensitively.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub const MIN_CHARS: usize = 3;
    pub const MAX_CHARS: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, Error> {
        let len = raw.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&len) {
            return Err(Error::bad_request(
                "Username must be 3 to 32 characters long",
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if !raw.chars().all(allowed) {
            return Err(Error::bad_request(
                "Username may contain only letters, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

unique_text!(Username, "The name as the user chose it.");

/// An email address (RFC 5321 syntax, no display name, at most 254 bytes); unique
/// case-insensitively.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub const MAX_BYTES: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, Error> {
        let invalid = || Error::bad_request("Invalid email address");
        if raw.is_empty() || raw.len() > Self::MAX_BYTES || !raw.is_ascii() {
            return Err(invalid());
        }
        let options = Options::default()
            .without_display_text()
            .without_domain_literal();
        let parsed = EmailAddress::parse_with_options(raw, options).map_err(|_| invalid())?;
        if !parsed.domain().contains('.') || parsed.domain().ends_with('.') {
            return Err(invalid());
        }
        Ok(Self(raw.to_owned()))
    }
}

unique_text!(Email, "The address as the user gave it.");

/// A password as typed: at least 8 characters and at most 72 bytes (bcrypt's limit).
/// Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 72;

    /// A new password, as chosen at registration.
    pub fn parse(raw: String) -> Result<Self, Error> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(Error::bad_request(
                "Password must be at least 8 characters long",
            ));
        }
        Self::parse_attempt(raw)
    }

    /// A password offered at login: any non-empty one that bcrypt can check untruncated
    /// (bcrypt stops at a NUL character, so `x` and `x\0y` would be the same password:
    /// one with NUL is refused, at login as at registration).
    pub fn parse_attempt(raw: String) -> Result<Self, Error> {
        if raw.is_empty() {
            return Err(Error::bad_request("Password must not be empty"));
        }
        if raw.contains('\0') {
            return Err(Error::bad_request(
                "Password must not contain NUL characters",
            ));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(Error::bad_request("Password must be at most 72 bytes long"));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        for ok in ["abc", "john_doe", "a.b-c", &"x".repeat(32), "ALICE"] {
            assert!(Username::parse(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "",
            "ab",
            &"x".repeat(33),
            "john doe",
            "jöhn",
            "a/b",
            "<script>",
            "a\0b",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(Username::parse("Alice").unwrap().key(), "alice");
    }

    #[test]
    fn emails_are_validated() {
        for ok in ["john@example.com", "a.b+c@sub.example.org", "X@Y.IO"] {
            assert!(Email::parse(ok).is_ok(), "{ok} should be accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "john",
            "john@",
            "@example.com",
            "john@localhost",
            "john@@example.com",
            "John <john@example.com>",
            "john@[127.0.0.1]",
            "jo hn@example.com",
            &long,
            "jöhn@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn passwords_are_bounded_and_never_printed() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("".into()).is_err());
        assert!(Password::parse("x".repeat(73)).is_err());
        assert!(
            Password::parse("é".repeat(37)).is_err(),
            "74 bytes in 37 characters"
        );
        assert!(Password::parse("x".repeat(72)).is_ok());
        assert!(Password::parse_attempt("short".into()).is_ok());
        for nul in ["B".repeat(71) + "\0", "abc\0defghij".into(), "\0".into()] {
            assert!(Password::parse(nul.clone()).is_err(), "{nul:?}");
            assert!(Password::parse_attempt(nul.clone()).is_err(), "{nul:?}");
        }
        let p = Password::parse("hunter2hunter2".into()).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
