//! The JWT attack playbook through the local stack's gateway, at auth's `/validate` and
//! at users, on both algorithms' setups (EdDSA with `JWT_SIGNING_KEY`, HS256 with
//! `JWT_SECRET`) and both stores: every forged or bent token is a 401 JSON error, and
//! the genuine one still passes.

use std::sync::Arc;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use local::Config;
use local::Ports;
use stores::memory::MemoryKeyStore;
use testkit::dynamodb::TempTables;
use testkit::http::PASSWORD;
use testkit::{config, jwt_attacks};

use crate::support::on_tables;

const EDDSA: (&str, &str) = (
    "JWT_SIGNING_KEY",
    "the ed25519 key material of the attack suite",
);
const HS256: (&str, &str) = (
    "JWT_SECRET",
    "the hs256 secret of the attack suite, 32+ bytes",
);

async fn every_attack_is_refused(config: Config) {
    let stack = local::start(&config, Ports::ANY).await.unwrap();
    let gw = stack.gateway_url();
    let http = Client::new();
    let post = |path: &str, body: Value| http.post(format!("{gw}/api{path}")).json(&body).send();
    let creds = json!({"username": "victim", "email": "victim@example.com", "password": PASSWORD});
    assert_eq!(post("/register", creds).await.unwrap().status(), 200);
    let login: Value = post(
        "/login",
        json!({"username": "victim", "password": PASSWORD}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let good = login["token"].as_str().unwrap();
    let refresh_token = login["refresh_token"].as_str().unwrap();
    // The same signer as the stack's, from the same configuration.
    let signer = config
        .auth
        .tokens
        .signer(Arc::new(MemoryKeyStore::default()))
        .unwrap()
        .expect("a configured signer");
    let users = |token: &str| {
        http.get(format!("{gw}/api/users"))
            .bearer_auth(token)
            .send()
    };
    let validate = |token: &str| post("/validate", json!({ "token": token }));
    assert_eq!(users(good).await.unwrap().status(), 200);
    assert_eq!(validate(good).await.unwrap().status(), 200);

    let attacks = jwt_attacks(&signer, good, refresh_token);
    assert!(attacks.len() > 30, "{} attacks", attacks.len());
    for (what, token) in &attacks {
        for (place, answer) in [
            ("/validate", validate(token).await.unwrap()),
            ("users", users(token).await.unwrap()),
        ] {
            let status = answer.status();
            let body: Value = answer.json().await.unwrap();
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{what} at {place}: {body}"
            );
            assert_eq!(body["status"], "401", "{what} at {place}: {body}");
        }
    }
    assert_eq!(
        users(good).await.unwrap().status(),
        200,
        "the genuine token still works"
    );
    stack.stop().await;
}

#[tokio::test]
async fn every_attack_is_refused_with_eddsa_in_memory() {
    every_attack_is_refused(config(&[EDDSA, ("BCRYPT_COST", "4")])).await;
}

#[tokio::test]
async fn every_attack_is_refused_with_hs256_in_memory() {
    every_attack_is_refused(config(&[HS256, ("BCRYPT_COST", "4")])).await;
}

/// [`every_attack_is_refused`] on fresh DynamoDB tables with `key` (skipped when
/// `DYNAMODB_ENDPOINT` is unset outside CI).
async fn every_attack_is_refused_on_dynamodb(key: (&str, &str)) {
    let Some(tables) = TempTables::create().await else {
        return;
    };
    every_attack_is_refused(on_tables(&tables, &[key, ("BCRYPT_COST", "4")])).await;
    tables.delete().await;
}

#[tokio::test]
async fn every_attack_is_refused_with_eddsa_on_dynamodb() {
    every_attack_is_refused_on_dynamodb(EDDSA).await;
}

#[tokio::test]
async fn every_attack_is_refused_with_hs256_on_dynamodb() {
    every_attack_is_refused_on_dynamodb(HS256).await;
}
