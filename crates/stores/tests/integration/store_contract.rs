//! The store contract: one set of test bodies, run against the in-memory stores and
//! against the DynamoDB stores on a real DynamoDB-compatible server (`DYNAMODB_ENDPOINT`).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use domain::refresh::{RefreshSecret, TokenHash};
use domain::{Email, Username};
use errors::Error;
use stores::dynamodb::DynamoAccountStore;
use stores::{
    Account, AccountStore, AttemptKey, Attempts, CrossTableWrites, LiveSession, Liveness,
    LoginAttemptStore, MailTokenStore, Profile, ProfilePatch, ProfileStore, RefreshRecord,
    Rotation, Session, SessionStore, SessionUse, Settle, Stores, WriteGuard,
};
use testkit::dynamodb::TempTables;

/// The stores under test, plus raw table access when there is a table.
pub(super) struct Subject {
    pub(super) accounts: Arc<dyn AccountStore>,
    pub(super) profiles: Arc<dyn ProfileStore>,
    pub(super) sessions: Arc<dyn SessionStore>,
    pub(super) cross_table: Arc<dyn CrossTableWrites>,
    pub(super) mail_tokens: Arc<dyn MailTokenStore>,
    attempts: Arc<dyn LoginAttemptStore>,
    tables: Option<TempTables>,
}

impl Subject {
    fn of(stores: Stores, tables: Option<TempTables>) -> Self {
        Self {
            accounts: stores.accounts,
            profiles: stores.profiles,
            sessions: stores.sessions,
            cross_table: stores.cross_table,
            mail_tokens: stores.mail_tokens,
            attempts: stores.attempts,
            tables,
        }
    }

    pub(super) fn memory() -> Self {
        Self::of(Stores::memory(), None)
    }

    pub(super) async fn dynamodb() -> Option<Self> {
        let tables = TempTables::create().await?;
        let stores = tables.stores().await;
        Some(Self::of(stores, Some(tables)))
    }

    pub(super) async fn cleanup(self) {
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

pub(super) fn account(username: &str, email: &str) -> Account {
    Account {
        user_id: Uuid::new_v4(),
        username: Username::parse(username).expect("valid username"),
        email: Email::parse(email).expect("valid email"),
        password_hash: format!("$2b$04$hash-of-{username}"),
        created_at: at(0),
        generation: 0,
        email_verified: false,
    }
}

pub(super) fn profile(name: &str) -> Profile {
    Profile {
        user_id: Uuid::new_v4(),
        username: name.into(),
        email: format!("{name}@example.com"),
        full_name: format!("{name} Example"),
        bio: String::new(),
        created_at: at(1),
    }
}

/// The guard of a write for `user_id` now that checks only that the account was not
/// deleted (as users' remote mode writes).
fn owner(user_id: Uuid) -> WriteGuard {
    WriteGuard {
        user_id,
        session: None,
        now: now(),
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
    assert!(
        s.accounts
            .find_by_username(&username("bob"))
            .await
            .unwrap()
            .is_none()
    );
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

    assert!(
        s.accounts
            .find_by_username(&username("bob"))
            .await
            .unwrap()
            .is_none()
    );
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
    let guard = owner(alice.user_id);
    s.profiles.create(&alice, &guard).await.unwrap();
    assert_eq!(
        s.profiles.get(alice.user_id).await.unwrap(),
        Some(alice.clone())
    );

    let bio_only = ProfilePatch {
        bio: Some("Writes Rust".into()),
        ..ProfilePatch::default()
    };
    s.profiles
        .update(alice.user_id, &bio_only, &guard)
        .await
        .unwrap();
    let expected = Profile {
        bio: "Writes Rust".into(),
        ..alice.clone()
    };
    assert_eq!(s.profiles.get(alice.user_id).await.unwrap(), Some(expected));

    let both = ProfilePatch {
        full_name: Some("Alice Smith".into()),
        bio: Some(String::new()),
    };
    s.profiles
        .update(alice.user_id, &both, &guard)
        .await
        .unwrap();
    let expected = Profile {
        full_name: "Alice Smith".into(),
        bio: String::new(),
        ..alice.clone()
    };
    let nothing = ProfilePatch::default();
    s.profiles
        .update(alice.user_id, &nothing, &guard)
        .await
        .unwrap();
    assert_eq!(s.profiles.get(alice.user_id).await.unwrap(), Some(expected));

    s.profiles.delete(alice.user_id).await.unwrap();
    assert_eq!(s.profiles.get(alice.user_id).await.unwrap(), None);
}

async fn profile_writes_never_overwrite_or_resurrect(s: &Subject) {
    let alice = profile("alice");
    s.profiles
        .create(&alice, &owner(alice.user_id))
        .await
        .unwrap();
    let impostor = Profile {
        full_name: "Impostor".into(),
        ..alice.clone()
    };
    assert!(matches!(
        s.profiles.create(&impostor, &owner(alice.user_id)).await,
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
        s.profiles.update(ghost, &patch, &owner(ghost)).await,
        Err(Error::UserNotFound)
    ));
    assert!(matches!(
        s.profiles
            .update(ghost, &ProfilePatch::default(), &owner(ghost))
            .await,
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
        s.profiles.create(&p, &owner(p.user_id)).await.unwrap();
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

pub(super) fn now() -> i64 {
    Utc::now().timestamp()
}

fn hash() -> TokenHash {
    RefreshSecret::generate().hash()
}

/// A use of a session now, from nowhere in particular.
fn used() -> SessionUse {
    used_at(now())
}

/// A use of a session at `t` (epoch seconds).
fn used_at(t: i64) -> SessionUse {
    SessionUse {
        now: t,
        ip: Some("192.0.2.7".into()),
        user_agent: Some("contract-test/1".into()),
    }
}

/// The reuse interval the tests rotate with (`REFRESH_REUSE_INTERVAL_SECS`' default).
const INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// No reuse interval: every second presentation of a token is reuse.
const NO_INTERVAL: std::time::Duration = std::time::Duration::ZERO;

/// A session of `account` started now (as of its current password generation), and
/// its first refresh token, valid for an hour; not yet stored.
pub(super) fn session_of(account: &Account) -> (Session, RefreshRecord) {
    let t = now();
    let session = Session {
        id: Uuid::new_v4(),
        user_id: account.user_id,
        username: account.username.as_str().to_owned(),
        started: t,
        last_used: t,
        ip: Some("198.51.100.1".into()),
        user_agent: Some("contract-test/0".into()),
        generation: account.generation,
        expires_at: t + 3600,
        ended_at: None,
    };
    let first = RefreshRecord {
        hash: hash(),
        family: session.id,
        user_id: account.user_id,
        username: session.username.clone(),
        expires_at: t + 3600,
        used: false,
        used_at: None,
        generation: account.generation,
    };
    (session, first)
}

/// A new account named `name` (stored), signed in once.
async fn signed_up(s: &Subject, name: &str) -> (Account, Session, RefreshRecord) {
    let account = account(name, &format!("{name}@example.com"));
    s.accounts.create(&account).await.unwrap();
    let (session, first) = login(s, &account).await;
    (account, session, first)
}

/// Another session of `account`, as a login with its current hash starts it.
pub(super) async fn login(s: &Subject, account: &Account) -> (Session, RefreshRecord) {
    let (session, first) = session_of(account);
    assert!(
        s.sessions
            .start_session(account, &session, &first)
            .await
            .unwrap()
    );
    (session, first)
}

pub(super) async fn liveness(s: &Subject, session: &Session) -> Liveness {
    s.sessions
        .liveness(session.user_id, session.id, now())
        .await
        .unwrap()
}

async fn rotate(s: &Subject, presented: &TokenHash) -> Rotation {
    rotate_at(s, presented, now()).await
}

/// Presents `presented` at `t`, with the reuse interval [`INTERVAL`].
async fn rotate_at(s: &Subject, presented: &TokenHash, t: i64) -> Rotation {
    s.sessions
        .rotate_refresh(
            presented,
            &hash(),
            t + 3600,
            t + 3600,
            &used_at(t),
            INTERVAL,
        )
        .await
        .unwrap()
}

async fn a_refresh_token_rotates_into_its_session_once(s: &Subject) {
    let (_, session, first) = signed_up(s, "alice").await;
    assert_eq!(
        s.sessions.find_refresh(&first.hash).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(liveness(s, &session).await, Liveness::Live);

    let (second, later) = (hash(), now() + 7200);
    let t = now();
    let rotated = s
        .sessions
        .rotate_refresh(&first.hash, &second, later, later, &used_at(t), INTERVAL)
        .await
        .unwrap();
    let expected = RefreshRecord {
        hash: second.clone(),
        expires_at: later,
        ..first.clone()
    };
    assert_eq!(rotated, Rotation::Rotated(expected.clone()));
    assert_eq!(
        s.sessions.find_refresh(&second).await.unwrap(),
        Some(expected)
    );
    let retired = s.sessions.find_refresh(&first.hash).await.unwrap().unwrap();
    assert!(retired.used, "the presented token is retired");
    assert_eq!(retired.used_at, Some(t), "and when");
    let listed = s
        .sessions
        .list_sessions(session.user_id, 10, now())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, session.id);
    assert_eq!(
        listed[0].expires_at, later,
        "the session outlives its tokens"
    );
    assert_eq!(listed[0].ip.as_deref(), Some("192.0.2.7"), "the last use's");
    assert_eq!(listed[0].user_agent.as_deref(), Some("contract-test/1"));

    assert!(matches!(
        rotate(s, &second).await,
        Rotation::Rotated(r) if r.family == session.id && r.user_id == session.user_id
    ));
}

async fn presenting_a_retired_token_ends_its_whole_session(s: &Subject) {
    let (account, session, first) = signed_up(s, "alice").await;
    let (bystander, bystander_first) = login(s, &account).await;
    let second = hash();
    let until = now() + 3600;
    assert!(matches!(
        s.sessions
            .rotate_refresh(&first.hash, &second, until, until, &used(), INTERVAL)
            .await
            .unwrap(),
        Rotation::Rotated(_)
    ));
    let retired_at = s
        .sessions
        .find_refresh(&first.hash)
        .await
        .unwrap()
        .unwrap()
        .used_at
        .expect("retired at a known time");

    let stolen_copy = hash();
    let after_the_interval = retired_at + INTERVAL.as_secs() as i64;
    assert_eq!(
        s.sessions
            .rotate_refresh(
                &first.hash,
                &stolen_copy,
                until,
                until,
                &used_at(after_the_interval),
                INTERVAL
            )
            .await
            .unwrap(),
        Rotation::Reused { family: session.id }
    );
    assert_eq!(s.sessions.find_refresh(&stolen_copy).await.unwrap(), None);
    assert_eq!(
        liveness(s, &session).await,
        Liveness::Ended,
        "every access token of it too"
    );
    assert_eq!(
        rotate(s, &second).await,
        Rotation::Refused,
        "the newest token of an ended session is refused too"
    );
    assert_eq!(liveness(s, &bystander).await, Liveness::Live);
    let Rotation::Rotated(bystander_second) = rotate(s, &bystander_first.hash).await else {
        panic!("other sessions are untouched");
    };

    let at_once = hash();
    assert_eq!(
        s.sessions
            .rotate_refresh(
                &bystander_first.hash,
                &at_once,
                until,
                until,
                &used(),
                NO_INTERVAL
            )
            .await
            .unwrap(),
        Rotation::Reused {
            family: bystander.id
        },
        "without a reuse interval, presenting it again at once is reuse"
    );
    assert_eq!(s.sessions.find_refresh(&at_once).await.unwrap(), None);
    assert_eq!(liveness(s, &bystander).await, Liveness::Ended);
    assert_eq!(rotate(s, &bystander_second.hash).await, Rotation::Refused);
}

/// A refresh whose answer was lost is retried with the token it already retired:
/// within the reuse interval that gets a new pair of the same session, which stays
/// live, and the successors issued before stay valid; after it, it is reuse.
async fn a_refresh_retried_within_the_reuse_interval_gets_a_new_pair_of_the_same_session(
    s: &Subject,
) {
    let (_, session, first) = signed_up(s, "alice").await;
    let Rotation::Rotated(lost) = rotate(s, &first.hash).await else {
        panic!("the first refresh rotates");
    };
    let retired = s.sessions.find_refresh(&first.hash).await.unwrap().unwrap();
    let retired_at = retired.used_at.expect("retired at a known time");

    let retry_at = retired_at + INTERVAL.as_secs() as i64 - 1;
    let Rotation::Rotated(retried) = rotate_at(s, &first.hash, retry_at).await else {
        panic!("a retry within the interval rotates again");
    };
    assert_eq!(retried.family, session.id, "in the same session");
    assert_eq!(retried.user_id, session.user_id);
    assert_ne!(retried.hash, lost.hash, "a fresh successor");
    assert!(!retried.used && retried.used_at.is_none());
    assert_eq!(
        s.sessions.find_refresh(&first.hash).await.unwrap(),
        Some(retired),
        "the retried token stays retired as it was"
    );
    assert_eq!(liveness(s, &session).await, Liveness::Live);
    let listed = s
        .sessions
        .list_sessions(session.user_id, 10, now())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "one session");
    assert_eq!(listed[0].id, session.id);

    for successor in [&lost, &retried] {
        assert!(
            matches!(rotate(s, &successor.hash).await, Rotation::Rotated(r) if r.family == session.id),
            "every successor issued within the interval stays valid"
        );
    }

    let after = retired_at + INTERVAL.as_secs() as i64;
    assert_eq!(
        rotate_at(s, &first.hash, after).await,
        Rotation::Reused { family: session.id },
        "after the interval it is reuse"
    );
    assert_eq!(liveness(s, &session).await, Liveness::Ended);

    let (_, ended, first) = signed_up(s, "bob").await;
    assert!(matches!(rotate(s, &first.hash).await, Rotation::Rotated(_)));
    assert!(s.sessions.end_session(None, ended.id, now()).await.unwrap());
    assert_eq!(
        rotate(s, &first.hash).await,
        Rotation::Refused,
        "a retry once the session has ended is refused"
    );
}

async fn unknown_expired_and_ended_tokens_are_refused(s: &Subject) {
    assert_eq!(rotate(s, &hash()).await, Rotation::Refused);

    let mut alice = account("alice", "alice@example.com");
    s.accounts.create(&alice).await.unwrap();
    let (session, mut expired) = session_of(&alice);
    expired.expires_at = now() - 1;
    assert!(
        s.sessions
            .start_session(&alice, &session, &expired)
            .await
            .unwrap()
    );
    assert_eq!(rotate(s, &expired.hash).await, Rotation::Refused);
    assert!(
        !s.sessions
            .find_refresh(&expired.hash)
            .await
            .unwrap()
            .unwrap()
            .used
    );

    let (ended, first) = login(s, &alice).await;
    assert!(
        s.sessions
            .end_session(Some(alice.user_id), ended.id, now())
            .await
            .unwrap()
    );
    let next = hash();
    assert_eq!(
        s.sessions
            .rotate_refresh(
                &first.hash,
                &next,
                now() + 60,
                now() + 60,
                &used(),
                INTERVAL
            )
            .await
            .unwrap(),
        Rotation::Refused
    );
    assert_eq!(s.sessions.find_refresh(&next).await.unwrap(), None);
    assert!(
        !s.sessions
            .find_refresh(&first.hash)
            .await
            .unwrap()
            .unwrap()
            .used
    );

    alice.password_hash = "a hash the account does not have".into();
    let (never, never_first) = session_of(&alice);
    assert!(
        !s.sessions
            .start_session(&alice, &never, &never_first)
            .await
            .unwrap(),
        "a login whose password check is stale starts nothing"
    );
    assert_eq!(liveness(s, &never).await, Liveness::Ended);
    assert_eq!(
        s.sessions.find_refresh(&never_first.hash).await.unwrap(),
        None
    );
}

/// Twenty refreshes racing with one token, with the reuse interval `interval`: their
/// answers, after each racer's.
async fn twenty_racing_refreshes(
    s: &Subject,
    interval: std::time::Duration,
) -> (Session, Vec<Rotation>) {
    let (_, session, first) = signed_up(s, &format!("alice{}", interval.as_secs())).await;
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let sessions = s.sessions.clone();
        let presented = first.hash.clone();
        racers.spawn(async move {
            sessions
                .rotate_refresh(
                    &presented,
                    &hash(),
                    now() + 3600,
                    now() + 3600,
                    &used(),
                    interval,
                )
                .await
        });
    }
    let mut answers = Vec::new();
    while let Some(joined) = racers.join_next().await {
        answers.push(
            joined
                .expect("racer did not panic")
                .expect("store answered"),
        );
    }
    (session, answers)
}

async fn twenty_concurrent_refreshes_with_one_token_have_at_most_one_winner(s: &Subject) {
    let (session, answers) = twenty_racing_refreshes(s, NO_INTERVAL).await;
    let mut winners = Vec::new();
    for answer in answers {
        match answer {
            Rotation::Rotated(next) => winners.push(next),
            Rotation::Reused { family } => assert_eq!(family, session.id),
            Rotation::Refused => {}
        }
    }
    assert!(winners.len() <= 1, "{} winners", winners.len());
    for winner in winners {
        assert_eq!(
            rotate(s, &winner.hash).await,
            Rotation::Refused,
            "the losers' reuse ended the winner's session"
        );
    }
}

async fn twenty_concurrent_refreshes_within_the_reuse_interval_all_succeed_in_one_session(
    s: &Subject,
) {
    let (session, answers) = twenty_racing_refreshes(s, INTERVAL).await;
    let successors: Vec<RefreshRecord> = answers
        .into_iter()
        .map(|answer| match answer {
            Rotation::Rotated(next) => next,
            other => panic!("a racer was answered {other:?}"),
        })
        .collect();
    assert!(successors.iter().all(|r| r.family == session.id));
    let distinct: HashSet<&str> = successors.iter().map(|r| r.hash.as_str()).collect();
    assert_eq!(distinct.len(), 20, "each racer got its own successor");
    assert_eq!(liveness(s, &session).await, Liveness::Live);
    let listed = s
        .sessions
        .list_sessions(session.user_id, 10, now())
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|l| l.id).collect::<Vec<_>>(),
        [session.id],
        "one live session"
    );
    assert!(matches!(
        rotate(s, &successors[19].hash).await,
        Rotation::Rotated(r) if r.family == session.id
    ));
}

async fn sessions_are_listed_newest_first_and_end_once_by_their_owner(s: &Subject) {
    let (alice, oldest, _) = signed_up(s, "alice").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (newest, _) = login(s, &alice).await;
    let (_, bobs, _) = signed_up(s, "bob").await;
    let ids = |list: Vec<Session>| list.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let listed = s
        .sessions
        .list_sessions(alice.user_id, 10, now())
        .await
        .unwrap();
    assert_eq!(ids(listed.clone()), vec![newest.id, oldest.id]);
    assert_eq!(listed[1], oldest, "as started");
    assert_eq!(
        ids(s
            .sessions
            .list_sessions(alice.user_id, 1, now())
            .await
            .unwrap()),
        vec![newest.id]
    );

    assert!(
        !s.sessions
            .end_session(Some(alice.user_id), bobs.id, now())
            .await
            .unwrap(),
        "another user's session is not one's own to end"
    );
    assert_eq!(liveness(s, &bobs).await, Liveness::Live);
    assert!(
        !s.sessions
            .end_session(Some(alice.user_id), Uuid::new_v4(), now())
            .await
            .unwrap()
    );
    assert!(
        s.sessions
            .end_session(Some(alice.user_id), oldest.id, now())
            .await
            .unwrap()
    );
    assert!(
        !s.sessions
            .end_session(Some(alice.user_id), oldest.id, now())
            .await
            .unwrap(),
        "an ended session is not ended again"
    );
    assert_eq!(liveness(s, &oldest).await, Liveness::Ended);
    assert_eq!(
        s.sessions
            .liveness(bobs.user_id, oldest.id, now())
            .await
            .unwrap(),
        Liveness::Ended,
        "a session presented for another user is not theirs"
    );
    assert_eq!(
        ids(s
            .sessions
            .list_sessions(alice.user_id, 10, now())
            .await
            .unwrap()),
        vec![newest.id]
    );
}

async fn a_password_change_ends_every_other_session_at_once(s: &Subject) {
    let (alice, kept, kept_first) = signed_up(s, "alice").await;
    let (other, other_first) = login(s, &alice).await;
    assert!(
        s.cross_table
            .change_password(&alice, "$2b$04$the-new-hash", kept.id)
            .await
            .unwrap()
    );
    assert_eq!(liveness(s, &kept).await, Liveness::Live);
    assert_eq!(liveness(s, &other).await, Liveness::Ended);
    assert_eq!(rotate(s, &other_first.hash).await, Rotation::Refused);
    let kept_next = match rotate(s, &kept_first.hash).await {
        Rotation::Rotated(next) => next,
        other => panic!("the kept session refreshes, got {other:?}"),
    };
    assert_eq!(liveness(s, &kept).await, Liveness::Live);

    let (stale, stale_first) = session_of(&alice);
    assert!(
        !s.sessions
            .start_session(&alice, &stale, &stale_first)
            .await
            .unwrap(),
        "a login checked against the old password starts nothing"
    );
    assert!(
        !s.cross_table
            .change_password(&alice, "$2b$04$another", kept.id)
            .await
            .unwrap(),
        "nor does a second change from the old password"
    );
    let changed = s
        .accounts
        .find_by_username(&alice.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.password_hash, "$2b$04$the-new-hash");
    assert_eq!(changed.generation, 1);
    let (fresh, _) = login(s, &changed).await;
    assert_eq!(liveness(s, &fresh).await, Liveness::Live);
    let mut listed: Vec<Uuid> = s
        .sessions
        .list_sessions(alice.user_id, 10, now())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    listed.sort();
    let mut expected = vec![kept.id, fresh.id];
    expected.sort();
    assert_eq!(listed, expected);

    // A second change from the fresh session keeps only that one.
    assert!(
        s.cross_table
            .change_password(&changed, "$2b$04$third", fresh.id)
            .await
            .unwrap()
    );
    assert_eq!(liveness(s, &fresh).await, Liveness::Live);
    assert_eq!(liveness(s, &kept).await, Liveness::Ended);
    assert_eq!(rotate(s, &kept_next.hash).await, Rotation::Refused);
}

async fn an_account_deletion_takes_everything_at_once_and_frees_the_names(s: &Subject) {
    let (alice, session, first) = signed_up(s, "Alice").await;
    let mut mine = profile("Alice");
    mine.user_id = alice.user_id;
    s.profiles
        .create(&mine, &owner(alice.user_id))
        .await
        .unwrap();
    let (_, bobs, _) = signed_up(s, "bob").await;

    let until = now() + 3600;
    assert!(
        s.cross_table
            .delete_account(&alice, until, now())
            .await
            .unwrap()
    );
    assert_eq!(liveness(s, &session).await, Liveness::UserDeleted);
    assert_eq!(rotate(s, &first.hash).await, Rotation::Refused);
    assert_eq!(
        s.accounts
            .find_by_username(&alice.username)
            .await
            .unwrap()
            .map(|a| a.user_id),
        None
    );
    assert_eq!(s.profiles.get(alice.user_id).await.unwrap(), None);
    assert!(
        s.sessions
            .list_sessions(alice.user_id, 10, now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        liveness(s, &bobs).await,
        Liveness::Live,
        "other users are untouched"
    );
    if s.tables.is_some() {
        s.assert_absent(&[
            DynamoAccountStore::user_key(alice.user_id),
            DynamoAccountStore::username_key(&alice.username),
            DynamoAccountStore::email_key(&alice.email),
        ])
        .await;
    }

    assert!(
        !s.cross_table
            .delete_account(&alice, until, now())
            .await
            .unwrap(),
        "a second deletion finds nothing to delete"
    );
    let again = account("alice", "ALICE@example.com");
    s.accounts.create(&again).await.unwrap();
    let (new_session, _) = login(s, &again).await;
    assert_eq!(
        liveness(s, &new_session).await,
        Liveness::Live,
        "a new account, a new user"
    );
    assert_eq!(liveness(s, &session).await, Liveness::UserDeleted);
}

/// The guard of a write at `at` for the caller whose token belongs to `session`, as the
/// token check read it.
async fn guard_of(s: &Subject, session: &Session, at: i64) -> WriteGuard {
    let live = s
        .sessions
        .check_session(session.user_id, session.id, now())
        .await
        .unwrap()
        .expect("the session is live when its token is checked");
    assert_eq!(
        live,
        LiveSession {
            sid: session.id,
            generation: session.generation
        }
    );
    WriteGuard {
        user_id: session.user_id,
        session: Some(live),
        now: at,
    }
}

async fn profile_writes_hold_only_while_the_writers_session_and_account_live(s: &Subject) {
    let (alice, session, _) = signed_up(s, "alice").await;
    let mut mine = profile("alice");
    mine.user_id = alice.user_id;
    let bio = |text: &str| ProfilePatch {
        bio: Some(text.into()),
        ..ProfilePatch::default()
    };
    let refused = |r: Result<(), Error>| matches!(r, Err(Error::Unauthorized));

    let past_expiry = guard_of(s, &session, session.expires_at).await;
    assert!(refused(s.profiles.create(&mine, &past_expiry).await));
    assert_eq!(s.profiles.get(alice.user_id).await.unwrap(), None);
    let guard = guard_of(s, &session, now()).await;
    s.profiles.create(&mine, &guard).await.unwrap();
    s.profiles
        .update(alice.user_id, &bio("one"), &guard)
        .await
        .unwrap();
    let stale_gen = WriteGuard {
        session: Some(LiveSession {
            sid: session.id,
            generation: session.generation + 1,
        }),
        ..guard
    };
    assert!(refused(
        s.profiles
            .update(alice.user_id, &bio("x"), &stale_gen)
            .await
    ));

    let (other, _) = login(s, &alice).await;
    let others = guard_of(s, &other, now()).await;
    assert!(
        s.sessions
            .end_session(Some(alice.user_id), other.id, now())
            .await
            .unwrap()
    );
    assert!(refused(
        s.profiles.update(alice.user_id, &bio("x"), &others).await
    ));
    assert!(refused(
        s.profiles
            .update(alice.user_id, &ProfilePatch::default(), &others)
            .await
    ));
    assert!(
        refused(s.profiles.create(&mine, &others).await),
        "a refused guard comes before the profile's own state"
    );

    let (before_change, _) = login(s, &alice).await;
    let old_password = guard_of(s, &before_change, now()).await;
    assert!(
        s.cross_table
            .change_password(&alice, "$2b$04$changed", session.id)
            .await
            .unwrap()
    );
    assert!(refused(
        s.profiles
            .update(alice.user_id, &bio("x"), &old_password)
            .await
    ));
    s.profiles
        .update(alice.user_id, &bio("kept"), &guard)
        .await
        .expect("the session that changed the password writes on");
    assert_eq!(
        s.profiles.get(alice.user_id).await.unwrap().map(|p| p.bio),
        Some("kept".to_owned())
    );

    let alice = s
        .accounts
        .find_by_username(&alice.username)
        .await
        .unwrap()
        .unwrap();
    assert!(
        s.cross_table
            .delete_account(&alice, now() + 3600, now())
            .await
            .unwrap()
    );
    assert!(refused(s.profiles.create(&mine, &guard).await));
    assert!(refused(
        s.profiles.create(&mine, &owner(alice.user_id)).await
    ));
    assert!(refused(
        s.profiles.update(alice.user_id, &bio("x"), &guard).await
    ));
    assert_eq!(
        s.profiles.get(alice.user_id).await.unwrap(),
        None,
        "a deleted account never gets a profile back"
    );
}

async fn a_deletion_while_a_refresh_is_in_flight_leaves_no_live_token(s: &Subject) {
    for _ in 0..5 {
        let name = format!("racer{}", &Uuid::new_v4().simple().to_string()[..8]);
        let (account, session, first) = signed_up(s, &name).await;
        let sessions = s.sessions.clone();
        let presented = first.hash.clone();
        let refresh = tokio::spawn(async move {
            sessions
                .rotate_refresh(
                    &presented,
                    &hash(),
                    now() + 3600,
                    now() + 3600,
                    &used(),
                    INTERVAL,
                )
                .await
        });
        let deleted = s
            .cross_table
            .delete_account(&account, now() + 3600, now())
            .await
            .unwrap();
        assert!(deleted);
        let rotation = refresh.await.unwrap().unwrap();
        assert_eq!(liveness(s, &session).await, Liveness::UserDeleted);
        if let Rotation::Rotated(next) = rotation {
            assert_eq!(rotate(s, &next.hash).await, Rotation::Refused);
        }
    }
}

async fn a_password_change_racing_logins_leaves_only_the_kept_session(s: &Subject) {
    for round in 0..3 {
        let (alice, kept, _) = signed_up(s, &format!("alice{round}")).await;
        let mut logins = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let sessions = s.sessions.clone();
            let account = alice.clone();
            logins.spawn(async move {
                let (session, first) = session_of(&account);
                let started = sessions.start_session(&account, &session, &first).await;
                (session, started)
            });
        }
        assert!(
            s.cross_table
                .change_password(&alice, "$2b$04$changed", kept.id)
                .await
                .unwrap()
        );
        while let Some(joined) = logins.join_next().await {
            let (session, started) = joined.unwrap();
            started.expect("store answered");
            assert_eq!(
                liveness(s, &session).await,
                Liveness::Ended,
                "a login with the old password, before or after the change, does not survive it"
            );
        }
        assert_eq!(liveness(s, &kept).await, Liveness::Live);
    }
}

/// A login that verified a hash made at another bcrypt cost stores a hash at the
/// current one: both copies of the account, only if they still have the verified
/// hash, with the generation and every session left as they were.
async fn a_rehash_replaces_the_verified_hash_in_both_copies_and_ends_no_session(s: &Subject) {
    let (alice, session, _) = signed_up(s, "alice").await;
    let rehashed = "$2b$05$the-same-password-at-the-current-cost";
    assert!(s.accounts.rehash(&alice, rehashed).await.unwrap());
    let found = s
        .accounts
        .find_by_username(&alice.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.password_hash, rehashed);
    assert_eq!(
        found.generation, alice.generation,
        "the password generation stays"
    );
    assert_eq!(
        liveness(s, &session).await,
        Liveness::Live,
        "so do the sessions"
    );

    assert!(
        !s.accounts.rehash(&alice, "$2b$06$stale").await.unwrap(),
        "a rehash of a hash no longer stored writes nothing"
    );
    let stored = s
        .accounts
        .find_by_username(&alice.username)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.password_hash, rehashed);

    let (next, _) = login(s, &stored).await;
    assert_eq!(liveness(s, &next).await, Liveness::Live);
    assert!(
        s.cross_table
            .change_password(&stored, "$2b$05$changed", next.id)
            .await
            .unwrap(),
        "a password change sees the rehashed copies"
    );
    assert_eq!(liveness(s, &session).await, Liveness::Ended);
}

async fn attempts_count_up_in_a_window_and_start_again_after_it(s: &Subject) {
    let window = std::time::Duration::from_secs(900);
    let t = now();
    let alice = AttemptKey::user(&username("Alice"));
    for n in 1..=3 {
        assert_eq!(
            s.attempts
                .count_attempt(&alice, window, t + n)
                .await
                .unwrap(),
            Attempts {
                count: n as u64,
                window_ends_at: t + 1 + 900
            }
        );
    }
    let same_name = AttemptKey::user(&username("ALICE"));
    assert_eq!(
        s.attempts
            .count_attempt(&same_name, window, t + 10)
            .await
            .unwrap()
            .count,
        4,
        "usernames count case-insensitively"
    );
    let ip = AttemptKey::Ip("203.0.113.7".parse::<IpAddr>().unwrap());
    let ip6 = AttemptKey::Ip("2001:db8::7".parse::<IpAddr>().unwrap());
    assert_eq!(
        s.attempts
            .count_attempt(&ip, window, t)
            .await
            .unwrap()
            .count,
        1
    );
    assert_eq!(
        s.attempts
            .count_attempt(&ip6, window, t)
            .await
            .unwrap()
            .count,
        1
    );

    let closed = t + 1 + 900;
    assert_eq!(
        s.attempts
            .count_attempt(&alice, window, closed)
            .await
            .unwrap(),
        Attempts {
            count: 1,
            window_ends_at: closed + 900
        },
        "a closed window starts again at 1 even before TTL removes it"
    );
}

/// A login settles its attempts in the step that starts its session: the username's
/// are forgotten, the address gets one back; a login that does not start settles
/// nothing; an address counter gone meanwhile does not wedge the next count.
async fn a_login_settles_its_attempts_with_its_session(s: &Subject) {
    let window = std::time::Duration::from_secs(900);
    let t = now();
    let carol = account("carol", "carol@example.com");
    s.accounts.create(&carol).await.unwrap();
    let user = AttemptKey::user(&carol.username);
    let ip = AttemptKey::Ip("198.51.100.23".parse::<IpAddr>().unwrap());
    for _ in 0..3 {
        s.attempts.count_attempt(&user, window, t).await.unwrap();
        s.attempts.count_attempt(&ip, window, t).await.unwrap();
    }
    let settle = Settle {
        clear: Some(user.clone()),
        release: Some(ip.clone()),
        now: t,
    };
    let stale = Account {
        password_hash: "$2b$04$not-the-current-hash-of-carol-at-all".into(),
        ..carol.clone()
    };
    let (session, first) = session_of(&stale);
    assert!(
        !s.sessions
            .start_login(&stale, &session, &first, &settle)
            .await
            .unwrap()
    );
    let count = |key: AttemptKey| async move {
        s.attempts
            .count_attempt(&key, window, t)
            .await
            .unwrap()
            .count
    };
    assert_eq!(
        count(user.clone()).await,
        4,
        "a refused login settles nothing"
    );
    assert_eq!(count(ip.clone()).await, 4);

    let (session, first) = session_of(&carol);
    assert!(
        s.sessions
            .start_login(&carol, &session, &first, &settle)
            .await
            .unwrap()
    );
    assert_eq!(liveness(s, &session).await, Liveness::Live);
    assert_eq!(
        count(user.clone()).await,
        1,
        "the username's failures are forgotten"
    );
    assert_eq!(
        count(ip.clone()).await,
        4,
        "the address got one attempt back"
    );

    let gone = AttemptKey::Ip("198.51.100.24".parse::<IpAddr>().unwrap());
    let (session, first) = session_of(&carol);
    let settle = Settle {
        clear: None,
        release: Some(gone.clone()),
        now: t,
    };
    assert!(
        s.sessions
            .start_login(&carol, &session, &first, &settle)
            .await
            .unwrap()
    );
    assert_eq!(
        count(gone.clone()).await,
        1,
        "a counter gone meanwhile starts afresh"
    );
    assert_eq!(count(gone).await, 2);
}

async fn attempts_can_be_released_and_cleared(s: &Subject) {
    let window = std::time::Duration::from_secs(900);
    let t = now();
    let bob = AttemptKey::user(&username("bob"));
    for _ in 0..3 {
        s.attempts.count_attempt(&bob, window, t).await.unwrap();
    }
    s.attempts.release_attempt(&bob, t).await.unwrap();
    assert_eq!(
        s.attempts
            .count_attempt(&bob, window, t)
            .await
            .unwrap()
            .count,
        3
    );

    s.attempts.clear_attempts(&bob).await.unwrap();
    s.attempts.clear_attempts(&bob).await.unwrap();
    assert_eq!(
        s.attempts
            .count_attempt(&bob, window, t)
            .await
            .unwrap()
            .count,
        1
    );

    let nobody = AttemptKey::user(&username("nobody"));
    s.attempts.release_attempt(&nobody, t).await.unwrap();
    s.attempts.count_attempt(&nobody, window, t).await.unwrap();
    s.attempts.release_attempt(&nobody, t).await.unwrap();
    s.attempts.release_attempt(&nobody, t).await.unwrap();
    assert_eq!(
        s.attempts
            .count_attempt(&nobody, window, t)
            .await
            .unwrap()
            .count,
        1,
        "a release never goes below zero"
    );
    s.attempts.release_attempt(&nobody, t + 900).await.unwrap();
    assert_eq!(
        s.attempts
            .count_attempt(&nobody, window, t + 899)
            .await
            .unwrap()
            .count,
        2,
        "a release after the window closed changes nothing"
    );
}

async fn fifty_concurrent_attempts_are_each_counted_once(s: &Subject) {
    let window = std::time::Duration::from_secs(900);
    let key = AttemptKey::user(&username("target"));
    let t = now();
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let attempts = s.attempts.clone();
        let key = key.clone();
        racers.spawn(async move { attempts.count_attempt(&key, window, t).await });
    }
    let mut counts = Vec::new();
    while let Some(joined) = racers.join_next().await {
        counts.push(joined.unwrap().unwrap().count);
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=50).collect::<Vec<u64>>());
}

/// Registrations from an address have their own counter: apart from the address's
/// login attempts, counted once each when they race, and starting again after the
/// window.
async fn registrations_per_address_are_counted_apart_from_logins(s: &Subject) {
    let window = std::time::Duration::from_secs(3600);
    let t = now();
    let ip: IpAddr = "203.0.113.21".parse().unwrap();
    let registrations = AttemptKey::Register(ip);
    s.attempts
        .count_attempt(&AttemptKey::Ip(ip), window, t)
        .await
        .unwrap();
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let attempts = s.attempts.clone();
        let key = registrations.clone();
        racers.spawn(async move { attempts.count_attempt(&key, window, t).await });
    }
    let mut counts = Vec::new();
    while let Some(joined) = racers.join_next().await {
        counts.push(joined.unwrap().unwrap().count);
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=30).collect::<Vec<u64>>(),
        "each racing registration is counted once, apart from the login attempt"
    );
    assert_eq!(
        s.attempts
            .count_attempt(&AttemptKey::Ip(ip), window, t)
            .await
            .unwrap()
            .count,
        2,
        "the address's login count is untouched"
    );
    assert_eq!(
        s.attempts
            .count_attempt(
                &AttemptKey::Register("203.0.113.22".parse().unwrap()),
                window,
                t
            )
            .await
            .unwrap()
            .count,
        1,
        "another address has its own count"
    );
    assert_eq!(
        s.attempts
            .count_attempt(&registrations, window, t + 3600)
            .await
            .unwrap(),
        Attempts {
            count: 1,
            window_ends_at: t + 7200
        },
        "a closed window starts again at 1"
    );
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

pub(super) use contract;

contract!(
    accounts_are_found_by_username_in_any_case,
    usernames_and_emails_are_unique_regardless_of_case,
    a_failed_registration_leaves_nothing_behind,
    fifty_concurrent_registrations_of_one_name_have_one_winner,
    profiles_are_created_read_updated_and_deleted,
    profile_writes_never_overwrite_or_resurrect,
    listing_pages_through_every_profile_once,
    a_refresh_token_rotates_into_its_session_once,
    presenting_a_retired_token_ends_its_whole_session,
    a_refresh_retried_within_the_reuse_interval_gets_a_new_pair_of_the_same_session,
    unknown_expired_and_ended_tokens_are_refused,
    twenty_concurrent_refreshes_with_one_token_have_at_most_one_winner,
    twenty_concurrent_refreshes_within_the_reuse_interval_all_succeed_in_one_session,
    sessions_are_listed_newest_first_and_end_once_by_their_owner,
    a_password_change_ends_every_other_session_at_once,
    an_account_deletion_takes_everything_at_once_and_frees_the_names,
    profile_writes_hold_only_while_the_writers_session_and_account_live,
    a_deletion_while_a_refresh_is_in_flight_leaves_no_live_token,
    a_password_change_racing_logins_leaves_only_the_kept_session,
    a_rehash_replaces_the_verified_hash_in_both_copies_and_ends_no_session,
    attempts_count_up_in_a_window_and_start_again_after_it,
    attempts_can_be_released_and_cleared,
    a_login_settles_its_attempts_with_its_session,
    fifty_concurrent_attempts_are_each_counted_once,
    registrations_per_address_are_counted_apart_from_logins,
);

/// The consistency check that ends every DynamoDB suite ([`TempTables::delete`])
/// finds a missing claim, an orphaned claim and a username claim that is not a copy of
/// its account, and nothing in a table the store wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accounts_table_check_finds_missing_orphaned_and_stale_claims() {
    use aws_sdk_dynamodb::types::AttributeValue;

    let Some(subject) = Subject::dynamodb().await else {
        return;
    };
    let tables = subject.tables.as_ref().expect("dynamodb tables");
    let table = tables.store.tables.accounts.clone();
    let alice = account("Alice", "Alice@example.com");
    let bob = account("bob", "bob@example.com");
    subject.accounts.create(&alice).await.unwrap();
    subject.accounts.create(&bob).await.unwrap();
    assert_eq!(tables.account_problems().await, Vec::<String>::new());

    let key = |pk: String| AttributeValue::S(pk);
    let alice_email = DynamoAccountStore::email_key(&alice.email);
    let bob_name = DynamoAccountStore::username_key(&bob.username);
    let saved_email = tables
        .client
        .get_item()
        .table_name(&table)
        .key("pk", key(alice_email.clone()))
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
        .expect("alice's email claim");
    tables
        .client
        .delete_item()
        .table_name(&table)
        .key("pk", key(alice_email.clone()))
        .send()
        .await
        .unwrap();
    let ghost = Uuid::new_v4();
    tables
        .client
        .put_item()
        .table_name(&table)
        .item("pk", key("USERNAME#ghost".into()))
        .item("user_id", AttributeValue::S(ghost.to_string()))
        .send()
        .await
        .unwrap();
    tables
        .client
        .update_item()
        .table_name(&table)
        .key("pk", key(bob_name.clone()))
        .update_expression("SET password_hash = :h")
        .expression_attribute_values(":h", AttributeValue::S("stale".into()))
        .send()
        .await
        .unwrap();

    let alice_key = DynamoAccountStore::user_key(alice.user_id);
    let bob_key = DynamoAccountStore::user_key(bob.user_id);
    assert_eq!(
        tables.account_problems().await,
        vec![
            format!("{alice_key} has no claim {alice_email}"),
            format!("{bob_name} differs from {bob_key} in password_hash"),
            format!("USERNAME#ghost is orphaned: USER#{ghost} does not exist"),
        ]
    );

    tables
        .client
        .put_item()
        .table_name(&table)
        .set_item(Some(saved_email))
        .send()
        .await
        .unwrap();
    tables
        .client
        .delete_item()
        .table_name(&table)
        .key("pk", key("USERNAME#ghost".into()))
        .send()
        .await
        .unwrap();
    tables
        .client
        .update_item()
        .table_name(&table)
        .key("pk", key(bob_name))
        .update_expression("SET password_hash = :h")
        .expression_attribute_values(":h", AttributeValue::S(bob.password_hash.clone()))
        .send()
        .await
        .unwrap();
    subject.cleanup().await;
}

/// A DynamoDB that is down, hanging or throttling is a 503 within the request timeout.
mod unavailable {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use axum::http::StatusCode;
    use tokio::net::TcpListener;

    use domain::Username;
    use errors::Error;
    use stores::Stores;
    use stores::config::StoreAccess;

    const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);

    async fn stores_at(endpoint: &str) -> Stores {
        let request_timeout = REQUEST_TIMEOUT.as_millis().to_string();
        let config: StoreAccess = testkit::config(&[
            ("STORE", "dynamodb"),
            ("DYNAMODB_ENDPOINT", endpoint),
            ("CONNECT_TIMEOUT_MS", "200"),
            ("REQUEST_TIMEOUT_MS", &request_timeout),
        ]);
        // Without the connection warm-up of `Stores::from_config`: the calls counted
        // here are the stores' own.
        Stores::dynamodb(stores::dynamodb::client(&config).await, &config)
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
