//! The AWS SDK's setup that every AWS client of a process shares (DynamoDB's in
//! `stores`, SES's in `mail`): region, credentials, timeouts, retries, and the HTTP
//! client of [`https`] (hyper on rustls with ring, Mozilla's roots compiled in), so that
//! a binary carries one TLS stack whatever the services it calls.

pub mod https;

use std::time::Duration;

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use settings::HttpClientConfig;

pub use aws_config::SdkConfig;

/// The configuration a service client is built from (`Client::new(&config)`): region
/// from `AWS_REGION`/`AWS_DEFAULT_REGION` (else us-east-1), `endpoint` as endpoint
/// override, connect timeout from `timeouts.connect_timeout`, every call (retries
/// included) bounded by `timeouts.request_timeout`, at most 3 attempts. Builds without
/// I/O; credentials are resolved on first use: from the environment when
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are set (as in Lambda), else through
/// the SDK's default chain (profiles, web identity, container and instance metadata).
/// A local endpoint without them gets placeholder credentials, which emulators accept.
pub async fn sdk_config(timeouts: &HttpClientConfig, endpoint: Option<&str>) -> SdkConfig {
    let timeout_config = TimeoutConfig::builder()
        .connect_timeout(timeouts.connect_timeout)
        .operation_attempt_timeout(timeouts.request_timeout)
        .operation_timeout(timeouts.request_timeout)
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
        .timeout_config(timeout_config)
        .retry_config(retries);
    let env_credentials = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .iter()
        .all(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()));
    if env_credentials {
        // As in Lambda, which always sets them: the SDK's default chain would first
        // build its providers for profiles, web identity (an STS client, with its
        // endpoint rules) and the instance metadata service, about a third of what
        // a client costs to start (perf, BENCHMARKS.md section 3), only to take
        // these from the environment in the end.
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
        if !env_credentials {
            loader = loader
                .credentials_provider(Credentials::new("local", "local", None, None, "local"));
        }
    }
    loader.load().await
}

/// The SDK's HTTPS client ([`https`]): rustls on ring, one TLS stack per binary (the
/// SDK's default would bring aws-lc beside users' ring), with Mozilla's roots compiled
/// in unless `SSL_CERT_FILE` / `SSL_CERT_DIR` name others.
pub fn https_client() -> SharedHttpClient {
    SharedHttpClient::new(https::SdkHttpClient::new(https::Roots::from_env()))
}
