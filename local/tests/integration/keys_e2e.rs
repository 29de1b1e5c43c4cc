//! EdDSA tokens end to end: the local stack signs with Ed25519 when no HS256 secret is
//! set, publishes the public key, serves the JWKS and the discovery document through
//! the gateway, and a verifier holding no key (users from its configuration alone)
//! learns the public key from the store, in memory and on DynamoDB.

use axum::body::Body;
use axum::http::Request;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Client;
use serde_json::{json, Value};

use local::Ports;
use shared::testing::dynamodb::TempTables;
use shared::testing::http::PASSWORD;
use shared::testing::{config, send};

use crate::support::on_tables;

/// Registers and logs in `name` through the gateway at `gw`: its user id and token.
async fn signed_in(http: &Client, gw: &str, name: &str) -> (String, String) {
    let registered: Value = http
        .post(format!("{gw}/api/register"))
        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let login: Value = http
        .post(format!("{gw}/api/login"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        registered["user_id"].as_str().unwrap().to_owned(),
        login["token"].as_str().expect("a token").to_owned(),
    )
}

/// The gateway's JWKS and discovery document, checked; the JWKS.
async fn published(http: &Client, gw: &str) -> Value {
    let discovery = http
        .get(format!("{gw}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.status(), 200);
    assert_eq!(discovery.headers()["cache-control"], "public, max-age=300");
    let discovery: Value = discovery.json().await.unwrap();
    assert_eq!(discovery["issuer"], shared::token::DEFAULT_ISSUER);
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    let host = gw.trim_start_matches("http://");
    assert_eq!(
        jwks_uri,
        format!("http://{host}/.well-known/jwks.json"),
        "the gateway's address, not auth's"
    );
    let jwks = http.get(jwks_uri).send().await.unwrap();
    assert_eq!(jwks.status(), 200);
    assert_eq!(jwks.headers()["cache-control"], "public, max-age=300");
    jwks.json().await.unwrap()
}

/// Verifies `token` as a stranger would: with the JWK whose `kid` its header names.
fn verify_with(jwks: &Value, token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("a kid");
    let keys = jwks["keys"].as_array().unwrap();
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the kid is published");
    assert_eq!(
        (&jwk["kty"], &jwk["crv"], &jwk["use"], &jwk["alg"]),
        (
            &json!("OKP"),
            &json!("Ed25519"),
            &json!("sig"),
            &json!("EdDSA")
        )
    );
    assert!(jwk.get("d").is_none(), "no private part");
    let key = DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[shared::token::DEFAULT_AUDIENCE]);
    validation.set_issuer(&[shared::token::DEFAULT_ISSUER]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("verifies with the published key")
        .claims
}

#[tokio::test]
async fn without_a_secret_the_local_stack_signs_ed25519_and_publishes_its_key() {
    let stack = local::start(&config(&[("BCRYPT_COST", "4")]), Ports::ANY)
        .await
        .unwrap();
    let gw = stack.gateway_url();
    let http = Client::new();
    let (user_id, token) = signed_in(&http, &gw, "ed_alice").await;
    let jwks = published(&http, &gw).await;
    assert_eq!(verify_with(&jwks, &token)["sub"], user_id.as_str());
    let read = http
        .get(format!("{gw}/api/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "users accepts the EdDSA token");
    stack.stop().await;
}

#[tokio::test]
async fn a_users_function_with_no_key_learns_the_public_key_from_dynamodb() {
    let Some(tables) = TempTables::create().await else {
        return;
    };
    let signing = [(
        "JWT_SIGNING_KEY",
        "an-ed25519-signing-key-material-for-this-test",
    )];
    let stack = local::start(&on_tables(&tables, &signing), Ports::ANY)
        .await
        .unwrap();
    let gw = stack.gateway_url();
    let http = Client::new();
    let (user_id, token) = signed_in(&http, &gw, "ed_bob").await;
    let jwks = published(&http, &gw).await;
    assert_eq!(verify_with(&jwks, &token)["sub"], user_id.as_str());

    // A users function as deployed in EdDSA mode: no secret, no key, only the tables.
    let verifier_config = on_tables(&tables, &[]);
    assert!(
        verifier_config.tokens.secret.is_none() && verifier_config.tokens.signing_key.is_none()
    );
    let users = users::router(
        users::AppState::from_config(&verifier_config)
            .await
            .unwrap(),
    );
    let request = |token: &str| {
        Request::get("/users")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&users, request(&token)).await.status, 200);
    let mut forged = token.clone();
    forged.replace_range(forged.len() - 3.., "AAA");
    assert_eq!(send(&users, request(&forged)).await.status, 401);
    stack.stop().await;
    tables.delete().await;
}
