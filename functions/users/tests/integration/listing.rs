//! `GET /users` pages through any number of profiles: stable order, no duplicates or gaps,
//! no page over `MAX_PAGE_BYTES`, the next cursor in `X-Next-Cursor`.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use chrono::Utc;
use uuid::Uuid;

use stores::{Profile, ProfileStore, WriteGuard};
use testkit::Reply;

use crate::support::*;

async fn seed(app: &TestApp, n: usize) -> BTreeSet<Uuid> {
    seed_with(app, n, String::new).await
}

/// `n` profiles straight into the store, each with the bio `bio()`.
async fn seed_with(app: &TestApp, n: usize, bio: impl Fn() -> String) -> BTreeSet<Uuid> {
    let mut ids = BTreeSet::new();
    for i in 0..n {
        let user_id = Uuid::new_v4();
        app.store
            .create(
                &Profile {
                    user_id,
                    username: format!("user{i}"),
                    email: format!("user{i}@example.com"),
                    full_name: format!("User {i}"),
                    bio: bio(),
                    created_at: Utc::now(),
                },
                &WriteGuard {
                    user_id,
                    session: None,
                    now: Utc::now().timestamp(),
                },
            )
            .await
            .unwrap();
        ids.insert(user_id);
    }
    ids
}

/// The cursor of the next page, which `page` names.
fn next_cursor(page: &Reply) -> String {
    page.headers[users::NEXT_CURSOR]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Walks every page with `limit`, returning the ids in the order seen and the pages.
async fn walk(app: &TestApp, token: &str, limit: Option<usize>) -> (Vec<Uuid>, usize) {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut query = Vec::new();
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        if let Some(c) = &cursor {
            query.push(format!("cursor={c}"));
        }
        let path = format!("/users?{}", query.join("&"));
        let reply = app.get(&path, token).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
        let items = reply.body.as_array().unwrap();
        let bytes = serde_json::to_vec(&reply.body).unwrap().len();
        assert!(bytes <= users::MAX_PAGE_BYTES, "{path}: {bytes} bytes");
        pages += 1;
        assert!(items.len() <= limit.unwrap_or(users::DEFAULT_LIMIT));
        seen.extend(
            items
                .iter()
                .map(|p| Uuid::parse_str(p["user_id"].as_str().unwrap()).unwrap()),
        );
        match reply.headers.get(users::NEXT_CURSOR) {
            Some(next) => {
                let full = items.len() == limit.unwrap_or(users::DEFAULT_LIMIT);
                let cut_by_size = bytes > users::MAX_PAGE_BYTES - 16 * 1024;
                assert!(full || cut_by_size, "{path}: a short page but more to come");
                cursor = Some(next.to_str().unwrap().to_owned());
            }
            None => return (seen, pages),
        }
        assert!(pages < 10_000, "the walk never ends");
    }
}

#[tokio::test]
async fn the_default_page_is_100_and_the_header_leads_to_the_rest() {
    let app = app();
    let ids = seed(&app, 250).await;
    let token = app.token(ALICE, "alice");
    let first = app.get("/users", &token).await;
    assert_eq!(first.body.as_array().unwrap().len(), 100);
    assert!(first.headers.get(users::NEXT_CURSOR).is_some());
    let (seen, pages) = walk(&app, &token, None).await;
    assert_eq!(pages, 3);
    assert_eq!(seen, ids.iter().copied().collect::<Vec<_>>());
}

#[tokio::test]
async fn pages_of_any_size_cover_everything_once_in_order() {
    let app = app();
    let ids = seed(&app, 57).await;
    let expected: Vec<Uuid> = ids.iter().copied().collect();
    let token = app.token(ALICE, "alice");
    for (limit, pages) in [(1, 57), (7, 9), (19, 3), (57, 1), (100, 1), (1000, 1)] {
        let (seen, got_pages) = walk(&app, &token, Some(limit)).await;
        assert_eq!(seen, expected, "limit {limit}");
        assert_eq!(got_pages, pages, "limit {limit}");
    }
}

#[tokio::test]
async fn a_full_last_page_carries_no_cursor() {
    let app = app();
    seed(&app, 10).await;
    let token = app.token(ALICE, "alice");
    let first = app.get("/users?limit=5", &token).await;
    let cursor = next_cursor(&first);
    let second = app
        .get(&format!("/users?limit=5&cursor={cursor}"), &token)
        .await;
    assert_eq!(second.body.as_array().unwrap().len(), 5);
    assert!(second.headers.get(users::NEXT_CURSOR).is_none());
}

#[tokio::test]
async fn a_cursor_survives_the_deletion_of_the_profile_it_points_after() {
    let app = app();
    let ids: Vec<Uuid> = seed(&app, 6).await.into_iter().collect();
    let token = app.token(ALICE, "alice");
    let first = app.get("/users?limit=3", &token).await;
    let cursor = next_cursor(&first);
    app.store.delete(ids[2]).await.unwrap();
    let rest = app
        .get(&format!("/users?limit=3&cursor={cursor}"), &token)
        .await;
    let rest: Vec<&str> = rest
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user_id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = ids[3..].iter().map(Uuid::to_string).collect();
    assert_eq!(rest, expected);
}

#[tokio::test]
async fn pages_of_stored_control_characters_stop_at_the_byte_budget() {
    let app = app();
    let ids = seed_with(&app, 200, || "\u{1}".repeat(1100)).await;
    let token = app.token(ALICE, "alice");
    let first = app.get("/users?limit=1000", &token).await;
    let first_len = first.body.as_array().unwrap().len();
    assert!(
        (1..200).contains(&first_len),
        "{first_len} profiles of 6.6 KB each fit in one page"
    );
    assert!(first.headers.get(users::NEXT_CURSOR).is_some());
    let (seen, pages) = walk(&app, &token, Some(1000)).await;
    assert_eq!(seen, ids.iter().copied().collect::<Vec<_>>());
    assert!(pages >= 3, "{pages} pages for 1.3 MB of profiles");
    let (seen, _) = walk(&app, &token, Some(90)).await;
    assert_eq!(seen, ids.iter().copied().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_single_profile_always_makes_a_page() {
    let app = app();
    let ids = seed_with(&app, 3, || "😀".repeat(users::MAX_PAGE_BYTES / 4)).await;
    let token = app.token(ALICE, "alice");
    let first = app.get("/users", &token).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body.as_array().unwrap().len(), 1);
    let mut seen = vec![first.body[0]["user_id"].as_str().unwrap().to_owned()];
    let mut next = first.headers.get(users::NEXT_CURSOR).cloned();
    while let Some(cursor) = next {
        let path = format!("/users?cursor={}", cursor.to_str().unwrap());
        let page = app.get(&path, &token).await;
        assert_eq!(page.body.as_array().unwrap().len(), 1, "{path}");
        seen.push(page.body[0]["user_id"].as_str().unwrap().to_owned());
        next = page.headers.get(users::NEXT_CURSOR).cloned();
    }
    let expected: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    assert_eq!(seen, expected);
}
