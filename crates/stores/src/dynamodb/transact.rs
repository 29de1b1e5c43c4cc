//! The items of a `TransactWriteItems`, built one way for every store.

use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};

use super::conditions::NEW_ITEM;
use super::item::Item;
use errors::Error;

pub(super) fn put(put: Put) -> TransactWriteItem {
    TransactWriteItem::builder().put(put).build()
}

pub(super) fn update(update: Update) -> TransactWriteItem {
    TransactWriteItem::builder().update(update).build()
}

pub(super) fn check(check: ConditionCheck) -> TransactWriteItem {
    TransactWriteItem::builder().condition_check(check).build()
}

pub(super) fn delete(delete: Delete) -> TransactWriteItem {
    TransactWriteItem::builder().delete(delete).build()
}

/// A `Put` of `item` into `table` that fails if anything is stored under its `pk`.
pub(super) fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, Error> {
    Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(NEW_ITEM)
        .build()
        .map(put)
        .map_err(Error::internal)
}
