//! Accounts users can recover (issue 33), through auth's router on both stores: the
//! verification link sent at registration, password reset, email change, the limits on
//! mails, `EMAIL_VERIFICATION=required`, and a forgotten-password answer that tells
//! nobody whether an address has an account, by its body or by its time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use mail::Mailbox;
use stores::Stores;
use testkit::dynamodb::TempTables;
use testkit::{Reply, config, error, login, register, send, tokens};

const PASSWORD: &str = "securePassword123";
const NEW_PASSWORD: &str = "anotherPassword456";

/// Auth over fresh stores, its mails kept in `mailbox`.
struct Flow {
    app: Router,
    mailbox: Mailbox,
    tables: Option<TempTables>,
}

impl Flow {
    /// On DynamoDB when `dynamodb` (`None`: the server is missing outside CI).
    async fn start(dynamodb: bool, extra: &[(&str, &str)]) -> Option<Self> {
        let (stores, tables) = if dynamodb {
            let tables = TempTables::create().await?;
            (tables.stores().await, Some(tables))
        } else {
            (Stores::memory(), None)
        };
        let config: auth::Config = config(extra);
        let mailbox = Mailbox::new(&config.mail.from);
        let state =
            auth::AppState::new(&stores, tokens(), &config).with_mailer(Arc::new(mailbox.clone()));
        Some(Self {
            app: auth::router(state),
            mailbox,
            tables,
        })
    }

    async fn finish(self) {
        if let Some(tables) = self.tables {
            tables.delete().await;
        }
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> Reply {
        let mut request = Request::post(path).header("content-type", "application/json");
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        send(
            &self.app,
            request.body(Body::from(body.to_string())).unwrap(),
        )
        .await
    }

    /// Registers `name` (`<name>@example.com`) and logs in: the access token.
    async fn signed_up(&self, name: &str) -> String {
        let email = format!("{name}@example.com");
        let reply = register(&self.app, name, &email, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        self.logged_in(name, PASSWORD).await
    }

    async fn logged_in(&self, name: &str, password: &str) -> String {
        let reply = login(&self.app, name, password).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["token"].as_str().unwrap().to_owned()
    }

    /// The token of the last link to the app's page `page` mailed to `to`.
    fn token_mailed(&self, to: &str, page: &str) -> String {
        testkit::mail::link_token(&self.mailbox, to, page)
    }

    fn subjects_to(&self, to: &str) -> Vec<String> {
        self.mailbox
            .sent_to(to)
            .into_iter()
            .map(|m| m.subject.to_lowercase())
            .collect()
    }
}

/// 202 with `message`.
fn accepted(message: &str) -> (StatusCode, Value) {
    (StatusCode::ACCEPTED, json!({ "message": message }))
}

/// 200 with `message`.
fn done(message: &str) -> (StatusCode, Value) {
    (StatusCode::OK, json!({ "message": message }))
}

/// Asserts that `reply` is `expected` (status and body).
fn answered(reply: &Reply, expected: (StatusCode, Value), why: &str) {
    assert!(*reply == expected, "{why}: {reply:?}");
}

/// The `email_verified` claim of an access token.
fn email_verified(token: &str) -> bool {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["email_verified"]
        .as_bool()
        .expect("the claim is there")
}

fn invalid_token() -> (StatusCode, Value) {
    (
        StatusCode::BAD_REQUEST,
        error(400, "Invalid or expired token"),
    )
}

async fn registration_mails_a_link_that_verifies_the_address_once(f: &Flow) {
    let token = f.signed_up("alice").await;
    assert!(!email_verified(&token), "unverified at first");
    let link = f.token_mailed("alice@example.com", "verify-email");
    assert_eq!(link.len(), 43, "256 bits, base64url");

    let reply = f.post("/email/verify", json!({"token": link}), None).await;
    answered(&reply, done("Email verified"), "reply");
    let again = f.post("/email/verify", json!({"token": link}), None).await;
    answered(&again, invalid_token(), "single use: {again:?}");
    assert!(email_verified(&f.logged_in("alice", PASSWORD).await));

    for bad in ["", "short", &"A".repeat(43), &format!("{link}x")] {
        let reply = f.post("/email/verify", json!({"token": bad}), None).await;
        answered(&reply, invalid_token(), "{bad:?}: {reply:?}");
    }
}

async fn a_new_verification_link_retires_the_old_and_resends_are_limited(f: &Flow) {
    let token = f.signed_up("alice").await;
    let first = f.token_mailed("alice@example.com", "verify-email");
    let resent = f
        .post("/email/verify/resend", json!({}), Some(&token))
        .await;
    answered(&resent, accepted("Verification email sent"), "resent");
    let second = f.token_mailed("alice@example.com", "verify-email");
    assert_ne!(first, second);
    let old = f.post("/email/verify", json!({"token": first}), None).await;
    answered(&old, invalid_token(), "retired: {old:?}");

    let resent = f
        .post("/email/verify/resend", json!({}), Some(&token))
        .await;
    assert_eq!(resent.status, StatusCode::ACCEPTED);
    let limited = f
        .post("/email/verify/resend", json!({}), Some(&token))
        .await;
    answered(
        &limited,
        (
            StatusCode::TOO_MANY_REQUESTS,
            error(429, "Too many emails requested, try again later"),
        ),
        "MAIL_MAX_PER_USER=2: {limited:?}",
    );
    assert!(limited.headers.contains_key("retry-after"));

    let latest = f.token_mailed("alice@example.com", "verify-email");
    let verified = f
        .post("/email/verify", json!({"token": latest}), None)
        .await;
    assert_eq!(verified.status, StatusCode::OK);
    let token = f.logged_in("alice", PASSWORD).await;
    let done = f
        .post("/email/verify/resend", json!({}), Some(&token))
        .await;
    answered(
        &done,
        (StatusCode::CONFLICT, error(409, "Email already verified")),
        "done",
    );
    let anonymous = f.post("/email/verify/resend", json!({}), None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

async fn forgot_answers_alike_for_known_and_unknown_addresses(f: &Flow) {
    f.signed_up("alice").await;
    let expected = accepted("If an account has this email, a password reset link has been sent");
    for email in [
        "alice@example.com",
        "nobody@example.com",
        "ALICE@example.com",
    ] {
        let reply = f
            .post("/password/forgot", json!({"email": email}), None)
            .await;
        assert!(reply == expected.clone(), "{email}: {reply:?}");
    }
    let resets = f
        .subjects_to("alice@example.com")
        .into_iter()
        .filter(|s| s.contains("reset"))
        .count();
    assert_eq!(resets, 2, "one per request for the known address, any case");
    assert!(f.mailbox.sent_to("nobody@example.com").is_empty());
    let forgot = async |email: &str| {
        f.post("/password/forgot", json!({ "email": email }), None)
            .await
    };
    let second = forgot("nobody@example.com").await;
    assert_eq!(second.status, StatusCode::ACCEPTED, "2nd for this address");
    answered(
        &forgot("Nobody@Example.com").await,
        (
            StatusCode::TOO_MANY_REQUESTS,
            error(429, "Too many emails requested, try again later"),
        ),
        "MAIL_MAX_PER_ADDRESS=2 counts unknown addresses too",
    );
    let bad = f
        .post("/password/forgot", json!({"email": "not-an-email"}), None)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

async fn a_reset_sets_the_password_ends_every_session_and_verifies(f: &Flow) {
    let old_token = f.signed_up("alice").await;
    let refresh = login(&f.app, "alice", PASSWORD).await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    f.post(
        "/password/forgot",
        json!({"email": "alice@example.com"}),
        None,
    )
    .await;
    let link = f.token_mailed("alice@example.com", "reset-password");

    let weak = json!({"token": link, "new_password": "short"});
    let refused = f.post("/password/reset", weak, None).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "registration rules"
    );
    let body = json!({"token": link, "new_password": NEW_PASSWORD});
    let reply = f.post("/password/reset", body.clone(), None).await;
    answered(&reply, done("Password reset successfully"), "reply");
    let again = f.post("/password/reset", body, None).await;
    answered(&again, invalid_token(), "the link is dead: {again:?}");

    let validate = f.post("/validate", json!({"token": old_token}), None).await;
    answered(
        &validate,
        (
            StatusCode::UNAUTHORIZED,
            error(401, "Token has been revoked"),
        ),
        "the old session ended: {validate:?}",
    );
    let refreshed = f
        .post("/refresh", json!({"refresh_token": refresh}), None)
        .await;
    assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED);
    let old = login(&f.app, "alice", PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let token = f.logged_in("alice", NEW_PASSWORD).await;
    assert!(email_verified(&token), "a reset proves the address");
    let subjects = f.subjects_to("alice@example.com");
    assert!(
        subjects.last().is_some_and(|s| s.contains("password")),
        "a notice follows the reset: {subjects:?}"
    );
}

async fn an_email_change_is_confirmed_from_the_new_address(f: &Flow) {
    let token = f.signed_up("alice").await;
    f.signed_up("bob").await;
    let ask =
        |new_email: &str, password: &str| json!({"new_email": new_email, "password": password});
    let refusals = [
        (
            ask("new@example.com", "wrongPassword1"),
            (
                StatusCode::UNAUTHORIZED,
                error(401, "Current password is incorrect"),
            ),
        ),
        (
            ask("Alice@Example.com", PASSWORD),
            (
                StatusCode::BAD_REQUEST,
                error(400, "New email is the current email"),
            ),
        ),
        (
            ask("bob@example.com", PASSWORD),
            (StatusCode::CONFLICT, error(409, "Email already registered")),
        ),
    ];
    for (body, expected) in refusals {
        let reply = f.post("/email", body.clone(), Some(&token)).await;
        answered(&reply, expected, &body.to_string());
    }

    let asked = f
        .post("/email", ask("new@example.com", PASSWORD), Some(&token))
        .await;
    answered(
        &asked,
        accepted("Confirmation email sent to the new address"),
        "asked",
    );
    let link = f.token_mailed("new@example.com", "confirm-email");
    let notices = f.subjects_to("alice@example.com");
    assert!(
        notices.iter().any(|s| s.contains("email")),
        "the old address is told: {notices:?}"
    );
    let confirmed = f.post("/email/confirm", json!({"token": link}), None).await;
    answered(&confirmed, done("Email changed"), "confirmed");
    let again = f.post("/email/confirm", json!({"token": link}), None).await;
    assert!(again == invalid_token());
    assert!(email_verified(&f.logged_in("alice", PASSWORD).await));
    let heir = register(&f.app, "carol", "alice@example.com", PASSWORD).await;
    assert_eq!(heir.status, StatusCode::OK, "the old address is free");
    let clash = register(&f.app, "dave", "NEW@example.com", PASSWORD).await;
    assert_eq!(clash.status, StatusCode::CONFLICT, "the new one is claimed");
}

async fn an_email_change_to_an_address_taken_meanwhile_is_409(f: &Flow) {
    let token = f.signed_up("alice").await;
    let ask = json!({"new_email": "wanted@example.com", "password": PASSWORD});
    assert_eq!(
        f.post("/email", ask, Some(&token)).await.status,
        StatusCode::ACCEPTED
    );
    let link = f.token_mailed("wanted@example.com", "confirm-email");
    let first = register(&f.app, "bob", "Wanted@example.com", PASSWORD).await;
    assert_eq!(first.status, StatusCode::OK);
    let confirmed = f.post("/email/confirm", json!({"token": link}), None).await;
    answered(
        &confirmed,
        (StatusCode::CONFLICT, error(409, "Email already registered")),
        "confirmed",
    );
    let heir = register(&f.app, "carol", "alice@example.com", PASSWORD).await;
    assert_eq!(heir.status, StatusCode::CONFLICT, "alice keeps her address");
}

async fn required_verification_refuses_login_until_verified(f: &Flow) {
    let reply = register(&f.app, "alice", "alice@example.com", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "registration is unchanged");
    let refused = login(&f.app, "alice", PASSWORD).await;
    answered(
        &refused,
        (StatusCode::FORBIDDEN, error(403, "Email not verified")),
        "refused",
    );
    let wrong = login(&f.app, "alice", "wrongPassword1").await;
    assert_eq!(
        wrong.status,
        StatusCode::UNAUTHORIZED,
        "a wrong password tells nothing more"
    );
    let link = f.token_mailed("alice@example.com", "verify-email");
    let verified = f.post("/email/verify", json!({"token": link}), None).await;
    assert_eq!(verified.status, StatusCode::OK);
    assert!(email_verified(&f.logged_in("alice", PASSWORD).await));
}

async fn a_password_change_sends_a_notice(f: &Flow) {
    let token = f.signed_up("alice").await;
    let before = f.mailbox.sent_to("alice@example.com").len();
    let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    let changed = f.post("/password", body, Some(&token)).await;
    assert_eq!(changed.status, StatusCode::OK, "changed");
    let subjects = f.subjects_to("alice@example.com");
    assert_eq!(subjects.len(), before + 1);
    assert!(subjects.last().unwrap().contains("password"), "subjects");
}

/// The median of 20 `POST /password/forgot` of a known address is within 10 % of that
/// of an unknown one (`FORGOT_PASSWORD_MIN_MS` is the floor both wait for).
async fn forgot_takes_the_same_time_for_known_and_unknown_addresses(f: &Flow) {
    f.signed_up("alice").await;
    let median = async |email: &str| {
        let mut took = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            let reply = f
                .post("/password/forgot", json!({"email": email}), None)
                .await;
            took.push(started.elapsed());
            assert_eq!(reply.status, StatusCode::ACCEPTED);
        }
        took.sort();
        took[10]
    };
    let known = median("alice@example.com").await;
    let unknown = median("nobody@example.com").await;
    let (fast, slow) = (known.min(unknown), known.max(unknown));
    println!("forgot medians: known {known:?}, unknown {unknown:?}");
    assert!(
        fast >= Duration::from_millis(200),
        "the floor holds: {fast:?}"
    );
    assert!(
        slow.as_secs_f64() <= fast.as_secs_f64() * 1.10,
        "known {known:?} vs unknown {unknown:?}"
    );
}

macro_rules! on_both_stores {
    ($($test:ident($settings:expr)),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let flow = super::Flow::start(false, $settings).await.unwrap();
                    super::$test(&flow).await;
                    flow.finish().await;
                }
            )+
        }

        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(flow) = super::Flow::start(true, $settings).await else { return };
                    super::$test(&flow).await;
                    flow.finish().await;
                }
            )+
        }
    };
}

on_both_stores! {
    registration_mails_a_link_that_verifies_the_address_once(&[]),
    a_new_verification_link_retires_the_old_and_resends_are_limited(&[("MAIL_MAX_PER_USER", "2")]),
    forgot_answers_alike_for_known_and_unknown_addresses(&[
        ("MAIL_MAX_PER_ADDRESS", "2"),
        ("FORGOT_PASSWORD_MIN_MS", "1"),
    ]),
    a_reset_sets_the_password_ends_every_session_and_verifies(&[("FORGOT_PASSWORD_MIN_MS", "1")]),
    an_email_change_is_confirmed_from_the_new_address(&[]),
    an_email_change_to_an_address_taken_meanwhile_is_409(&[]),
    required_verification_refuses_login_until_verified(&[("EMAIL_VERIFICATION", "required")]),
    a_password_change_sends_a_notice(&[]),
    forgot_takes_the_same_time_for_known_and_unknown_addresses(&[
        ("FORGOT_PASSWORD_MIN_MS", "200"),
        ("MAIL_MAX_PER_ADDRESS", "100"),
        ("MAIL_MAX_PER_CLIENT", "1000"),
    ]),
}
