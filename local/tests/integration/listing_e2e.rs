//! `GET /api/users` through the gateway with profiles as large as allowed: pages stop at
//! the byte budget, under the relay cap, and the cursor walk sees each profile once.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use reqwest::Client;
use serde_json::{Value, json};
use uuid::Uuid;

use local::{Ports, Stack};
use settings::Secret;
use stores::Stores;
use testkit::http::listing_query;
use testkit::{SECRET, config, signed_in};
use tokens::Tokens;

use crate::support::on_tables;
/// Enough largest-possible profiles (about 4.6 KB of JSON each) to pass the gateway's
/// 1 MiB cap in one `?limit=1000` page.
const PROFILES: usize = 250;

#[tokio::test]
async fn a_walk_of_large_profiles_through_the_gateway_covers_all_in_memory() {
    let stores = Stores::memory();
    let config = config(&[("JWT_SECRET", SECRET)]);
    let stack = local::start_with(&config, Ports::ANY, stores.clone())
        .await
        .unwrap();
    walk_large_profiles(&stack, &stores, true).await;
    stack.stop().await;
}

#[tokio::test]
async fn a_walk_of_large_profiles_through_the_gateway_covers_all_on_dynamodb() {
    let Some(tables) = testkit::dynamodb::TempTables::create().await else {
        return;
    };
    let config = on_tables(&tables, &[("JWT_SECRET", SECRET)]);
    let stores = tables.stores().await;
    let stack = local::start_with(&config, Ports::ANY, stores.clone())
        .await
        .unwrap();
    walk_large_profiles(&stack, &stores, false).await;
    stack.stop().await;
    tables.delete().await;
}

/// Creates [`PROFILES`] maximal profiles, each by its owner, then walks the listing
/// with several page sizes. `in_key_order`: the store lists in `user_id` order.
async fn walk_large_profiles(stack: &Stack, stores: &Stores, in_key_order: bool) {
    let gw = stack.gateway_url();
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let tokens = Tokens::new(
        &Secret::new(SECRET.into()).unwrap(),
        Duration::from_secs(3600),
    )
    .unwrap();
    let mut ids = BTreeSet::new();
    let mut usernames = HashMap::new();
    for i in 0..PROFILES {
        let user_id = Uuid::new_v4();
        let username = format!("Owner{i}");
        let token = signed_in(stores, &tokens, user_id, &username).await;
        let response = http
            .post(format!("{gw}/api/users"))
            .bearer_auth(&token)
            .json(&json!({
                "user_id": user_id,
                "username": username.to_lowercase(),
                "email": format!("owner{i}@example.com"),
                "full_name": "😀".repeat(users::MAX_FULL_NAME_CHARS),
                "bio": "😀".repeat(users::MAX_BIO_CHARS),
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        ids.insert(user_id);
        usernames.insert(user_id, username);
    }
    let reader = signed_in(stores, &tokens, Uuid::new_v4(), "reader").await;

    for limit in [Some(1000), None, Some(150)] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let query = listing_query(limit, cursor.as_deref());
            let url = format!("{gw}/api/users?{query}");
            let response = http.get(&url).bearer_auth(&reader).send().await.unwrap();
            let status = response.status();
            let next = response
                .headers()
                .get(users::NEXT_CURSOR)
                .map(|v| v.to_str().unwrap().to_owned());
            let bytes = response.bytes().await.unwrap();
            assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&bytes));
            assert!(
                bytes.len() <= users::MAX_PAGE_BYTES,
                "{url}: {} bytes",
                bytes.len()
            );
            assert!(bytes.len() < gateway::MAX_UPSTREAM_BODY_BYTES);
            let page: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
            pages += 1;
            for profile in &page {
                let user_id = Uuid::parse_str(profile["user_id"].as_str().unwrap()).unwrap();
                assert_eq!(
                    profile["username"].as_str(),
                    usernames.get(&user_id).map(String::as_str),
                    "the owner's spelling"
                );
                seen.push(user_id);
            }
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
            assert!(pages <= PROFILES, "the walk never ends");
        }
        let distinct: BTreeSet<Uuid> = seen.iter().copied().collect();
        assert_eq!(distinct.len(), seen.len(), "limit {limit:?}: a repeat");
        assert_eq!(distinct, ids, "limit {limit:?}: a profile missed");
        if in_key_order {
            assert_eq!(seen, ids.iter().copied().collect::<Vec<_>>());
        }
        let least_pages = PROFILES.div_ceil(limit.unwrap_or(users::DEFAULT_LIMIT));
        if limit == Some(1000) {
            assert!(pages >= 3, "limit {limit:?}: {pages} pages for ~1.15 MB");
        } else {
            assert!(pages >= least_pages, "limit {limit:?}: {pages} pages");
        }
    }
}
