//! Whether a session is live: one decision that every store and every reader makes the
//! same way, so that the in-memory and the DynamoDB store cannot disagree.

use uuid::Uuid;

use super::{LiveSession, Liveness, UserState};

/// What a reader knows of a session record: enough to decide, nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFacts {
    pub user_id: Uuid,
    pub generation: u64,
    pub expires_at: i64,
    pub ended: bool,
}

/// The liveness of session `sid`, presented as belonging to `user_id`, given its record
/// (if any) and its user's state (if any) at `now`. A deleted user comes first; then a
/// session must exist, belong to the user, not have ended or expired, and either have
/// started under the user's current password or be the session that changed it.
pub fn liveness(
    sid: Uuid,
    user_id: Uuid,
    session: Option<&SessionFacts>,
    user: Option<&UserState>,
    now: i64,
) -> Liveness {
    let default = UserState::default();
    let user = user.unwrap_or(&default);
    if user.deleted_at.is_some() {
        return Liveness::UserDeleted;
    }
    let Some(session) = session else {
        return Liveness::Ended;
    };
    let current = session.generation == user.generation || user.kept == Some(sid);
    if session.user_id != user_id || session.ended || session.expires_at <= now || !current {
        return Liveness::Ended;
    }
    Liveness::Live
}

/// [`liveness`], with the session as found when it is live: what a write on its behalf
/// must still find.
pub fn check(
    sid: Uuid,
    user_id: Uuid,
    session: Option<&SessionFacts>,
    user: Option<&UserState>,
    now: i64,
) -> Result<LiveSession, Liveness> {
    match (liveness(sid, user_id, session, user, now), session) {
        (Liveness::Live, Some(session)) => Ok(LiveSession {
            sid,
            generation: session.generation,
        }),
        (Liveness::Live, None) => Err(Liveness::Ended),
        (refused, _) => Err(refused),
    }
}

/// The longer of two lifetimes from `now`, in epoch seconds: how long a session or a
/// deletion marker must refuse tokens that may still be alive.
pub fn until_both_expire(now: i64, a: std::time::Duration, b: std::time::Duration) -> i64 {
    let secs = a.max(b).as_secs();
    now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn each_state_of_a_session_and_its_user_has_one_answer() {
        let sid = Uuid::from_u128(1);
        let uid = Uuid::from_u128(2);
        let live = SessionFacts {
            user_id: uid,
            generation: 0,
            expires_at: NOW + 1,
            ended: false,
        };
        let changed = |kept: Option<Uuid>| UserState {
            generation: 1,
            kept,
            deleted_at: None,
        };
        let deleted = UserState {
            deleted_at: Some(NOW - 5),
            ..UserState::default()
        };
        let cases: &[(&str, Option<SessionFacts>, Option<UserState>, Liveness)] = &[
            ("live, no user record", Some(live), None, Liveness::Live),
            ("unknown", None, None, Liveness::Ended),
            (
                "ended",
                Some(SessionFacts {
                    ended: true,
                    ..live
                }),
                None,
                Liveness::Ended,
            ),
            (
                "expires now",
                Some(SessionFacts {
                    expires_at: NOW,
                    ..live
                }),
                None,
                Liveness::Ended,
            ),
            (
                "another user's",
                Some(SessionFacts {
                    user_id: Uuid::from_u128(3),
                    ..live
                }),
                None,
                Liveness::Ended,
            ),
            (
                "password changed elsewhere",
                Some(live),
                Some(changed(Some(Uuid::from_u128(9)))),
                Liveness::Ended,
            ),
            (
                "password changed in it",
                Some(live),
                Some(changed(Some(sid))),
                Liveness::Live,
            ),
            (
                "started after the change",
                Some(SessionFacts {
                    generation: 1,
                    ..live
                }),
                Some(changed(None)),
                Liveness::Live,
            ),
            (
                "user deleted",
                Some(live),
                Some(deleted.clone()),
                Liveness::UserDeleted,
            ),
            (
                "user deleted, no session",
                None,
                Some(deleted),
                Liveness::UserDeleted,
            ),
        ];
        for (case, session, user, expected) in cases {
            assert_eq!(
                liveness(sid, uid, session.as_ref(), user.as_ref(), NOW),
                *expected,
                "{case}"
            );
        }
    }

    #[test]
    fn the_longer_lifetime_wins() {
        use std::time::Duration;
        let h = Duration::from_secs(3600);
        assert_eq!(until_both_expire(NOW, h, 2 * h), NOW + 7200);
        assert_eq!(until_both_expire(NOW, 3 * h, h), NOW + 10800);
        assert_eq!(until_both_expire(NOW, Duration::MAX, h), i64::MAX);
    }
}
