//! `MAILER`, `MAIL_FROM`, `APP_URL` and `SES_ENDPOINT`: defaults, and refusals that
//! name the variable.

use mail::{MailConfig, MailerKind};
use settings::{ConfigError, Vars};

fn read(pairs: &[(&str, &str)]) -> Result<MailConfig, ConfigError> {
    let lookup = |key: &str| {
        pairs
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| (*value).to_owned())
    };
    MailConfig::read(&Vars::new(&lookup))
}

#[test]
fn the_default_is_the_mailbox_with_placeholders() {
    let config = read(&[]).unwrap();
    assert_eq!(config, MailConfig::default());
    assert_eq!(config.mailer, MailerKind::Mailbox);
    assert_eq!(config.from.as_str(), MailConfig::DEFAULT_FROM);
    assert_eq!(config.app_url, MailConfig::DEFAULT_APP_URL);
    assert_eq!(config.ses_endpoint, None);
}

#[test]
fn ses_reads_its_sender_app_and_endpoint() {
    let config = read(&[
        ("MAILER", "SES"),
        ("MAIL_FROM", " no-reply@mail.example.com "),
        ("APP_URL", "https://app.example.com/accounts/"),
        ("SES_ENDPOINT", "http://127.0.0.1:5000/"),
    ])
    .unwrap();
    assert_eq!(config.mailer, MailerKind::Ses);
    assert_eq!(config.from.as_str(), "no-reply@mail.example.com");
    assert_eq!(config.app_url, "https://app.example.com/accounts");
    assert_eq!(
        config.ses_endpoint.as_deref(),
        Some("http://127.0.0.1:5000")
    );
    assert_eq!(
        read(&[("APP_URL", "http://localhost:5173")])
            .unwrap()
            .app_url,
        "http://localhost:5173"
    );
}

#[test]
fn bad_values_are_refused_naming_the_variable() {
    let ses = [
        ("MAILER", "ses"),
        ("MAIL_FROM", "a@example.com"),
        ("APP_URL", "https://app.example.com"),
    ];
    let cases: [(&[(&str, &str)], &str); 8] = [
        (
            &[("MAILER", "smtp")],
            "MAILER must be \"mailbox\" or \"ses\"",
        ),
        (
            &[("MAILER", "ses"), ("APP_URL", "https://app.example.com")],
            "MAIL_FROM must be set with MAILER=ses",
        ),
        (
            &[("MAILER", "ses"), ("MAIL_FROM", "a@example.com")],
            "APP_URL must be set with MAILER=ses",
        ),
        (
            &[("MAIL_FROM", "App <a@example.com>")],
            "MAIL_FROM must be an email address",
        ),
        (
            &[("MAIL_FROM", "nobody")],
            "MAIL_FROM must be an email address",
        ),
        (
            &[("APP_URL", "ftp://app.example.com")],
            "APP_URL must be an http(s) URL",
        ),
        (
            &[("APP_URL", "https://app.example.com/#x")],
            "APP_URL must not carry a query or fragment",
        ),
        (
            &[("SES_ENDPOINT", "localhost:5000")],
            "SES_ENDPOINT must be an http(s) URL",
        ),
    ];
    assert!(read(&ses).is_ok());
    for (pairs, expected) in cases {
        let err = read(pairs).expect_err(expected).to_string();
        assert!(err.contains(expected), "{pairs:?}: {err}");
    }
}

#[tokio::test]
async fn the_configured_mailer_is_built_without_io() {
    let timeouts = settings::HttpClientConfig::default();
    let mailbox = read(&[]).unwrap();
    assert!(mail::mailer(&mailbox, &timeouts).await.is_ok());
    let ses = read(&[
        ("MAILER", "ses"),
        ("MAIL_FROM", "a@example.com"),
        ("APP_URL", "https://app.example.com"),
        ("SES_ENDPOINT", "http://127.0.0.1:9"),
    ])
    .unwrap();
    assert!(mail::mailer(&ses, &timeouts).await.is_ok());
}
