//! The security table's session, refresh-token and user-state items, written and read.

use aws_sdk_dynamodb::types::AttributeValue;
use uuid::Uuid;

use super::super::item::{Fields, Item, number_attr, string_attr};
use super::super::pk;
use crate::session::SessionFacts;
use crate::{RefreshRecord, Session, UserState};
use domain::refresh::TokenHash;
use errors::Error;

pub(super) fn refresh_item(record: &RefreshRecord) -> Item {
    let mut item = Item::from([
        ("pk".into(), string_attr(pk::refresh(&record.hash))),
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

pub(super) fn refresh_from(hash: &TokenHash, item: &Item) -> Result<RefreshRecord, Error> {
    let f = Fields::of(item, "refresh token");
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

pub(super) fn session_item(session: &Session) -> Item {
    let mut item = Item::from([
        ("pk".into(), string_attr(pk::session(session.id))),
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

pub(super) fn session_from(item: &Item) -> Result<Session, Error> {
    let f = Fields::of(item, "session");
    let pk = f.text("pk")?;
    let id = pk::session_id(pk).ok_or_else(|| f.bad("pk", "is not a session key"))?;
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

pub(super) fn facts_from(item: &Item) -> Result<SessionFacts, Error> {
    let f = Fields::of(item, "session");
    Ok(SessionFacts {
        user_id: f.uuid("user_id")?,
        generation: f.generation("gen")?,
        expires_at: f.number("expires_at")?,
        ended: item.contains_key("ended_at"),
    })
}

pub(super) fn user_state_from(item: &Item) -> Result<UserState, Error> {
    let f = Fields::of(item, "user state");
    Ok(UserState {
        generation: f.generation("gen")?,
        kept: f
            .optional_text("kept")?
            .map(|k| Uuid::parse_str(k).map_err(|_| f.bad("kept", "is not a UUID")))
            .transpose()?,
        deleted_at: f.optional_number("deleted_at")?,
    })
}
