//! SES through `SesMailer`: against moto (`SES_ENDPOINT`, else the `DYNAMODB_ENDPOINT`
//! moto), the identity verified first, the mail read back at moto_serial's
//! `/_aws/ses`; and its failures, a 503 that tells nothing.

use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use domain::Email;
use mail::mailbox::{SES_PATH, SentMail, SentMails};
use mail::{MailConfig, MailError, Mailer, MailerKind, SesMailer};
use settings::HttpClientConfig;

/// moto's endpoint: `SES_ENDPOINT`, else `DYNAMODB_ENDPOINT` (one moto serves both);
/// `None` (skip) when neither is set outside CI.
fn moto() -> Option<String> {
    match std::env::var("SES_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ => testkit::require_env("DYNAMODB_ENDPOINT"),
    }
}

fn ses_config(from: &str, endpoint: &str) -> MailConfig {
    MailConfig {
        mailer: MailerKind::Ses,
        from: Email::parse(from).unwrap(),
        app_url: "https://app.example.com".into(),
        ses_endpoint: Some(endpoint.trim_end_matches('/').to_owned()),
    }
}

async fn sent(endpoint: &str, query: &str) -> Vec<SentMail> {
    let answer = testkit::http::client()
        .get(format!(
            "{}{SES_PATH}{query}",
            endpoint.trim_end_matches('/')
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.json::<SentMails>().await.unwrap().messages
}

#[tokio::test]
async fn a_mail_goes_through_moto_from_a_verified_identity() {
    let Some(endpoint) = moto() else { return };
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let from = format!("sender-{unique}@example.com");
    let to = Email::parse(&format!("user-{unique}@example.org")).unwrap();
    let config = ses_config(&from, &endpoint);
    let timeouts = HttpClientConfig::default();
    let mailer = SesMailer::new(&config, &timeouts).await;
    let mail = config
        .mails()
        .reset_password(&to, "alice", "the-token")
        .unwrap();

    let refused = mailer.send(&mail).await.unwrap_err();
    assert!(matches!(refused, MailError::Unavailable(_)), "{refused:?}");
    assert!(
        refused.cause().contains("not verified"),
        "{}",
        refused.cause()
    );
    assert!(sent(&endpoint, &format!("?email={from}")).await.is_empty());

    let sdk = aws_client::sdk_config(&timeouts, config.ses_endpoint.as_deref()).await;
    aws_sdk_sesv2::Client::new(&sdk)
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("moto verifies the identity");
    mailer.send(&mail).await.expect("SES takes the mail");

    let messages = sent(&endpoint, &format!("?email={from}")).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(message.source, from);
    assert_eq!(message.destination.to_addresses, [to.as_str()]);
    assert_eq!(message.subject, mail.subject);
    assert_eq!(message.body.text_part.as_deref(), Some(mail.text.as_str()));
    assert_eq!(message.body.html_part.as_deref(), Some(mail.html.as_str()));
    assert!(
        !message.region.is_empty() && !message.timestamp.is_empty(),
        "{message:?}"
    );
    assert_eq!(sent(&endpoint, &format!("?to={to}")).await, messages);
    assert_eq!(
        sent(&endpoint, &format!("?id={}", message.id)).await,
        messages
    );

    let deleted = testkit::http::client()
        .delete(format!(
            "{}{SES_PATH}?id={}",
            endpoint.trim_end_matches('/'),
            message.id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert!(sent(&endpoint, &format!("?email={from}")).await.is_empty());
}

#[tokio::test]
async fn a_silent_ses_is_a_503_within_the_request_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let timeouts = HttpClientConfig {
        connect_timeout: Duration::from_millis(200),
        request_timeout: Duration::from_millis(300),
    };
    let config = ses_config("sender@example.com", &endpoint);
    let mailer = SesMailer::new(&config, &timeouts).await;
    let to = Email::parse("user@example.org").unwrap();
    let mail = config
        .mails()
        .verify_email(&to, "alice", "secret-token")
        .unwrap();
    let started = Instant::now();
    let err = mailer.send(&mail).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    held.abort();

    let response = err.into_response();
    assert_eq!(response.status(), 503);
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, testkit::error(503, "Mail service unavailable"));
}

#[tokio::test]
async fn as_the_apis_error_a_mail_failure_is_a_503_without_its_cause() {
    let err: errors::Error = MailError::Unavailable("SES: connection refused".into()).into();
    let response = err.into_response();
    assert_eq!(response.status(), 503);
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&body).contains("refused"));
}
