//! Router plumbing every function shares: the `/api` prefix, JSON 404/405 (dot segments
//! too), panics as 500 JSON, the access log, `X-Request-Id`, bearer tokens, the Lambda
//! entry point. CORS, when a function has it, is in the `cors` submodule.

mod cors;

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, Route};
use futures_util::FutureExt;
use tower::{Layer, Service};
use tower_http::cors::CorsLayer;

use crate::metrics;
use cors::{CorsPolicy, PreflightCors, constant_cors_headers};
use errors::Error;
use errors::error::error_response;

pub const REQUEST_ID: &str = "x-request-id";

/// [`REQUEST_ID`] as a header name.
const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static(REQUEST_ID);

/// The response header of `GET /users` that carries the `?cursor=` of the next page.
pub const NEXT_CURSOR: &str = "x-next-cursor";

/// A function's routes, each registered at its path and again under `/api` (`/` as
/// `/api`), for [`finish`]. Registered twice rather than nested, so that a request is
/// routed once and its URI is never rebuilt: a handler sees the path as received.
pub struct Routes<S = ()>(Router<S>);

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self(Router::new())
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Self::default()
    }

    /// `method_router` at `path` and at `/api` + `path`.
    pub fn route(self, path: &str, method_router: MethodRouter<S>) -> Self {
        let under_api = if path == "/" {
            API_PREFIX.to_owned()
        } else {
            format!("{API_PREFIX}{path}")
        };
        Self(
            self.0
                .route(path, method_router.clone())
                .route(&under_api, method_router),
        )
    }

    pub fn with_state<S2>(self, state: S) -> Routes<S2> {
        Routes(self.0.with_state(state))
    }
}

/// The prefix every route is also served under, as the gateway's `/api/*`.
pub const API_PREFIX: &str = "/api";

/// `path` without the [`API_PREFIX`] segment it may start with: the path a function
/// serves the same route at.
pub fn without_api_prefix(path: &str) -> &str {
    match path.strip_prefix(API_PREFIX) {
        Some(rest) if rest.starts_with('/') => rest,
        Some("") => "/",
        _ => path,
    }
}

/// Serves `routes` with JSON errors for unknown routes and methods, panics answered as
/// 500 JSON, one access log line per request and an `X-Request-Id` on every answer
/// ([`Edge`]). A path with a `.` or `..` segment is an unknown route, whatever it would
/// resolve to. Each request's metrics ([`crate::metrics`]) are reported under `service`.
pub fn finish(service: &'static str, routes: Routes) -> Router {
    finish_with(service, routes, None)
}

/// [`finish`], with `cors` between the edge and the routes: its preflight answers carry
/// the request id and are logged like any other. An `OPTIONS` without
/// `Access-Control-Request-Method` (no preflight) gets the routes' 405 JSON, as behind
/// API Gateway, instead of the CORS layer's empty 200.
pub fn finish_with(service: &'static str, routes: Routes, cors: Option<CorsLayer>) -> Router {
    // The headers every answer that is no preflight gets, when they do not depend on
    // the request (any origin): added as they are instead of asking the layer each time.
    let constant = cors.as_ref().and_then(constant_cors_headers).map(Arc::new);
    // One layer, applied to each route and to the fallback after routing (so the
    // matched route is known without recording it on the way in), composed of plain
    // services: one boxed service per route, not one per layer.
    let plumbing = tower::layer::layer_fn(move |route: Route| Edge {
        service,
        inner: PreflightCors {
            cors: cors.as_ref().map(|cors| {
                Arc::new(CorsPolicy {
                    layered: cors.layer(route.clone()),
                    constant: constant.clone(),
                })
            }),
            plain: route,
        },
    });
    routes
        .0
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(plumbing)
}

/// What every request passes through first: its `X-Request-Id` (the caller's when it
/// is sensible, else API Gateway's, else a fresh UUID; set on the request for the
/// handler and on the answer; every function sets it itself, because behind API
/// Gateway `/api/*` reaches auth and users directly), the refusal of oversized heads
/// ([`oversized_head`]), the refusal of dot-segment paths
/// (as received, or as API Gateway sent them: lambda_http resolves them before the
/// router sees the path), the time the answer is due by in Lambda
/// ([`crate::deadline`]), a panic answered as 500 JSON ([`on_panic`]), then the access
/// log line and the metric line of the answer.
/// The access line holds the request id, method, matched route template (`-` when no
/// route matched), status and latency; never the path's values, the query, headers or
/// body.
#[derive(Clone)]
struct Edge<S> {
    /// The function whose metrics the requests count under.
    service: &'static str,
    inner: S,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let start = Instant::now();
        // The id the request is known by in the logs: API Gateway's in Lambda.
        let api_gateway_id = api_gateway_request_id(req.extensions()).map(str::to_owned);
        let id = caller_request_id(req.headers())
            .cloned()
            .or_else(|| HeaderValue::from_str(api_gateway_id.as_deref()?).ok())
            .unwrap_or_else(fresh_request_id);
        req.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
        let method = req.method().clone();
        // An oversized head is refused unread; a dot-segment path is the unknown route,
        // whichever route its template matched.
        let refused = oversized_head(&req).or_else(|| {
            let dots = has_dot_segment(req.uri().path())
                || has_dot_segment(lambda_http::RequestExt::raw_http_path(req.extensions()));
            dots.then_some(Error::NotFound)
        });
        let answer_by = crate::deadline::of_request(req.extensions());
        let (route, answer) = if refused.is_some() {
            (None, None)
        } else {
            let route = req.extensions().get::<MatchedPath>().cloned();
            let called = catch_unwind(AssertUnwindSafe(|| self.inner.call(req)));
            (route, Some(called))
        };
        let service = self.service;
        Box::pin(async move {
            let (mut response, counts) = match answer {
                Some(Ok(answer)) => {
                    let answer = AssertUnwindSafe(answer).catch_unwind();
                    match metrics::counted(crate::deadline::within(answer_by, answer)).await {
                        (Ok(Ok(response)), counts) => (response, counts),
                        (Ok(Err(never)), _) => match never {},
                        (Err(panic), counts) => (on_panic(panic), counts),
                    }
                }
                Some(Err(panic)) => (on_panic(panic), metrics::Counts::default()),
                None => (
                    refused.unwrap_or(Error::NotFound).into_response(),
                    metrics::Counts::default(),
                ),
            };
            response.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
            let route = route.filter(|_| response.extensions().get::<Unrouted>().is_none());
            let route = route.as_ref().map(MatchedPath::as_str);
            let request_id = api_gateway_id.as_deref().or_else(|| id.to_str().ok());
            let status = response.status().as_u16();
            let elapsed = start.elapsed();
            let latency_ms = elapsed.as_secs_f64() * 1000.0;
            tracing::info!(
                target: crate::telemetry::ACCESS,
                request_id = request_id.unwrap_or("-"),
                %method,
                route = route.unwrap_or("-"),
                status,
                latency_ms = %Milliseconds(elapsed),
                "request"
            );
            metrics::emit(&metrics::Request {
                service,
                method: method.as_str(),
                route,
                status,
                latency_ms,
                request_id,
                counts,
            });
            Ok(response)
        })
    }
}

/// The longest request target (path and query) answered: longer is 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The most header bytes answered (each header's name and value, plus the four bytes
/// of `: ` and CRLF around them): more is 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// 414 `Request URI too long` past [`MAX_URI_BYTES`], 431 `Request headers too large`
/// past [`MAX_HEADER_BYTES`]: in the API's JSON shape, where hyper's own refusals (at
/// 64 KiB of target, over 100 headers or about 400 KiB of head, far above these) have
/// no body. Behind API Gateway, whose own limits are lower, neither is ever reached.
fn oversized_head(req: &Request) -> Option<Error> {
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(Error::UriTooLong);
    }
    let mut bytes = 0;
    for (name, value) in req.headers() {
        bytes += name.as_str().len() + value.len() + 4;
        if bytes > MAX_HEADER_BYTES {
            return Some(Error::HeadersTooLarge);
        }
    }
    None
}

/// A duration in milliseconds with two decimals (`0.52`), as `{:.2}` writes the
/// milliseconds as a float but in integers: one is written per request.
struct Milliseconds(std::time::Duration);

impl std::fmt::Display for Milliseconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hundredths of a millisecond, rounded half up.
        let hundredths = (self.0.as_nanos() + 5_000) / 10_000;
        write!(f, "{}.{:02}", hundredths / 100, hundredths % 100)
    }
}

/// A new random request id: a UUID v4.
fn fresh_request_id() -> HeaderValue {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// Marks the answer to a method the path does not serve: logged and counted without a
/// route, like an unknown path.
#[derive(Clone, Copy)]
struct Unrouted;

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

async fn not_found() -> Error {
    Error::NotFound
}

async fn method_not_allowed() -> Response {
    let mut response = Error::MethodNotAllowed.into_response();
    response.extensions_mut().insert(Unrouted);
    response
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

/// API Gateway's id of the request, when it came through API Gateway (Lambda).
pub fn api_gateway_request_id(extensions: &axum::http::Extensions) -> Option<&str> {
    use lambda_http::request::RequestContext;
    match extensions.get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.request_id.as_deref(),
        RequestContext::ApiGatewayV1(ctx) => ctx.request_id.as_deref(),
        _ => None,
    }
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
    use axum::http::Method;
    use axum::http::header::{
        ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
    };

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

    #[test]
    fn latencies_are_written_in_milliseconds_with_two_decimals() {
        use std::time::Duration;
        for (nanos, text) in [
            (0, "0.00"),
            (4_999, "0.00"),
            (5_000, "0.01"),
            (520_000, "0.52"),
            (1_234_567, "1.23"),
            (9_995_000, "10.00"),
            (12_345_678_901, "12345.68"),
        ] {
            assert_eq!(
                Milliseconds(Duration::from_nanos(nanos)).to_string(),
                text,
                "{nanos} ns"
            );
        }
    }

    #[test]
    fn a_path_without_its_api_prefix_is_the_path_the_function_serves() {
        for (path, served) in [
            ("/api/users/1", "/users/1"),
            ("/api", "/"),
            ("/api/", "/"),
            ("/users", "/users"),
            ("/", "/"),
            ("/apiary", "/apiary"),
            ("/v1/api/users", "/v1/api/users"),
        ] {
            assert_eq!(without_api_prefix(path), served, "{path}");
        }
    }

    /// The CORS headers of an answer that is no preflight, added as they are when they
    /// do not depend on the request, are those tower-http's layer adds, with and without
    /// an `Origin`, and the answer's own `Vary` stays first; a list of origins goes through the
    /// layer, which answers only its origins. Preflights are the layer's either way.
    #[tokio::test]
    async fn constant_cors_headers_are_the_layers_own() {
        use axum::routing::get;
        use tower::ServiceExt;
        use tower_http::cors::{AllowOrigin, ExposeHeaders};

        let layer = |origin: AllowOrigin| {
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([AUTHORIZATION])
                .expose_headers(ExposeHeaders::list([REQUEST_ID_HEADER]))
        };
        let handler = || async { ([(VARY, "accept")], "ok") };
        let call = |app: Router, method: Method, origin: Option<&'static str>| async move {
            let mut request = Request::new(axum::body::Body::empty());
            *request.method_mut() = method.clone();
            *request.uri_mut() = "/things".parse().unwrap();
            if let Some(origin) = origin {
                request
                    .headers_mut()
                    .insert(ORIGIN, HeaderValue::from_static(origin));
            }
            if method == Method::OPTIONS {
                request.headers_mut().insert(
                    ACCESS_CONTROL_REQUEST_METHOD,
                    HeaderValue::from_static("GET"),
                );
            }
            let mut headers = app.oneshot(request).await.unwrap().headers().clone();
            headers.remove(REQUEST_ID_HEADER);
            headers
        };

        let any = layer(AllowOrigin::any());
        let constant = constant_cors_headers(&any).expect("any origin: constant headers");
        assert_eq!(constant[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let list = layer(AllowOrigin::list([HeaderValue::from_static(
            "https://app.example",
        )]));
        assert!(
            constant_cors_headers(&list).is_none(),
            "a list depends on the origin"
        );

        for policy in [any, list] {
            let ours = finish_with(
                "test",
                Routes::new().route("/things", get(handler)),
                Some(policy.clone()),
            );
            let theirs = Router::new()
                .route("/things", get(handler))
                .layer(policy.clone());
            for method in [Method::GET, Method::OPTIONS] {
                for origin in [
                    None,
                    Some("https://app.example"),
                    Some("https://else.example"),
                ] {
                    let (ours, theirs) = (
                        call(ours.clone(), method.clone(), origin).await,
                        call(theirs.clone(), method.clone(), origin).await,
                    );
                    assert_eq!(ours, theirs, "{method} from {origin:?}");
                    if method == Method::GET {
                        let vary: Vec<_> = ours.get_all(VARY).iter().collect();
                        assert_eq!(
                            vary.first().copied(),
                            Some(&HeaderValue::from_static("accept"))
                        );
                    }
                }
            }
        }
    }

    /// One request through `app`, with the access lines it wrote (JSON format).
    fn call_logged(app: &Router, method: &str, uri: &str) -> (Response, Vec<serde_json::Value>) {
        use crate::telemetry::Captured;
        use tower::ServiceExt;

        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = crate::telemetry::subscriber(
            crate::telemetry::Format::Json,
            tracing_subscriber::EnvFilter::new("info"),
            move || writer.clone(),
        );
        let _guard = tracing::subscriber::set_default(subscriber);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = runtime
            .block_on(app.clone().oneshot(request))
            .expect("infallible");
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let lines = text
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter(|line| line["target"] == "access")
            .collect();
        (response, lines)
    }

    #[test]
    fn every_answer_is_logged_once_with_its_route_template_or_none() {
        let app = finish(
            "test",
            Routes::new()
                .route("/", axum::routing::get(|| async { "root" }))
                .route("/things/{id}", axum::routing::get(|| async { "thing" })),
        );
        for (method, uri, status, route) in [
            ("GET", "/", 200, "/"),
            ("GET", "/api", 200, "/api"),
            ("GET", "/things/7", 200, "/things/{id}"),
            ("GET", "/api/things/7", 200, "/api/things/{id}"),
            // A method the path does not serve: no route, as for an unknown path.
            ("DELETE", "/api/things/7", 405, "-"),
            ("GET", "/nope", 404, "-"),
            ("GET", "/api/", 404, "-"),
            ("GET", "/things/%2e%2e", 404, "-"),
        ] {
            let (response, lines) = call_logged(&app, method, uri);
            assert_eq!(response.status().as_u16(), status, "{method} {uri}");
            let id = response.headers()[REQUEST_ID].to_str().unwrap().to_owned();
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{method} {uri}: {id}");
            assert_eq!(lines.len(), 1, "{method} {uri}: {lines:?}");
            let line = &lines[0];
            assert_eq!(line["route"], route, "{method} {uri}: {line}");
            assert_eq!(line["method"], method, "{method} {uri}: {line}");
            assert_eq!(line["status"], status, "{method} {uri}: {line}");
            assert_eq!(line["request_id"], id.as_str(), "{method} {uri}: {line}");
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
