//! Transactions that keep losing races to other ones (a stand-in DynamoDB that cancels
//! every one for `TransactionConflict`): each store's are tried five times, never past
//! the time the request must be answered by, and then answer 503.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use uuid::Uuid;

use domain::refresh::RefreshSecret;
use domain::{Email, Username};
use edge::deadline;
use errors::Error;
use stores::config::StoreAccess;
use stores::{Account, Profile, ProfilePatch, RefreshRecord, Session, Stores, WriteGuard};
use testkit::dynamodb::always_conflicting;

async fn conflicting() -> (Stores, Arc<AtomicUsize>) {
    let (url, transactions) = always_conflicting().await;
    let config: StoreAccess =
        testkit::config(&[("STORE", "dynamodb"), ("DYNAMODB_ENDPOINT", &url)]);
    let client = stores::dynamodb::client(&config).await;
    (Stores::dynamodb(client, &config), transactions)
}

fn account() -> Account {
    Account {
        user_id: Uuid::new_v4(),
        username: Username::parse("racer").unwrap(),
        email: Email::parse("racer@example.com").unwrap(),
        password_hash: "$2b$04$hash".into(),
        created_at: Utc::now(),
        generation: 0,
        email_verified: false,
    }
}

/// Each transactional write of the stores, once: what it answered and how many
/// transactions it sent.
async fn every_write(
    stores: &Stores,
    transactions: &AtomicUsize,
) -> Vec<(&'static str, Result<(), Error>, usize)> {
    let account = account();
    let now = Utc::now().timestamp();
    let guard = WriteGuard {
        user_id: account.user_id,
        session: None,
        now,
    };
    let profile = Profile {
        user_id: account.user_id,
        username: "racer".into(),
        email: "racer@example.com".into(),
        full_name: String::new(),
        bio: String::new(),
        created_at: Utc::now(),
    };
    let session = Session {
        id: Uuid::new_v4(),
        user_id: account.user_id,
        username: "racer".into(),
        started: now,
        last_used: now,
        ip: None,
        user_agent: None,
        generation: 0,
        expires_at: now + 60,
        ended_at: None,
    };
    let first = RefreshRecord {
        hash: RefreshSecret::generate().hash(),
        family: session.id,
        user_id: account.user_id,
        username: "racer".into(),
        expires_at: now + 60,
        used: false,
        used_at: None,
        generation: 0,
    };
    let patch = ProfilePatch {
        bio: Some("x".into()),
        ..ProfilePatch::default()
    };
    let mut outcomes = Vec::new();
    let mut done = |what, outcome| {
        outcomes.push((what, outcome, transactions.swap(0, Ordering::SeqCst)));
    };
    done("register", stores.accounts.create(&account).await);
    done(
        "profile create",
        stores.profiles.create(&profile, &guard).await,
    );
    let updated = stores
        .profiles
        .update(account.user_id, &patch, &guard)
        .await;
    done("profile update", updated);
    let login = stores
        .sessions
        .start_session(&account, &session, &first)
        .await;
    done("login", login.map(|_| ()));
    let rehashed = stores.accounts.rehash(&account, "$2b$04$rehashed").await;
    done("rehash", rehashed.map(|_| ()));
    let deleted = stores
        .cross_table
        .delete_account(&account, now + 60, now)
        .await;
    done("delete account", deleted.map(|_| ()));
    outcomes
}

#[tokio::test]
async fn without_a_deadline_each_write_is_tried_five_times_then_unavailable() {
    let (stores, transactions) = conflicting().await;
    for (what, outcome, tried) in every_write(&stores, &transactions).await {
        assert!(
            matches!(outcome, Err(Error::Unavailable(_))),
            "{what}: {outcome:?}"
        );
        assert_eq!(tried, 5, "{what}");
    }
}

#[tokio::test]
async fn no_write_is_tried_again_past_the_deadline() {
    let (stores, transactions) = conflicting().await;
    let answer_by = Instant::now() + Duration::from_millis(5);
    let outcomes = deadline::within(Some(answer_by), every_write(&stores, &transactions)).await;
    for (what, outcome, tried) in outcomes {
        assert!(
            matches!(outcome, Err(Error::Unavailable(_))),
            "{what}: {outcome:?}"
        );
        assert!(
            tried <= 1,
            "{what}: {tried} attempts, the deadline was 5 ms away"
        );
    }
}
