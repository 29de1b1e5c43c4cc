//! Router plumbing every function shares: the `/api` prefix, JSON 404/405 (dot segments
//! too), panics as 500 JSON, the access log, `X-Request-Id`, bearer tokens, the Lambda
//! entry point.

use std::any::Any;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::error_response;
use crate::metrics;
use crate::Error;

pub const REQUEST_ID: &str = "x-request-id";

/// The response header of `GET /users` that carries the `?cursor=` of the next page.
pub const NEXT_CURSOR: &str = "x-next-cursor";

/// Serves `routes` at `/` and under `/api`, with JSON errors for unknown routes and
/// methods, panics answered as 500 JSON, one access log line per request and an
/// `X-Request-Id` on every answer ([`request_id_layer`]). A path with a `.` or `..`
/// segment is an unknown route, whatever it would resolve to. Each request's metrics
/// ([`crate::metrics`]) are reported under `service`.
pub fn finish(service: &'static str, routes: Router) -> Router {
    let routes = routes
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn(record_route));
    Router::new()
        .merge(routes.clone())
        .nest("/api", routes)
        .fallback(not_found)
        .layer(CatchPanicLayer::custom(on_panic))
        .layer(middleware::from_fn(refuse_dot_segments))
        .layer(middleware::from_fn_with_state(service, access_log))
        .layer(middleware::from_fn(request_id_layer))
}

/// The `X-Request-Id` every request carries on and every answer carries back: the
/// caller's when it is sensible, else API Gateway's, else a fresh UUID. Every function
/// sets it itself, because behind API Gateway `/api/*` reaches auth and users directly.
pub async fn request_id_layer(mut req: Request, next: Next) -> Response {
    let id = caller_request_id(req.headers())
        .cloned()
        .or_else(|| HeaderValue::from_str(api_gateway_request_id(req.extensions())?).ok())
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("-"))
        });
    let name = HeaderName::from_static(REQUEST_ID);
    req.headers_mut().insert(name.clone(), id.clone());
    let mut response = next.run(req).await;
    response.headers_mut().insert(name, id);
    response
}

/// Whether `path` holds a `.` or `..` segment as the WHATWG URL parser sees one in an
/// http(s) URL: segments end at `/` or `\`, and `%2e` (any case) is a dot.
pub fn has_dot_segment(path: &str) -> bool {
    // Most paths have neither a dot nor an escape: no segment to look at.
    if !path.bytes().any(|b| b == b'.' || b == b'%') {
        return false;
    }
    path.split(['/', '\\']).any(|segment| {
        let dots = segment.to_ascii_lowercase().replace("%2e", ".");
        dots == "." || dots == ".."
    })
}

/// The unknown route's 404 for a path with dot segments, as received or as API Gateway
/// sent it (lambda_http resolves them before the router sees the path).
async fn refuse_dot_segments(req: Request, next: Next) -> Response {
    use lambda_http::RequestExt;
    if has_dot_segment(req.uri().path()) || has_dot_segment(req.extensions().raw_http_path()) {
        return Error::NotFound.into_response();
    }
    next.run(req).await
}

async fn not_found() -> Error {
    Error::NotFound
}

async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}

fn on_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    tracing::error!(panic = %detail, "handler panicked");
    error_response(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}

/// The longest `X-Request-Id` taken from a caller.
const MAX_REQUEST_ID: usize = 128;

/// The caller's `X-Request-Id` when it is one short value of visible, harmless
/// characters (letters, digits, `-_.:/+=`); anything else is not taken.
pub fn caller_request_id(headers: &HeaderMap) -> Option<&HeaderValue> {
    let mut values = headers.get_all(REQUEST_ID).iter();
    let value = values.next()?;
    let sensible = values.next().is_none()
        && !value.is_empty()
        && value.len() <= MAX_REQUEST_ID
        && value
            .as_bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b));
    sensible.then_some(value)
}

/// The id a request is known by: API Gateway's in Lambda, else the caller's
/// [`caller_request_id`] (the gateway's, locally).
pub fn request_id(req: &Request) -> Option<String> {
    let from_api_gateway = api_gateway_request_id(req.extensions()).map(str::to_owned);
    from_api_gateway.or_else(|| {
        caller_request_id(req.headers())
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

/// API Gateway's id of the request, when it came through API Gateway (Lambda).
pub fn api_gateway_request_id(extensions: &axum::http::Extensions) -> Option<&str> {
    use lambda_http::request::RequestContext;
    match extensions.get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.request_id.as_deref(),
        RequestContext::ApiGatewayV1(ctx) => ctx.request_id.as_deref(),
        _ => None,
    }
}

/// Where the route layer leaves the matched route template for the access log, which
/// runs outside routing (and so also sees unmatched requests and panics).
#[derive(Clone, Default)]
struct RouteSlot(Arc<OnceLock<String>>);

async fn record_route(req: Request, next: Next) -> Response {
    if let (Some(slot), Some(route)) = (
        req.extensions().get::<RouteSlot>(),
        req.extensions().get::<MatchedPath>(),
    ) {
        let _ = slot.0.set(route.as_str().to_owned());
    }
    next.run(req).await
}

/// The access log line: request id, method, matched route template (`-` when no route
/// matched), status and latency. Never the path's values, the query, headers or body.
/// Then the request's metric line, with what the request counted.
async fn access_log(
    axum::extract::State(service): axum::extract::State<&'static str>,
    mut req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let id = request_id(&req);
    let slot = RouteSlot::default();
    req.extensions_mut().insert(slot.clone());
    let (response, counts) = metrics::counted(next.run(req)).await;
    let status = response.status().as_u16();
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let route = slot.0.get().map(String::as_str);
    tracing::info!(
        target: "access",
        request_id = id.as_deref().unwrap_or("-"),
        %method,
        route = route.unwrap_or("-"),
        status,
        latency_ms = format_args!("{latency_ms:.2}"),
        "request"
    );
    metrics::emit(&metrics::Request {
        service,
        method: method.as_str(),
        route,
        status,
        latency_ms,
        request_id: id.as_deref(),
        counts,
    });
    response
}

/// Runs a function's router under the Lambda runtime.
pub async fn run_lambda(app: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(app).await
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Error> {
    let value = headers.get(AUTHORIZATION).ok_or(Error::MissingAuthHeader)?;
    let value = value.to_str().map_err(|_| Error::InvalidAuthHeader)?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or(Error::InvalidAuthHeader)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(Error::InvalidAuthHeader);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_found_in_every_spelling_the_url_parser_resolves() {
        for path in [
            "/.",
            "/..",
            "/users/.",
            "/users/..",
            "/users/%2e",
            "/users/%2E",
            "/users/%2e%2e",
            "/users/%2E%2e",
            "/users/.%2e",
            "/users/%2e.",
            "/users/.%2E",
            "/users/../register",
            "/api/users/%2e%2e/",
            "/api/users/..\\",
            "/api/users/x\\..\\..",
            "/api/./users",
        ] {
            assert!(has_dot_segment(path), "{path}");
        }
        for path in [
            "",
            "/",
            "/users",
            "/users/550e8400-e29b-41d4-a716-446655440000",
            "/users/...",
            "/users/.x",
            "/users/x.",
            "/users/%2e%2e%2e",
            "/users/%2e%2e%2f",
            "/users/%252e%252e",
            "/users/..x",
            "/openapi.json",
        ] {
            assert!(!has_dot_segment(path), "{path}");
        }
    }

    fn headers(value: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_bearer_token_is_taken_from_the_header() {
        assert_eq!(bearer_token(&headers(Some("Bearer abc"))).unwrap(), "abc");
        assert_eq!(bearer_token(&headers(Some("bearer  abc "))).unwrap(), "abc");
        assert!(matches!(
            bearer_token(&headers(None)),
            Err(Error::MissingAuthHeader)
        ));
        for bad in ["Basic abc", "Bearer", "Bearer ", "abc", "Token abc", ""] {
            assert!(
                matches!(
                    bearer_token(&headers(Some(bad))),
                    Err(Error::InvalidAuthHeader)
                ),
                "{bad:?}"
            );
        }
    }
}
