//! DynamoDB stores (feature `dynamodb`): accounts guarded by claim items written in one
//! transaction, profiles by conditional writes, refresh tokens rotated in one transaction
//! and attempt counters kept by atomic `ADD`. Keys and calls are in `TABLES.md`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use uuid::Uuid;

use super::{
    Account, AccountStore, AttemptKey, Attempts, Cursor, Page, Profile, ProfilePatch, ProfileStore,
    RefreshRecord, Rotation, SecurityStore,
};
use crate::domain::{Email, Username};
use crate::refresh::TokenHash;
use crate::{Config, Error};

type Item = HashMap<String, AttributeValue>;

/// Service error codes that mean "try again later", not "you asked for something wrong".
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
];

/// Cancellation reasons of a transaction that mean the same.
const TRANSIENT_REASONS: &[&str] = &[
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
    "TransactionConflict",
];

/// How often a registration is retried when it collides with another transaction.
const CONFLICT_ATTEMPTS: u32 = 5;

/// The one DynamoDB client of a process: region from `AWS_REGION`/`AWS_DEFAULT_REGION`
/// (else us-east-1), `DYNAMODB_ENDPOINT` as endpoint override, connect timeout from
/// `CONNECT_TIMEOUT_MS`, every call (retries included) bounded by `REQUEST_TIMEOUT_MS`.
/// Builds without I/O; credentials are resolved on first use. A local endpoint without
/// `AWS_ACCESS_KEY_ID` gets placeholder credentials, which emulators accept.
pub async fn client(config: &Config) -> Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(config.connect_timeout)
        .operation_attempt_timeout(config.request_timeout)
        .operation_timeout(config.request_timeout)
        .build();
    let retries = RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(1));
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(Region::from_static("us-east-1"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .timeout_config(timeouts)
        .retry_config(retries);
    if let Some(endpoint) = &config.dynamodb_endpoint {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader
                .credentials_provider(Credentials::new("local", "local", None, None, "local"));
        }
    }
    Client::new(&loader.load().await)
}

/// Maps an SDK failure to the client-facing error; the SDK's words stay in the cause.
fn sdk_error<E>(operation: &str, err: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(ctx) => {
            ctx.raw().status().is_server_error()
                || ctx
                    .err()
                    .code()
                    .is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    };
    let cause = format!("DynamoDB {operation}: {}", DisplayErrorContext(&err));
    if transient {
        Error::Unavailable(cause)
    } else {
        Error::Internal(cause)
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn timestamp(at: &DateTime<Utc>) -> AttributeValue {
    s(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Reads item attributes, naming the item in every complaint.
struct Fields<'a> {
    item: &'a Item,
    what: &'a str,
}

impl<'a> Fields<'a> {
    fn text(&self, name: &str) -> Result<&'a str, Error> {
        match self.item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v),
            Some(_) => Err(self.bad(name, "is not a string")),
            None => Err(self.bad(name, "is missing")),
        }
    }

    fn uuid(&self, name: &str) -> Result<Uuid, Error> {
        Uuid::parse_str(self.text(name)?).map_err(|_| self.bad(name, "is not a UUID"))
    }

    fn number(&self, name: &str) -> Result<i64, Error> {
        match self.item.get(name) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| self.bad(name, "is not a whole number")),
            Some(_) => Err(self.bad(name, "is not a number")),
            None => Err(self.bad(name, "is missing")),
        }
    }

    fn flag(&self, name: &str) -> Result<bool, Error> {
        match self.item.get(name) {
            Some(AttributeValue::Bool(v)) => Ok(*v),
            Some(_) => Err(self.bad(name, "is not a boolean")),
            None => Err(self.bad(name, "is missing")),
        }
    }

    fn time(&self, name: &str) -> Result<DateTime<Utc>, Error> {
        DateTime::parse_from_rfc3339(self.text(name)?)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| self.bad(name, "is not an RFC 3339 time"))
    }

    fn bad(&self, name: &str, problem: &str) -> Error {
        Error::internal(format!(
            "undecodable {} item: attribute {name} {problem}",
            self.what
        ))
    }
}

/// Accounts in one table keyed by `pk`: the account, its username claim (a full copy,
/// so login is one read) and its email claim.
#[derive(Clone)]
pub struct DynamoAccountStore {
    client: Client,
    table: String,
}

impl DynamoAccountStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn user_key(user_id: Uuid) -> String {
        format!("USER#{user_id}")
    }

    pub fn username_key(username: &Username) -> String {
        format!("USERNAME#{}", username.key())
    }

    pub fn email_key(email: &Email) -> String {
        format!("EMAIL#{}", email.key())
    }

    fn put(&self, pk: String, mut item: Item) -> Result<TransactWriteItem, Error> {
        item.insert("pk".into(), s(pk));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn registration(&self, account: &Account) -> Result<Vec<TransactWriteItem>, Error> {
        let record = Item::from([
            ("user_id".into(), s(account.user_id.to_string())),
            ("username".into(), s(account.username.as_str())),
            ("email".into(), s(account.email.as_str())),
            ("password_hash".into(), s(&account.password_hash)),
            ("created_at".into(), timestamp(&account.created_at)),
        ]);
        let claim = Item::from([("user_id".into(), s(account.user_id.to_string()))]);
        Ok(vec![
            self.put(Self::user_key(account.user_id), record.clone())?,
            self.put(Self::username_key(&account.username), record)?,
            self.put(Self::email_key(&account.email), claim)?,
        ])
    }
}

/// Why a registration transaction did not commit.
enum Refusal {
    /// Lost a race with another transaction on the same items; worth another try.
    Conflict(String),
    Final(Error),
}

/// Why a transaction was cancelled: one reason code per item, in order.
struct Cancelled(Vec<String>);

impl Cancelled {
    /// The reasons of a cancelled transaction; any other failure as the store error it is.
    fn of(err: SdkError<TransactWriteItemsError>) -> Result<Self, Error> {
        let codes = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_owned())
                .collect(),
            _ => return Err(sdk_error("TransactWriteItems", err)),
        };
        Ok(Self(codes))
    }

    /// Whether the condition on the `item`-th write failed.
    fn failed(&self, item: usize) -> bool {
        self.0
            .get(item)
            .is_some_and(|c| c == "ConditionalCheckFailed")
    }

    /// No condition failed: a lost race worth another try (its cause), or a final error.
    fn otherwise(&self, what: &str) -> Result<String, Error> {
        let cause = format!(
            "DynamoDB TransactWriteItems ({what}) cancelled, reasons {:?}",
            self.0
        );
        if self.0.iter().any(|c| c == "TransactionConflict") {
            Ok(cause)
        } else if self
            .0
            .iter()
            .any(|c| TRANSIENT_REASONS.contains(&c.as_str()))
        {
            Err(Error::Unavailable(cause))
        } else {
            Err(Error::Internal(cause))
        }
    }
}

fn registration_refusal(err: SdkError<TransactWriteItemsError>) -> Refusal {
    let cancelled = match Cancelled::of(err) {
        Ok(cancelled) => cancelled,
        Err(error) => return Refusal::Final(error),
    };
    if cancelled.failed(1) {
        return Refusal::Final(Error::UsernameTaken);
    }
    if cancelled.failed(2) {
        return Refusal::Final(Error::EmailTaken);
    }
    match cancelled.otherwise("register") {
        Ok(cause) => Refusal::Conflict(cause),
        Err(error) => Refusal::Final(error),
    }
}

fn account_from(item: &Item) -> Result<Account, Error> {
    let f = Fields {
        item,
        what: "account",
    };
    let invalid = |name: &str| f.bad(name, "fails validation");
    Ok(Account {
        user_id: f.uuid("user_id")?,
        username: Username::parse(f.text("username")?).map_err(|_| invalid("username"))?,
        email: Email::parse(f.text("email")?).map_err(|_| invalid("email"))?,
        password_hash: f.text("password_hash")?.to_owned(),
        created_at: f.time("created_at")?,
    })
}

#[async_trait]
impl AccountStore for DynamoAccountStore {
    async fn create(&self, account: &Account) -> Result<(), Error> {
        let items = self.registration(account)?;
        let mut attempt = 1;
        loop {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let Err(err) = sent else { return Ok(()) };
            match registration_refusal(err) {
                Refusal::Final(error) => return Err(error),
                Refusal::Conflict(cause) if attempt >= CONFLICT_ATTEMPTS => {
                    return Err(Error::Unavailable(cause))
                }
                Refusal::Conflict(_) => {
                    conflict_pause(attempt).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<Account>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(Self::username_key(username)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item().map(account_from).transpose()
    }
}

/// Profiles in one table keyed by `user_id`.
#[derive(Clone)]
pub struct DynamoProfileStore {
    client: Client,
    table: String,
}

impl DynamoProfileStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn profile_key(user_id: Uuid) -> AttributeValue {
    s(user_id.to_string())
}

fn profile_from(item: &Item) -> Result<Profile, Error> {
    let f = Fields {
        item,
        what: "profile",
    };
    Ok(Profile {
        user_id: f.uuid("user_id")?,
        username: f.text("username")?.to_owned(),
        email: f.text("email")?.to_owned(),
        full_name: f.text("full_name")?.to_owned(),
        bio: f.text("bio")?.to_owned(),
        created_at: f.time("created_at")?,
    })
}

#[async_trait]
impl ProfileStore for DynamoProfileStore {
    async fn create(&self, profile: &Profile) -> Result<(), Error> {
        let item = Item::from([
            ("user_id".into(), profile_key(profile.user_id)),
            ("username".into(), s(&profile.username)),
            ("email".into(), s(&profile.email)),
            ("full_name".into(), s(&profile.full_name)),
            ("bio".into(), s(&profile.bio)),
            ("created_at".into(), timestamp(&profile.created_at)),
        ]);
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(user_id)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Err(Error::ProfileExists),
                _ => Err(sdk_error("PutItem", err)),
            },
        }
    }

    async fn get(&self, user_id: Uuid) -> Result<Option<Profile>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("user_id", profile_key(user_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item().map(profile_from).transpose()
    }

    async fn update(&self, user_id: Uuid, patch: &ProfilePatch) -> Result<Profile, Error> {
        let fields: Vec<(&str, &String)> = [
            ("full_name", patch.full_name.as_ref()),
            ("bio", patch.bio.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect();
        if fields.is_empty() {
            return self.get(user_id).await?.ok_or(Error::UserNotFound);
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("user_id", profile_key(user_id))
            .condition_expression("attribute_exists(user_id)")
            .return_values(ReturnValue::AllNew);
        let mut sets = Vec::new();
        for (name, value) in fields {
            sets.push(format!("#{name} = :{name}"));
            request = request
                .expression_attribute_names(format!("#{name}"), name)
                .expression_attribute_values(format!(":{name}"), s(value));
        }
        match request
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
        {
            Ok(out) => out
                .attributes()
                .ok_or_else(|| Error::internal("DynamoDB UpdateItem returned no attributes"))
                .and_then(profile_from),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    Err(Error::UserNotFound)
                }
                _ => Err(sdk_error("UpdateItem", err)),
            },
        }
    }

    async fn delete(&self, user_id: Uuid) -> Result<(), Error> {
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("user_id", profile_key(user_id))
            .condition_expression("attribute_exists(user_id)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => {
                    Err(Error::UserNotFound)
                }
                _ => Err(sdk_error("DeleteItem", err)),
            },
        }
    }

    /// Scans `limit + 1` items so that `next` is only set when more follow. A page can
    /// still come back shorter than `limit` (DynamoDB stops a scan at 1 MB); its `next`
    /// then continues from where DynamoDB stopped, and only a page without `next` is
    /// the last.
    async fn list(&self, limit: usize, after: Option<Cursor>) -> Result<Page<Profile>, Error> {
        if limit == 0 {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
            .consistent_read(true)
            .set_exclusive_start_key(
                after.map(|c| Item::from([("user_id".into(), profile_key(c.last_key()))])),
            )
            .send()
            .await
            .map_err(|e| sdk_error("Scan", e))?;
        let mut items = out
            .items()
            .iter()
            .map(profile_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|p| Cursor::after(p.user_id))
        } else {
            match out.last_evaluated_key() {
                Some(key) => Some(Cursor::after(
                    Fields {
                        item: key,
                        what: "scan position",
                    }
                    .uuid("user_id")?,
                )),
                None => None,
            }
        };
        Ok(Page { items, next })
    }
}

/// Refresh tokens (by hash), revoked families, revoked access tokens and login-attempt
/// counters in one table keyed by `pk`, each item expiring by TTL on `expires_at`.
#[derive(Clone)]
pub struct DynamoSecurityStore {
    client: Client,
    table: String,
}

impl DynamoSecurityStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn refresh_key(hash: &TokenHash) -> String {
        format!("REFRESH#{}", hash.as_str())
    }

    pub fn family_key(family: Uuid) -> String {
        format!("FAMILY#{family}")
    }

    pub fn revoked_key(jti: &str) -> String {
        format!("REVOKED#{jti}")
    }

    pub fn attempt_key(key: &AttemptKey) -> String {
        match key {
            AttemptKey::User(name) => format!("ATTEMPTS#USER#{name}"),
            AttemptKey::Ip(ip) => format!("ATTEMPTS#IP#{ip}"),
        }
    }

    /// Writes a record that refuses something until `until`, never shortening one that
    /// already refuses it for longer.
    async fn put_revocation(&self, pk: String, until: i64) -> Result<(), Error> {
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("expires_at", n(until))
            .item("revoked_at", n(Utc::now().timestamp()))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :until")
            .expression_attribute_values(":until", n(until))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(sdk_error("PutItem", err)),
            },
        }
    }

    fn rotation(
        &self,
        old: &RefreshRecord,
        next: &RefreshRecord,
        now: i64,
    ) -> Result<Vec<TransactWriteItem>, Error> {
        let retire = Update::builder()
            .table_name(&self.table)
            .key("pk", s(Self::refresh_key(&old.hash)))
            .update_expression("SET #used = :true")
            .condition_expression("#used = :false")
            .expression_attribute_names("#used", "used")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .build()
            .map_err(Error::internal)?;
        let family_alive = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(Self::family_key(old.family)))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(Error::internal)?;
        let successor = Put::builder()
            .table_name(&self.table)
            .set_item(Some(refresh_item(next)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(Error::internal)?;
        Ok(vec![
            TransactWriteItem::builder().update(retire).build(),
            TransactWriteItem::builder()
                .condition_check(family_alive)
                .build(),
            TransactWriteItem::builder().put(successor).build(),
        ])
    }
}

fn refresh_item(record: &RefreshRecord) -> Item {
    Item::from([
        (
            "pk".into(),
            s(DynamoSecurityStore::refresh_key(&record.hash)),
        ),
        ("family".into(), s(record.family.to_string())),
        ("user_id".into(), s(record.user_id.to_string())),
        ("username".into(), s(&record.username)),
        ("expires_at".into(), n(record.expires_at)),
        ("used".into(), AttributeValue::Bool(record.used)),
    ])
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
    })
}

/// Why a rotation transaction did not commit, by the position of the failed condition.
enum RotationRefusal {
    AlreadyUsed,
    FamilyRevoked,
    Conflict,
    Final(Error),
}

fn rotation_refusal(err: SdkError<TransactWriteItemsError>) -> RotationRefusal {
    let cancelled = match Cancelled::of(err) {
        Ok(cancelled) => cancelled,
        Err(error) => return RotationRefusal::Final(error),
    };
    if cancelled.failed(0) {
        return RotationRefusal::AlreadyUsed;
    }
    if cancelled.failed(1) {
        return RotationRefusal::FamilyRevoked;
    }
    match cancelled.otherwise("refresh") {
        Ok(_) => RotationRefusal::Conflict,
        Err(error) => RotationRefusal::Final(error),
    }
}

async fn conflict_pause(attempt: u32) {
    let base = 10u64 << attempt;
    let pause = rand::rng().random_range(base / 2..=base);
    tokio::time::sleep(Duration::from_millis(pause)).await;
}

#[async_trait]
impl SecurityStore for DynamoSecurityStore {
    async fn put_refresh(&self, record: &RefreshRecord) -> Result<(), Error> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(refresh_item(record)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    Err(Error::internal("refresh token hash collision"))
                }
                _ => Err(sdk_error("PutItem", err)),
            },
        }
    }

    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(Self::refresh_key(hash)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item().map(|item| refresh_from(hash, item)).transpose()
    }

    /// One consistent `GetItem` of the presented token, then one `TransactWriteItems`
    /// that retires it (if still unused), checks that its family is not revoked and
    /// puts the successor. A transaction lost to a concurrent one is retried from the
    /// read, which then sees the token retired: that is reuse.
    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        next: &TokenHash,
        next_expires_at: i64,
        now: i64,
    ) -> Result<Rotation, Error> {
        let mut attempt = 1;
        loop {
            let Some(old) = self.find_refresh(presented).await? else {
                return Ok(Rotation::Refused);
            };
            if old.expires_at <= now {
                return Ok(Rotation::Refused);
            }
            if old.used {
                self.revoke_family(old.family, next_expires_at).await?;
                return Ok(Rotation::Reused { family: old.family });
            }
            let successor = RefreshRecord {
                hash: next.clone(),
                expires_at: next_expires_at,
                used: false,
                ..old.clone()
            };
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(self.rotation(&old, &successor, now)?))
                .send()
                .await;
            let Err(err) = sent else {
                return Ok(Rotation::Rotated(successor));
            };
            match rotation_refusal(err) {
                RotationRefusal::AlreadyUsed => {
                    self.revoke_family(old.family, next_expires_at).await?;
                    return Ok(Rotation::Reused { family: old.family });
                }
                RotationRefusal::FamilyRevoked => return Ok(Rotation::Refused),
                RotationRefusal::Final(error) => return Err(error),
                RotationRefusal::Conflict if attempt >= CONFLICT_ATTEMPTS => {
                    return Err(Error::unavailable(
                        "DynamoDB TransactWriteItems (refresh): still conflicting after retries",
                    ))
                }
                RotationRefusal::Conflict => {
                    conflict_pause(attempt).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn revoke_family(&self, family: Uuid, until: i64) -> Result<(), Error> {
        self.put_revocation(Self::family_key(family), until).await
    }

    async fn revoke_access(&self, jti: &str, until: i64) -> Result<(), Error> {
        self.put_revocation(Self::revoked_key(jti), until).await
    }

    async fn is_access_revoked(&self, jti: &str, now: i64) -> Result<bool, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(Self::revoked_key(jti)))
            .projection_expression("expires_at")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        match out.item() {
            None => Ok(false),
            Some(item) => Ok(Fields {
                item,
                what: "revocation",
            }
            .number("expires_at")?
                > now),
        }
    }

    /// One `UpdateItem` that `ADD`s 1 while the window is open (or the item absent) and
    /// sets its end once. A closed window that TTL has not removed yet fails that
    /// condition and is replaced by a `PutItem` starting a new window at 1.
    async fn count_attempt(
        &self,
        key: &AttemptKey,
        window: Duration,
        now: i64,
    ) -> Result<Attempts, Error> {
        let pk = Self::attempt_key(key);
        let window_ends_at =
            now.saturating_add(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
        for _ in 0..CONFLICT_ATTEMPTS {
            let counted = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .update_expression(
                    "ADD #attempts :one SET expires_at = if_not_exists(expires_at, :end)",
                )
                .condition_expression("attribute_not_exists(pk) OR expires_at > :now")
                .expression_attribute_names("#attempts", "attempts")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":end", n(window_ends_at))
                .expression_attribute_values(":now", n(now))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match counted {
                Ok(out) => {
                    let item = out.attributes().ok_or_else(|| {
                        Error::internal("DynamoDB UpdateItem returned no attributes")
                    })?;
                    let f = Fields {
                        item,
                        what: "attempt counter",
                    };
                    return Ok(Attempts {
                        count: u64::try_from(f.number("attempts")?).unwrap_or(0),
                        window_ends_at: f.number("expires_at")?,
                    });
                }
                Err(err) => match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(_)) => {}
                    _ => return Err(sdk_error("UpdateItem", err)),
                },
            }
            let restarted = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&pk))
                .item("attempts", n(1))
                .item("expires_at", n(window_ends_at))
                .condition_expression("expires_at <= :now")
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match restarted {
                Ok(_) => {
                    return Ok(Attempts {
                        count: 1,
                        window_ends_at,
                    })
                }
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(_)) => {}
                    _ => return Err(sdk_error("PutItem", err)),
                },
            }
        }
        Err(Error::unavailable(
            "DynamoDB attempt counter: still contended after retries",
        ))
    }

    async fn release_attempt(&self, key: &AttemptKey, now: i64) -> Result<(), Error> {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(Self::attempt_key(key)))
            .update_expression("ADD #attempts :minus_one")
            .condition_expression("expires_at > :now AND #attempts > :zero")
            .expression_attribute_names("#attempts", "attempts")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match released {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(sdk_error("UpdateItem", err)),
            },
        }
    }

    async fn clear_attempts(&self, key: &AttemptKey) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(Self::attempt_key(key)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("DeleteItem", e))
    }
}
