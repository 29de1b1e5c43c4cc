//! The HTTP API's CORS, as API Gateway applies its `CorsConfiguration`: preflights it
//! answers itself, and the configured headers in place of the function's own.
//! <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html>

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};

/// `CorsConfiguration` of the HTTP API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub allow_credentials: bool,
    pub max_age: Option<u64>,
}

/// Whether a request is a CORS preflight API Gateway answers itself: an `OPTIONS`
/// with `Origin` and `Access-Control-Request-Method`.
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html>
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(http::header::ORIGIN)
        && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

impl Cors {
    /// The `Access-Control-Allow-Origin` for a request's origin: `*` when every origin
    /// is allowed, the origin itself when listed, nothing otherwise.
    fn allow_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(http::header::ORIGIN)?;
        if self.allow_origins.iter().any(|o| o == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        let origin_text = origin.to_str().ok()?;
        self.allow_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin_text))
            .then(|| origin.clone())
    }

    /// API Gateway's own answer to a preflight: 204, with the configured headers when
    /// the origin is allowed.
    pub fn preflight(&self, request: &HeaderMap) -> Response<Bytes> {
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let Some(origin) = self.allow_origin(request) else {
            return response;
        };
        let headers = response.headers_mut();
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        let mut list = |name: HeaderName, values: &[String]| {
            if let Ok(value) = HeaderValue::from_str(&values.join(","))
                && !values.is_empty()
            {
                headers.insert(name, value);
            }
        };
        list(
            http::header::ACCESS_CONTROL_ALLOW_METHODS,
            &self.allow_methods,
        );
        list(
            http::header::ACCESS_CONTROL_ALLOW_HEADERS,
            &self.allow_headers,
        );
        if let Some(max_age) = self.max_age {
            headers.insert(http::header::ACCESS_CONTROL_MAX_AGE, max_age.into());
        }
        if self.allow_credentials {
            headers.insert(
                http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        response
    }

    /// The function's CORS headers dropped ("API Gateway ignores CORS headers returned
    /// from your backend integration") and the configured ones added.
    pub fn apply(&self, request: &HeaderMap, response: &mut Response<Bytes>) {
        let headers = response.headers_mut();
        let theirs: Vec<HeaderName> = headers
            .keys()
            .filter(|n| n.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in theirs {
            headers.remove(name);
        }
        let Some(origin) = self.allow_origin(request) else {
            return;
        };
        headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if !self.expose_headers.is_empty()
            && let Ok(value) = HeaderValue::from_str(&self.expose_headers.join(","))
        {
            headers.insert(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, value);
        }
        if self.allow_credentials {
            headers.insert(
                http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}
