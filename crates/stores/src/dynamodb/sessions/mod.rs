//! Sessions, their refresh tokens (by hash) and users' states in the security table;
//! a login and a rotation are each one transaction, and the per-request check is one
//! `BatchGetItem` (the password change and the account deletion that end sessions are
//! in `cross_table`).

mod items;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, TransactWriteItem, Update,
};
use uuid::Uuid;

use super::accounts::DynamoAccountStore;
use super::attempts::DynamoLoginAttemptStore;
use super::conditions::{
    self, SESSION_LIVE, SESSION_OPEN, SESSION_OPEN_OF, TOKEN_UNUSED, TOKEN_USED, USER_ALLOWS,
    USER_ALLOWS_FIRST, VERIFIED,
};
use super::error::{Cancelled, conditional, get_consistent, sdk_error};
use super::item::{Item, number_attr, string_attr};
use super::retry::{self, Retry, transact_with_retry};
use super::transact::{self, put_new};
use crate::config::Tables;
use crate::rotation::{RotationStep, rotation_step};
use crate::session::{self, SessionFacts};
use crate::{
    Account, LiveSession, Liveness, RefreshRecord, Rotation, Session, SessionCheck, SessionStore,
    SessionUse, Settle, UserState,
};
use domain::refresh::TokenHash;
use errors::Error;
use items::{facts_from, refresh_from, refresh_item, session_from, session_item, user_state_from};

/// The global secondary index of the security table that lists a user's sessions:
/// partition key `session_user`, sort key `session_started`. A session leaves it when
/// it ends (`session_user` is removed).
pub const SESSIONS_INDEX: &str = "sessions-by-user";

/// How many times unprocessed keys of a `BatchGetItem` are asked for again.
const BATCH_ATTEMPTS: u32 = 4;

/// Sessions, refresh tokens and users' states in the security table keyed by `pk`,
/// each item expiring by TTL on `expires_at`; a login checks the accounts table.
#[derive(Clone)]
pub struct DynamoSessionStore {
    client: Client,
    security: String,
    accounts: String,
}

impl DynamoSessionStore {
    pub fn new(client: Client, tables: &Tables) -> Self {
        Self {
            client,
            security: tables.security.clone(),
            accounts: tables.accounts.clone(),
        }
    }

    /// [`pk::refresh`](super::pk::refresh).
    pub fn refresh_key(hash: &TokenHash) -> String {
        super::pk::refresh(hash)
    }

    /// [`pk::session`](super::pk::session).
    pub fn session_key(sid: Uuid) -> String {
        super::pk::session(sid)
    }

    /// [`pk::user`](super::pk::user): the user's marker.
    pub fn user_key(user_id: Uuid) -> String {
        super::pk::user(user_id)
    }

    /// The condition that the account copy at `pk` still has the hash the caller read.
    fn account_unchanged(&self, pk: String, account: &Account) -> Result<ConditionCheck, Error> {
        let [verified, uid] = conditions::verified_values(account);
        ConditionCheck::builder()
            .table_name(&self.accounts)
            .key("pk", string_attr(pk))
            .condition_expression(VERIFIED)
            .expression_attribute_values(verified.0, verified.1)
            .expression_attribute_values(uid.0, uid.1)
            .build()
            .map_err(Error::internal)
    }

    /// The items of a rotation transaction, in the order [`rotation_refusal`] reads
    /// their cancellation reasons: the presented token (retired now if `retire`, else
    /// checked to be retired already: a retried refresh), the session, the user's
    /// state, the successor.
    fn rotation(
        &self,
        presented: &TokenHash,
        next: &RefreshRecord,
        session_expires_at: i64,
        used: &SessionUse,
        retire: bool,
    ) -> Result<Vec<TransactWriteItem>, Error> {
        let presented_key = string_attr(Self::refresh_key(presented));
        let old = if retire {
            transact::update(
                Update::builder()
                    .table_name(&self.security)
                    .key("pk", presented_key)
                    .update_expression("SET #used = :true, used_at = :now")
                    .condition_expression(TOKEN_UNUSED)
                    .expression_attribute_names("#used", "used")
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .expression_attribute_values(":false", AttributeValue::Bool(false))
                    .expression_attribute_values(":now", number_attr(used.now))
                    .build()
                    .map_err(Error::internal)?,
            )
        } else {
            transact::check(
                ConditionCheck::builder()
                    .table_name(&self.security)
                    .key("pk", presented_key)
                    .condition_expression(TOKEN_USED)
                    .expression_attribute_names("#used", "used")
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .build()
                    .map_err(Error::internal)?,
            )
        };
        let mut set = vec!["last_used = :now", "expires_at = :exp"];
        let mut remove = Vec::new();
        let mut touch = Update::builder()
            .table_name(&self.security)
            .key("pk", string_attr(Self::session_key(next.family)))
            .condition_expression(SESSION_LIVE)
            .expression_attribute_values(":now", number_attr(used.now))
            .expression_attribute_values(":exp", number_attr(session_expires_at))
            .expression_attribute_values(":uid", string_attr(next.user_id.to_string()));
        match &used.ip {
            Some(ip) => {
                set.push("ip = :ip");
                touch = touch.expression_attribute_values(":ip", string_attr(ip));
            }
            None => remove.push("ip"),
        }
        match &used.user_agent {
            Some(ua) => {
                set.push("user_agent = :ua");
                touch = touch.expression_attribute_values(":ua", string_attr(ua));
            }
            None => remove.push("user_agent"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let touch = touch
            .update_expression(expression)
            .build()
            .map_err(Error::internal)?;
        Ok(vec![
            old,
            transact::update(touch),
            transact::check(user_allows(
                &self.security,
                next.user_id,
                next.family,
                next.generation,
            )?),
            put_new(&self.security, refresh_item(next))?,
        ])
    }

    /// Carries out a step that stores no successor.
    async fn conclude(&self, step: RotationStep, now: i64) -> Result<Rotation, Error> {
        match step {
            RotationStep::Refuse => Ok(Rotation::Refused),
            RotationStep::RevokeFamily { family, .. } => {
                self.end(family, None, now).await?;
                Ok(Rotation::Reused { family })
            }
            RotationStep::Rotate(_) | RotationStep::Reissue(_) => Err(Error::internal(
                "DynamoDB TransactWriteItems (refresh): cancelled without a failed condition",
            )),
        }
    }

    /// Marks session `sid` ended and takes it out of the listing index, if it exists,
    /// (belongs to `user_id`) and has not ended; whether it did.
    async fn end(&self, sid: Uuid, user_id: Option<Uuid>, now: i64) -> Result<bool, Error> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.security)
            .key("pk", string_attr(Self::session_key(sid)))
            .update_expression("SET ended_at = :now REMOVE session_user")
            .expression_attribute_values(":now", number_attr(now));
        let mut condition = SESSION_OPEN;
        if let Some(user_id) = user_id {
            condition = SESSION_OPEN_OF;
            update = update.expression_attribute_values(":uid", string_attr(user_id.to_string()));
        }
        let sent = update.condition_expression(condition).send().await;
        Ok(conditional("UpdateItem", sent)?.is_some())
    }

    /// Sends `items` as one transaction, again while it loses races to other
    /// transactions; the cancellation reasons when a condition failed.
    async fn transact(
        &self,
        what: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Cancelled>, Error> {
        transact_with_retry(&self.client, what, items).await
    }

    /// The user's state, by a consistent read.
    async fn user_state(&self, user_id: Uuid) -> Result<Option<UserState>, Error> {
        let item = get_consistent(
            &self.client,
            &self.security,
            ("pk", string_attr(Self::user_key(user_id))),
        )
        .await?;
        item.as_ref().map(user_state_from).transpose()
    }
}

/// The condition on `security`'s `USER#<user_id>` that the user's state still lets a
/// session `sid` of generation `generation` (or the session kept by the last password change)
/// live.
pub(super) fn user_allows(
    security: &str,
    user_id: Uuid,
    sid: Uuid,
    generation: u64,
) -> Result<ConditionCheck, Error> {
    let expression = if generation == 0 {
        USER_ALLOWS_FIRST
    } else {
        USER_ALLOWS
    };
    ConditionCheck::builder()
        .table_name(security)
        .key("pk", string_attr(DynamoSessionStore::user_key(user_id)))
        .condition_expression(expression)
        .expression_attribute_values(":gen", number_attr(generation as i64))
        .expression_attribute_values(":sid", string_attr(sid.to_string()))
        .build()
        .map_err(Error::internal)
}

/// Why a rotation transaction did not commit: what its conditions taught.
fn rotation_refusal(cancelled: &Cancelled) -> (bool, bool) {
    (
        cancelled.failed(0),
        cancelled.failed(1) || cancelled.failed(2),
    )
}

#[async_trait]
impl SessionCheck for DynamoSessionStore {
    /// One consistent `BatchGetItem` of `SESSION#<sid>` and `USER#<user_id>` (asked
    /// again for keys DynamoDB leaves unprocessed).
    async fn check_session(
        &self,
        user_id: Uuid,
        sid: Uuid,
        now: i64,
    ) -> Result<Result<LiveSession, Liveness>, Error> {
        let session_pk = Self::session_key(sid);
        let user_pk = Self::user_key(user_id);
        let keys = |pks: &[&str]| {
            KeysAndAttributes::builder()
                .set_keys(Some(
                    pks.iter()
                        .map(|pk| HashMap::from([("pk".to_owned(), string_attr(*pk))]))
                        .collect(),
                ))
                .consistent_read(true)
                .build()
                .map_err(Error::internal)
        };
        let mut request = HashMap::from([(self.security.clone(), keys(&[&session_pk, &user_pk])?)]);
        let mut found: Vec<Item> = Vec::new();
        for attempt in 1..=BATCH_ATTEMPTS {
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(request))
                .send()
                .await
                .map_err(|e| sdk_error("BatchGetItem", e))?;
            if let Some(items) = out.responses().and_then(|r| r.get(&self.security)) {
                found.extend(items.iter().cloned());
            }
            match out.unprocessed_keys() {
                Some(left) if !left.is_empty() => {
                    if attempt == BATCH_ATTEMPTS {
                        return Err(Error::unavailable(
                            "DynamoDB BatchGetItem: keys still unprocessed after retries",
                        ));
                    }
                    request = left.clone();
                    tokio::time::sleep(retry::pause(attempt)).await;
                }
                _ => break,
            }
        }
        let pk_of = |item: &Item| match item.get("pk") {
            Some(AttributeValue::S(pk)) => Some(pk.clone()),
            _ => None,
        };
        let session = found
            .iter()
            .find(|i| pk_of(i).as_deref() == Some(session_pk.as_str()))
            .map(facts_from)
            .transpose()?;
        let user = found
            .iter()
            .find(|i| pk_of(i).as_deref() == Some(user_pk.as_str()))
            .map(user_state_from)
            .transpose()?;
        Ok(session::check(
            sid,
            user_id,
            session.as_ref(),
            user.as_ref(),
            now,
        ))
    }
}

#[async_trait]
impl SessionStore for DynamoSessionStore {
    /// One `TransactWriteItems`: the account's username copy still has the verified
    /// hash, the session is put, its first refresh token is put.
    /// One `TransactWriteItems`: the account check, the session and its first refresh
    /// token, and the login's [`Settle`]ment of its attempt counters (a delete of the
    /// username's, an unconditional `ADD -1` on the address's), so a login costs no
    /// separate calls for them. The release carries no condition, which would cancel
    /// the login with it: an address counter gone meanwhile (TTL) comes back expired
    /// (`expires_at` = now), and the next count starts a new window over it.
    async fn start_login(
        &self,
        account: &Account,
        session: &Session,
        first: &RefreshRecord,
        settle: &Settle,
    ) -> Result<bool, Error> {
        let mut items =
            vec![
                transact::check(self.account_unchanged(
                    DynamoAccountStore::username_key(&account.username),
                    account,
                )?),
                put_new(&self.security, session_item(session))?,
                put_new(&self.security, refresh_item(first))?,
            ];
        if let Some(key) = &settle.clear {
            let delete = Delete::builder()
                .table_name(&self.security)
                .key("pk", string_attr(DynamoLoginAttemptStore::attempt_key(key)))
                .build()
                .map_err(Error::internal)?;
            items.push(transact::delete(delete));
        }
        if let Some(key) = &settle.release {
            let release = Update::builder()
                .table_name(&self.security)
                .key("pk", string_attr(DynamoLoginAttemptStore::attempt_key(key)))
                .update_expression(
                    "ADD #attempts :minus_one SET expires_at = if_not_exists(expires_at, :now)",
                )
                .expression_attribute_names("#attempts", "attempts")
                .expression_attribute_values(":minus_one", number_attr(-1))
                .expression_attribute_values(":now", number_attr(settle.now))
                .build()
                .map_err(Error::internal)?;
            items.push(transact::update(release));
        }
        match self.transact("login", items).await? {
            None => Ok(true),
            Some(cancelled) if cancelled.failed(0) => Ok(false),
            Some(_) => Err(Error::internal(
                "session id or refresh token hash collision",
            )),
        }
    }

    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, Error> {
        let item = get_consistent(
            &self.client,
            &self.security,
            ("pk", string_attr(Self::refresh_key(hash))),
        )
        .await?;
        item.as_ref()
            .map(|item| refresh_from(hash, item))
            .transpose()
    }

    /// One consistent `GetItem` of the presented token, then one `TransactWriteItems`
    /// that retires it (if still unused; or checks that it is retired, for a refresh
    /// retried within the reuse interval), marks its session used (if still live),
    /// checks that the user's state still lets the session live, and puts the
    /// successor. The conditions that cancel the transaction are what the read could
    /// not know, and the step is decided again with them. A transaction lost to a
    /// concurrent one, or to a concurrent refresh that retired the token first, is
    /// retried from the read (which then sees when the token was retired).
    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        next: &TokenHash,
        next_expires_at: i64,
        session_expires_at: i64,
        used: &SessionUse,
        reuse_interval: Duration,
    ) -> Result<Rotation, Error> {
        let now = used.now;
        let step = |record: Option<&RefreshRecord>, ended: bool| {
            rotation_step(record, ended, next, next_expires_at, now, reuse_interval)
        };
        let mut retry = Retry::new();
        loop {
            let old = self.find_refresh(presented).await?;
            let (successor, retire) = match step(old.as_ref(), false) {
                RotationStep::Rotate(successor) => (successor, true),
                RotationStep::Reissue(successor) => (successor, false),
                other => return self.conclude(other, now).await,
            };
            let call = self
                .client
                .transact_write_items()
                .set_transact_items(Some(self.rotation(
                    presented,
                    &successor,
                    session_expires_at,
                    used,
                    retire,
                )?))
                .send();
            let Err(err) = retry.bounded("TransactWriteItems (refresh)", call).await? else {
                return Ok(Rotation::Rotated(successor));
            };
            let cancelled = Cancelled::of(err)?;
            let (retired, ended) = rotation_refusal(&cancelled);
            let known = old.map(|o| RefreshRecord {
                used: o.used || retired,
                used_at: o.used_at.or(retired.then_some(now)),
                ..o
            });
            if ended {
                return self.conclude(step(known.as_ref(), ended), now).await;
            } else if retired {
                match step(known.as_ref(), false) {
                    RotationStep::Reissue(_) => {
                        retry.again_at_once("a concurrent refresh retired the token".into())?
                    }
                    other => return self.conclude(other, now).await,
                }
            } else {
                retry.again(cancelled.otherwise("refresh")?).await?;
            }
        }
    }

    /// A `Query` of the listing index (newest first, a page at a time) and a
    /// consistent `GetItem` of the user's state; sessions that a password change ended
    /// are left out.
    async fn list_sessions(
        &self,
        user_id: Uuid,
        limit: usize,
        now: i64,
    ) -> Result<Vec<Session>, Error> {
        let user = self.user_state(user_id).await?;
        let mut live = Vec::new();
        let mut start = None;
        for _ in 0..8 {
            let out = self
                .client
                .query()
                .table_name(&self.security)
                .index_name(SESSIONS_INDEX)
                .key_condition_expression("session_user = :uid")
                .expression_attribute_values(":uid", string_attr(user_id.to_string()))
                .scan_index_forward(false)
                .limit(i32::try_from(limit.clamp(1, 100)).unwrap_or(100))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in out.items() {
                let session = session_from(item)?;
                let facts = SessionFacts {
                    user_id: session.user_id,
                    generation: session.generation,
                    expires_at: session.expires_at,
                    ended: session.ended_at.is_some(),
                };
                let verdict =
                    session::liveness(session.id, user_id, Some(&facts), user.as_ref(), now);
                if verdict == Liveness::Live && live.len() < limit {
                    live.push(session);
                }
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() || live.len() >= limit {
                break;
            }
        }
        Ok(live)
    }

    async fn end_session(&self, user_id: Option<Uuid>, sid: Uuid, now: i64) -> Result<bool, Error> {
        if let Some(user_id) = user_id
            && self.liveness(user_id, sid, now).await? != Liveness::Live
        {
            return Ok(false);
        }
        self.end(sid, user_id, now).await
    }
}
