//! The store contract: one set of test bodies, run against the in-memory stores and
//! against the DynamoDB stores on a real DynamoDB-compatible server (`DYNAMODB_ENDPOINT`).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use shared::domain::{Email, Username};
use shared::store::dynamodb::DynamoAccountStore;
use shared::store::memory::{MemoryAccountStore, MemoryProfileStore};
use shared::store::{Account, AccountStore, Profile, ProfilePatch, ProfileStore};
use shared::testing::dynamodb::TempTables;
use shared::Error;

/// The stores under test, plus raw table access when there is a table.
struct Subject {
    accounts: Arc<dyn AccountStore>,
    profiles: Arc<dyn ProfileStore>,
    tables: Option<TempTables>,
}

impl Subject {
    fn memory() -> Self {
        Self {
            accounts: Arc::new(MemoryAccountStore::new()),
            profiles: Arc::new(MemoryProfileStore::new()),
            tables: None,
        }
    }

    async fn dynamodb() -> Option<Self> {
        let tables = TempTables::create().await?;
        let stores = tables.stores().await;
        Some(Self {
            accounts: stores.accounts,
            profiles: stores.profiles,
            tables: Some(tables),
        })
    }

    async fn cleanup(self) {
        if let Some(tables) = self.tables {
            tables.delete().await;
        }
    }

    /// Asserts that the accounts table holds no item under these keys.
    async fn assert_absent(&self, keys: &[String]) {
        let Some(tables) = &self.tables else { return };
        assert_eq!(
            tables.account_keys_present(keys).await,
            Vec::<String>::new()
        );
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("valid time")
        + Duration::seconds(seconds)
}

fn account(username: &str, email: &str) -> Account {
    Account {
        user_id: Uuid::new_v4(),
        username: Username::parse(username).expect("valid username"),
        email: Email::parse(email).expect("valid email"),
        password_hash: format!("$2b$04$hash-of-{username}"),
        created_at: at(0),
    }
}

fn profile(name: &str) -> Profile {
    Profile {
        user_id: Uuid::new_v4(),
        username: name.into(),
        email: format!("{name}@example.com"),
        full_name: format!("{name} Example"),
        bio: String::new(),
        created_at: at(1),
    }
}

fn username(raw: &str) -> Username {
    Username::parse(raw).expect("valid username")
}

fn assert_same_account(found: &Account, expected: &Account) {
    assert_eq!(found.user_id, expected.user_id);
    assert_eq!(found.username, expected.username);
    assert_eq!(found.email, expected.email);
    assert_eq!(found.password_hash, expected.password_hash);
    assert_eq!(found.created_at, expected.created_at);
}

async fn accounts_are_found_by_username_in_any_case(s: &Subject) {
    let alice = account("Alice", "Alice@Example.com");
    s.accounts.create(&alice).await.unwrap();
    for name in ["Alice", "alice", "ALICE"] {
        let found = s.accounts.find_by_username(&username(name)).await.unwrap();
        assert_same_account(&found.expect(name), &alice);
    }
    assert!(s
        .accounts
        .find_by_username(&username("bob"))
        .await
        .unwrap()
        .is_none());
}

async fn usernames_and_emails_are_unique_regardless_of_case(s: &Subject) {
    s.accounts
        .create(&account("alice", "alice@example.com"))
        .await
        .unwrap();
    for (name, email, expected) in [
        ("ALICE", "other@example.com", "Username already exists"),
        ("bob", "ALICE@EXAMPLE.COM", "Email already registered"),
        ("Alice", "alice@example.com", "Username already exists"),
    ] {
        let refused = s.accounts.create(&account(name, email)).await;
        let err = refused.expect_err(name);
        assert!(
            matches!(err, Error::UsernameTaken | Error::EmailTaken),
            "{err:?}"
        );
        assert_eq!(err.to_string(), expected, "{name} / {email}");
    }
}

async fn a_failed_registration_leaves_nothing_behind(s: &Subject) {
    s.accounts
        .create(&account("alice", "alice@example.com"))
        .await
        .unwrap();
    let bob = account("bob", "alice@example.com");
    let carol = account("alice", "carol@example.com");
    assert!(matches!(
        s.accounts.create(&bob).await,
        Err(Error::EmailTaken)
    ));
    assert!(matches!(
        s.accounts.create(&carol).await,
        Err(Error::UsernameTaken)
    ));
    s.assert_absent(&[
        DynamoAccountStore::user_key(bob.user_id),
        DynamoAccountStore::username_key(&bob.username),
        DynamoAccountStore::user_key(carol.user_id),
        DynamoAccountStore::email_key(&carol.email),
    ])
    .await;

    assert!(s
        .accounts
        .find_by_username(&username("bob"))
        .await
        .unwrap()
        .is_none());
    s.accounts
        .create(&account("bob", "bob@example.com"))
        .await
        .expect("bob's name was not claimed");
    s.accounts
        .create(&account("carol", "carol@example.com"))
        .await
        .expect("carol's email was not claimed");
}

async fn fifty_concurrent_registrations_of_one_name_have_one_winner(s: &Subject) {
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..50 {
        let accounts = s.accounts.clone();
        let name = if i % 2 == 0 { "racer" } else { "RACER" };
        let candidate = account(name, &format!("racer{i}@example.com"));
        racers.spawn(async move { (accounts.create(&candidate).await, candidate.user_id) });
    }
    let mut winners = Vec::new();
    while let Some(joined) = racers.join_next().await {
        match joined.expect("racer did not panic") {
            (Ok(()), id) => winners.push(id),
            (Err(Error::UsernameTaken), _) => {}
            (Err(other), _) => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one registration wins");
    let stored = s.accounts.find_by_username(&username("Racer")).await;
    assert_eq!(stored.unwrap().expect("winner stored").user_id, winners[0]);
}

async fn profiles_are_created_read_updated_and_deleted(s: &Subject) {
    let alice = profile("alice");
    s.profiles.create(&alice).await.unwrap();
    assert_eq!(
        s.profiles.get(alice.user_id).await.unwrap(),
        Some(alice.clone())
    );

    let bio_only = ProfilePatch {
        bio: Some("Writes Rust".into()),
        ..ProfilePatch::default()
    };
    let updated = s.profiles.update(alice.user_id, &bio_only).await.unwrap();
    let expected = Profile {
        bio: "Writes Rust".into(),
        ..alice.clone()
    };
    assert_eq!(updated, expected);

    let both = ProfilePatch {
        full_name: Some("Alice Smith".into()),
        bio: Some(String::new()),
    };
    let updated = s.profiles.update(alice.user_id, &both).await.unwrap();
    let expected = Profile {
        full_name: "Alice Smith".into(),
        bio: String::new(),
        ..alice.clone()
    };
    assert_eq!(updated, expected);
    let nothing = ProfilePatch::default();
    let unchanged = s.profiles.update(alice.user_id, &nothing).await.unwrap();
    assert_eq!(unchanged, expected);
    assert_eq!(s.profiles.get(alice.user_id).await.unwrap(), Some(expected));

    s.profiles.delete(alice.user_id).await.unwrap();
    assert_eq!(s.profiles.get(alice.user_id).await.unwrap(), None);
}

async fn profile_writes_never_overwrite_or_resurrect(s: &Subject) {
    let alice = profile("alice");
    s.profiles.create(&alice).await.unwrap();
    let impostor = Profile {
        full_name: "Impostor".into(),
        ..alice.clone()
    };
    assert!(matches!(
        s.profiles.create(&impostor).await,
        Err(Error::ProfileExists)
    ));
    assert_eq!(
        s.profiles.get(alice.user_id).await.unwrap(),
        Some(alice.clone())
    );

    let ghost = Uuid::new_v4();
    let patch = ProfilePatch {
        bio: Some("boo".into()),
        ..ProfilePatch::default()
    };
    assert!(matches!(
        s.profiles.update(ghost, &patch).await,
        Err(Error::UserNotFound)
    ));
    assert!(matches!(
        s.profiles.update(ghost, &ProfilePatch::default()).await,
        Err(Error::UserNotFound)
    ));
    assert!(matches!(
        s.profiles.delete(ghost).await,
        Err(Error::UserNotFound)
    ));
    assert_eq!(s.profiles.get(ghost).await.unwrap(), None, "no upsert");

    s.profiles.delete(alice.user_id).await.unwrap();
    assert!(matches!(
        s.profiles.delete(alice.user_id).await,
        Err(Error::UserNotFound)
    ));
}

async fn listing_pages_through_every_profile_once(s: &Subject) {
    let empty = s.profiles.list(3, None).await.unwrap();
    assert!(empty.items.is_empty() && empty.next.is_none());

    let mut all = HashSet::new();
    for i in 0..7 {
        let p = profile(&format!("user{i}"));
        s.profiles.create(&p).await.unwrap();
        all.insert(p.user_id);
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after = None;
    loop {
        let page = s.profiles.list(3, after).await.unwrap();
        sizes.push(page.items.len());
        seen.extend(page.items.iter().map(|p| p.user_id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, [3, 3, 1]);
    assert_eq!(seen.len(), all.len(), "no duplicates: {seen:?}");
    assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), all);

    let exact = s.profiles.list(7, None).await.unwrap();
    assert_eq!((exact.items.len(), exact.next), (7, None));

    let first = s.profiles.list(2, None).await.unwrap();
    let cursor = first.next.expect("more pages");
    s.profiles.delete(cursor.last_key()).await.unwrap();
    let mut rest = Vec::new();
    let mut after = Some(cursor);
    while let Some(position) = after {
        let page = s.profiles.list(2, Some(position)).await.unwrap();
        rest.extend(page.items.iter().map(|p| p.user_id));
        after = page.next;
    }
    assert_eq!(rest.len(), 5, "a cursor outlives the profile it points at");
    let first_ids: HashSet<Uuid> = first.items.iter().map(|p| p.user_id).collect();
    assert!(rest.iter().all(|id| !first_ids.contains(id)));
}

macro_rules! contract {
    ($($test:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(&super::Subject::memory()).await;
                }
            )+
        }

        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(subject) = super::Subject::dynamodb().await else { return };
                    super::$test(&subject).await;
                    subject.cleanup().await;
                }
            )+
        }
    };
}

contract!(
    accounts_are_found_by_username_in_any_case,
    usernames_and_emails_are_unique_regardless_of_case,
    a_failed_registration_leaves_nothing_behind,
    fifty_concurrent_registrations_of_one_name_have_one_winner,
    profiles_are_created_read_updated_and_deleted,
    profile_writes_never_overwrite_or_resurrect,
    listing_pages_through_every_profile_once,
);

/// A DynamoDB that is down, hanging or throttling is a 503 within the request timeout.
mod unavailable {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use axum::http::StatusCode;
    use tokio::net::TcpListener;

    use shared::domain::Username;
    use shared::store::Stores;
    use shared::{Config, Error};

    const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);

    async fn stores_at(endpoint: &str) -> Stores {
        let config = Config::from_lookup(|key| match key {
            "STORE" => Some("dynamodb".into()),
            "DYNAMODB_ENDPOINT" => Some(endpoint.into()),
            "CONNECT_TIMEOUT_MS" => Some("200".into()),
            "REQUEST_TIMEOUT_MS" => Some(REQUEST_TIMEOUT.as_millis().to_string()),
            _ => None,
        })
        .unwrap();
        Stores::from_config(&config).await.unwrap()
    }

    /// Runs a login lookup and a profile read, returning each error and the time taken.
    async fn failures(stores: &Stores) -> Vec<(Error, Duration)> {
        let started = Instant::now();
        let login = stores
            .accounts
            .find_by_username(&Username::parse("alice").unwrap())
            .await
            .expect_err("login lookup must fail");
        let login_took = started.elapsed();
        let started = Instant::now();
        let list = stores
            .profiles
            .list(10, None)
            .await
            .expect_err("listing must fail");
        vec![(login, login_took), (list, started.elapsed())]
    }

    fn assert_unavailable(outcomes: Vec<(Error, Duration)>) {
        for (err, took) in outcomes {
            assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
            assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(err.to_string(), "Service temporarily unavailable");
            assert!(
                took < REQUEST_TIMEOUT + Duration::from_millis(700),
                "took {took:?}"
            );
        }
    }

    /// A fake DynamoDB answering every call with `status` and the error `kind`.
    async fn fake_dynamodb(status: StatusCode, kind: &'static str) -> (String, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let app = axum::Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let body = format!(
                    r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"secret SDK detail"}}"#
                );
                (
                    status,
                    [("content-type", "application/x-amz-json-1.0")],
                    body,
                )
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), calls)
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_unavailable_not_a_hang() {
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        let stores = stores_at(&format!("http://127.0.0.1:{port}")).await;
        assert_unavailable(failures(&stores).await);
    }

    #[tokio::test]
    async fn an_endpoint_that_never_answers_times_out_as_unavailable() {
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stores = stores_at(&format!("http://{}", silent.local_addr().unwrap())).await;
        assert_unavailable(failures(&stores).await);
        drop(silent);
    }

    #[tokio::test]
    async fn throttling_is_retried_a_bounded_number_of_times_then_unavailable() {
        let (endpoint, calls) = fake_dynamodb(StatusCode::BAD_REQUEST, "ThrottlingException").await;
        let stores = stores_at(&endpoint).await;
        assert_unavailable(failures(&stores).await);
        let calls = calls.load(Ordering::SeqCst);
        assert!((2..=6).contains(&calls), "{calls} calls for two operations");
    }

    #[tokio::test]
    async fn a_missing_table_is_an_internal_error_without_the_sdk_message() {
        let (endpoint, _) =
            fake_dynamodb(StatusCode::BAD_REQUEST, "ResourceNotFoundException").await;
        let stores = stores_at(&endpoint).await;
        for (err, _) in failures(&stores).await {
            assert!(
                matches!(&err, Error::Internal(cause) if cause.contains("ResourceNotFound")),
                "{err:?}"
            );
            assert_eq!(err.to_string(), "Internal server error");
        }
    }
}
