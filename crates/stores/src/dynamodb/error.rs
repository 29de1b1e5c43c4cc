//! DynamoDB failures as the client-facing [`Error`] (transient 503, else 500), failed
//! conditions as the calling store says, and cancelled transactions' reasons per item.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

use edge::metrics::{self, Event};
use errors::Error;

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

/// Service error codes that mean DynamoDB refused the call for throughput.
const THROTTLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
];

/// Cancellation reasons of a transaction that mean the same.
const THROTTLE_REASONS: &[&str] = &[
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

/// Maps an SDK failure to the client-facing error; the SDK's words stay in the cause.
/// Counted as the request's [`Event::DynamoDbThrottle`] or [`Event::DynamoDbError`].
pub(super) fn sdk_error<E>(operation: &str, err: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let throttled = err
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|c| THROTTLE_CODES.contains(&c));
    metrics::count(if throttled {
        Event::DynamoDbThrottle
    } else {
        Event::DynamoDbError
    });
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

/// An operation error that can say its condition expression failed.
pub(super) trait ConditionFailure {
    fn condition_failed(&self) -> bool;
}

impl ConditionFailure for PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailure for UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionFailure for DeleteItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// The answer of a conditional write: its output, `None` when its condition failed, or
/// the store error any other failure maps to.
pub(super) fn conditional<O, E>(
    operation: &str,
    sent: Result<O, SdkError<E>>,
) -> Result<Option<O>, Error>
where
    E: ConditionFailure + ProvideErrorMetadata + std::error::Error + 'static,
{
    match sent {
        Ok(out) => Ok(Some(out)),
        Err(err) if err.as_service_error().is_some_and(E::condition_failed) => Ok(None),
        Err(err) => Err(sdk_error(operation, err)),
    }
}

/// Why a transaction was cancelled: one reason code per item, in order.
pub(super) struct Cancelled(Vec<String>);

impl Cancelled {
    /// The reasons of a cancelled transaction; any other failure as the store error it is.
    pub(super) fn of(err: SdkError<TransactWriteItemsError>) -> Result<Self, Error> {
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
    pub(super) fn failed(&self, item: usize) -> bool {
        self.0
            .get(item)
            .is_some_and(|c| c == "ConditionalCheckFailed")
    }

    /// A condition failed that the caller has no answer for: a final error.
    pub(super) fn unexpected(&self, what: &str) -> Error {
        metrics::count(Event::DynamoDbError);
        Error::Internal(format!(
            "DynamoDB TransactWriteItems ({what}) cancelled, reasons {:?}",
            self.0
        ))
    }

    /// No condition failed: a lost race worth another try (its cause), or a final error.
    pub(super) fn otherwise(&self, what: &str) -> Result<String, Error> {
        let cause = format!(
            "DynamoDB TransactWriteItems ({what}) cancelled, reasons {:?}",
            self.0
        );
        let throttled = self
            .0
            .iter()
            .any(|c| THROTTLE_REASONS.contains(&c.as_str()));
        if throttled {
            metrics::count(Event::DynamoDbThrottle);
        }
        if self.0.iter().any(|c| c == "TransactionConflict") {
            Ok(cause)
        } else if self
            .0
            .iter()
            .any(|c| TRANSIENT_REASONS.contains(&c.as_str()))
        {
            Err(Error::Unavailable(cause))
        } else {
            metrics::count(Event::DynamoDbError);
            Err(Error::Internal(cause))
        }
    }
}

/// The item under `key` (`(attribute, value)`) in `table`, read strongly consistent.
pub(super) async fn get_consistent(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    (name, value): (&str, aws_sdk_dynamodb::types::AttributeValue),
) -> Result<Option<super::item::Item>, Error> {
    let out = client
        .get_item()
        .table_name(table)
        .key(name, value)
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| sdk_error("GetItem", e))?;
    Ok(out.item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancelled(reasons: &[&str]) -> Cancelled {
        Cancelled(reasons.iter().map(|r| (*r).to_owned()).collect())
    }

    #[tokio::test]
    async fn a_transaction_cancelled_for_throughput_counts_as_a_throttle() {
        let (outcome, counts) =
            metrics::counted(async { cancelled(&["None", "ThrottlingError"]).otherwise("test") })
                .await;
        assert!(matches!(outcome, Err(Error::Unavailable(_))));
        assert_eq!(counts.get(Event::DynamoDbThrottle), 1);
        assert_eq!(counts.get(Event::DynamoDbError), 0);

        let (outcome, counts) =
            metrics::counted(async { cancelled(&["None", "ValidationError"]).otherwise("test") })
                .await;
        assert!(matches!(outcome, Err(Error::Internal(_))));
        assert_eq!(counts.get(Event::DynamoDbError), 1);

        // A lost race is retried, not an error.
        let (outcome, counts) =
            metrics::counted(async { cancelled(&["TransactionConflict"]).otherwise("test") }).await;
        assert!(outcome.is_ok());
        assert!(counts.is_empty());
    }
}
