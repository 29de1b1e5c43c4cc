//! The local mailbox: what it keeps, its log line, and LocalStack's `/_aws/ses` over
//! HTTP (the listing's shape, its filters, emptying it).

use std::io::Write;
use std::sync::{Arc, Mutex};

use domain::Email;
use mail::mailbox::{SES_PATH, SentMails};
use mail::{Mail, Mailbox, Mailer, Mails};
use serde_json::Value;

const FROM: &str = "no-reply@example.com";

fn mailbox() -> Mailbox {
    Mailbox::new(&Email::parse(FROM).unwrap())
}

fn reset_mail(to: &str) -> Mail {
    Mails::new("http://localhost:8080")
        .reset_password(&Email::parse(to).unwrap(), "alice", "the-token")
        .unwrap()
}

async fn get(base: &str, query: &str) -> (u16, Value) {
    let answer = testkit::http::client()
        .get(format!("{base}{SES_PATH}{query}"))
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

async fn delete(base: &str, query: &str) -> u16 {
    let answer = testkit::http::client()
        .delete(format!("{base}{SES_PATH}{query}"))
        .send()
        .await
        .unwrap();
    answer.status().as_u16()
}

fn ids(listing: &Value) -> Vec<String> {
    let listing: SentMails = serde_json::from_value(listing.clone()).unwrap();
    listing.messages.into_iter().map(|m| m.id).collect()
}

#[tokio::test]
async fn sent_mails_are_listed_in_localstacks_shape() {
    let mailbox = mailbox();
    let base = testkit::http::serve(mailbox.router()).await;
    let mail = reset_mail("alice@example.org");
    mailbox.send(&mail).await.unwrap();
    let (status, body) = get(&base, "").await;
    assert_eq!(status, 200);
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{body}");
    let message = messages[0].as_object().unwrap();
    let keys: Vec<&str> = message.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "Id",
            "Region",
            "Destination",
            "Source",
            "Subject",
            "Body",
            "Timestamp"
        ]
    );
    assert_eq!(
        message["Destination"],
        serde_json::json!({"ToAddresses": ["alice@example.org"]})
    );
    assert_eq!(message["Source"], FROM);
    assert_eq!(message["Subject"], mail.subject.as_str());
    assert_eq!(message["Body"]["text_part"], mail.text.as_str());
    assert_eq!(message["Body"]["html_part"], mail.html.as_str());
    let timestamp = message["Timestamp"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(timestamp, "%Y-%m-%dT%H:%M:%S").is_ok(),
        "{timestamp}"
    );
    assert_eq!(mailbox.messages().len(), 1);
}

#[tokio::test]
async fn the_listing_filters_by_id_sender_and_recipient() {
    let mailbox = mailbox();
    let base = testkit::http::serve(mailbox.router()).await;
    for to in ["a@example.org", "b@example.org", "a@example.org"] {
        mailbox.send(&reset_mail(to)).await.unwrap();
    }
    let all = ids(&get(&base, "").await.1);
    assert_eq!(all.len(), 3);
    assert_eq!(
        ids(&get(&base, "?to=a@example.org").await.1),
        [all[0].clone(), all[2].clone()]
    );
    assert_eq!(
        ids(&get(&base, "?to=B@example.org").await.1),
        [all[1].clone()]
    );
    assert_eq!(
        ids(&get(&base, &format!("?id={}", all[1])).await.1),
        [all[1].clone()]
    );
    // LocalStack's `email` is the sender; an empty filter is no filter.
    assert_eq!(ids(&get(&base, &format!("?email={FROM}")).await.1), all);
    assert!(ids(&get(&base, "?email=a@example.org").await.1).is_empty());
    assert_eq!(ids(&get(&base, "?email=&id=").await.1), all);
    let (status, body) = get(&base, "?id=a&id=b").await;
    assert_eq!(
        (status, body),
        (400, testkit::error(400, "Invalid query string"))
    );
    assert_eq!(mailbox.sent_to("a@example.org").len(), 2);
}

#[tokio::test]
async fn delete_drops_one_message_or_all() {
    let mailbox = mailbox();
    let base = testkit::http::serve(mailbox.router()).await;
    for to in ["a@example.org", "b@example.org"] {
        mailbox.send(&reset_mail(to)).await.unwrap();
    }
    let all = ids(&get(&base, "").await.1);
    assert_eq!(delete(&base, &format!("?id={}", all[0])).await, 204);
    assert_eq!(ids(&get(&base, "").await.1), [all[1].clone()]);
    assert_eq!(delete(&base, "").await, 204);
    assert!(ids(&get(&base, "").await.1).is_empty());
    assert!(mailbox.messages().is_empty());
}

#[tokio::test]
async fn it_keeps_the_last_thousand_mails() {
    let mailbox = mailbox();
    for n in 0..=Mailbox::CAPACITY {
        mailbox
            .send(&reset_mail(&format!("u{n}@example.org")))
            .await
            .unwrap();
    }
    let kept = mailbox.messages();
    assert_eq!(kept.len(), Mailbox::CAPACITY);
    assert_eq!(kept[0].destination.to_addresses, ["u1@example.org"]);
    assert_eq!(
        kept[Mailbox::CAPACITY - 1].destination.to_addresses,
        [format!("u{}@example.org", Mailbox::CAPACITY)]
    );
}

/// Log output gathered in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn each_mail_is_one_log_line_with_recipient_subject_and_link() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mail = reset_mail("alice@example.org");
    mailbox().send(&mail).await.unwrap();
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("INFO"), "{log}");
    assert!(log.contains("to=alice@example.org"), "{log}");
    assert!(log.contains(&mail.subject), "{log}");
    assert!(log.contains(mail.link.as_deref().unwrap()), "{log}");
}
