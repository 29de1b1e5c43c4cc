//! The one DynamoDB client of a process, with the configured endpoint, timeouts and
//! retries.

use std::time::Duration;

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::config::StoreSettings;

/// The one DynamoDB client of a process: region from `AWS_REGION`/`AWS_DEFAULT_REGION`
/// (else us-east-1), `DYNAMODB_ENDPOINT` as endpoint override, connect timeout from
/// `CONNECT_TIMEOUT_MS`, every call (retries included) bounded by `REQUEST_TIMEOUT_MS`.
/// Builds without I/O; credentials are resolved on first use: from the environment when
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are set (as in Lambda), else through
/// the SDK's default chain (profiles, web identity, container and instance metadata).
/// A local endpoint without them gets placeholder credentials, which emulators accept.
pub async fn client(config: &impl StoreSettings) -> Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(config.timeouts().connect_timeout)
        .operation_attempt_timeout(config.timeouts().request_timeout)
        .operation_timeout(config.timeouts().request_timeout)
        .build();
    let retries = RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(1));
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(Region::from_static("us-east-1"));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .region(region)
        .timeout_config(timeouts)
        .retry_config(retries);
    let env_credentials = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .iter()
        .all(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()));
    if env_credentials {
        // As in Lambda, which always sets them: the SDK's default chain would first
        // build its providers for profiles, web identity (an STS client, with its
        // endpoint rules) and the instance metadata service, about a third of what
        // this client costs to start (perf, BENCHMARKS.md section 3), only to take
        // these from the environment in the end.
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    if let Some(endpoint) = &config.store().endpoint {
        loader = loader.endpoint_url(endpoint);
        if !env_credentials {
            loader = loader
                .credentials_provider(Credentials::new("local", "local", None, None, "local"));
        }
    }
    Client::new(&loader.load().await)
}

/// The SDK's HTTPS client ([`super::https`]): rustls on ring, one TLS stack per binary
/// (the SDK's default would bring aws-lc beside users' ring), with Mozilla's roots
/// compiled in unless `SSL_CERT_FILE` / `SSL_CERT_DIR` name others.
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    aws_sdk_dynamodb::config::SharedHttpClient::new(super::https::SdkHttpClient::new(
        super::https::Roots::from_env(),
    ))
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
