//! EdDSA tokens end to end: the local stack signs with Ed25519 when no HS256 secret is
//! set, publishes the public key, serves the JWKS and the discovery document through
//! the gateway, and a verifier holding no key (users from its configuration alone)
//! learns the public key from the store, in memory and on DynamoDB.

use axum::body::Body;
use axum::http::Request;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Client;
use serde_json::{Value, json};

use local::Ports;
use stores::Stores;
use testkit::dynamodb::TempTables;
use testkit::http::{PASSWORD, sign_up};
use testkit::{config, send};

use crate::support::{self, on_tables};

/// The gateway's JWKS and discovery document, checked; the JWKS.
async fn published(http: &Client, gw: &str) -> Value {
    let discovery = http
        .get(format!("{gw}/.well-known/openid-configuration"))
        .header("x-forwarded-host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.status(), 200);
    assert_eq!(discovery.headers()["cache-control"], "public, max-age=300");
    let discovery: Value = discovery.json().await.unwrap();
    assert_eq!(discovery["issuer"], tokens::DEFAULT_ISSUER);
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    let host = gw.trim_start_matches("http://");
    assert_eq!(
        jwks_uri,
        format!("http://{host}/.well-known/jwks.json"),
        "the gateway's address, not auth's nor the one a client sent"
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
    validation.set_audience(&[tokens::DEFAULT_AUDIENCE]);
    validation.set_issuer(&[tokens::DEFAULT_ISSUER]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("verifies with the published key")
        .claims
}

/// The discovery document is cached by shared caches: whatever `Host` or
/// `X-Forwarded-Host` a client sends, straight to auth or through the gateway, its key
/// set is at the gateway's address (or at `PUBLIC_URL`, when set).
#[tokio::test]
async fn no_client_header_moves_the_key_set_of_the_discovery_document() {
    let http = Client::new();
    let jwks_uri = |url: String, host: Option<&'static str>| {
        let http = http.clone();
        async move {
            let mut request = http
                .get(format!("{url}/.well-known/openid-configuration"))
                .header("x-forwarded-host", "attacker.example")
                .header("x-forwarded-proto", "https");
            if let Some(host) = host {
                request = request.header("host", host);
            }
            let answer: Value = request.send().await.unwrap().json().await.unwrap();
            answer["jwks_uri"].as_str().unwrap().to_owned()
        }
    };
    let stack = support::stack(&[]).await;
    let expected = format!("{}/.well-known/jwks.json", stack.gateway_url());
    for url in [stack.auth_url(), stack.gateway_url()] {
        for host in [None, Some("attacker.example")] {
            assert_eq!(
                jwks_uri(url.clone(), host).await,
                expected,
                "{url} {host:?}"
            );
        }
    }
    stack.stop().await;
    let stack = support::stack(&[("PUBLIC_URL", "https://api.example.com")]).await;
    assert_eq!(
        jwks_uri(stack.auth_url(), Some("attacker.example")).await,
        "https://api.example.com/.well-known/jwks.json"
    );
    stack.stop().await;
}

#[tokio::test]
async fn without_a_secret_the_local_stack_signs_ed25519_and_publishes_its_key() {
    let stack = support::stack(&[("BCRYPT_COST", "4")]).await;
    let gw = stack.gateway_url();
    let http = Client::new();
    let (user_id, token) = sign_up(&format!("{gw}/api"), "ed_alice").await;
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
    let (user_id, token) = sign_up(&format!("{gw}/api"), "ed_bob").await;
    let jwks = published(&http, &gw).await;
    assert_eq!(verify_with(&jwks, &token)["sub"], user_id.as_str());

    // A users function as deployed in EdDSA mode: no secret, no key, only the tables.
    let verifier_config = on_tables(&tables, &[]);
    assert!(
        verifier_config.auth.tokens.secret.is_none()
            && verifier_config.auth.tokens.signing_key.is_none()
    );
    let users = users::router(
        users::AppState::from_config(&verifier_config.users)
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

/// Two deployments of auth in turn over the same stores, as a key rotation is: the
/// second one's first token makes its key current and retires the first one's, which
/// keeps verifying until the last token it signed has expired. Readers at users
/// (which holds no key) never see a wrongful 401 meanwhile.
async fn a_key_rotation_under_load_logs_nobody_out(stores: Stores, config: local::Config) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use settings::Secret;
    use tokens::{Ed25519Key, Tokens};

    let ttl = config.auth.tokens.access_ttl;
    let started = chrono::Utc::now().timestamp();
    let deployment = |material: &str| {
        let key =
            Ed25519Key::from_material(&Secret::named("JWT_SIGNING_KEY", material.into()).unwrap());
        let tokens = Tokens::ed25519(key, Some(stores.keys.clone()), ttl);
        let kid = tokens.signing_key().unwrap().kid.clone();
        (
            auth::router(auth::AppState::new(&stores, Arc::new(tokens), &config.auth)),
            kid,
        )
    };
    let (first, first_kid) = deployment("the first signing key material of this test");
    let (second, second_kid) = deployment("the second signing key material of this test");
    let verifier = Tokens::ed25519_verifier(stores.keys.clone(), ttl);
    let users = users::router(users::AppState::new(
        stores.profiles.clone(),
        users::Authenticator::local(Arc::new(verifier), stores.checks.clone()),
    ));

    let names: Vec<String> = (0..4).map(|i| format!("rotating{i}")).collect();
    let mut refresh_tokens = Vec::new();
    let pool = Arc::new(Mutex::new(Vec::new()));
    for name in &names {
        let reply = testkit::register(&first, name, &format!("{name}@example.com"), PASSWORD).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let login = testkit::login(&first, name, PASSWORD).await;
        assert_eq!(login.status, 200);
        pool.lock()
            .unwrap()
            .push(login.body["token"].as_str().unwrap().to_owned());
        refresh_tokens.push(login.body["refresh_token"].as_str().unwrap().to_owned());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let (reads, wrongful) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut readers = Vec::new();
    for reader in 0..2 {
        let (users, pool, stop) = (users.clone(), pool.clone(), stop.clone());
        let (reads, wrongful) = (reads.clone(), wrongful.clone());
        readers.push(tokio::spawn(async move {
            let mut n = reader;
            while !stop.load(Ordering::Relaxed) {
                let token = {
                    let pool = pool.lock().unwrap();
                    pool[n % pool.len()].clone()
                };
                n += 1;
                let request = Request::get("/users")
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap();
                let reply = send(&users, request).await;
                // In memory nothing in a read waits: let the rotation run.
                tokio::task::yield_now().await;
                reads.fetch_add(1, Ordering::Relaxed);
                if reply.status != 200 {
                    wrongful.fetch_add(1, Ordering::Relaxed);
                    eprintln!("wrongful {}: {}", reply.status, reply.body);
                }
            }
        }));
    }
    // Progress, not time: each phase lasts until the readers have made `READS_PER_PHASE`
    // more reads, however slow the store is on a loaded machine (a fixed sleep gave
    // fewer reads than the test needs when DynamoDB calls queued behind other tests).
    const READS_PER_PHASE: usize = 30;
    let a_phase_of_reads = || {
        let reads = reads.clone();
        let target = reads.load(Ordering::Relaxed) + READS_PER_PHASE;
        async move {
            let waited = tokio::time::timeout(Duration::from_secs(60), async {
                while reads.load(Ordering::Relaxed) < target {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
            assert!(
                waited.await.is_ok(),
                "the readers stalled: {} reads, waiting for {target}",
                reads.load(Ordering::Relaxed)
            );
        }
    };
    a_phase_of_reads().await;
    // The new deployment: logins and refreshes of sessions the old key started.
    for (name, refresh_token) in names.iter().zip(&refresh_tokens) {
        let login = testkit::login(&second, name, PASSWORD).await;
        assert_eq!(login.status, 200);
        pool.lock()
            .unwrap()
            .push(login.body["token"].as_str().unwrap().to_owned());
        let refreshed =
            testkit::post(&second, "/refresh", json!({"refresh_token": refresh_token})).await;
        assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
        pool.lock()
            .unwrap()
            .push(refreshed.body["token"].as_str().unwrap().to_owned());
    }
    a_phase_of_reads().await;
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    let kids: Vec<String> = pool
        .lock()
        .unwrap()
        .iter()
        .map(|t| jsonwebtoken::decode_header(t).unwrap().kid.unwrap())
        .collect();
    assert!(
        kids.contains(&first_kid) && kids.contains(&second_kid),
        "tokens of both keys were read"
    );
    assert!(
        reads.load(Ordering::Relaxed) >= 2 * READS_PER_PHASE,
        "{} reads",
        reads.load(Ordering::Relaxed)
    );
    assert_eq!(
        wrongful.load(Ordering::Relaxed),
        0,
        "wrongful 401s during the rotation"
    );

    // The key set: the new key first, the old one until its tokens have expired.
    let jwks = testkit::get(&second, "/.well-known/jwks.json").await.body;
    let listed: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [second_kid.as_str(), first_kid.as_str()]);
    let now = chrono::Utc::now().timestamp();
    let keys = stores.keys.published_keys(now).await.unwrap();
    let retired_at = keys[1].expires_at.expect("the old key expires");
    let bound = i64::try_from(ttl.as_secs()).unwrap() + 60;
    // Retired while the test ran: between its start and now (however loaded the
    // machine, which has made this take over 5 s).
    assert!(
        (started + bound - 1..=now + bound).contains(&retired_at),
        "{retired_at} vs {started}..={now}"
    );
    assert_eq!(keys[0].expires_at, None);
    let later = stores.keys.published_keys(retired_at).await.unwrap();
    assert_eq!(
        later.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        [second_kid.as_str()]
    );
    assert_eq!(
        stores
            .keys
            .public_key(&first_kid, retired_at)
            .await
            .unwrap(),
        None
    );
    assert!(
        stores
            .keys
            .public_key(&second_kid, retired_at)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_under_load_logs_nobody_out_in_memory() {
    a_key_rotation_under_load_logs_nobody_out(Stores::memory(), config(&[("BCRYPT_COST", "4")]))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_under_load_logs_nobody_out_on_dynamodb() {
    let Some(tables) = TempTables::create().await else {
        return;
    };
    let mut config: local::Config = tables.config();
    config.auth.bcrypt_cost = 4;
    a_key_rotation_under_load_logs_nobody_out(tables.stores().await, config).await;
    tables.delete().await;
}
