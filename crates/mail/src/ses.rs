//! Mail through SES (feature `ses`): v2 `SendEmail` with simple content (subject, text
//! and HTML bodies, UTF-8) from `MAIL_FROM`, on `aws_client`'s SDK setup (its HTTP
//! client, rustls on ring; each call bounded by `REQUEST_TIMEOUT_MS`, retries
//! included), `SES_ENDPOINT` as endpoint override (moto locally).

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::DisplayErrorContext;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use settings::HttpClientConfig;

use crate::{Mail, MailConfig, MailError, Mailer};

/// Sends each mail with one SES v2 `SendEmail`.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    from: String,
}

impl SesMailer {
    /// The mailer `config` describes (`MAIL_FROM`, `SES_ENDPOINT`), its calls bounded by
    /// `timeouts`. Builds without I/O.
    pub async fn new(config: &MailConfig, timeouts: &HttpClientConfig) -> Self {
        let sdk = aws_client::sdk_config(timeouts, config.ses_endpoint.as_deref()).await;
        Self::with_client(Client::new(&sdk), config.from.as_str())
    }

    /// A mailer on `client`, sending from `from`.
    pub fn with_client(client: Client, from: &str) -> Self {
        Self {
            client,
            from: from.to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl Mailer for SesMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let part = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|err| MailError::Unavailable(format!("SES request: {err}")))
        };
        let message = Message::builder()
            .subject(part(&mail.subject)?)
            .body(
                Body::builder()
                    .text(part(&mail.text)?)
                    .html(part(&mail.html)?)
                    .build(),
            )
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&mail.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|err| MailError::Unavailable(format!("SES: {}", DisplayErrorContext(&err))))
    }
}
