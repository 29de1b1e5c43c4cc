//! What a stranger needs to verify our tokens: the public keys (`/.well-known/jwks.json`)
//! and where to find them (`/.well-known/openid-configuration`).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use std::time::Duration;

use shared::token::jwks_of;
use shared::{Error, Json};

use crate::AppState;

/// Verifiers may keep both documents this long. A new key is published before it
/// signs its first token, but a verifier holding an older copy of the set refetches
/// it when it meets an unknown `kid` (as PyJWT's and jose's JWKS clients do).
pub const CACHE_CONTROL: &str = "public, max-age=300";

fn cached(body: Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}

/// How long after a newer key takes over an older one still verifies: the longest an
/// access token it signed can live, plus a minute for instances still finishing.
fn retire_after(state: &AppState) -> Duration {
    state.tokens.ttl() + Duration::from_secs(60)
}

impl AppState {
    /// Makes the signing key's public half the current published key once per
    /// process, before the first token it signs; a key that was current before keeps
    /// verifying until the last token it signed has expired.
    pub(crate) async fn publish_key(&self) -> Result<(), Error> {
        let Some(key) = self.tokens.signing_key() else {
            return Ok(());
        };
        let now = chrono::Utc::now().timestamp();
        self.published
            .get_or_try_init(|| async {
                self.keys.activate_key(key, retire_after(self), now).await
            })
            .await
            .map(|_| ())
    }
}

/// `GET /.well-known/jwks.json` (RFC 7517): every public key a live token may be
/// signed with, the current one first (one read of the key registry); none under
/// HS256, whose secret is never published.
pub async fn jwks(State(state): State<AppState>) -> Result<Response, Error> {
    if state.tokens.signing_key().is_none() {
        return Ok(cached(state.tokens.jwks()));
    }
    state.publish_key().await?;
    let keys = state
        .keys
        .published_keys(chrono::Utc::now().timestamp())
        .await?;
    Ok(cached(jwks_of(keys.iter())))
}

/// `GET /.well-known/openid-configuration`: the issuer and where its keys are, and
/// nothing this API does not honour. The key set's URL is the issuer's when the issuer
/// is a URL, else this API's own (from `X-Forwarded-Host`/`Host` and
/// `X-Forwarded-Proto`, as API Gateway and the local gateway send them).
pub async fn discovery(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let issuer = state.tokens.issuer();
    let base = if issuer.starts_with("https://") || issuer.starts_with("http://") {
        issuer.trim_end_matches('/').to_owned()
    } else {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let host = text("x-forwarded-host")
            .or_else(|| text("host"))
            .unwrap_or("localhost");
        let scheme = match text("x-forwarded-proto") {
            Some("https") => "https",
            _ => "http",
        };
        format!("{scheme}://{host}")
    };
    cached(json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
    }))
}
