//! The mails users get, rendered from the templates in `templates/` (compiled into the
//! binary): each a subject (the text template's `subject` block), a text body and an
//! HTML body (autoescaped). Links point at the app (`APP_URL`), never at the API, and
//! carry their token in the fragment (`#token=`), which browsers never send to a
//! server, so it reaches no access log.

use std::collections::BTreeMap;
use std::sync::Arc;

use domain::Email;
use minijinja::{Environment, UndefinedBehavior, Value};

use crate::{Mail, MailError};

/// The app's page that confirms an address at sign-up: `{APP_URL}/verify-email#token=`.
pub const VERIFY_EMAIL_PATH: &str = "/verify-email";
/// The app's page that sets a new password: `{APP_URL}/reset-password#token=`.
pub const RESET_PASSWORD_PATH: &str = "/reset-password";
/// The app's page that confirms a new address: `{APP_URL}/confirm-email#token=`.
pub const CONFIRM_EMAIL_PATH: &str = "/confirm-email";
/// The app's page that asks for a reset link, named by the notices.
pub const FORGOT_PASSWORD_PATH: &str = "/forgot-password";

/// Each mail's text and HTML templates, by file name, compiled in.
macro_rules! templates {
    ($($name:literal),*) => {
        [$(
            (concat!($name, ".txt"), include_str!(concat!("../templates/", $name, ".txt"))),
            (concat!($name, ".html"), include_str!(concat!("../templates/", $name, ".html"))),
        )*]
    };
}

const TEMPLATES: [(&str, &str); 14] = templates!(
    "layout",
    "verify_email",
    "reset_password",
    "confirm_email_change",
    "email_change_notice",
    "password_changed",
    "password_reset_done"
);

/// The mails, with links into one app. Cheap to clone.
#[derive(Clone)]
pub struct Mails {
    env: Arc<Environment<'static>>,
    app_url: String,
}

impl std::fmt::Debug for Mails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mails")
            .field("app_url", &self.app_url)
            .finish_non_exhaustive()
    }
}

impl Mails {
    /// The mails with links into `app_url` (`APP_URL`, without a trailing slash).
    pub fn new(app_url: &str) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|err| panic!("the compiled-in template {name} parses: {err}"));
        }
        Self {
            env: Arc::new(env),
            app_url: app_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The link to confirm `to` at sign-up, or again later.
    pub fn verify_email(&self, to: &Email, username: &str, token: &str) -> Result<Mail, MailError> {
        self.link_mail("verify_email", VERIFY_EMAIL_PATH, to, username, token)
    }

    /// The link to set a new password, to the account's address.
    pub fn reset_password(
        &self,
        to: &Email,
        username: &str,
        token: &str,
    ) -> Result<Mail, MailError> {
        self.link_mail("reset_password", RESET_PASSWORD_PATH, to, username, token)
    }

    /// The link to confirm an email change, to the new address (`to`).
    pub fn confirm_email_change(
        &self,
        to: &Email,
        username: &str,
        token: &str,
    ) -> Result<Mail, MailError> {
        self.link_mail(
            "confirm_email_change",
            CONFIRM_EMAIL_PATH,
            to,
            username,
            token,
        )
    }

    /// The notice of an asked email change, to the old address (`to`): no link that
    /// confirms, only the new address and where to reset the password.
    pub fn email_change_notice(
        &self,
        to: &Email,
        username: &str,
        new_email: &Email,
    ) -> Result<Mail, MailError> {
        let extra = vec![("new_email", Value::from(new_email.as_str()))];
        self.render("email_change_notice", to, username, None, extra)
    }

    /// The notice that the password was changed (`POST /password`).
    pub fn password_changed(&self, to: &Email, username: &str) -> Result<Mail, MailError> {
        self.render("password_changed", to, username, None, vec![])
    }

    /// The notice that the password was reset through a mailed link.
    pub fn password_reset_done(&self, to: &Email, username: &str) -> Result<Mail, MailError> {
        self.render("password_reset_done", to, username, None, vec![])
    }

    /// The mail `name` with the link `{APP_URL}{path}#token={token}`, the token
    /// percent-encoded.
    fn link_mail(
        &self,
        name: &str,
        path: &str,
        to: &Email,
        username: &str,
        token: &str,
    ) -> Result<Mail, MailError> {
        let token: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
        let link = format!("{}{path}#token={token}", self.app_url);
        self.render(name, to, username, Some(link), vec![])
    }

    fn render(
        &self,
        name: &str,
        to: &Email,
        username: &str,
        link: Option<String>,
        extra: Vec<(&'static str, Value)>,
    ) -> Result<Mail, MailError> {
        let failed = |err: minijinja::Error| MailError::Template(format!("{name}: {err:#}"));
        let mut ctx: BTreeMap<&str, Value> = BTreeMap::from([
            ("to", Value::from(to.as_str())),
            ("username", Value::from(username)),
            ("app_url", Value::from(self.app_url.as_str())),
            (
                "forgot_link",
                Value::from(format!("{}{FORGOT_PASSWORD_PATH}", self.app_url)),
            ),
        ]);
        if let Some(link) = &link {
            ctx.insert("link", Value::from(link.as_str()));
        }
        ctx.extend(extra);
        let mut text = self
            .env
            .get_template(&format!("{name}.txt"))
            .and_then(|text| text.render_captured(&ctx))
            .map_err(failed)?;
        let subject = text
            .with_state_mut(|state| state.render_block("subject"))
            .map_err(failed)?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = text.into_output();
        let html = self
            .env
            .get_template(&format!("{name}.html"))
            .and_then(|html| {
                ctx.insert("subject", Value::from(subject.as_str()));
                html.render(&ctx)
            })
            .map_err(failed)?;
        Ok(Mail {
            to: to.as_str().to_owned(),
            subject,
            text,
            html,
            link,
        })
    }
}
