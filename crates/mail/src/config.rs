//! How mail goes out: `MAILER`, `MAIL_FROM`, `APP_URL` and `SES_ENDPOINT`.

use domain::Email;
use settings::{ConfigError, Vars, service_url};

/// Which [`crate::Mailer`] a process uses (`MAILER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MailerKind {
    /// The local stack's [`crate::Mailbox`], the default, as `STORE=memory` is: the
    /// local stack and the seed's flow need no configuration, and nothing leaves the
    /// process. The template sets `ses` (with `STORE=dynamodb`).
    #[default]
    Mailbox,
    /// SES v2 `SendEmail` from `MAIL_FROM` ([`crate::SesMailer`], feature `ses`).
    Ses,
}

/// How mail goes out: the mailer, the sender, where links point and SES's endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    pub mailer: MailerKind,
    /// `MAIL_FROM`: the sender, a verified SES identity; required with `MAILER=ses`,
    /// [`MailConfig::DEFAULT_FROM`] in the mailbox otherwise.
    pub from: Email,
    /// `APP_URL`: the app the links in mails point at, never the API; http(s), no
    /// query or fragment, no trailing slash. Required with `MAILER=ses`,
    /// [`MailConfig::DEFAULT_APP_URL`] otherwise.
    pub app_url: String,
    /// `SES_ENDPOINT`: SES's endpoint override (moto locally), without a trailing slash.
    pub ses_endpoint: Option<String>,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            mailer: MailerKind::Mailbox,
            from: Email::parse(Self::DEFAULT_FROM).expect("the default sender is an address"),
            app_url: Self::DEFAULT_APP_URL.to_owned(),
            ses_endpoint: None,
        }
    }
}

impl MailConfig {
    /// The mailbox's sender when `MAIL_FROM` is unset (example.com: reserved, RFC 2606).
    pub const DEFAULT_FROM: &str = "no-reply@example.com";
    /// Where links point when `APP_URL` is unset with the mailbox: a front end's usual
    /// local address, and none of the local stack's API ports (3000-3002).
    pub const DEFAULT_APP_URL: &str = "http://localhost:8080";

    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let mailer = vars.choice(
            "MAILER",
            [("mailbox", MailerKind::Mailbox), ("ses", MailerKind::Ses)],
        )?;
        if mailer == MailerKind::Ses && !cfg!(feature = "ses") {
            return Err(ses_not_built());
        }
        let required = |var: &str, what: &str| {
            ConfigError(format!("{var} must be set with MAILER=ses ({what})"))
        };
        let from = match vars.get("MAIL_FROM") {
            Some(value) => Email::parse(value.trim()).map_err(|_| {
                ConfigError(format!("MAIL_FROM must be an email address, got {value:?}"))
            })?,
            None if mailer == MailerKind::Ses => {
                return Err(required("MAIL_FROM", "a verified SES identity"));
            }
            None => Self::default().from,
        };
        let app_url = match vars.get("APP_URL") {
            Some(value) => base_url("APP_URL", &value)?,
            None if mailer == MailerKind::Ses => {
                return Err(required("APP_URL", "where the links in mails point"));
            }
            None => Self::DEFAULT_APP_URL.to_owned(),
        };
        let ses_endpoint = vars
            .get("SES_ENDPOINT")
            .map(|value| base_url("SES_ENDPOINT", &value))
            .transpose()?;
        Ok(Self {
            mailer,
            from,
            app_url,
            ses_endpoint,
        })
    }

    /// The mails, with links into [`MailConfig::app_url`].
    pub fn mails(&self) -> crate::Mails {
        crate::Mails::new(&self.app_url)
    }
}

/// An http(s) URL with a host, no query or fragment, as text without a trailing slash
/// (so `{base}/path` never doubles one).
fn base_url(var: &str, value: &str) -> Result<String, ConfigError> {
    let url = service_url(var, value)?;
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

pub(crate) fn ses_not_built() -> ConfigError {
    ConfigError("MAILER=ses needs a build with the mail crate's feature \"ses\"".into())
}
