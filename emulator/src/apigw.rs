//! API Gateway's part of an HTTP API: route selection, the payload format 2.0 event,
//! mapping the function's answer back, and the answers API Gateway gives itself (CORS
//! is [`crate::cors`]).
//! Each rule names the AWS page it follows; `docs/emulation.md` lists what is known
//! only from observation and what is not emulated.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::template::{ACCOUNT_ID, Route, Segment};

/// The most API Gateway takes in a request body of an HTTP API, and its answer when
/// a body is larger: 413.
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html>
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// Lambda's limit on a synchronous invocation's request and response payloads.
/// <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>
pub const MAX_INVOKE_PAYLOAD_BYTES: usize = 6_291_556;

/// What API Gateway answers by itself, as AWS documents them for HTTP APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    /// No route matches and there is no `$default` route. The body is on
    /// <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html>.
    NotFound,
    /// The function failed, crashed, timed out, answered in a shape API Gateway cannot
    /// read, or Lambda refused the invocation (payload too large, throttled).
    /// <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-troubleshooting-lambda.html>
    InternalServerError,
    /// The integration did not answer within 30 s.
    /// <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html>
    ServiceUnavailable,
    /// A request body over [`MAX_REQUEST_BYTES`].
    RequestEntityTooLarge,
    /// Over the stage's throttling limits.
    /// <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-throttling.html>
    TooManyRequests,
}

impl GatewayError {
    pub fn status(self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::RequestEntityTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::NotFound => "Not Found",
            Self::InternalServerError => "Internal Server Error",
            Self::ServiceUnavailable => "Service Unavailable",
            Self::RequestEntityTooLarge => "Request Entity Too Large",
            Self::TooManyRequests => "Too Many Requests",
        }
    }

    pub fn response(self) -> Response<Bytes> {
        let body = json!({ "message": self.message() }).to_string();
        let mut response = Response::new(Bytes::from(body));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// The route API Gateway picks for a request, and the path parameters it fills.
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html#http-api-develop-routes.evaluation>:
/// a full match of path and method first, then a greedy `{proxy+}` match, then
/// `$default`. Literal segments are more specific than `{param}` ones, a longer greedy
/// prefix more than a shorter one, and a method route more than `ANY` on the same path.
pub fn select<'r>(
    routes: &'r [Route],
    method: &Method,
    raw_path: &str,
) -> Option<(&'r Route, BTreeMap<String, String>)> {
    let segments: Vec<&str> = match raw_path.strip_prefix('/') {
        Some("") => Vec::new(),
        Some(rest) => rest.split('/').collect(),
        None => {
            return routes
                .iter()
                .find(|r| r.path.is_none())
                .map(|r| (r, BTreeMap::new()));
        }
    };
    let mut best: Option<(Rank, &Route, BTreeMap<String, String>)> = None;
    for route in routes {
        let Some(pattern) = &route.path else { continue };
        if route
            .method
            .as_deref()
            .is_some_and(|m| m != method.as_str())
        {
            continue;
        }
        let Some((rank, params)) = matches(pattern, &segments) else {
            continue;
        };
        let rank = Rank {
            method_any: route.method.is_none(),
            ..rank
        };
        if best.as_ref().is_none_or(|(b, _, _)| rank < *b) {
            best = Some((rank, route, params));
        }
    }
    if let Some((_, route, params)) = best {
        return Some((route, params));
    }
    routes
        .iter()
        .find(|r| r.path.is_none())
        .map(|r| (r, BTreeMap::new()))
}

/// Smaller is more specific; field order is precedence.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    greedy: bool,
    /// Per segment, 0 for a literal and 1 for a `{param}`.
    kinds: Vec<u8>,
    /// Minus the number of segments before a greedy variable.
    greedy_prefix: isize,
    method_any: bool,
}

fn matches(pattern: &[Segment], segments: &[&str]) -> Option<(Rank, BTreeMap<String, String>)> {
    let mut params = BTreeMap::new();
    let mut kinds = Vec::new();
    for (i, part) in pattern.iter().enumerate() {
        match part {
            Segment::Literal(literal) => {
                if segments.get(i) != Some(&literal.as_str()) {
                    return None;
                }
                kinds.push(0);
            }
            Segment::Param(name) => {
                let value = segments.get(i).filter(|s| !s.is_empty())?;
                params.insert(name.clone(), decode(value));
                kinds.push(1);
            }
            Segment::Greedy(name) => {
                let rest = segments.get(i..).filter(|r| !r.is_empty())?;
                if rest.iter().all(|s| s.is_empty()) {
                    return None;
                }
                params.insert(name.clone(), decode(&rest.join("/")));
                return Some((
                    Rank {
                        greedy: true,
                        kinds,
                        greedy_prefix: -(i as isize),
                        method_any: false,
                    },
                    params,
                ));
            }
        }
    }
    (segments.len() == pattern.len()).then_some((
        Rank {
            greedy: false,
            kinds,
            greedy_prefix: 0,
            method_any: false,
        },
        params,
    ))
}

/// "API Gateway decodes URL-encoded request parameters before passing them to your
/// backend integration" (the routes page above).
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Everything of a request the event is made of.
pub struct Request<'a> {
    pub method: &'a Method,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub client: SocketAddr,
    pub local_port: u16,
    pub request_id: &'a str,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// The payload format 2.0 event API Gateway sends the function.
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html>:
/// header names lower-cased, repeated headers and query parameters joined with
/// commas, cookies taken out of the headers into `cookies`, and fields with nothing
/// to say left out, as in AWS's own examples.
pub fn event(
    request: &Request<'_>,
    route_key: &str,
    path_params: &BTreeMap<String, String>,
) -> Value {
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for name in request.headers.keys() {
        let values = request.headers.get_all(name).iter();
        if name == http::header::COOKIE {
            for value in values {
                let text = String::from_utf8_lossy(value.as_bytes());
                cookies.extend(
                    text.split(';')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(|c| Value::String(c.to_owned())),
                );
            }
            continue;
        }
        let joined = values
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        headers.insert(name.as_str().to_owned(), Value::String(joined));
    }
    let source_ip = request.client.ip().to_string();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(Value::as_str) {
        Some(earlier) => format!("{earlier}, {source_ip}"),
        None => source_ip.clone(),
    };
    headers.insert("x-forwarded-for".into(), forwarded_for.into());
    headers.insert(
        "x-forwarded-port".into(),
        request.local_port.to_string().into(),
    );
    headers.insert("x-forwarded-proto".into(), "http".into());
    let trace_id = format!(
        "Root=1-{:08x}-{}",
        request.now.timestamp(),
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    );
    headers.insert("x-amzn-trace-id".into(), trace_id.into());
    if !request.body.is_empty() {
        headers.insert(
            "content-length".into(),
            request.body.len().to_string().into(),
        );
    }

    let user_agent = headers
        .get("user-agent")
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let host = headers
        .get("host")
        .and_then(Value::as_str)
        .unwrap_or("localhost")
        .to_owned();
    let domain_prefix = host.split(['.', ':']).next().unwrap_or_default().to_owned();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    });
    let fields = event.as_object_mut().expect("an object");
    if !cookies.is_empty() {
        fields.insert("cookies".into(), Value::Array(cookies));
    }
    fields.insert("headers".into(), Value::Object(headers));
    let query = query_parameters(request.raw_query);
    if !query.is_empty() {
        fields.insert("queryStringParameters".into(), Value::Object(query));
    }
    fields.insert(
        "requestContext".into(),
        json!({
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": host,
            "domainPrefix": domain_prefix,
            "http": {
                "method": request.method.as_str(),
                "path": request.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
            "requestId": request.request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": request.now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": request.now.timestamp_millis(),
        }),
    );
    if !request.body.is_empty() {
        let text = is_text(request.headers)
            .then(|| std::str::from_utf8(request.body).ok())
            .flatten();
        let (body, base64) = match text {
            Some(text) => (text.to_owned(), false),
            None => (
                base64::engine::general_purpose::STANDARD.encode(request.body),
                true,
            ),
        };
        fields.insert("body".into(), Value::String(body));
        fields.insert("isBase64Encoded".into(), Value::Bool(base64));
    } else {
        fields.insert("isBase64Encoded".into(), Value::Bool(false));
    }
    if !path_params.is_empty() {
        let params: Map<String, Value> = path_params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        fields.insert("pathParameters".into(), Value::Object(params));
    }
    event
}

/// Repeated names joined with commas, values decoded.
fn query_parameters(raw_query: &str) -> Map<String, Value> {
    let mut joined: Map<String, Value> = Map::new();
    for (name, value) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        match joined.get_mut(name.as_ref()) {
            Some(Value::String(earlier)) => {
                earlier.push(',');
                earlier.push_str(&value);
            }
            _ => {
                joined.insert(name.into_owned(), Value::String(value.into_owned()));
            }
        }
    }
    joined
}

/// Whether API Gateway passes the body as text: only `text/*`, JSON, XML and
/// JavaScript; every other type, and a body without a type, arrives base64-encoded.
/// (Observed against AWS; the developer guide only says binary bodies are encoded.)
fn is_text(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "application/json" | "application/xml" | "application/javascript"
        )
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
}

/// The function's answer as API Gateway reads a format 2.0 response
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html>):
/// `statusCode`, `headers`, `cookies` (each its own `set-cookie`), `body` and
/// `isBase64Encoded`; valid JSON without a `statusCode` is a 200 whose body is that
/// JSON. Anything else is a malformed answer: `None`.
pub fn answer(payload: &[u8]) -> Option<Response<Bytes>> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let Some(status) = value.as_object().and_then(|o| o.get("statusCode")) else {
        let body = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let mut response = Response::new(Bytes::from(body));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Some(response);
    };
    let fields = value.as_object()?;
    let status = status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())?;
    let base64 = match fields.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return None,
    };
    let body = match fields.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s)) if base64 => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .ok()?,
        ),
        Some(Value::String(s)) => Bytes::from(s.clone()),
        Some(_) => return None,
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    match fields.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
                headers.insert(name, HeaderValue::from_str(&value).ok()?);
            }
        }
        Some(_) => return None,
    }
    match fields.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cookies)) => {
            for cookie in cookies {
                let cookie = HeaderValue::from_str(cookie.as_str()?).ok()?;
                headers.append(http::header::SET_COOKIE, cookie);
            }
        }
        Some(_) => return None,
    }
    if !headers.contains_key(http::header::CONTENT_TYPE) {
        // Not documented; what SAM CLI's emulation sets too.
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    Some(response)
}

/// An id in API Gateway's style (`LV7fzho-PHcEJPw=`), sent back as `apigw-requestid`.
pub fn request_id() -> String {
    let bytes: [u8; 11] = rand::random();
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

/// API Gateway's stage throttling: a token bucket of `burst` tokens refilled at
/// `rate` per second; an empty bucket is a 429.
#[derive(Debug)]
pub struct Throttle {
    burst: f64,
    rate: f64,
    state: std::sync::Mutex<(f64, std::time::Instant)>,
}

impl Throttle {
    pub fn new(burst: u64, rate: u64) -> Self {
        Self {
            burst: burst as f64,
            rate: rate as f64,
            state: std::sync::Mutex::new((burst as f64, std::time::Instant::now())),
        }
    }

    pub fn admit(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = *state;
        let now = std::time::Instant::now();
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            true
        } else {
            *state = (tokens, now);
            false
        }
    }
}
