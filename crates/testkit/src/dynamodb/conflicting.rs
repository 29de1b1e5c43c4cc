//! A stand-in DynamoDB that loses every transaction.

/// A stand-in DynamoDB on a loopback port that loses every transaction to another one
/// (`TransactionCanceledException`, every reason `TransactionConflict`) and counts
/// them. An `UpdateItem` (a login or registration counter) answers a count of 1 in an
/// open window; anything else is a `ValidationException`. Its URL, and the count.
pub async fn always_conflicting() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::{HeaderMap, StatusCode};

    let transactions = Arc::new(AtomicUsize::new(0));
    let counted = transactions.clone();
    let answer = move |headers: HeaderMap| {
        let counted = counted.clone();
        async move {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let (status, body) = match target.rsplit('.').next() {
                Some("TransactWriteItems") => {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let conflict = serde_json::json!({"Code": "TransactionConflict",
                        "Message": "Transaction is ongoing for the item"});
                    (
                        StatusCode::BAD_REQUEST,
                        serde_json::json!({
                            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
                            "CancellationReasons": [conflict.clone(), conflict.clone(), conflict],
                        }),
                    )
                }
                Some("UpdateItem") => (
                    StatusCode::OK,
                    serde_json::json!({"Attributes": {
                        "attempts": {"N": "1"},
                        "expires_at": {"N": "99999999999"},
                    }}),
                ),
                _ => (
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({
                        "__type": "com.amazon.coral.validate#ValidationException",
                        "Message": format!("not served here: {target}"),
                    }),
                ),
            };
            (
                status,
                [("content-type", "application/x-amz-json-1.0")],
                body.to_string(),
            )
        }
    };
    let url = crate::http::serve(axum::Router::new().fallback(answer)).await;
    (url, transactions)
}
