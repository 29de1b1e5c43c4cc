//! Each mail as rendered: a subject on one line, text and HTML bodies, links into the
//! app with the token in the fragment, and what a user chose escaped in the HTML.

use domain::Email;
use mail::{Mail, MailError, Mails};

const APP: &str = "https://app.example.com/base";
const TOKEN: &str = "tok_EN-123~x/y+z";
const HOSTILE: &str = "<script>alert(1)</script>";

fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

/// Every mail, with the link it must carry (if any) and a name for messages.
fn every_mail(mails: &Mails, username: &str) -> Vec<(&'static str, Mail, Option<String>)> {
    let to = email("alice@example.org");
    let new = email("alice.new@example.org");
    let link = |path: &str| Some(format!("{APP}{path}#token=tok_EN-123%7Ex%2Fy%2Bz"));
    let rendered: [(&str, Result<Mail, MailError>, Option<String>); 6] = [
        (
            "verify_email",
            mails.verify_email(&to, username, TOKEN),
            link("/verify-email"),
        ),
        (
            "reset_password",
            mails.reset_password(&to, username, TOKEN),
            link("/reset-password"),
        ),
        (
            "confirm_email_change",
            mails.confirm_email_change(&new, username, TOKEN),
            link("/confirm-email"),
        ),
        (
            "email_change_notice",
            mails.email_change_notice(&to, username, &new),
            None,
        ),
        (
            "password_changed",
            mails.password_changed(&to, username),
            None,
        ),
        (
            "password_reset_done",
            mails.password_reset_done(&to, username),
            None,
        ),
    ];
    rendered
        .into_iter()
        .map(|(name, mail, link)| (name, mail.unwrap_or_else(|e| panic!("{name}: {e:?}")), link))
        .collect()
}

/// `text` as minijinja's HTML escaping writes it.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

#[test]
fn every_mail_has_a_subject_a_text_and_an_html_body() {
    let mails = Mails::new(APP);
    let mut subjects = Vec::new();
    for (name, mail, _) in every_mail(&mails, "alice") {
        assert!(!mail.subject.is_empty(), "{name}");
        assert!(
            !mail.subject.contains(['\n', '\r']),
            "{name}: {:?}",
            mail.subject
        );
        assert!(mail.text.contains("Hello alice,"), "{name}: {}", mail.text);
        assert!(
            mail.html.contains("<p>Hello alice,</p>"),
            "{name}: {}",
            mail.html
        );
        assert!(mail.html.starts_with("<!DOCTYPE html>"), "{name}");
        let title = format!("<title>{}</title>", mail.subject);
        assert!(mail.html.contains(&title), "{name}: {}", mail.html);
        // The templates' markup never reaches the text body.
        for markup in ["<", "{{", "{%", "&#"] {
            assert!(!mail.text.contains(markup), "{name}: {}", mail.text);
        }
        subjects.push(mail.subject);
    }
    subjects.sort();
    subjects.dedup();
    assert_eq!(
        subjects.len(),
        6,
        "each mail has its own subject: {subjects:?}"
    );
}

#[test]
fn links_point_at_the_app_with_the_token_in_the_fragment() {
    let mails = Mails::new(&format!("{APP}/"));
    for (name, mail, link) in every_mail(&mails, "alice") {
        assert_eq!(mail.link, link, "{name}");
        assert!(mail.text.contains(APP), "{name}");
        assert!(
            !mail.text.contains(&format!("{APP}//")),
            "{name}: {}",
            mail.text
        );
        match &link {
            Some(link) => {
                assert!(mail.text.contains(link.as_str()), "{name}: {}", mail.text);
                let href = format!("href=\"{}\"", escaped(link));
                assert!(mail.html.contains(&href), "{name}: {}", mail.html);
            }
            None => {
                let all = format!("{}{}", mail.text, mail.html);
                assert!(!all.contains("token"), "{name} carries no token: {all}");
            }
        }
    }
}

#[test]
fn only_the_mails_to_the_new_address_and_the_notice_name_it() {
    let mails = Mails::new(APP);
    let to = email("alice@example.org");
    let new = email("alice.new@example.org");
    let notice = mails.email_change_notice(&to, "alice", &new).unwrap();
    assert_eq!(notice.to, "alice@example.org");
    assert!(
        notice.text.contains("alice.new@example.org"),
        "{}",
        notice.text
    );
    assert!(
        notice.html.contains("alice.new@example.org"),
        "{}",
        notice.html
    );
    let confirm = mails.confirm_email_change(&new, "alice", TOKEN).unwrap();
    assert_eq!(confirm.to, "alice.new@example.org");
}

#[test]
fn a_hostile_username_is_escaped_in_the_html_and_kept_as_text() {
    let mails = Mails::new(APP);
    for (name, mail, _) in every_mail(&mails, HOSTILE) {
        assert!(!mail.html.contains("<script>"), "{name}: {}", mail.html);
        assert!(
            mail.html
                .contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{name}: {}",
            mail.html
        );
        assert!(mail.text.contains(HOSTILE), "{name}: {}", mail.text);
        assert!(!mail.subject.contains("script"), "{name}: {}", mail.subject);
    }
}

#[test]
fn a_mails_debug_shows_no_link_and_no_body() {
    let mails = Mails::new(APP);
    let mail = mails
        .reset_password(&email("alice@example.org"), "alice", TOKEN)
        .unwrap();
    let debug = format!("{mail:?}");
    assert!(debug.contains("alice@example.org"), "{debug}");
    assert!(!debug.contains("tok_EN"), "{debug}");
    assert!(!debug.contains("Hello"), "{debug}");
}
