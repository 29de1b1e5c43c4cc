//! What a stranger needs to verify our tokens: the public keys (`/.well-known/jwks.json`)
//! and where to find them (`/.well-known/openid-configuration`).

use axum::extract::State;
use axum::http::{Extensions, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lambda_http::request::RequestContext;
use serde_json::{Value, json};
use settings::Url;

use std::time::Duration;

use errors::{Error, Json};
use tokens::jwks_of;

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
/// nothing this API does not honour. The key set's URL is under this API's public
/// address ([`public_base`]), never under one a client's header names: the document is
/// cached by shared caches, which would hand a forged key URL to every verifier.
pub async fn discovery(
    State(state): State<AppState>,
    extensions: Extensions,
) -> Result<Response, Error> {
    let base = public_base(&state, &extensions).ok_or_else(|| {
        Error::internal(
            "the discovery document needs this API's address: set PUBLIC_URL, or JWT_ISSUER \
             to a URL",
        )
    })?;
    Ok(cached(json!({
        "issuer": state.tokens.issuer(),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
    })))
}

/// This API's public base URL, without a trailing slash: the issuer when it is a URL,
/// else `PUBLIC_URL`, else (behind API Gateway) the domain API Gateway says the request
/// came in on (`requestContext.domainName`, set by API Gateway from its own routing, not
/// by the client); HTTPS, as API Gateway serves, except on a loopback emulation of it.
fn public_base(state: &AppState, extensions: &Extensions) -> Option<String> {
    let issuer = state.tokens.issuer();
    if issuer.starts_with("https://") || issuer.starts_with("http://") {
        return Some(issuer.trim_end_matches('/').to_owned());
    }
    if let Some(url) = &state.public_url {
        return Some(url.to_string());
    }
    let domain = match extensions.get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.domain_name.as_deref(),
        RequestContext::ApiGatewayV1(ctx) => ctx.domain_name.as_deref(),
        _ => None,
    }?;
    let parsed = Url::parse(&format!("http://{domain}")).ok()?;
    let host = parsed.host_str()?;
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let scheme = if loopback { "http" } else { "https" };
    Some(match parsed.port() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}
