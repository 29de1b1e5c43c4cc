//! The one DynamoDB client of a process, with the configured endpoint, timeouts and
//! retries (the SDK's setup is `aws_client`'s, shared with the other AWS clients).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::config::StoreSettings;

pub use aws_client::https_client;

/// The one DynamoDB client of a process ([`aws_client::sdk_config`]): `DYNAMODB_ENDPOINT`
/// as endpoint override, `CONNECT_TIMEOUT_MS` and `REQUEST_TIMEOUT_MS` as its bounds.
/// Builds without I/O; credentials are resolved on first use.
pub async fn client(config: &impl StoreSettings) -> Client {
    let endpoint = config.store().endpoint.as_deref();
    Client::new(&aws_client::sdk_config(config.timeouts(), endpoint).await)
}

/// A key of the security table that never exists: `KEY#` items are public keys by key
/// id, which every function may read (template.yaml), and no key id has this form.
const WARM_UP_KEY: &str = "KEY#warm-up";

/// Opens `client`'s connection to DynamoDB (TCP, TLS, signing credentials) in the
/// background while the process finishes its init, so that its first request finds it
/// open: one eventually consistent `GetItem` of [`WARM_UP_KEY`] in `security_table`
/// (0.5 RRU per process start). The first request does not wait for it: if it comes
/// first, it connects on its own as it would without. The outcome is only logged
/// (debug); a DynamoDB that cannot be reached shows on the requests that need it.
pub fn warm_up(client: &Client, security_table: &str) {
    let call = client
        .get_item()
        .table_name(security_table)
        .key("pk", AttributeValue::S(WARM_UP_KEY.to_owned()));
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        match call.send().await {
            Ok(_) => tracing::debug!(
                ms = started.elapsed().as_millis() as u64,
                "DynamoDB connection opened during init"
            ),
            Err(err) => tracing::debug!(
                error = %DisplayErrorContext(&err),
                "DynamoDB warm-up failed; the first request will connect"
            ),
        }
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::StoreAccess;
    use settings::ReadConfig;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn the_warm_up_calls_dynamodb_without_any_request() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let vars = [
            ("STORE", "dynamodb"),
            ("DYNAMODB_ENDPOINT", endpoint.as_str()),
            ("SECURITY_TABLE", "sec-test"),
        ];
        let config = StoreAccess::from_lookup(|k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        let client = client(&config).await;
        warm_up(&client, &config.store.tables.security);
        let (mut socket, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .expect("the warm-up connects within 5 s")
            .unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("KEY#warm-up") {
            let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
                .await
                .expect("the warm-up sends its call")
                .unwrap();
            assert!(n > 0, "connection closed before the call was read");
            seen.extend_from_slice(&buf[..n]);
        }
        let request = String::from_utf8_lossy(&seen);
        assert!(request.contains("DynamoDB_20120810.GetItem"), "{request}");
        assert!(request.contains("\"sec-test\""), "{request}");
    }
}
