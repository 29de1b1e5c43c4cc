//! The local stack's mailer: the last [`Mailbox::CAPACITY`] mails in memory, one log
//! line per mail (recipient, subject, link), readable as LocalStack's SES is:
//! `GET /_aws/ses` answers `{"messages": [...]}` oldest first, each message in
//! LocalStack's shape ([`SentMail`]); `?id=` keeps the message with that id and
//! `?email=` those sent from that address (LocalStack's filters: `email` is the
//! source), and `?to=` (ours) those sent to that address. `DELETE /_aws/ses` empties
//! the mailbox, or drops one message with `?id=`; 204. moto under
//! `scripts/emulator/moto_serial.py` serves the same for what SES was asked to send.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use domain::Email;
use errors::Query;
use serde::{Deserialize, Serialize};

use crate::{Mail, MailError, Mailer};

/// Where the sent mails are read, as in LocalStack.
pub const SES_PATH: &str = "/_aws/ses";

/// One sent mail as LocalStack's `GET /_aws/ses` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SentMail {
    pub id: String,
    pub region: String,
    pub destination: Destination,
    pub source: String,
    pub subject: String,
    pub body: SentBody,
    /// UTC, `YYYY-MM-DDTHH:MM:SS`, as LocalStack writes it.
    pub timestamp: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Destination {
    #[serde(default)]
    pub to_addresses: Vec<String>,
}

/// The bodies; either may be `null` in LocalStack's answers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SentBody {
    pub text_part: Option<String>,
    pub html_part: Option<String>,
}

/// `GET /_aws/ses`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SentMails {
    pub messages: Vec<SentMail>,
}

/// The filters of `GET` and `DELETE /_aws/ses`.
#[derive(Debug, Default, Deserialize)]
struct Filter {
    id: Option<String>,
    email: Option<String>,
    to: Option<String>,
}

impl Filter {
    fn keeps(&self, mail: &SentMail) -> bool {
        given(&self.id).is_none_or(|id| mail.id == id)
            && given(&self.email).is_none_or(|from| mail.source.eq_ignore_ascii_case(from))
            && given(&self.to).is_none_or(|to| {
                let to_addresses = &mail.destination.to_addresses;
                to_addresses.iter().any(|a| a.eq_ignore_ascii_case(to))
            })
    }
}

/// The local stack's mailer. Clones share one mailbox.
#[derive(Debug, Clone)]
pub struct Mailbox {
    from: String,
    mails: Arc<Mutex<VecDeque<SentMail>>>,
}

impl Mailbox {
    /// How many mails it keeps: the oldest goes when one more comes.
    pub const CAPACITY: usize = 1000;
    /// The region its messages name: none, it is no AWS region's.
    pub const REGION: &str = "local";

    /// An empty mailbox whose mails come from `from` (`MAIL_FROM`).
    pub fn new(from: &Email) -> Self {
        Self {
            from: from.as_str().to_owned(),
            mails: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// Every mail kept, oldest first.
    pub fn messages(&self) -> Vec<SentMail> {
        self.lock().iter().cloned().collect()
    }

    /// The mails kept that were sent to `to`, oldest first.
    pub fn sent_to(&self, to: &str) -> Vec<SentMail> {
        let filter = Filter {
            to: Some(to.to_owned()),
            ..Filter::default()
        };
        self.lock()
            .iter()
            .filter(|m| filter.keeps(m))
            .cloned()
            .collect()
    }

    /// `GET` and `DELETE /_aws/ses` over this mailbox, for the local stack to mount.
    pub fn router(&self) -> Router {
        Router::new()
            .route(SES_PATH, get(list).delete(clear))
            .with_state(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<SentMail>> {
        self.mails.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl Mailer for Mailbox {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let sent = SentMail {
            id: uuid::Uuid::new_v4().to_string(),
            region: Self::REGION.to_owned(),
            destination: Destination {
                to_addresses: vec![mail.to.clone()],
            },
            source: self.from.clone(),
            subject: mail.subject.clone(),
            body: SentBody {
                text_part: Some(mail.text.clone()),
                html_part: Some(mail.html.clone()),
            },
            timestamp: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
        };
        tracing::info!(
            to = %mail.to,
            subject = %mail.subject,
            link = mail.link.as_deref().unwrap_or("-"),
            "mail kept in the local mailbox (GET {SES_PATH})"
        );
        let mut mails = self.lock();
        if mails.len() == Self::CAPACITY {
            mails.pop_front();
        }
        mails.push_back(sent);
        Ok(())
    }
}

async fn list(State(mailbox): State<Mailbox>, Query(filter): Query<Filter>) -> impl IntoResponse {
    let messages = mailbox
        .lock()
        .iter()
        .filter(|m| filter.keeps(m))
        .cloned()
        .collect();
    axum::Json(SentMails { messages })
}

async fn clear(State(mailbox): State<Mailbox>, Query(filter): Query<Filter>) -> StatusCode {
    let mut mails = mailbox.lock();
    match given(&filter.id) {
        Some(id) => mails.retain(|m| m.id != id),
        None => mails.clear(),
    }
    StatusCode::NO_CONTENT
}

/// A filter's value, unless absent or empty (LocalStack ignores an empty one).
fn given(filter: &Option<String>) -> Option<&str> {
    filter.as_deref().filter(|v| !v.is_empty())
}
