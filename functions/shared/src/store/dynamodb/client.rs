//! The one DynamoDB client of a process, with the configured endpoint, timeouts and
//! retries.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::Client;

use crate::Config;

/// The one DynamoDB client of a process: region from `AWS_REGION`/`AWS_DEFAULT_REGION`
/// (else us-east-1), `DYNAMODB_ENDPOINT` as endpoint override, connect timeout from
/// `CONNECT_TIMEOUT_MS`, every call (retries included) bounded by `REQUEST_TIMEOUT_MS`.
/// Builds without I/O; credentials are resolved on first use. A local endpoint without
/// `AWS_ACCESS_KEY_ID` gets placeholder credentials, which emulators accept.
pub async fn client(config: &Config) -> Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(config.http.connect_timeout)
        .operation_attempt_timeout(config.http.request_timeout)
        .operation_timeout(config.http.request_timeout)
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
    if let Some(endpoint) = &config.store.endpoint {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader
                .credentials_provider(Credentials::new("local", "local", None, None, "local"));
        }
    }
    Client::new(&loader.load().await)
}
