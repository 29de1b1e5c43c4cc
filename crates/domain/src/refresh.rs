//! Opaque refresh tokens: 256 random bits handed to the client, stored only as their
//! SHA-256.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A refresh token as the client holds it: 32 random bytes, base64url without padding
/// (43 characters). Never logged, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshSecret(String);

impl RefreshSecret {
    pub const BYTES: usize = 32;
    pub const CHARS: usize = 43;

    pub fn generate() -> Self {
        let mut bytes = [0u8; Self::BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A presented token, if it has the shape of one this service issues.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() != Self::CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        (bytes.len() == Self::BYTES && URL_SAFE_NO_PAD.encode(&bytes) == raw)
            .then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        let digest = Sha256::digest(self.0.as_bytes());
        TokenHash(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

impl fmt::Debug for RefreshSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshSecret(<redacted>)")
    }
}

/// The SHA-256 of a refresh token in lowercase hex: the only form a store sees. The
/// token has 256 bits of entropy, so a fast unsalted hash is enough to make a leaked
/// table useless for refreshing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_tokens_are_unique_well_formed_and_parse_back() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let t = RefreshSecret::generate();
            assert_eq!(t.expose().len(), RefreshSecret::CHARS);
            assert_eq!(RefreshSecret::parse(t.expose()), Some(t.clone()));
            assert!(seen.insert(t.expose().to_owned()));
        }
    }

    #[test]
    fn the_hash_is_sha256_hex_and_not_the_token() {
        let t = RefreshSecret::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(
            t.hash().as_str(),
            "0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a"
        );
        assert_ne!(RefreshSecret::generate().hash(), t.hash());
        assert!(!format!("{t:?}").contains(t.expose()));
    }

    #[test]
    fn anything_else_is_not_a_refresh_token() {
        let good = RefreshSecret::generate();
        let long = format!("{}A", good.expose());
        let padded = format!("{}=", &good.expose()[..42]);
        for bad in [
            "",
            "short",
            &good.expose()[..42],
            &long,
            &padded,
            "+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
            "ÄAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(RefreshSecret::parse(bad), None, "{bad:?}");
        }
    }
}
