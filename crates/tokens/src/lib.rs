//! Access tokens: signed by auth only, either with an Ed25519 key (EdDSA, the default:
//! verifiers hold only public keys, published as a JWKS) or with one HS256 secret that
//! both signs and verifies (compatibility with the services this replaces). Verified
//! in-process by auth and users, and accepted only while their session is live (not
//! logged out, ended, or ended by a password change or the account's deletion).
//!
//! [`Tokens`] signs and verifies; `claims` is what a token says, `keys` the Ed25519
//! keys and their JWKS, `registry` what a verifier knows of the key registry and when
//! it may read it, `session` a presented token checked against its session (each
//! public item is re-exported here).

mod claims;
pub mod config;
mod keys;
mod registry;
mod session;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use errors::Error;
use settings::{ConfigError, Secret};
use stores::{KeyStore, PublicKey};

pub use claims::{Claims, Issued, Rejected};
pub use keys::{Ed25519Key, jwk, jwks_of, thumbprint};
pub use registry::{KEY_RECHECK, REGISTRY_READ_BURST, REGISTRY_READ_EVERY, RegistryReads};
pub use session::{verify_access, verify_session};

use claims::Presented;
use keys::{decoding_key, plausible_kid};
use registry::Known;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Tokens whose header (base64url) is longer than this are refused before decoding it.
pub const MAX_HEADER_CHARS: usize = 512;

/// The `typ` of every access token (RFC 9068); any other is refused.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The issuer and audience tokens carry when none is configured.
pub const DEFAULT_ISSUER: &str = "serverless-auth";
pub const DEFAULT_AUDIENCE: &str = "serverless-auth-api";

/// How far ahead of a verifier's clock a token's `iat` and `nbf` may be (the clocks of
/// the signer and of the verifier may differ a little); further ahead, the token is
/// refused. `exp` has no leeway.
pub const CLOCK_LEEWAY_SECS: i64 = 60;

enum Signer {
    Hs256(EncodingKey),
    Ed25519(Ed25519Key),
}

enum Verifier {
    Hs256(DecodingKey),
    /// Public keys by key id, completed from `source`'s key registry when a token names
    /// one not yet known (or not read for [`KEY_RECHECK`]), as often as `reads` allows;
    /// one registry read at a time.
    Ed25519 {
        known: RwLock<HashMap<String, Known>>,
        source: Option<Arc<dyn KeyStore>>,
        reads: tokio::sync::Mutex<RegistryReads>,
    },
}

impl Verifier {
    /// EdDSA verification with the keys `known` so far, completed from `source` and
    /// with a full [`RegistryReads`] bucket.
    fn ed25519(known: HashMap<String, Known>, source: Option<Arc<dyn KeyStore>>) -> Self {
        Self::Ed25519 {
            known: RwLock::new(known),
            source,
            reads: tokio::sync::Mutex::new(RegistryReads::new(std::time::Instant::now())),
        }
    }
}

/// Signs (auth only) and verifies access tokens of one algorithm, issuer and audience.
pub struct Tokens {
    signer: Option<Signer>,
    verifier: Verifier,
    issuer: String,
    audience: String,
    ttl: Duration,
    /// What `verify` checks besides the signature, built once (it holds sets of
    /// strings) rather than for every token.
    validation: Validation,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("algorithm", &self.algorithm())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// HS256 with one secret that signs and verifies.
    pub fn new(secret: &Secret, ttl: Duration) -> Result<Self, ConfigError> {
        let key_error =
            |e: jsonwebtoken::errors::Error| ConfigError(format!("JWT_SECRET unusable: {e}"));
        let signer = EncodingKey::from_secret(secret.expose().as_bytes()).map_err(key_error)?;
        let verifier = DecodingKey::from_secret(secret.expose().as_bytes()).map_err(key_error)?;
        Ok(Self::of(
            Some(Signer::Hs256(signer)),
            Verifier::Hs256(verifier),
            ttl,
        ))
    }

    /// EdDSA, signing with `key` and verifying with its public half (and with keys
    /// from `source` for tokens another signer issued).
    pub fn ed25519(key: Ed25519Key, source: Option<Arc<dyn KeyStore>>, ttl: Duration) -> Self {
        let mut known = HashMap::new();
        if let Some(decoding) = decoding_key(&key.public) {
            let own = Known {
                key: decoding,
                expires_at: None,
                read_at: None,
            };
            known.insert(key.public.kid.clone(), own);
        }
        let verifier = Verifier::ed25519(known, source);
        Self::of(Some(Signer::Ed25519(key)), verifier, ttl)
    }

    /// EdDSA verification only, with public keys from `source`: a verifier that cannot
    /// sign anything.
    pub fn ed25519_verifier(source: Arc<dyn KeyStore>, ttl: Duration) -> Self {
        Self::of(None, Verifier::ed25519(HashMap::new(), Some(source)), ttl)
    }

    /// Tokens of `signer` and `verifier` with the default issuer and audience, ready.
    fn of(signer: Option<Signer>, verifier: Verifier, ttl: Duration) -> Self {
        Self {
            signer,
            verifier,
            issuer: DEFAULT_ISSUER.into(),
            audience: DEFAULT_AUDIENCE.into(),
            ttl,
            validation: Validation::default(),
        }
        .ready()
    }

    /// The same, issuing and accepting only tokens of `issuer` for `audience`.
    pub fn with_issuer(mut self, issuer: &str, audience: &str) -> Self {
        self.issuer = issuer.to_owned();
        self.audience = audience.to_owned();
        self.ready()
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.verifier {
            Verifier::Hs256(_) => Algorithm::HS256,
            Verifier::Ed25519 { .. } => Algorithm::EdDSA,
        }
    }

    /// The public key this signer signs with (EdDSA only): what verifiers need.
    pub fn signing_key(&self) -> Option<&PublicKey> {
        match &self.signer {
            Some(Signer::Ed25519(key)) => Some(key.public()),
            _ => None,
        }
    }

    /// The JSON Web Key Set of this signer's own key (empty for HS256, whose secret is
    /// never published); [`jwks_of`] gives that of a key registry.
    pub fn jwks(&self) -> Value {
        jwks_of(self.signing_key().into_iter())
    }

    /// A token for `user_id` in session `sid`, whose address is not verified.
    pub fn issue(&self, user_id: Uuid, username: &str, sid: Uuid) -> Result<Issued, Error> {
        self.issue_as(user_id, username, sid, false)
    }

    /// A token for `user_id` in session `sid`, saying whether the address is verified.
    pub fn issue_as(
        &self,
        user_id: Uuid,
        username: &str,
        sid: Uuid,
        email_verified: bool,
    ) -> Result<Issued, Error> {
        let now = chrono::Utc::now().timestamp();
        let expires_in = self.ttl.as_secs();
        let claims = Claims {
            sub: user_id.to_string(),
            username: username.to_owned(),
            iat: now,
            exp: now.saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX)),
            jti: Uuid::new_v4().to_string(),
            sid: sid.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            email_verified,
        };
        self.sign(&claims).map(|token| Issued {
            token,
            expires_in,
            claims,
        })
    }

    /// Signs arbitrary claims; `issue` is the normal way in.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, Error> {
        let (header, key) = match &self.signer {
            Some(Signer::Hs256(key)) => (Header::new(Algorithm::HS256), key),
            Some(Signer::Ed25519(key)) => {
                let mut header = Header::new(Algorithm::EdDSA);
                header.kid = Some(key.public.kid.clone());
                (header, &key.encoding)
            }
            None => {
                return Err(Error::TokenGeneration(
                    "a verifier holds no signing key".into(),
                ));
            }
        };
        let header = Header {
            typ: Some(ACCESS_TOKEN_TYPE.into()),
            ..header
        };
        jsonwebtoken::encode(&header, claims, key)
            .map_err(|e| Error::TokenGeneration(e.to_string()))
    }

    /// `self` with its `validation` made from its algorithm, issuer and audience.
    fn ready(mut self) -> Self {
        self.validation = self.checks();
        self
    }

    fn checks(&self) -> Validation {
        let mut validation = Validation::new(self.algorithm());
        validation.set_required_spec_claims(&["exp", "iat", "sub", "sid", "iss", "aud"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.leeway = 0;
        validation.validate_exp = true;
        // `nbf` (and `iat`) are checked in `verify`, with `CLOCK_LEEWAY_SECS`.
        validation.validate_nbf = false;
        validation
    }

    /// The claims of `token` if it verifies with a key this verifier knows; a token
    /// under an unknown (but plausible) key id is [`Rejected::UnknownKey`].
    pub fn verify(&self, token: &str) -> Result<Claims, Rejected> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(Rejected::Invalid);
        }
        let header_chars = token.split('.').next().map_or(0, str::len);
        if header_chars > MAX_HEADER_CHARS {
            return Err(Rejected::Invalid);
        }
        // jku, x5u, x5c and jwk are never looked at: keys come from our own store.
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejected::Invalid)?;
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) || header.alg != self.algorithm() {
            return Err(Rejected::Invalid);
        }
        let data = match &self.verifier {
            Verifier::Hs256(key) => {
                if header.kid.is_some() {
                    return Err(Rejected::Invalid);
                }
                jsonwebtoken::decode::<Presented>(token, key, &self.validation)
            }
            Verifier::Ed25519 { known, .. } => {
                let kid = header.kid.ok_or(Rejected::Invalid)?;
                if !plausible_kid(&kid) {
                    return Err(Rejected::Invalid);
                }
                let known = known.read().unwrap_or_else(|p| p.into_inner());
                let now = chrono::Utc::now().timestamp();
                let usable = known.get(&kid).filter(|k| {
                    k.expires_at.is_none_or(|at| at > now)
                        && k.read_at.is_none_or(|at| at.elapsed() < KEY_RECHECK)
                });
                let Some(entry) = usable else {
                    return Err(Rejected::UnknownKey(kid));
                };
                jsonwebtoken::decode::<Presented>(token, &entry.key, &self.validation)
            }
        }
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => Rejected::Expired,
            _ => Rejected::Invalid,
        })?;
        let Presented { claims, nbf } = data.claims;
        let latest = chrono::Utc::now()
            .timestamp()
            .saturating_add(CLOCK_LEEWAY_SECS);
        if claims.iat > latest || nbf.is_some_and(|nbf| nbf > latest) {
            return Err(Rejected::Invalid);
        }
        if Uuid::parse_str(&claims.sub).is_err() || Uuid::parse_str(&claims.sid).is_err() {
            return Err(Rejected::Invalid);
        }
        Ok(claims)
    }

    /// [`Tokens::verify`], first learning an unknown key id from the key source: one
    /// read of its whole registry (every live key), at most as often as
    /// [`RegistryReads`] allows and one at a time, so that tokens under made-up key ids
    /// never cost a read each. A store that cannot be read is its error, not a refusal.
    pub async fn verify_resolving(&self, token: &str) -> Result<Claims, Error> {
        match self.verify(token) {
            Err(Rejected::UnknownKey(_)) => {}
            other => return Ok(other?),
        }
        let Verifier::Ed25519 {
            known,
            source: Some(source),
            reads,
        } = &self.verifier
        else {
            return Err(Error::InvalidToken);
        };
        let mut reads = reads.lock().await;
        // The read that held the lock meanwhile may have brought the key.
        match self.verify(token) {
            Err(Rejected::UnknownKey(_)) => {}
            other => return Ok(other?),
        }
        if !reads.take(std::time::Instant::now()) {
            return Err(Error::InvalidToken);
        }
        let now = chrono::Utc::now().timestamp();
        let published = source.published_keys(now).await?;
        registry::learn(known, &published, std::time::Instant::now());
        drop(reads);
        match self.verify(token) {
            Err(Rejected::UnknownKey(_)) => Err(Error::InvalidToken),
            other => Ok(other?),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use super::*;

    pub(crate) fn tokens() -> Tokens {
        Tokens::new(
            &Secret::new("an-example-secret-of-at-least-32-bytes".into()).unwrap(),
            Duration::from_secs(3600),
        )
        .unwrap()
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let t = tokens();
        let id = Uuid::new_v4();
        let issued = t.issue(id, "alice", Uuid::from_u128(5)).unwrap();
        assert_eq!(issued.expires_in, 3600);
        let claims = t.verify(&issued.token).unwrap();
        assert_eq!(claims.user_id(), id);
        assert_eq!(claims.username, "alice");
        assert_eq!(claims.exp - claims.iat, 3600);
        assert!(Uuid::parse_str(&claims.jti).is_ok());
        assert_eq!(claims.session_id(), Uuid::from_u128(5));
    }

    /// A correctly signed token that expired ten seconds ago.
    pub(crate) fn expired_token(t: &Tokens) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = t
            .issue(Uuid::new_v4(), "bob", Uuid::new_v4())
            .unwrap()
            .claims;
        claims.exp = now - 10;
        claims.iat = now - 100;
        t.sign(&claims).unwrap()
    }

    #[test]
    fn an_expired_token_is_told_apart_from_a_bad_one() {
        let t = tokens();
        let expired = expired_token(&t);
        assert_eq!(t.verify(&expired), Err(Rejected::Expired));
        assert_eq!(t.verify("not.a.token"), Err(Rejected::Invalid));
        assert_eq!(t.verify(""), Err(Rejected::Invalid));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_invalid() {
        let other = Tokens::new(
            &Secret::new("another-secret-that-is-32-bytes-long!!".into()).unwrap(),
            Duration::from_secs(60),
        )
        .unwrap();
        let token = other
            .issue(Uuid::new_v4(), "eve", Uuid::new_v4())
            .unwrap()
            .token;
        assert_eq!(tokens().verify(&token), Err(Rejected::Invalid));
    }

    #[test]
    fn only_tokens_of_the_configured_issuer_and_audience_verify() {
        let token = |t: &Tokens| {
            t.issue(Uuid::new_v4(), "ann", Uuid::new_v4())
                .unwrap()
                .token
        };
        let ours = tokens().with_issuer("https://auth.example.com", "example-api");
        assert!(ours.verify(&token(&ours)).is_ok());
        for (issuer, audience) in [
            ("https://auth.example.com", "other-api"),
            ("https://other.example.com", "example-api"),
        ] {
            let theirs = tokens().with_issuer(issuer, audience);
            assert_eq!(ours.verify(&token(&theirs)), Err(Rejected::Invalid));
            assert_eq!(theirs.verify(&token(&ours)), Err(Rejected::Invalid));
        }
        assert_eq!(tokens().verify(&token(&ours)), Err(Rejected::Invalid));
        assert_eq!(ours.verify(&token(&tokens())), Err(Rejected::Invalid));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let t = tokens();
        let good = t
            .issue(Uuid::new_v4(), "mallory", Uuid::new_v4())
            .unwrap()
            .token;
        let payload = good.split('.').nth(1).unwrap();
        for alg in ["none", "None", "HS512", "RS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            for sig in ["", "AAAA"] {
                let forged = format!("{header}.{payload}.{sig}");
                assert_eq!(t.verify(&forged), Err(Rejected::Invalid), "alg {alg}");
            }
        }
    }

    #[test]
    fn a_token_without_exp_or_with_a_non_uuid_subject_is_invalid() {
        let t = tokens();
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: "not-a-uuid".into(),
            username: "x".into(),
            iat: now,
            exp: now + 60,
            jti: "j".into(),
            sid: Uuid::new_v4().to_string(),
            iss: crate::DEFAULT_ISSUER.into(),
            aud: crate::DEFAULT_AUDIENCE.into(),
            email_verified: false,
        };
        assert_eq!(t.verify(&t.sign(&claims).unwrap()), Err(Rejected::Invalid));
        let (sub, sid) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
        let complete = serde_json::json!({"sub": sub, "username": "x", "iat": now, "exp": now + 60, "jti": "j", "sid": sid, "iss": DEFAULT_ISSUER, "aud": DEFAULT_AUDIENCE});
        let sign = |claims: &serde_json::Value| {
            let header = Header {
                typ: Some(ACCESS_TOKEN_TYPE.into()),
                ..Header::new(Algorithm::HS256)
            };
            jsonwebtoken::encode(
                &header,
                claims,
                &EncodingKey::from_secret(b"an-example-secret-of-at-least-32-bytes").unwrap(),
            )
            .unwrap()
        };
        assert!(t.verify(&sign(&complete)).is_ok());
        for (field, bad) in [
            ("exp", None),
            ("sid", None),
            ("sid", Some("not-a-uuid")),
            ("iss", None),
            ("iss", Some("someone-else")),
            ("aud", None),
            ("aud", Some("another-api")),
        ] {
            let mut claims = complete.clone();
            match bad {
                None => claims.as_object_mut().unwrap().remove(field),
                Some(v) => claims
                    .as_object_mut()
                    .unwrap()
                    .insert(field.into(), v.into()),
            };
            assert_eq!(
                t.verify(&sign(&claims)),
                Err(Rejected::Invalid),
                "{field} {bad:?}"
            );
        }
    }

    #[test]
    fn a_token_issued_in_the_future_or_not_valid_yet_is_refused() {
        let t = tokens();
        let now = chrono::Utc::now().timestamp();
        let claims = t
            .issue(Uuid::new_v4(), "bob", Uuid::new_v4())
            .unwrap()
            .claims;
        let with = |field: &str, value: i64| {
            let mut json = serde_json::to_value(&claims).unwrap();
            json[field] = value.into();
            t.sign(&json).unwrap()
        };
        let beyond = now + CLOCK_LEEWAY_SECS + 30;
        assert_eq!(t.verify(&with("iat", beyond)), Err(Rejected::Invalid));
        assert_eq!(t.verify(&with("nbf", beyond)), Err(Rejected::Invalid));
        for within in [now - 60, now, now + 5] {
            assert!(t.verify(&with("iat", within)).is_ok(), "iat {within}");
            assert!(t.verify(&with("nbf", within)).is_ok(), "nbf {within}");
        }
        let mut json = serde_json::to_value(&claims).unwrap();
        json["nbf"] = "soon".into();
        assert_eq!(t.verify(&t.sign(&json).unwrap()), Err(Rejected::Invalid));
    }

    fn ed25519() -> (Tokens, Arc<stores::memory::MemoryKeyStore>) {
        let keys = Arc::new(stores::memory::MemoryKeyStore::default());
        let material = Secret::named("JWT_SIGNING_KEY", "k".repeat(40)).unwrap();
        let tokens = Tokens::ed25519(
            Ed25519Key::from_material(&material),
            Some(keys.clone()),
            Duration::from_secs(3600),
        );
        (tokens, keys)
    }

    #[tokio::test]
    async fn an_ed25519_token_verifies_only_where_its_public_key_is_known() {
        let (signer, keys) = ed25519();
        let public = signer.signing_key().unwrap().clone();
        assert_eq!(public.kid, thumbprint(&public.x));
        assert_eq!(public.kid.len(), 43);
        let issued = signer
            .issue(Uuid::new_v4(), "alice", Uuid::new_v4())
            .unwrap();
        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(public.kid.as_str()));
        assert_eq!(header.typ.as_deref(), Some(ACCESS_TOKEN_TYPE));
        assert_eq!(signer.verify(&issued.token).unwrap(), issued.claims);

        let verifier = Tokens::ed25519_verifier(keys.clone(), Duration::from_secs(3600));
        assert!(matches!(
            verifier.verify_resolving(&issued.token).await,
            Err(Error::InvalidToken)
        ));
        keys.activate_key(
            &public,
            Duration::from_secs(3600),
            chrono::Utc::now().timestamp(),
        )
        .await
        .unwrap();
        assert_eq!(
            verifier.verify_resolving(&issued.token).await.unwrap(),
            issued.claims
        );
        assert!(
            verifier.sign(&issued.claims).is_err(),
            "a verifier cannot sign"
        );
        let jwks = signer.jwks();
        assert_eq!(jwks["keys"][0]["kid"], public.kid.as_str());
        assert_eq!(jwks["keys"][0]["kty"], "OKP");
        assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
        assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
        assert!(jwks["keys"][0].get("d").is_none(), "never the private key");
        assert_eq!(tokens().jwks(), serde_json::json!({"keys": []}));
    }

    /// A key store that counts reads of its registry.
    #[derive(Default)]
    struct Counted {
        keys: stores::memory::MemoryKeyStore,
        reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl KeyStore for Counted {
        async fn activate_key(
            &self,
            key: &PublicKey,
            after: Duration,
            now: i64,
        ) -> Result<(), Error> {
            self.keys.activate_key(key, after, now).await
        }

        async fn public_key(&self, kid: &str, now: i64) -> Result<Option<PublicKey>, Error> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.keys.public_key(kid, now).await
        }

        async fn published_keys(&self, now: i64) -> Result<Vec<PublicKey>, Error> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.keys.published_keys(now).await
        }
    }

    #[tokio::test]
    async fn tokens_under_made_up_key_ids_do_not_cost_a_read_each() {
        use rand::RngCore;
        let (signer, _) = ed25519();
        let store = Arc::new(Counted::default());
        let now = chrono::Utc::now().timestamp();
        let public = signer.signing_key().unwrap().clone();
        store
            .activate_key(&public, Duration::from_secs(3600), now)
            .await
            .unwrap();
        let verifier = Tokens::ed25519_verifier(store.clone(), Duration::from_secs(3600));
        let issued = signer
            .issue(Uuid::new_v4(), "alice", Uuid::new_v4())
            .unwrap();
        assert_eq!(
            verifier.verify_resolving(&issued.token).await.unwrap(),
            issued.claims
        );
        let reads = || store.reads.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(reads(), 1, "a new key id is learnt with one read");

        let (_, payload_and_signature) = issued.token.split_once('.').unwrap();
        for _ in 0..500 {
            let mut random = [0u8; 32];
            rand::rng().fill_bytes(&mut random);
            let kid = URL_SAFE_NO_PAD.encode(random);
            let header = URL_SAFE_NO_PAD
                .encode(json!({"alg": "EdDSA", "typ": ACCESS_TOKEN_TYPE, "kid": kid}).to_string());
            let forged = format!("{header}.{payload_and_signature}");
            assert!(matches!(
                verifier.verify_resolving(&forged).await,
                Err(Error::InvalidToken)
            ));
        }
        assert!(
            reads() <= REGISTRY_READ_BURST as usize,
            "{} reads for 500 made-up key ids",
            reads()
        );
        assert_eq!(
            verifier.verify_resolving(&issued.token).await.unwrap(),
            issued.claims,
            "a known key costs nothing"
        );
        assert!(reads() <= REGISTRY_READ_BURST as usize);
    }
}
