//! The one error type: every failure leaves a function as `{"status", "message"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every error a client can see. Messages are the spec's, byte for byte.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Username already exists")]
    UsernameTaken,
    #[error("Email already registered")]
    EmailTaken,
    #[error("Invalid username or password")]
    InvalidCredentials,
    #[error("Invalid or malformed token")]
    InvalidToken,
    #[error("Token has expired")]
    TokenExpired,
    #[error("Token has been revoked")]
    TokenRevoked,
    #[error("Invalid or expired refresh token")]
    InvalidRefreshToken,
    #[error("Current password is incorrect")]
    WrongPassword,
    #[error("Session not found")]
    SessionNotFound,
    #[error("Too many failed login attempts, try again later")]
    LoginLocked { retry_after_secs: u64 },
    #[error("Too many registrations from this address, try again later")]
    RegisterLimited { retry_after_secs: u64 },
    #[error("Too many emails requested, try again later")]
    MailLimited { retry_after_secs: u64 },
    #[error("Invalid or expired token")]
    InvalidMailToken,
    #[error("Email not verified")]
    EmailNotVerified,
    #[error("Email already verified")]
    EmailAlreadyVerified,
    #[error("New email is the current email")]
    SameEmail,
    #[error("Mail service unavailable")]
    MailUnavailable(String),
    /// Every bcrypt slot stayed busy past the queue deadline: load shed, not a fault.
    #[error("Too many password checks in progress, try again later")]
    PasswordChecksBusy { retry_after_secs: u64 },
    #[error("Failed to hash password")]
    PasswordHash(String),
    #[error("Failed to generate token")]
    TokenGeneration(String),

    #[error("Missing authorization header")]
    MissingAuthHeader,
    #[error("Invalid authorization header format")]
    InvalidAuthHeader,
    #[error("Invalid or expired token")]
    Unauthorized,
    #[error("User not found")]
    UserNotFound,
    #[error("User already exists")]
    ProfileExists,
    #[error("You can only modify your own profile")]
    Forbidden,
    #[error("You can only create a profile with your own username")]
    ForeignUsername,
    #[error("Auth service unavailable")]
    AuthServiceUnavailable,
    #[error("User service unavailable")]
    UserServiceUnavailable,

    #[error("{0}")]
    BadRequest(String),
    #[error("Request body too large")]
    PayloadTooLarge,
    #[error("Request URI too long")]
    UriTooLong,
    #[error("Request headers too large")]
    HeadersTooLarge,
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("Route not found")]
    NotFound,
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("Bad gateway")]
    BadGateway(String),
    #[error("Service temporarily unavailable")]
    Unavailable(String),
    #[error("Internal server error")]
    Internal(String),
}

#[derive(Serialize)]
struct Body<'a> {
    status: &'a str,
    message: &'a str,
}

impl Error {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        Self::Unavailable(cause.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::UsernameTaken
            | Self::EmailTaken
            | Self::ProfileExists
            | Self::EmailAlreadyVerified => StatusCode::CONFLICT,
            Self::InvalidCredentials
            | Self::InvalidToken
            | Self::TokenExpired
            | Self::TokenRevoked
            | Self::InvalidRefreshToken
            | Self::WrongPassword
            | Self::MissingAuthHeader
            | Self::InvalidAuthHeader
            | Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::ForeignUsername | Self::EmailNotVerified => {
                StatusCode::FORBIDDEN
            }
            Self::UserNotFound | Self::SessionNotFound | Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) | Self::InvalidMailToken | Self::SameEmail => {
                StatusCode::BAD_REQUEST
            }
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::LoginLocked { .. } | Self::RegisterLimited { .. } | Self::MailLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::AuthServiceUnavailable
            | Self::UserServiceUnavailable
            | Self::Unavailable(_)
            | Self::MailUnavailable(_)
            | Self::PasswordChecksBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::PasswordHash(_) | Self::TokenGeneration(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The cause kept for the log, never for the client.
    fn cause(&self) -> Option<&str> {
        match self {
            Self::PasswordHash(c)
            | Self::TokenGeneration(c)
            | Self::Internal(c)
            | Self::Unavailable(c)
            | Self::MailUnavailable(c)
            | Self::BadGateway(c) => Some(c),
            _ => None,
        }
    }
}

/// Renders the spec's error body for any status and message.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let code = status.as_str();
    let body = serde_json::to_vec(&Body {
        status: code,
        message,
    })
    .unwrap_or_else(|_| b"{\"status\":\"500\",\"message\":\"Internal server error\"}".to_vec());
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Some(cause) = self.cause() {
            tracing::error!(status = status.as_u16(), cause, "request failed");
        }
        let mut response = error_response(status, &self.to_string());
        if let Self::LoginLocked { retry_after_secs }
        | Self::RegisterLimited { retry_after_secs }
        | Self::MailLimited { retry_after_secs }
        | Self::PasswordChecksBusy { retry_after_secs } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
