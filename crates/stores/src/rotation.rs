//! What becomes of a presented refresh token: one decision that every store makes the
//! same way, so that the in-memory and the DynamoDB store cannot disagree.

use std::time::Duration;

use uuid::Uuid;

use super::RefreshRecord;
use domain::refresh::TokenHash;

/// What a store does with a presented refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationStep {
    /// Unknown, expired, or of a revoked family: write nothing, answer
    /// [`Rotation::Refused`](super::Rotation::Refused).
    Refuse,
    /// Retired already, so presenting it is reuse: revoke `family` until `until`, answer
    /// [`Rotation::Reused`](super::Rotation::Reused).
    RevokeFamily { family: Uuid, until: i64 },
    /// Retire the presented token and store this successor, answer
    /// [`Rotation::Rotated`](super::Rotation::Rotated).
    Rotate(RefreshRecord),
    /// Retired less than the reuse interval ago, so presenting it again is a retried
    /// refresh whose answer was lost: leave it retired (and its earlier successors
    /// valid) and store this further successor in the same family, answer
    /// [`Rotation::Rotated`](super::Rotation::Rotated).
    Reissue(RefreshRecord),
}

/// Whether a token retired at `used_at` is presented again at `now` less than
/// `reuse_interval` later (whole epoch seconds; an interval of 0 never is, and neither
/// is a token retired without a recorded time).
pub fn within_reuse_interval(used_at: Option<i64>, now: i64, reuse_interval: Duration) -> bool {
    let interval = i64::try_from(reuse_interval.as_secs()).unwrap_or(i64::MAX);
    used_at.is_some_and(|at| now.saturating_sub(at) < interval)
}

/// The step for `presented` (the stored record of the presented token, if any) whose
/// family is revoked at `now` or not, given the successor's hash and expiry and the
/// reuse interval (`REFRESH_REUSE_INTERVAL_SECS`). Expiry is decided first,
/// then reuse, then the family: a token retired within the interval is reissued while
/// its family lives (and refused once it has ended); one retired longer ago still
/// revokes a family that is already revoked, for as long as its successor would have
/// lived.
pub fn rotation_step(
    presented: Option<&RefreshRecord>,
    family_revoked: bool,
    next: &TokenHash,
    next_expires_at: i64,
    now: i64,
    reuse_interval: Duration,
) -> RotationStep {
    let Some(old) = presented else {
        return RotationStep::Refuse;
    };
    if old.expires_at <= now {
        return RotationStep::Refuse;
    }
    let retried = old.used && within_reuse_interval(old.used_at, now, reuse_interval);
    if old.used && !retried {
        return RotationStep::RevokeFamily {
            family: old.family,
            until: next_expires_at,
        };
    }
    if family_revoked {
        return RotationStep::Refuse;
    }
    let successor = RefreshRecord {
        hash: next.clone(),
        expires_at: next_expires_at,
        used: false,
        used_at: None,
        ..old.clone()
    };
    if retried {
        RotationStep::Reissue(successor)
    } else {
        RotationStep::Rotate(successor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::refresh::RefreshSecret;

    const NOW: i64 = 1_700_000_000;
    const NEXT_EXPIRES: i64 = NOW + 7200;
    const INTERVAL: i64 = 10;

    #[test]
    fn each_state_of_a_presented_token_has_one_step() {
        let next = RefreshSecret::generate().hash();
        let stored = |expires_at: i64, used_at: Option<i64>| RefreshRecord {
            hash: RefreshSecret::generate().hash(),
            family: Uuid::from_u128(7),
            user_id: Uuid::from_u128(42),
            username: "alice".into(),
            expires_at,
            used: used_at.is_some(),
            used_at,
            generation: 0,
        };
        let live = stored(NOW + 1, None);
        let retired = stored(NOW + 1, Some(NOW - INTERVAL));
        let just_retired = stored(NOW + 1, Some(NOW - INTERVAL + 1));
        let retired_untimed = RefreshRecord {
            used: true,
            ..live.clone()
        };
        let expired_retired = stored(NOW - 1, Some(NOW - 2));
        let successor = RefreshRecord {
            hash: next.clone(),
            expires_at: NEXT_EXPIRES,
            used: false,
            used_at: None,
            ..live.clone()
        };
        let rotate = RotationStep::Rotate(successor.clone());
        let reissue = RotationStep::Reissue(successor);
        let reuse = RotationStep::RevokeFamily {
            family: Uuid::from_u128(7),
            until: NEXT_EXPIRES,
        };
        let refuse = RotationStep::Refuse;
        let table = [
            ("unknown", None, false, INTERVAL, &refuse),
            ("unknown, family revoked", None, true, INTERVAL, &refuse),
            ("live", Some(live.clone()), false, INTERVAL, &rotate),
            ("live, family revoked", Some(live), true, INTERVAL, &refuse),
            (
                "expires now",
                Some(stored(NOW, None)),
                false,
                INTERVAL,
                &refuse,
            ),
            (
                "expired",
                Some(stored(NOW - 1, None)),
                false,
                INTERVAL,
                &refuse,
            ),
            (
                "expired, retired",
                Some(expired_retired),
                false,
                INTERVAL,
                &refuse,
            ),
            ("retired", Some(retired.clone()), false, INTERVAL, &reuse),
            (
                "retired, family revoked",
                Some(retired),
                true,
                INTERVAL,
                &reuse,
            ),
            (
                "just retired",
                Some(just_retired.clone()),
                false,
                INTERVAL,
                &reissue,
            ),
            (
                "just retired, family revoked",
                Some(just_retired.clone()),
                true,
                INTERVAL,
                &refuse,
            ),
            (
                "just retired, no interval",
                Some(just_retired),
                false,
                0,
                &reuse,
            ),
            (
                "retired at no known time",
                Some(retired_untimed),
                false,
                INTERVAL,
                &reuse,
            ),
        ];
        for (case, presented, family_revoked, interval, expected) in table {
            assert_eq!(
                rotation_step(
                    presented.as_ref(),
                    family_revoked,
                    &next,
                    NEXT_EXPIRES,
                    NOW,
                    Duration::from_secs(interval.unsigned_abs())
                ),
                *expected,
                "{case}"
            );
        }
    }
}
