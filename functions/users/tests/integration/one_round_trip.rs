//! `GET /users/{id}` looks up the token's session and reads the profile at the same
//! time: stores that each wait until the other lookup has started answer only when
//! both are in flight together; done one after the other they would never answer.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use tokio::sync::Barrier;
use uuid::Uuid;

use errors::Error;
use stores::memory::{MemoryProfileStore, MemorySessionStore};
use stores::{
    Cursor, LiveSession, Liveness, Page, Profile, ProfilePatch, ProfileStore, SessionCheck,
    WriteGuard,
};
use users::{AppState, Authenticator};

use crate::support::{ALICE, app};

/// Lookups that each wait at `meet` for the other before answering as `inner` does.
struct Rendezvous<T> {
    inner: Arc<T>,
    meet: Arc<Barrier>,
}

impl<T> Rendezvous<T> {
    async fn meet(&self) {
        tokio::time::timeout(Duration::from_secs(5), self.meet.wait())
            .await
            .expect("the session lookup and the profile read are in flight together");
    }
}

#[async_trait]
impl SessionCheck for Rendezvous<MemorySessionStore> {
    async fn check_session(
        &self,
        user_id: Uuid,
        sid: Uuid,
        now: i64,
    ) -> Result<Result<LiveSession, Liveness>, Error> {
        self.meet().await;
        self.inner.check_session(user_id, sid, now).await
    }
}

#[async_trait]
impl ProfileStore for Rendezvous<MemoryProfileStore> {
    async fn create(&self, profile: &Profile, guard: &WriteGuard) -> Result<(), Error> {
        self.inner.create(profile, guard).await
    }

    async fn get(&self, user_id: Uuid) -> Result<Option<Profile>, Error> {
        self.meet().await;
        self.inner.get(user_id).await
    }

    async fn update(
        &self,
        user_id: Uuid,
        patch: &ProfilePatch,
        guard: &WriteGuard,
    ) -> Result<(), Error> {
        self.inner.update(user_id, patch, guard).await
    }

    async fn delete(&self, user_id: Uuid) -> Result<(), Error> {
        self.inner.delete(user_id).await
    }

    async fn list(&self, limit: usize, after: Option<Cursor>) -> Result<Page<Profile>, Error> {
        self.inner.list(limit, after).await
    }
}

#[tokio::test]
async fn a_read_looks_up_the_session_and_the_profile_at_once() {
    let plain = app();
    plain.create(ALICE, "alice").await;
    let token = plain.token(ALICE, "alice");
    let meet = Arc::new(Barrier::new(2));
    let profiles = Arc::new(Rendezvous {
        inner: plain.store.clone(),
        meet: meet.clone(),
    });
    let checks = Arc::new(Rendezvous {
        inner: plain.sessions.clone(),
        meet,
    });
    let router = users::router(AppState::new(
        profiles,
        Authenticator::local(plain.tokens.clone(), checks),
    ));
    let reply = testkit::send(
        &router,
        axum::http::Request::builder()
            .method(Method::GET)
            .uri(format!("/users/{ALICE}"))
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["username"], "alice");
}
