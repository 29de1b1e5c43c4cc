//! The gateway function: the health and route index at `GET /`, and `/api/*` forwarded
//! to the auth and users services, with CORS and a request id on every answer.

mod forward;
mod health;
mod request_id;

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

use shared::config::{ConfigError, Url};
use shared::http::REQUEST_ID;
use shared::Config;

use forward::Upstream;
pub use forward::MAX_UPSTREAM_BODY_BYTES;
pub use health::PROBE_TIMEOUT;

/// The response header carrying the users listing's next-page cursor.
pub const NEXT_CURSOR: &str = "x-next-cursor";

/// What the gateway handlers share: one pooled HTTP client and where to send requests.
/// A service without a URL (as in AWS) is neither routed to nor probed.
#[derive(Clone)]
pub struct AppState {
    client: reqwest::Client,
    auth_url: Option<Url>,
    users_url: Option<Url>,
    cors: Option<CorsLayer>,
}

impl AppState {
    /// One client for the whole process: rustls, pooled, no redirects followed, the
    /// connect and total timeouts from `config`.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|err| ConfigError(format!("cannot build the HTTP client: {err}")))?;
        Ok(Self {
            client,
            auth_url: config.auth_service_url.clone(),
            users_url: config.user_service_url.clone(),
            cors: cors(&config.cors_allowed_origins)?,
        })
    }

    /// The base URL of `upstream`, if the gateway has one.
    fn base(&self, upstream: Upstream) -> Option<&Url> {
        match upstream {
            Upstream::Auth => self.auth_url.as_ref(),
            Upstream::Users => self.users_url.as_ref(),
        }
    }
}

/// The CORS policy: no CORS headers without origins, any origin for `*`, else the list.
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
    let request_id = HeaderName::from_static(REQUEST_ID);
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
                request_id.clone(),
            ])
            .expose_headers([request_id, HeaderName::from_static(NEXT_CURSOR)])
            .max_age(Duration::from_secs(600)),
    ))
}

/// The (method, path) routes the gateway answers itself, at `/` and under `/api`.
pub const ROUTES: &[(&str, &str)] = &[("GET", "/"), ("GET", "/openapi.json")];

/// Paths forwarded to auth, whatever the method (auth answers its own 405s).
pub const AUTH_PATHS: &[&str] = &["/register", "/login", "/validate", "/refresh", "/logout"];

/// Paths forwarded to users, whatever the method.
pub const USERS_PATHS: &[&str] = &["/users", "/users/{id}"];

/// `GET /` and the forwarded routes of each service the gateway has a URL for, each
/// served with and without the `/api` prefix like every function's; anything else is a
/// 404 JSON without contacting anyone. Without service URLs (as deployed, behind API
/// Gateway's own routes) it forwards nothing.
pub fn router(state: AppState) -> Router {
    let cors = state.cors.clone();
    let mut routes = Router::new()
        .route("/", get(health::health))
        .route("/openapi.json", get(openapi));
    if state.auth_url.is_some() {
        for path in AUTH_PATHS {
            routes = routes.route(path, any(to_auth));
        }
    }
    if state.users_url.is_some() {
        for path in USERS_PATHS {
            routes = routes.route(path, any(to_users));
        }
    }
    let routes = routes.with_state(state);
    let mut app = shared::http::finish(routes);
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    app.layer(middleware::from_fn(request_id::request_id))
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
