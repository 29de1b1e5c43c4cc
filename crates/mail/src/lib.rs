//! Mail out: the mails users get ([`Mails`], rendered from the templates in
//! `templates/`), the [`Mailer`] that sends them, and its two implementations: SES
//! ([`SesMailer`], feature `ses`) and the local stack's [`Mailbox`], readable at
//! LocalStack's `GET /_aws/ses`. [`MailConfig`] reads which one a process uses.

pub mod config;
pub mod mailbox;
pub mod mails;
#[cfg(feature = "ses")]
pub mod ses;

use std::fmt;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub use config::{MailConfig, MailerKind};
pub use mailbox::{Mailbox, SentMail};
pub use mails::Mails;
#[cfg(feature = "ses")]
pub use ses::SesMailer;

/// One mail to one recipient: a subject, a text body and an HTML body. `link` is the
/// link it carries, if any (with its token: its `Debug` shows neither it nor the
/// bodies).
#[derive(Clone, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub link: Option<String>,
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Sends mails: SES in AWS and under `local emulate`, the [`Mailbox`] locally.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// Why a mail was not sent. Its message is all a client may see; the cause is logged.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The mail service refused the mail or could not be reached in time: 503.
    #[error("Mail service unavailable")]
    Unavailable(String),
    /// A compiled-in template did not render: a fault of ours, 500.
    #[error("Internal server error")]
    Template(String),
}

impl MailError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Template(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The cause kept for the log, never for the client.
    pub fn cause(&self) -> &str {
        match self {
            Self::Unavailable(cause) | Self::Template(cause) => cause,
        }
    }
}

/// The API's error body: 503 "Mail service unavailable" (or 500), the cause logged.
impl IntoResponse for MailError {
    fn into_response(self) -> Response {
        let status = self.status();
        tracing::error!(
            status = status.as_u16(),
            cause = self.cause(),
            "mail failed"
        );
        errors::error::error_response(status, &self.to_string())
    }
}

/// For handlers whose error is [`errors::Error`]: a 503 (`Unavailable`) or a 500
/// (`Internal`), the cause kept for the log.
impl From<MailError> for errors::Error {
    fn from(err: MailError) -> Self {
        match err {
            MailError::Unavailable(cause) => Self::MailUnavailable(format!("mail: {cause}")),
            MailError::Template(cause) => Self::internal(format!("mail template: {cause}")),
        }
    }
}

/// The mailer `config` names, for a process that does not read its mailbox itself
/// (the local stack keeps its [`Mailbox`] to mount its router, and passes a clone).
pub async fn mailer(
    config: &MailConfig,
    timeouts: &settings::HttpClientConfig,
) -> Result<Arc<dyn Mailer>, settings::ConfigError> {
    match config.mailer {
        MailerKind::Mailbox => Ok(Arc::new(Mailbox::new(&config.from))),
        #[cfg(feature = "ses")]
        MailerKind::Ses => Ok(Arc::new(SesMailer::new(config, timeouts).await)),
        #[cfg(not(feature = "ses"))]
        MailerKind::Ses => {
            let _ = timeouts;
            Err(config::ses_not_built())
        }
    }
}
