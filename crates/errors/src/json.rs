//! The JSON body extractor: every way a body can be wrong becomes an [`Error`].

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;

/// The largest request body any function accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON object body in, a JSON body out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Error> {
        check_content_type(req.headers())?;
        let bytes = read_body(req.into_body(), MAX_BODY_BYTES).await?;
        parse(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A JSON object body that may also be absent: no body, or only whitespace, is `None`.
#[derive(Debug, Clone, Default)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Error> {
        let (parts, body) = req.into_parts();
        let bytes = read_body(body, MAX_BODY_BYTES).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        check_content_type(&parts.headers)?;
        parse(&bytes).map(|value| Self(Some(value)))
    }
}

/// Whether `Content-Type` says JSON: `application/json` or `application/*+json`, any
/// parameters and case.
pub fn declares_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().as_bytes();
            let starts = |prefix: &str| {
                mime.len() >= prefix.len()
                    && mime[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
            };
            let ends = |suffix: &str| {
                mime.len() >= suffix.len()
                    && mime[mime.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
            };
            mime.eq_ignore_ascii_case(b"application/json")
                || (starts("application/") && ends("+json"))
        })
        .unwrap_or(false)
}

/// A body with a declared non-JSON type is refused; a body without one is tried as JSON.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), Error> {
    if !headers.contains_key(header::CONTENT_TYPE) || declares_json(headers) {
        Ok(())
    } else {
        Err(Error::UnsupportedMediaType)
    }
}

/// Reads at most `limit` bytes of a body; more is [`Error::PayloadTooLarge`].
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, Error> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if is_length_limit(err.as_ref()) => Err(Error::PayloadTooLarge),
        Err(_) => Err(Error::bad_request("Could not read request body")),
    }
}

fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Parses a request body that must be one JSON object.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => return Err(Error::bad_request("Request body is empty")),
        Some(b'{') => {}
        Some(_) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() => {
            return Err(Error::bad_request("Request body must be a JSON object"));
        }
        Some(_) => return Err(Error::bad_request("Malformed JSON")),
    }
    serde_json::from_slice(bytes).map_err(|err| {
        use serde_json::error::Category;
        match err.classify() {
            Category::Data => Error::bad_request(format!("Invalid request body: {err}")),
            Category::Syntax | Category::Eof | Category::Io => {
                Error::bad_request(format!("Malformed JSON: {err}"))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_is_declared_by_its_media_type_in_any_case_with_any_parameters() {
        let declared = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            declares_json(&headers)
        };
        for json in [
            "application/json",
            "Application/JSON",
            " application/json ; charset=utf-8",
            "application/problem+json",
            "APPLICATION/PROBLEM+JSON;charset=utf-8",
            "application/vnd.api+json",
        ] {
            assert!(declared(json), "{json}");
        }
        for other in [
            "text/plain",
            "application/jsonx",
            "application/json5",
            "text/json",
            "text/x+json",
            "application/xml",
            "json",
            "",
        ] {
            assert!(!declared(other), "{other}");
        }
        assert!(!declares_json(&HeaderMap::new()));
    }
}
