//! `GET /`: the spec's gateway health body and route index, plus whether each service
//! the gateway has a URL for answered its own health check within the last
//! [`PROBE_CACHE`]. However many health checks arrive, each downstream gets at most one
//! probe per [`PROBE_CACHE`]: callers arriving while a probe is out wait for its answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use axum::body::Bytes;
use axum::extract::State;
use http_body_util::Full;
use serde_json::{Value, json};

use errors::Json;

use crate::{AppState, Upstream};

/// How long the health check waits for each downstream service.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// The most of a health answer read; a longer one fails the probe.
const PROBE_MAX_BYTES: usize = 64 * 1024;

/// How long a probe's answer is reused.
pub const PROBE_CACHE: Duration = Duration::from_secs(1);

/// The last probes' answers (auth, users) and when they were asked for; the lock is
/// held while probing, so concurrent health checks share one round of probes.
#[derive(Default, Clone)]
pub(crate) struct ProbeCache(Arc<Mutex<Option<(Instant, Probed)>>>);

type Probed = (Option<&'static str>, Option<&'static str>);

impl ProbeCache {
    async fn get(&self, state: &AppState) -> Probed {
        let mut cached = self.0.lock().await;
        if let Some((at, probed)) = *cached
            && at.elapsed() < PROBE_CACHE
        {
            return probed;
        }
        let started = Instant::now();
        let probed = tokio::join!(probe(state, Upstream::Auth), probe(state, Upstream::Users));
        *cached = Some((started, probed));
        probed
    }
}

pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let mut body = json!({
        "status": "ok",
        "service": "gateway-service",
        "message": "Gateway service is running",
        "routes": {
            "auth": {
                "register": "POST /api/register",
                "login": "POST /api/login",
                "validate": "POST /api/validate",
                "refresh": "POST /api/refresh",
                "logout": "POST /api/logout",
                "sessions": "GET /api/sessions",
                "end_session": "DELETE /api/sessions/:id",
                "change_password": "POST /api/password",
                "delete_account": "DELETE /api/account",
                "verify_email": "POST /api/email/verify",
                "resend_verification": "POST /api/email/verify/resend",
                "forgot_password": "POST /api/password/forgot",
                "reset_password": "POST /api/password/reset",
                "change_email": "POST /api/email",
                "confirm_email": "POST /api/email/confirm",
                "jwks": "GET /.well-known/jwks.json",
                "discovery": "GET /.well-known/openid-configuration"
            },
            "users": {
                "get_all": "GET /api/users",
                "create": "POST /api/users",
                "get_one": "GET /api/users/:id",
                "update": "PUT /api/users/:id",
                "delete": "DELETE /api/users/:id"
            }
        }
    });
    let (auth, users) = state.probes.get(&state).await;
    let mut downstream = serde_json::Map::new();
    for (upstream, answer) in [(Upstream::Auth, auth), (Upstream::Users, users)] {
        if let Some(answer) = answer {
            downstream.insert(upstream.name().to_owned(), json!(answer));
        }
    }
    if !downstream.is_empty() {
        body["downstream"] = Value::Object(downstream);
    }
    let now = std::time::Instant::now();
    let breakers: serde_json::Map<String, Value> = [Upstream::Auth, Upstream::Users]
        .into_iter()
        .filter(|u| state.service(*u).is_some())
        .map(|u| {
            (
                u.name().to_owned(),
                json!(state.breaker(u).state(now).as_str()),
            )
        })
        .collect();
    if !breakers.is_empty() {
        body["breakers"] = Value::Object(breakers);
    }
    Json(body)
}

/// `"ok"` when the service's `GET /` answers 2xx within [`PROBE_TIMEOUT`]; `None`
/// without asking when the gateway has no URL for it.
async fn probe(state: &AppState, upstream: Upstream) -> Option<&'static str> {
    let service = state.service(upstream)?;
    let answer = match service.target("/", None) {
        Some(target) => {
            let mut request = hyper::Request::new(Full::new(Bytes::new()));
            *request.uri_mut() = target;
            let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
            service
                .call(request, deadline, PROBE_TIMEOUT, PROBE_MAX_BYTES)
                .await
                .map(|response| response.status())
                .map_err(|failure| failure.to_string())
        }
        None => Err("no probe URL".to_owned()),
    };
    Some(match answer {
        Ok(status) if status.is_success() => "ok",
        Ok(status) => {
            tracing::warn!(
                upstream = upstream.name(),
                status = status.as_u16(),
                "health probe failed"
            );
            "unavailable"
        }
        Err(error) => {
            tracing::warn!(upstream = upstream.name(), %error, "health probe failed");
            "unavailable"
        }
    })
}
