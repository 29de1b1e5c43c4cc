//! What becomes of a presented refresh token: one decision that every store makes the
//! same way, so that the in-memory and the DynamoDB store cannot disagree.

use uuid::Uuid;

use super::RefreshRecord;
use crate::refresh::TokenHash;

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
}

/// The step for `presented` (the stored record of the presented token, if any) whose
/// family is revoked at `now` or not, given the successor's hash and expiry. Expiry is
/// decided first, then reuse, then the family: a retired token still revokes a family
/// that is already revoked, for as long as its successor would have lived.
pub fn rotation_step(
    presented: Option<&RefreshRecord>,
    family_revoked: bool,
    next: &TokenHash,
    next_expires_at: i64,
    now: i64,
) -> RotationStep {
    let Some(old) = presented else {
        return RotationStep::Refuse;
    };
    if old.expires_at <= now {
        return RotationStep::Refuse;
    }
    if old.used {
        return RotationStep::RevokeFamily {
            family: old.family,
            until: next_expires_at,
        };
    }
    if family_revoked {
        return RotationStep::Refuse;
    }
    RotationStep::Rotate(RefreshRecord {
        hash: next.clone(),
        expires_at: next_expires_at,
        used: false,
        ..old.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refresh::RefreshSecret;

    const NOW: i64 = 1_700_000_000;
    const NEXT_EXPIRES: i64 = NOW + 7200;

    #[test]
    fn each_state_of_a_presented_token_has_one_step() {
        let next = RefreshSecret::generate().hash();
        let stored = |expires_at: i64, used: bool| RefreshRecord {
            hash: RefreshSecret::generate().hash(),
            family: Uuid::from_u128(7),
            user_id: Uuid::from_u128(42),
            username: "alice".into(),
            expires_at,
            used,
            gen: 0,
        };
        let live = stored(NOW + 1, false);
        let retired = stored(NOW + 1, true);
        let expired_retired = stored(NOW - 1, true);
        let successor = RefreshRecord {
            hash: next.clone(),
            expires_at: NEXT_EXPIRES,
            used: false,
            ..live.clone()
        };
        let rotate = RotationStep::Rotate(successor);
        let reuse = RotationStep::RevokeFamily {
            family: Uuid::from_u128(7),
            until: NEXT_EXPIRES,
        };
        let refuse = RotationStep::Refuse;
        let table = [
            ("unknown", None, false, &refuse),
            ("unknown, family revoked", None, true, &refuse),
            ("live", Some(live.clone()), false, &rotate),
            ("live, family revoked", Some(live), true, &refuse),
            ("expires now", Some(stored(NOW, false)), false, &refuse),
            ("expired", Some(stored(NOW - 1, false)), false, &refuse),
            ("expired, retired", Some(expired_retired), false, &refuse),
            ("retired", Some(retired.clone()), false, &reuse),
            ("retired, family revoked", Some(retired), true, &reuse),
        ];
        for (case, presented, family_revoked, expected) in table {
            assert_eq!(
                rotation_step(presented.as_ref(), family_revoked, &next, NEXT_EXPIRES, NOW),
                *expected,
                "{case}"
            );
        }
    }
}
