//! The reference chain of benchmark 1: the seed's topology built the way the services
//! this project replaces were described in their own documentation (their tech stack and
//! the calls between them; docs/api.md keeps their contract): three axum services, each its own process on tokio's default multi-threaded
//! runtime, in-memory state behind an `RwLock`, inter-service calls with one shared
//! `reqwest::Client` (pooled keep-alive connections), HS256 tokens checked with
//! jsonwebtoken, no request logging. Every authenticated users request asks auth
//! `POST /validate`, and the gateway forwards `/api/*` with `Authorization` and
//! `Content-Type`. Not a product: only what benchmark 1 calls (`POST /api/users`,
//! `GET /api/users/{id}`, `POST /api/validate`), and no check the seed did not make.
//!
//! `seed_chain auth PORT` (the HS256 secret in `JWT_SECRET`),
//! `seed_chain users PORT AUTH_URL`, `seed_chain gateway PORT AUTH_URL USERS_URL`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::{Deserialize, Serialize};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The seed's error body: `{"status": "401", "message": "..."}`.
fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"status": status.as_u16().to_string(), "message": message});
    (status, Json(body)).into_response()
}

// ------------------------------------------------------------------------------ auth

#[derive(Deserialize)]
struct ValidateRequest {
    token: String,
}

#[derive(Serialize, Deserialize)]
struct ValidateResponse {
    valid: bool,
    user_id: String,
    username: String,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    username: String,
}

struct Auth {
    key: DecodingKey,
    validation: Validation,
}

async fn validate(State(auth): State<Arc<Auth>>, Json(req): Json<ValidateRequest>) -> Response {
    match decode::<Claims>(&req.token, &auth.key, &auth.validation) {
        Ok(data) => Json(ValidateResponse {
            valid: true,
            user_id: data.claims.sub,
            username: data.claims.username,
        })
        .into_response(),
        Err(_) => error(StatusCode::UNAUTHORIZED, "Invalid or malformed token"),
    }
}

fn auth() -> Result<Router, Error> {
    let secret = std::env::var("JWT_SECRET").map_err(|_| "JWT_SECRET is not set")?;
    let mut validation = Validation::new(Algorithm::HS256);
    // The seed's tokens carry no audience; ours do, and the seed would not look at it.
    validation.validate_aud = false;
    let auth = Arc::new(Auth {
        key: DecodingKey::from_secret(secret.as_bytes())?,
        validation,
    });
    Ok(Router::new()
        .route("/validate", post(validate))
        .with_state(auth))
}

// ----------------------------------------------------------------------------- users

#[derive(Clone, Serialize)]
struct UserProfile {
    user_id: String,
    username: String,
    email: String,
    full_name: String,
    bio: String,
    created_at: String,
}

#[derive(Deserialize)]
struct CreateProfileRequest {
    user_id: String,
    username: String,
    email: String,
    full_name: String,
    bio: String,
}

#[derive(Clone)]
struct Users {
    client: reqwest::Client,
    validate_url: String,
    profiles: Arc<RwLock<HashMap<String, UserProfile>>>,
}

impl Users {
    /// The bearer token of `headers`, checked by auth: the caller's user id.
    async fn caller(&self, headers: &HeaderMap) -> Result<String, Response> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "Missing authorization token"))?;
        let answer = self
            .client
            .post(&self.validate_url)
            .json(&json!({ "token": token }))
            .send()
            .await
            .map_err(|_| error(StatusCode::SERVICE_UNAVAILABLE, "Auth service unavailable"))?;
        if !answer.status().is_success() {
            return Err(error(StatusCode::UNAUTHORIZED, "Invalid token"));
        }
        let validation: ValidateResponse = answer
            .json()
            .await
            .map_err(|_| error(StatusCode::UNAUTHORIZED, "Invalid token"))?;
        if !validation.valid {
            return Err(error(StatusCode::UNAUTHORIZED, "Invalid token"));
        }
        Ok(validation.user_id)
    }
}

async fn create_profile(
    State(users): State<Users>,
    headers: HeaderMap,
    Json(req): Json<CreateProfileRequest>,
) -> Response {
    let caller = match users.caller(&headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if caller != req.user_id {
        return error(StatusCode::FORBIDDEN, "Forbidden");
    }
    let profile = UserProfile {
        user_id: req.user_id,
        username: req.username,
        email: req.email,
        full_name: req.full_name,
        bio: req.bio,
        created_at: chrono::Utc::now().to_rfc3339(),
    };
    let mut profiles = users.profiles.write().unwrap_or_else(|e| e.into_inner());
    profiles.insert(profile.user_id.clone(), profile.clone());
    Json(profile).into_response()
}

async fn get_profile(
    State(users): State<Users>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = users.caller(&headers).await {
        return response;
    }
    let profiles = users.profiles.read().unwrap_or_else(|e| e.into_inner());
    match profiles.get(&id) {
        Some(profile) => Json(profile.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "User not found"),
    }
}

fn users(auth_url: &str) -> Router {
    let users = Users {
        client: reqwest::Client::new(),
        validate_url: format!("{}/validate", auth_url.trim_end_matches('/')),
        profiles: Arc::default(),
    };
    Router::new()
        .route("/users", post(create_profile))
        .route("/users/{id}", get(get_profile))
        .with_state(users)
}

// --------------------------------------------------------------------------- gateway

struct Gateway {
    client: reqwest::Client,
    auth_url: String,
    users_url: String,
}

/// `/api/X` to users for `X` under `/users`, else to auth, with `Authorization` and
/// `Content-Type`; the answer's status, `Content-Type` and body back.
async fn forward(State(gateway): State<Arc<Gateway>>, req: Request) -> Response {
    let Some(path) = req.uri().path().strip_prefix("/api") else {
        return error(StatusCode::NOT_FOUND, "Route not found");
    };
    let base = if path == "/users" || path.starts_with("/users/") {
        &gateway.users_url
    } else {
        &gateway.auth_url
    };
    let url = match req.uri().query() {
        Some(query) => format!("{base}{path}?{query}"),
        None => format!("{base}{path}"),
    };
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return error(StatusCode::BAD_REQUEST, "Invalid request body");
    };
    let mut outbound = gateway.client.request(parts.method, url).body(body);
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
        if let Some(value) = parts.headers.get(&name) {
            outbound = outbound.header(name, value.clone());
        }
    }
    let answer = match outbound.send().await {
        Ok(answer) => answer,
        Err(_) => return error(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
    };
    let status = answer.status();
    let kind = answer.headers().get(header::CONTENT_TYPE).cloned();
    let bytes: Bytes = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(_) => return error(StatusCode::BAD_GATEWAY, "Bad gateway"),
    };
    let mut response = (status, bytes).into_response();
    if let Some(kind) = kind {
        response.headers_mut().insert(header::CONTENT_TYPE, kind);
    }
    response
}

fn gateway(auth_url: &str, users_url: &str) -> Router {
    let gateway = Arc::new(Gateway {
        client: reqwest::Client::new(),
        auth_url: auth_url.trim_end_matches('/').to_owned(),
        users_url: users_url.trim_end_matches('/').to_owned(),
    });
    Router::new().fallback(forward).with_state(gateway)
}

// ------------------------------------------------------------------------------ main

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let app = match (arg(0), arg(2), arg(3)) {
        (Some("auth"), None, None) => auth()?,
        (Some("users"), Some(auth_url), None) => users(auth_url),
        (Some("gateway"), Some(auth_url), Some(users_url)) => gateway(auth_url, users_url),
        _ => {
            return Err("usage: seed_chain auth PORT | users PORT AUTH_URL | \
                        gateway PORT AUTH_URL USERS_URL"
                .into());
        }
    };
    let port: u16 = arg(1).ok_or("PORT missing")?.parse()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
