//! The gateway function: the health and route index at `GET /`, and `/api/*` forwarded
//! to the auth and users services, with CORS and a request id on every answer.

pub mod config;
mod forward;
mod health;

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tower_http::cors::{AllowOrigin, CorsLayer, ExposeHeaders};

pub use crate::config::Config;
use edge::client_ip::TrustedProxies;
use edge::http::{REQUEST_ID, Routes};
use outbound::breaker::Breaker;
use outbound::http_client::{self, Service};
use settings::{ConfigError, Url};

pub use forward::MAX_UPSTREAM_BODY_BYTES;
use forward::Upstream;
pub use health::{PROBE_CACHE, PROBE_TIMEOUT};

pub use edge::http::NEXT_CURSOR;

/// What the gateway handlers share: the downstream services, each with its pool of
/// connections. A service without a URL (as in AWS) is neither routed to nor probed.
/// Cloned for every request, so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(std::sync::Arc<GatewayState>);

pub struct GatewayState {
    /// How long one downstream call may take, answer and body together.
    timeout: Duration,
    /// Each only with a URL: as deployed (no service URLs) the gateway starts without
    /// any, and without building a connector.
    auth: Option<Service>,
    users: Option<Service>,
    cors: Option<CorsLayer>,
    /// One circuit breaker per downstream service, shared by every request.
    breakers: [Breaker; 2],
    /// The downstream health probes' last answers, shared by every `GET /`.
    probes: health::ProbeCache,
    /// Who may tell the gateway its client's address; the key it proves itself to
    /// auth with, in the local stack.
    trusted: TrustedProxies,
}

impl std::ops::Deref for AppState {
    type Target = GatewayState;

    fn deref(&self) -> &GatewayState {
        &self.0
    }
}

impl AppState {
    /// The downstream services of `config` ([`outbound::http_client`]) and its CORS
    /// policy. An `https://` service URL needs the `tls` feature.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let services = &config.services;
        let connector = if services.auth_url.is_some() || services.users_url.is_some() {
            Some(http_client::connector(&config.http)?)
        } else {
            None
        };
        let service = |var, url: &Option<Url>| match (url, &connector) {
            (Some(url), Some(connector)) => Service::new(var, url, connector).map(Some),
            _ => Ok(None),
        };
        Ok(Self(std::sync::Arc::new(GatewayState {
            timeout: config.http.request_timeout,
            auth: service("AUTH_SERVICE_URL", &services.auth_url)?,
            users: service("USER_SERVICE_URL", &services.users_url)?,
            cors: cors(config.cors_allowed_origins.as_deref().unwrap_or_default())?,
            breakers: [Breaker::new(config.breaker), Breaker::new(config.breaker)],
            probes: health::ProbeCache::default(),
            trusted: config.trusted_proxies.clone(),
        })))
    }
}

impl GatewayState {
    /// The circuit breaker of calls to `upstream`.
    fn breaker(&self, upstream: Upstream) -> &Breaker {
        match upstream {
            Upstream::Auth => &self.breakers[0],
            Upstream::Users => &self.breakers[1],
        }
    }

    /// `upstream`, if the gateway has a URL for it.
    fn service(&self, upstream: Upstream) -> Option<&Service> {
        match upstream {
            Upstream::Auth => self.auth.as_ref(),
            Upstream::Users => self.users.as_ref(),
        }
    }
}

/// The response headers the API defines, which browser code on an allowed origin may
/// read (the same list as `ExposeHeaders` in template.yaml).
pub const EXPOSED_HEADERS: &[&str] = &[REQUEST_ID, NEXT_CURSOR, "retry-after"];

/// The CORS policy: no CORS headers without origins (unset or empty), any origin for
/// `*`, else the list. Never credentials.
fn cors(origins: &[String]) -> Result<Option<CorsLayer>, ConfigError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list = origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o).map_err(|_| {
                    ConfigError(format!(
                        "CORS_ALLOWED_ORIGINS holds an invalid origin: {o:?}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(list)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static(REQUEST_ID),
            ])
            .expose_headers(ExposeHeaders::list(
                EXPOSED_HEADERS.iter().copied().map(HeaderName::from_static),
            ))
            .max_age(Duration::from_secs(600)),
    ))
}

/// The (method, path) routes the gateway answers itself, at `/` and under `/api`.
pub const ROUTES: &[(&str, &str)] = &[("GET", "/"), ("GET", "/openapi.json")];

/// Paths forwarded to auth, whatever the method (auth answers its own 405s).
pub const AUTH_PATHS: &[&str] = &[
    "/register",
    "/login",
    "/validate",
    "/refresh",
    "/logout",
    "/sessions",
    "/sessions/{id}",
    "/password",
    "/account",
    "/email/verify",
    "/email/verify/resend",
    "/password/forgot",
    "/password/reset",
    "/email",
    "/email/confirm",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
];

/// Paths forwarded to users, whatever the method.
pub const USERS_PATHS: &[&str] = &["/users", "/users/{id}"];

/// `GET /` and the forwarded routes of each service the gateway has a URL for, each
/// served with and without the `/api` prefix like every function's; anything else is a
/// 404 JSON without contacting anyone. Without service URLs (as deployed, behind API
/// Gateway's own routes) it forwards nothing.
pub fn router(state: AppState) -> Router {
    let cors = state.cors.clone();
    let mut routes = Routes::new()
        .route("/", get(health::health))
        .route("/openapi.json", get(openapi));
    if state.auth.is_some() {
        for path in AUTH_PATHS {
            routes = routes.route(path, any(to_auth));
        }
    }
    if state.users.is_some() {
        for path in USERS_PATHS {
            routes = routes.route(path, any(to_users));
        }
    }
    edge::http::finish_with("gateway", routes.with_state(state), cors)
}

/// The OpenAPI 3 document of the whole API as reached through the gateway.
pub const OPENAPI: &str = include_str!("../../../openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn to_auth(State(state): State<AppState>, req: Request) -> Response {
    forward::forward(&state, Upstream::Auth, req).await
}

async fn to_users(State(state): State<AppState>, req: Request) -> Response {
    forward::forward(&state, Upstream::Users, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_exists_only_with_its_url() {
        let deployed = AppState::from_config(&testkit::config(&[])).unwrap();
        assert!(deployed.service(Upstream::Auth).is_none());
        assert!(deployed.service(Upstream::Users).is_none());
        let local = AppState::from_config(&testkit::config(&[(
            "USER_SERVICE_URL",
            "http://127.0.0.1:3001",
        )]))
        .unwrap();
        assert!(local.service(Upstream::Users).is_some());
        assert!(local.service(Upstream::Auth).is_none());
    }

    /// Without the `tls` feature (the Lambda build, and `cargo test -p gateway` alone) an
    /// https:// service URL stops the start with a message that says what to do; with
    /// it (the workspace build, where users brings `outbound/http-tls`) it is accepted.
    #[test]
    fn an_https_service_url_needs_tls_in_the_build() {
        let config = testkit::config(&[("AUTH_SERVICE_URL", "https://auth.example.com")]);
        let tls = std::hint::black_box(http_client::TLS);
        match AppState::from_config(&config) {
            Ok(state) => {
                assert!(tls, "accepted without TLS");
                assert!(state.service(Upstream::Auth).is_some());
            }
            Err(err) => {
                assert!(!tls, "refused with TLS: {err}");
                let text = err.to_string();
                assert!(
                    text.contains("AUTH_SERVICE_URL is an https:// URL")
                        && text.contains("--features gateway/tls"),
                    "{text}"
                );
            }
        }
    }
}
