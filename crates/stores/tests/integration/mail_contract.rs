//! The mailed-token contract (issue 33): issuing, using up and retiring the tokens of
//! verification, password-reset and email-change links, on both stores.

use std::sync::Arc;

use domain::Email;
use domain::refresh::{RefreshSecret, TokenHash};
use errors::Error;
use stores::{Account, Liveness, MailPurpose, MailToken, TokenRefusal, Used, WriteGuard};

use super::store_contract::{Subject, account, contract, liveness, login, now, profile};

/// A fresh token secret's hash.
fn secret() -> TokenHash {
    RefreshSecret::generate().hash()
}

/// Issues a token of `purpose` for `account`, sent to `to`, living its purpose's
/// lifetime; its hash.
async fn issue(s: &Subject, account: &Account, purpose: MailPurpose, to: &str) -> TokenHash {
    issue_until(
        s,
        account,
        purpose,
        to,
        now() + purpose.lifetime().as_secs() as i64,
    )
    .await
}

async fn issue_until(
    s: &Subject,
    account: &Account,
    purpose: MailPurpose,
    to: &str,
    expires_at: i64,
) -> TokenHash {
    let token = MailToken {
        hash: secret(),
        purpose,
        user_id: account.user_id,
        email: Email::parse(to).expect("valid email"),
        expires_at,
    };
    s.mail_tokens.issue(&token).await.unwrap();
    assert_eq!(
        s.mail_tokens.find(&token.hash).await.unwrap(),
        Some(token.clone())
    );
    token.hash
}

/// Alice, registered (alice@example.com, unverified).
async fn registered_alice(s: &Subject) -> Account {
    let alice = account("alice", "alice@example.com");
    s.accounts.create(&alice).await.unwrap();
    alice
}

/// The stored account of `account`, by id.
async fn stored(s: &Subject, account: &Account) -> Account {
    s.accounts
        .find_by_id(account.user_id)
        .await
        .unwrap()
        .expect("the account exists")
}

/// Uses `hash` for `purpose` (a reset sets `new_hash`).
async fn use_token(s: &Subject, purpose: MailPurpose, hash: &TokenHash) -> Result<Used, Error> {
    match purpose {
        MailPurpose::VerifyEmail => s.cross_table.verify_email(hash, now()).await,
        MailPurpose::ResetPassword => {
            s.cross_table
                .reset_password(hash, "$2b$04$reset-hash", now())
                .await
        }
        MailPurpose::ChangeEmail => s.cross_table.change_email(hash, now()).await,
    }
}

fn refused(used: Result<Used, Error>) -> TokenRefusal {
    match used {
        Ok(Err(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn a_verification_token_verifies_its_address_once(s: &Subject) {
    let alice = registered_alice(s).await;
    assert!(
        !stored(s, &alice).await.email_verified,
        "unverified at first"
    );
    let token = issue(s, &alice, MailPurpose::VerifyEmail, "alice@example.com").await;

    let before = s.cross_table.verify_email(&token, now()).await.unwrap();
    assert_eq!(before.expect("verified").user_id, alice.user_id);
    let after = stored(s, &alice).await;
    assert!(after.email_verified);
    assert_eq!(
        after.password_hash, alice.password_hash,
        "nothing else changes"
    );
    let by_name = s.accounts.find_by_username(&alice.username).await.unwrap();
    assert!(by_name.expect("alice").email_verified, "both copies");

    assert_eq!(s.mail_tokens.find(&token).await.unwrap(), None, "used up");
    assert_eq!(
        refused(s.cross_table.verify_email(&token, now()).await),
        TokenRefusal::Invalid,
        "single use"
    );
    assert_eq!(
        refused(s.cross_table.verify_email(&secret(), now()).await),
        TokenRefusal::Invalid,
        "unknown"
    );
}

async fn a_newer_token_retires_the_earlier_and_each_serves_one_purpose(s: &Subject) {
    let alice = registered_alice(s).await;
    let first = issue(s, &alice, MailPurpose::ResetPassword, "alice@example.com").await;
    let second = issue(s, &alice, MailPurpose::ResetPassword, "alice@example.com").await;
    let verify = issue(s, &alice, MailPurpose::VerifyEmail, "alice@example.com").await;
    assert_eq!(
        refused(use_token(s, MailPurpose::ResetPassword, &first).await),
        TokenRefusal::Invalid,
        "retired by the newer reset token"
    );
    for purpose in [MailPurpose::VerifyEmail, MailPurpose::ChangeEmail] {
        assert_eq!(
            refused(use_token(s, purpose, &second).await),
            TokenRefusal::Invalid,
            "a reset token does nothing as {purpose:?}"
        );
    }
    assert_eq!(stored(s, &alice).await.password_hash, alice.password_hash);
    assert!(
        use_token(s, MailPurpose::ResetPassword, &second)
            .await
            .unwrap()
            .is_ok()
    );
    assert!(
        use_token(s, MailPurpose::VerifyEmail, &verify)
            .await
            .unwrap()
            .is_ok(),
        "another purpose's token is not retired by a reset"
    );
}

async fn an_expired_token_does_nothing(s: &Subject) {
    let alice = registered_alice(s).await;
    for purpose in MailPurpose::ALL {
        let to = match purpose {
            MailPurpose::ChangeEmail => "new@example.com",
            _ => "alice@example.com",
        };
        let token = issue_until(s, &alice, purpose, to, now() - 1).await;
        assert_eq!(
            refused(use_token(s, purpose, &token).await),
            TokenRefusal::Invalid,
            "{purpose:?}"
        );
    }
    let after = stored(s, &alice).await;
    assert_eq!(after.password_hash, alice.password_hash);
    assert_eq!(after.email, alice.email);
    assert!(!after.email_verified);
}

async fn a_password_reset_sets_the_hash_ends_every_session_and_verifies(s: &Subject) {
    let alice = registered_alice(s).await;
    let (phone, _) = login(s, &alice).await;
    let (laptop, _) = login(s, &alice).await;
    let token = issue(s, &alice, MailPurpose::ResetPassword, "alice@example.com").await;

    let before = s
        .cross_table
        .reset_password(&token, "$2b$04$the-reset-hash", now())
        .await
        .unwrap()
        .expect("reset");
    assert_eq!(
        before.password_hash, alice.password_hash,
        "the account as it was"
    );
    let after = stored(s, &alice).await;
    assert_eq!(after.password_hash, "$2b$04$the-reset-hash");
    assert_eq!(after.generation, alice.generation + 1);
    assert!(after.email_verified, "a reset proves the address");
    for session in [&phone, &laptop] {
        assert_eq!(liveness(s, session).await, Liveness::Ended);
    }
    let (fresh, _) = login(s, &after).await;
    assert_eq!(
        liveness(s, &fresh).await,
        Liveness::Live,
        "a new login works"
    );
    assert_eq!(
        refused(
            s.cross_table
                .reset_password(&token, "$2b$04$again", now())
                .await
        ),
        TokenRefusal::Invalid,
        "the link is dead"
    );
    assert_eq!(liveness(s, &fresh).await, Liveness::Live);
}

async fn a_token_used_twice_at_once_has_one_winner(s: &Subject) {
    for purpose in [MailPurpose::VerifyEmail, MailPurpose::ResetPassword] {
        let alice = match purpose {
            MailPurpose::VerifyEmail => account("alice", "alice@example.com"),
            _ => account("bob", "bob@example.com"),
        };
        s.accounts.create(&alice).await.unwrap();
        let token = issue(s, &alice, purpose, alice.email.as_str()).await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let cross_table = Arc::clone(&s.cross_table);
                let token = token.clone();
                tokio::spawn(async move {
                    match purpose {
                        MailPurpose::VerifyEmail => cross_table.verify_email(&token, now()).await,
                        _ => {
                            cross_table
                                .reset_password(&token, "$2b$04$raced", now())
                                .await
                        }
                    }
                })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(Ok(_)) => won += 1,
                Ok(Err(TokenRefusal::Invalid)) => {}
                other => panic!("{purpose:?}: {other:?}"),
            }
        }
        assert_eq!(won, 1, "{purpose:?}: exactly one use wins");
        if purpose == MailPurpose::ResetPassword {
            assert_eq!(stored(s, &alice).await.generation, 1, "one reset applied");
        }
    }
}

async fn a_reset_racing_logins_leaves_no_session_of_the_old_password(s: &Subject) {
    let alice = registered_alice(s).await;
    let token = issue(s, &alice, MailPurpose::ResetPassword, "alice@example.com").await;
    let logins: Vec<_> = (0..6)
        .map(|_| {
            let sessions = Arc::clone(&s.sessions);
            let alice = alice.clone();
            tokio::spawn(async move {
                let (session, first) = super::store_contract::session_of(&alice);
                let started = sessions
                    .start_session(&alice, &session, &first)
                    .await
                    .unwrap();
                (session, started)
            })
        })
        .collect();
    let reset = s
        .cross_table
        .reset_password(&token, "$2b$04$after-the-race", now())
        .await
        .unwrap();
    assert!(reset.is_ok());
    for login in logins {
        let (session, started) = login.await.unwrap();
        if started {
            assert_eq!(
                liveness(s, &session).await,
                Liveness::Ended,
                "a session of the old password outlives the reset"
            );
        }
    }
}

async fn an_email_change_moves_the_claim_and_the_profile_at_once(s: &Subject) {
    let alice = registered_alice(s).await;
    let mut card = profile("alice");
    card.user_id = alice.user_id;
    let guard = WriteGuard {
        user_id: alice.user_id,
        session: None,
        now: now(),
    };
    s.profiles.create(&card, &guard).await.unwrap();
    let token = issue(s, &alice, MailPurpose::ChangeEmail, "Alice.New@example.com").await;

    let before = s.cross_table.change_email(&token, now()).await.unwrap();
    assert_eq!(before.expect("changed").email, alice.email);
    let after = stored(s, &alice).await;
    assert_eq!(after.email.as_str(), "Alice.New@example.com");
    assert!(after.email_verified, "the new address is proven");
    let by_name = s.accounts.find_by_username(&alice.username).await.unwrap();
    assert_eq!(by_name.expect("alice").email, after.email, "both copies");
    let shown = s
        .profiles
        .get(alice.user_id)
        .await
        .unwrap()
        .expect("profile");
    assert_eq!(shown.email, "Alice.New@example.com");

    let taker = account("mallory", "alice.new@EXAMPLE.com");
    assert!(
        matches!(s.accounts.create(&taker).await, Err(Error::EmailTaken)),
        "the new address is claimed"
    );
    let heir = account("carol", "alice@example.com");
    s.accounts
        .create(&heir)
        .await
        .expect("the old address is free");
    assert_eq!(
        refused(s.cross_table.change_email(&token, now()).await),
        TokenRefusal::Invalid
    );
}

async fn an_email_change_to_an_address_taken_meanwhile_is_409_and_changes_nothing(s: &Subject) {
    let alice = registered_alice(s).await;
    let token = issue(s, &alice, MailPurpose::ChangeEmail, "wanted@example.com").await;
    s.accounts
        .create(&account("bob", "Wanted@example.com"))
        .await
        .unwrap();
    assert!(matches!(
        s.cross_table.change_email(&token, now()).await,
        Err(Error::EmailTaken)
    ));
    let after = stored(s, &alice).await;
    assert_eq!(after.email, alice.email);
    assert!(!after.email_verified);
    let again = account("carol", "alice@example.com");
    assert!(
        matches!(s.accounts.create(&again).await, Err(Error::EmailTaken)),
        "alice keeps her address"
    );
}

async fn a_token_sent_to_an_address_the_account_left_is_stale(s: &Subject) {
    let alice = registered_alice(s).await;
    let verify = issue(s, &alice, MailPurpose::VerifyEmail, "alice@example.com").await;
    let reset = issue(s, &alice, MailPurpose::ResetPassword, "alice@example.com").await;
    let change = issue(s, &alice, MailPurpose::ChangeEmail, "moved@example.com").await;
    assert!(
        s.cross_table
            .change_email(&change, now())
            .await
            .unwrap()
            .is_ok()
    );
    assert_eq!(
        refused(s.cross_table.verify_email(&verify, now()).await),
        TokenRefusal::Stale
    );
    assert_eq!(
        refused(
            s.cross_table
                .reset_password(&reset, "$2b$04$x", now())
                .await
        ),
        TokenRefusal::Stale
    );
    assert_eq!(stored(s, &alice).await.password_hash, alice.password_hash);
}

contract!(
    a_verification_token_verifies_its_address_once,
    a_newer_token_retires_the_earlier_and_each_serves_one_purpose,
    an_expired_token_does_nothing,
    a_password_reset_sets_the_hash_ends_every_session_and_verifies,
    a_token_used_twice_at_once_has_one_winner,
    a_reset_racing_logins_leaves_no_session_of_the_old_password,
    an_email_change_moves_the_claim_and_the_profile_at_once,
    an_email_change_to_an_address_taken_meanwhile_is_409_and_changes_nothing,
    a_token_sent_to_an_address_the_account_left_is_stale,
);
