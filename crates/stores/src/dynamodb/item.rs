//! Attribute values written and read: the encoders every store uses and a decoder that
//! names the item in every complaint.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use errors::Error;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn string_attr(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn number_attr(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn timestamp(at: &DateTime<Utc>) -> AttributeValue {
    string_attr(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Reads item attributes, naming the item in every complaint.
pub(super) struct Fields<'a> {
    pub(super) item: &'a Item,
    pub(super) what: &'a str,
}

impl<'a> Fields<'a> {
    /// The attributes of `item`, a `what` (named in every complaint).
    pub(super) fn of(item: &'a Item, what: &'a str) -> Self {
        Self { item, what }
    }

    pub(super) fn text(&self, name: &str) -> Result<&'a str, Error> {
        match self.item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v),
            Some(_) => Err(self.bad(name, "is not a string")),
            None => Err(self.bad(name, "is missing")),
        }
    }

    pub(super) fn uuid(&self, name: &str) -> Result<Uuid, Error> {
        Uuid::parse_str(self.text(name)?).map_err(|_| self.bad(name, "is not a UUID"))
    }

    pub(super) fn number(&self, name: &str) -> Result<i64, Error> {
        match self.item.get(name) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| self.bad(name, "is not a whole number")),
            Some(_) => Err(self.bad(name, "is not a number")),
            None => Err(self.bad(name, "is missing")),
        }
    }

    pub(super) fn optional_text(&self, name: &str) -> Result<Option<&'a str>, Error> {
        match self.item.get(name) {
            None => Ok(None),
            Some(_) => self.text(name).map(Some),
        }
    }

    pub(super) fn optional_number(&self, name: &str) -> Result<Option<i64>, Error> {
        match self.item.get(name) {
            None => Ok(None),
            Some(_) => self.number(name).map(Some),
        }
    }

    /// A password generation: absent is 0.
    pub(super) fn generation(&self, name: &str) -> Result<u64, Error> {
        match self.optional_number(name)? {
            None => Ok(0),
            Some(generation) => {
                u64::try_from(generation).map_err(|_| self.bad(name, "is negative"))
            }
        }
    }

    /// A boolean that is false when absent.
    pub(super) fn optional_flag(&self, name: &str) -> Result<bool, Error> {
        match self.item.get(name) {
            None => Ok(false),
            Some(_) => self.flag(name),
        }
    }

    pub(super) fn flag(&self, name: &str) -> Result<bool, Error> {
        match self.item.get(name) {
            Some(AttributeValue::Bool(v)) => Ok(*v),
            Some(_) => Err(self.bad(name, "is not a boolean")),
            None => Err(self.bad(name, "is missing")),
        }
    }

    pub(super) fn time(&self, name: &str) -> Result<DateTime<Utc>, Error> {
        DateTime::parse_from_rfc3339(self.text(name)?)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| self.bad(name, "is not an RFC 3339 time"))
    }

    pub(super) fn bad(&self, name: &str, problem: &str) -> Error {
        Error::internal(format!(
            "undecodable {} item: attribute {name} {problem}",
            self.what
        ))
    }
}
