//! Ed25519 keys: a signer's key made from its configured material, key ids (RFC 7638
//! thumbprints) and the JWKS that publishes public keys.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use settings::Secret;
use stores::PublicKey;

/// An Ed25519 signing key and its public half, with its key id: the RFC 7638
/// thumbprint of its JWK.
pub struct Ed25519Key {
    pub(crate) encoding: EncodingKey,
    pub(crate) public: PublicKey,
}

impl Ed25519Key {
    /// The key whose seed is the SHA-256 of `material` (`JWT_SIGNING_KEY`: any string
    /// of at least [`Secret::MIN_BYTES`] bytes, e.g. one Secrets Manager generated).
    pub fn from_material(material: &Secret) -> Self {
        let seed: [u8; 32] = Sha256::digest(material.expose().as_bytes()).into();
        Self::from_seed(seed)
    }

    /// A new random key (the local stack without a configured key).
    pub fn random() -> Self {
        use rand::RngCore;
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    fn from_seed(seed: [u8; 32]) -> Self {
        // PKCS#8 v1 of an Ed25519 private key (RFC 8410): a fixed prefix, then the seed.
        const PKCS8_PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut der = PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let x = URL_SAFE_NO_PAD.encode(public);
        Self {
            encoding: EncodingKey::from_ed_der(&der),
            public: PublicKey {
                kid: thumbprint(&x),
                x,
                created_at: chrono::Utc::now().timestamp(),
                expires_at: None,
            },
        }
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key (`x`, base64url): SHA-256 of its
/// JWK's required members in lexical order, base64url.
pub fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A JSON Web Key Set (RFC 7517) of `keys`.
pub fn jwks_of<'a>(keys: impl Iterator<Item = &'a PublicKey>) -> Value {
    json!({ "keys": keys.map(jwk).collect::<Vec<_>>() })
}

/// A public key as a JWK (RFC 7517, RFC 8037).
pub fn jwk(key: &PublicKey) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": key.x, "kid": key.kid, "use": "sig", "alg": "EdDSA"})
}

/// The key that verifies tokens signed under `key`, when its key id is its thumbprint.
pub(crate) fn decoding_key(key: &PublicKey) -> Option<DecodingKey> {
    (thumbprint(&key.x) == key.kid)
        .then(|| DecodingKey::from_ed_components(&key.x).ok())
        .flatten()
}

/// Whether `kid` could be a key id of ours: a base64url SHA-256 (43 characters).
pub(crate) fn plausible_kid(kid: &str) -> bool {
    kid.len() == 43
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
