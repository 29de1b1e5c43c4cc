//! Forwarding one request downstream and its answer back, minus hop-by-hop headers;
//! no answer, a non-JSON "JSON" answer or a dot-segment path is a JSON error.

use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::Full;

use edge::client_ip::{HOP_KEY, client_ip};
use edge::http::{REQUEST_ID, has_dot_segment, without_api_prefix};
use errors::Error;
use errors::json::{MAX_BODY_BYTES, declares_json, read_body};
use outbound::breaker::Outcome;
use outbound::http_client::Failure;

use crate::AppState;

/// The largest downstream answer relayed; a bigger one is a 502.
pub const MAX_UPSTREAM_BODY_BYTES: usize = 1024 * 1024;

/// The services behind the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upstream {
    Auth,
    Users,
}

impl Upstream {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Users => "users",
        }
    }

    fn unavailable(self) -> Error {
        match self {
            Self::Auth => Error::AuthServiceUnavailable,
            Self::Users => Error::UserServiceUnavailable,
        }
    }
}

/// The client's address as the gateway sees it, replacing whatever the client sent, so
/// auth counts failed logins per real client behind the gateway. Sent to auth only:
/// users reads no client address. Auth believes it only from a trusted proxy: in the
/// local stack, the gateway sends its hop key ([`HOP_KEY`]) beside it.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Request headers the downstream services need; nothing else is passed on (besides
/// the gateway's own `X-Forwarded-For` and hop key to auth). Auth records the `User-Agent` of a login
/// or a refresh on its session (`GET /sessions`), as it sees it behind API Gateway.
const FORWARDED: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    HeaderName::from_static(REQUEST_ID),
    header::USER_AGENT,
];

/// Response headers that describe one connection, not the answer (RFC 9110 §7.6.1),
/// plus the length, which the gateway's answer sets itself. (The downstream's
/// `X-Request-Id` is replaced by the gateway's edge layer, with the id it logged.)
const DROPPED: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("proxy-connection"),
    header::CONTENT_LENGTH,
];

pub(crate) async fn forward(state: &AppState, upstream: Upstream, req: Request) -> Response {
    match try_forward(state, upstream, req).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn try_forward(
    state: &AppState,
    upstream: Upstream,
    req: Request,
) -> Result<Response, Error> {
    let service = state.service(upstream).ok_or(Error::NotFound)?;
    if has_dot_segment(req.uri().path()) {
        return Err(Error::NotFound);
    }
    // Only auth reads the client's address (login and registration limits).
    let to_auth = upstream == Upstream::Auth;
    let client = to_auth
        .then(|| client_ip(req.extensions(), req.headers(), &state.trusted))
        .flatten();
    let (parts, body) = req.into_parts();
    let head = parts.method == Method::HEAD;
    let body = read_body(body, MAX_BODY_BYTES).await?;
    let target = service
        .target(without_api_prefix(parts.uri.path()), parts.uri.query())
        .ok_or(Error::NotFound)?;

    let mut outbound = hyper::Request::new(Full::new(body));
    *outbound.method_mut() = parts.method;
    *outbound.uri_mut() = target;
    let headers = outbound.headers_mut();
    for name in &FORWARDED {
        for value in parts.headers.get_all(name) {
            headers.append(name, value.clone());
        }
    }
    if let Some(ip) = client
        && let Ok(value) = HeaderValue::try_from(ip.to_string())
    {
        headers.insert(X_FORWARDED_FOR, value);
        if let Some(key) = state.trusted.hop_key()
            && let Ok(key) = HeaderValue::from_str(key.expose())
        {
            headers.insert(HOP_KEY, key);
        }
    }

    let breaker = state.breaker(upstream);
    let now = tokio::time::Instant::now();
    if !breaker.allow(now.into_std()) {
        tracing::warn!(
            upstream = upstream.name(),
            "circuit open: refused without calling downstream"
        );
        return Err(upstream.unavailable());
    }
    let deadline = now + state.timeout;
    let called = service
        .call(outbound, deadline, state.timeout, MAX_UPSTREAM_BODY_BYTES)
        .await;
    let outcome = match &called {
        Err(failure) if failure.is_no_answer() => Outcome::Failure,
        _ => Outcome::Success,
    };
    breaker.record(outcome, Instant::now());
    let answer = called.map_err(|failure| match failure {
        Failure::Unreachable(_) | Failure::TimedOut(_) => {
            tracing::warn!(upstream = upstream.name(), error = %failure, "downstream did not answer");
            upstream.unavailable()
        }
        Failure::TooBig(_) | Failure::Broken(_) => {
            Error::BadGateway(format!("{} {failure}", upstream.name()))
        }
    })?;
    let (answer, bytes) = answer.into_parts();
    let status = answer.status;
    let mut headers = answer.headers;
    relay(&mut headers);

    if !head && declares_json(&headers) && !is_json_answer(status, &bytes) {
        return Err(Error::BadGateway(format!(
            "{} answered {status} with a body that is not the JSON it declares ({} bytes)",
            upstream.name(),
            bytes.len()
        )));
    }

    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// A body that parses as one JSON value, or none where the status carries none.
fn is_json_answer(status: StatusCode, bytes: &[u8]) -> bool {
    if matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED) && bytes.is_empty() {
        return true;
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// `headers`, a downstream's response headers, minus hop-by-hop ones and any it named
/// in `Connection`, and minus its own CORS headers (the gateway's are what count).
fn relay(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    // One pass over the few headers an answer has, rather than a lookup of every name
    // that could be dropped; usually only Content-Length is.
    let dropped: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            DROPPED.contains(name)
                || named.contains(name)
                || name.as_str().starts_with("access-control-")
        })
        .cloned()
        .collect();
    for name in &dropped {
        headers.remove(name);
    }
}
