//! Sessions, their refresh tokens (by hash) and users' states in the security table;
//! a login, a rotation, a password change and an account deletion are each one
//! transaction, and the per-request check is one `BatchGetItem`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};
use uuid::Uuid;

use super::accounts::DynamoAccountStore;
use super::attempts::DynamoLoginAttemptStore;
use super::error::{Cancelled, conditional, get_consistent, sdk_error};
use super::item::{Fields, Item, number_attr, string_attr};
use super::retry::{self, Retry, transact_with_retry};
use crate::config::Tables;
use crate::rotation::{RotationStep, rotation_step};
use crate::session::{self, SessionFacts};
use crate::{
    Account, LiveSession, Liveness, RefreshRecord, Rotation, Session, SessionCheck, SessionStore,
    SessionUse, Settle, UserState,
};
use domain::refresh::TokenHash;
use errors::Error;

/// The global secondary index of the security table that lists a user's sessions:
/// partition key `session_user`, sort key `session_started`. A session leaves it when
/// it ends (`session_user` is removed).
pub const SESSIONS_INDEX: &str = "sessions-by-user";

/// How many times unprocessed keys of a `BatchGetItem` are asked for again.
const BATCH_ATTEMPTS: u32 = 4;

/// Sessions, refresh tokens and users' states in the security table keyed by `pk`,
/// each item expiring by TTL on `expires_at`; a login checks, and a password change and
/// a deletion write, the accounts table, and a deletion removes the profile.
#[derive(Clone)]
pub struct DynamoSessionStore {
    client: Client,
    security: String,
    accounts: String,
    profiles: String,
}

impl DynamoSessionStore {
    pub fn new(client: Client, tables: &Tables) -> Self {
        Self {
            client,
            security: tables.security.clone(),
            accounts: tables.accounts.clone(),
            profiles: tables.profiles.clone(),
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
        ConditionCheck::builder()
            .table_name(&self.accounts)
            .key("pk", string_attr(pk))
            .condition_expression("password_hash = :verified AND user_id = :uid")
            .expression_attribute_values(":verified", string_attr(&account.password_hash))
            .expression_attribute_values(":uid", string_attr(account.user_id.to_string()))
            .build()
            .map_err(Error::internal)
    }

    /// The condition that the user's state still lets a session of generation `generation`
    /// (or the session kept by the last password change) live.
    fn user_allows(
        &self,
        user_id: Uuid,
        sid: Uuid,
        generation: u64,
    ) -> Result<ConditionCheck, Error> {
        user_allows(&self.security, user_id, sid, generation)
    }

    fn put_new(&self, table: &str, item: Item) -> Result<TransactWriteItem, Error> {
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(Error::internal)?;
        Ok(item_put(put))
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
            item_update(
                Update::builder()
                    .table_name(&self.security)
                    .key("pk", presented_key)
                    .update_expression("SET #used = :true, used_at = :now")
                    .condition_expression("#used = :false")
                    .expression_attribute_names("#used", "used")
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .expression_attribute_values(":false", AttributeValue::Bool(false))
                    .expression_attribute_values(":now", number_attr(used.now))
                    .build()
                    .map_err(Error::internal)?,
            )
        } else {
            item_check(
                ConditionCheck::builder()
                    .table_name(&self.security)
                    .key("pk", presented_key)
                    .condition_expression("#used = :true")
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
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(ended_at) AND user_id = :uid \
                 AND expires_at > :now",
            )
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
            item_update(touch),
            item_check(self.user_allows(next.user_id, next.family, next.generation)?),
            self.put_new(&self.security, refresh_item(next))?,
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
        let mut condition = "attribute_exists(pk) AND attribute_not_exists(ended_at)".to_owned();
        if let Some(user_id) = user_id {
            condition.push_str(" AND user_id = :uid");
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
    let current = "(attribute_not_exists(deleted_at) AND (gen = :gen OR kept = :sid))";
    let expression = if generation == 0 {
        format!("attribute_not_exists(pk) OR {current}")
    } else {
        current.to_owned()
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

fn item_put(put: Put) -> TransactWriteItem {
    TransactWriteItem::builder().put(put).build()
}

fn item_update(update: Update) -> TransactWriteItem {
    TransactWriteItem::builder().update(update).build()
}

fn item_check(check: ConditionCheck) -> TransactWriteItem {
    TransactWriteItem::builder().condition_check(check).build()
}

fn item_delete(delete: Delete) -> TransactWriteItem {
    TransactWriteItem::builder().delete(delete).build()
}

fn refresh_item(record: &RefreshRecord) -> Item {
    let mut item = Item::from([
        (
            "pk".into(),
            string_attr(DynamoSessionStore::refresh_key(&record.hash)),
        ),
        ("family".into(), string_attr(record.family.to_string())),
        ("user_id".into(), string_attr(record.user_id.to_string())),
        ("username".into(), string_attr(&record.username)),
        ("expires_at".into(), number_attr(record.expires_at)),
        ("used".into(), AttributeValue::Bool(record.used)),
        ("gen".into(), number_attr(record.generation as i64)),
    ]);
    if let Some(at) = record.used_at {
        item.insert("used_at".into(), number_attr(at));
    }
    item
}

fn refresh_from(hash: &TokenHash, item: &Item) -> Result<RefreshRecord, Error> {
    let f = Fields {
        item,
        what: "refresh token",
    };
    Ok(RefreshRecord {
        hash: hash.clone(),
        family: f.uuid("family")?,
        user_id: f.uuid("user_id")?,
        username: f.text("username")?.to_owned(),
        expires_at: f.number("expires_at")?,
        used: f.flag("used")?,
        used_at: f.optional_number("used_at")?,
        generation: f.generation("gen")?,
    })
}

fn session_item(session: &Session) -> Item {
    let mut item = Item::from([
        (
            "pk".into(),
            string_attr(DynamoSessionStore::session_key(session.id)),
        ),
        ("user_id".into(), string_attr(session.user_id.to_string())),
        ("username".into(), string_attr(&session.username)),
        ("started".into(), number_attr(session.started)),
        ("last_used".into(), number_attr(session.last_used)),
        ("gen".into(), number_attr(session.generation as i64)),
        ("expires_at".into(), number_attr(session.expires_at)),
        (
            "session_user".into(),
            string_attr(session.user_id.to_string()),
        ),
        ("session_started".into(), number_attr(session.started)),
    ]);
    if let Some(ip) = &session.ip {
        item.insert("ip".into(), string_attr(ip));
    }
    if let Some(ua) = &session.user_agent {
        item.insert("user_agent".into(), string_attr(ua));
    }
    item
}

fn session_from(item: &Item) -> Result<Session, Error> {
    let f = Fields {
        item,
        what: "session",
    };
    let pk = f.text("pk")?;
    let id = super::pk::session_id(pk).ok_or_else(|| f.bad("pk", "is not a session key"))?;
    Ok(Session {
        id,
        user_id: f.uuid("user_id")?,
        username: f.text("username")?.to_owned(),
        started: f.number("started")?,
        last_used: f.number("last_used")?,
        ip: f.optional_text("ip")?.map(str::to_owned),
        user_agent: f.optional_text("user_agent")?.map(str::to_owned),
        generation: f.generation("gen")?,
        expires_at: f.number("expires_at")?,
        ended_at: f.optional_number("ended_at")?,
    })
}

fn facts_from(item: &Item) -> Result<SessionFacts, Error> {
    let f = Fields {
        item,
        what: "session",
    };
    Ok(SessionFacts {
        user_id: f.uuid("user_id")?,
        generation: f.generation("gen")?,
        expires_at: f.number("expires_at")?,
        ended: item.contains_key("ended_at"),
    })
}

fn user_state_from(item: &Item) -> Result<UserState, Error> {
    let f = Fields {
        item,
        what: "user state",
    };
    Ok(UserState {
        generation: f.generation("gen")?,
        kept: f
            .optional_text("kept")?
            .map(|k| Uuid::parse_str(k).map_err(|_| f.bad("kept", "is not a UUID")))
            .transpose()?,
        deleted_at: f.optional_number("deleted_at")?,
    })
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
                item_check(self.account_unchanged(
                    DynamoAccountStore::username_key(&account.username),
                    account,
                )?),
                self.put_new(&self.security, session_item(session))?,
                self.put_new(&self.security, refresh_item(first))?,
            ];
        if let Some(key) = &settle.clear {
            let delete = Delete::builder()
                .table_name(&self.security)
                .key("pk", string_attr(DynamoLoginAttemptStore::attempt_key(key)))
                .build()
                .map_err(Error::internal)?;
            items.push(item_delete(delete));
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
            items.push(item_update(release));
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

    /// One `TransactWriteItems`: both copies of the account get the new hash and the
    /// next generation if they still have the verified hash, and the user's state
    /// records that generation and the kept session.
    async fn change_password(
        &self,
        account: &Account,
        new_hash: &str,
        keep: Uuid,
    ) -> Result<bool, Error> {
        let generation = number_attr(account.generation as i64 + 1);
        let update = |pk: String| {
            Update::builder()
                .table_name(&self.accounts)
                .key("pk", string_attr(pk))
                .update_expression("SET password_hash = :new, gen = :gen")
                .condition_expression("password_hash = :verified AND user_id = :uid")
                .expression_attribute_values(":new", string_attr(new_hash))
                .expression_attribute_values(":gen", generation.clone())
                .expression_attribute_values(":verified", string_attr(&account.password_hash))
                .expression_attribute_values(":uid", string_attr(account.user_id.to_string()))
                .build()
                .map_err(Error::internal)
        };
        let state = Put::builder()
            .table_name(&self.security)
            .item("pk", string_attr(Self::user_key(account.user_id)))
            .item("gen", generation.clone())
            .item("kept", string_attr(keep.to_string()))
            .condition_expression("attribute_not_exists(deleted_at)")
            .build()
            .map_err(Error::internal)?;
        let items = vec![
            item_update(update(DynamoAccountStore::user_key(account.user_id))?),
            item_update(update(DynamoAccountStore::username_key(&account.username))?),
            item_put(state),
        ];
        Ok(self.transact("password", items).await?.is_none())
    }

    /// One `TransactWriteItems` across the three tables: the account and its username
    /// claim (if they still have the verified hash), the email claim (if still the
    /// user's), the profile, and the user's deletion marker.
    async fn delete_account(&self, account: &Account, until: i64, now: i64) -> Result<bool, Error> {
        let uid = string_attr(account.user_id.to_string());
        let delete = |table: &str, key: (&str, AttributeValue), condition: Option<&str>| {
            let mut d = Delete::builder().table_name(table).key(key.0, key.1);
            if let Some(condition) = condition {
                d = d
                    .condition_expression(condition)
                    .expression_attribute_values(":uid", uid.clone());
                if condition.contains(":verified") {
                    d = d.expression_attribute_values(
                        ":verified",
                        string_attr(&account.password_hash),
                    );
                }
            }
            d.build().map_err(Error::internal)
        };
        let verified = Some("password_hash = :verified AND user_id = :uid");
        let marker = Put::builder()
            .table_name(&self.security)
            .item("pk", string_attr(Self::user_key(account.user_id)))
            .item("gen", number_attr(account.generation as i64))
            .item("deleted_at", number_attr(now))
            .item("expires_at", number_attr(until))
            .build()
            .map_err(Error::internal)?;
        let items = vec![
            item_delete(delete(
                &self.accounts,
                (
                    "pk",
                    string_attr(DynamoAccountStore::user_key(account.user_id)),
                ),
                verified,
            )?),
            item_delete(delete(
                &self.accounts,
                (
                    "pk",
                    string_attr(DynamoAccountStore::username_key(&account.username)),
                ),
                verified,
            )?),
            item_delete(delete(
                &self.accounts,
                (
                    "pk",
                    string_attr(DynamoAccountStore::email_key(&account.email)),
                ),
                Some("user_id = :uid"),
            )?),
            item_delete(delete(&self.profiles, ("user_id", uid.clone()), None)?),
            item_put(marker),
        ];
        Ok(self.transact("delete account", items).await?.is_none())
    }
}
