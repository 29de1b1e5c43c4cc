//! The AWS clients' HTTP client (DynamoDB's, SES's): hyper's pooled HTTP/1 client over
//! rustls on ring, trusting Mozilla's root certificates compiled into the binary
//! (webpki-roots), or the roots that `SSL_CERT_FILE` / `SSL_CERT_DIR` name when either
//! is set.
//!
//! The SDK's own client (aws-smithy-http-client) takes trust roots only as PEM and
//! parses the system's bundle when a client is built, on the init path of every cold
//! start: about 0.9 ms of a 3.4 ms start (BENCHMARKS.md, section 3). Compiled in, the
//! roots are ready-made trust anchors: nothing to read or parse. The AWS endpoints
//! chain to Amazon Trust Services, whose roots are in Mozilla's set.

use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

type BoxError = Box<dyn StdError + Send + Sync>;

/// Where the AWS clients' TLS trust comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// Mozilla's roots, compiled in (webpki-roots).
    CompiledIn,
    /// The files `SSL_CERT_FILE` and `SSL_CERT_DIR` name (e.g. a test CA).
    FromEnvironment,
}

impl Roots {
    /// [`Roots::FromEnvironment`] when `SSL_CERT_FILE` or `SSL_CERT_DIR` is set and not
    /// empty, else [`Roots::CompiledIn`].
    pub fn from_env() -> Self {
        let set = |var| std::env::var_os(var).is_some_and(|v| !v.is_empty());
        if set("SSL_CERT_FILE") || set("SSL_CERT_DIR") {
            Self::FromEnvironment
        } else {
            Self::CompiledIn
        }
    }

    fn store(self) -> rustls::RootCertStore {
        match self {
            Self::CompiledIn => rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
            Self::FromEnvironment => {
                let loaded = rustls_native_certs::load_native_certs();
                for error in &loaded.errors {
                    tracing::warn!(%error, "a TLS root certificate could not be read");
                }
                let mut store = rustls::RootCertStore::empty();
                let (_, invalid) = store.add_parsable_certificates(loaded.certs);
                if invalid > 0 {
                    tracing::warn!(
                        invalid,
                        "TLS root certificates that do not parse were left out"
                    );
                }
                store
            }
        }
    }
}

/// The SDK's [`HttpClient`]: one connector per connect timeout the SDK asks for (one,
/// in practice), built on the first request rather than with the client.
#[derive(Debug)]
pub struct SdkHttpClient {
    roots: Roots,
    connectors: Mutex<Vec<(Option<Duration>, SharedHttpConnector)>>,
}

impl SdkHttpClient {
    pub fn new(roots: Roots) -> Self {
        Self {
            roots,
            connectors: Mutex::new(Vec::new()),
        }
    }
}

impl HttpClient for SdkHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeout = settings.connect_timeout();
        let mut connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, connector)) = connectors.iter().find(|(t, _)| *t == timeout) {
            return connector.clone();
        }
        let connector = SharedHttpConnector::new(Connector::new(self.roots, timeout));
        connectors.push((timeout, connector.clone()));
        connector
    }
}

/// hyper's pooled client on the TLS connector: `https://` with rustls, `http://` (a local
/// endpoint) in the clear.
struct Connector(hyper_util::client::legacy::Client<HttpsConnector<TcpConnector>, SdkBody>);

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("aws_client::https::Connector")
    }
}

impl Connector {
    fn new(roots: Roots, connect_timeout: Option<Duration>) -> Self {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots.store())
        .with_no_client_auth();
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(connect_timeout);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Self(
            hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .build(https),
        )
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(err) => return HttpConnectorFuture::ready(Err(ConnectorError::user(err.into()))),
        };
        let answer = self.0.request(request);
        HttpConnectorFuture::new(async move {
            match answer.await {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|err| ConnectorError::other(err.into(), None)),
                Err(err) => Err(classify(err)),
            }
        })
    }
}

/// The SDK's kind of a failed call, which decides whether it is retried: no connection
/// or a connection that broke is I/O (retried), a request hyper refused is the
/// caller's, anything else is left to the SDK's other classifiers.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let connect = err.is_connect();
    let hyper = find::<hyper::Error>(&err).map(|e| {
        (
            e.is_timeout(),
            e.is_user(),
            e.is_closed() || e.is_canceled(),
            e.is_incomplete_message(),
        )
    });
    let io = find::<std::io::Error>(&err).is_some();
    let err: BoxError = err.into();
    match hyper {
        _ if connect => ConnectorError::io(err),
        Some((true, ..)) => ConnectorError::timeout(err),
        Some((_, true, ..)) => ConnectorError::user(err),
        Some((_, _, true, _)) => ConnectorError::io(err),
        _ if io => ConnectorError::io(err),
        Some((.., true)) => ConnectorError::other(err, Some(ErrorKind::TransientError)),
        _ => ConnectorError::other(err, None),
    }
}

/// The first error of type `E` in `err`'s chain of sources.
fn find<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_in_roots_are_mozillas_and_need_no_files() {
        let store = Roots::CompiledIn.store();
        assert_eq!(store.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        assert!(store.len() > 100, "{}", store.len());
    }

    #[tokio::test]
    async fn a_closed_port_is_an_io_error_the_sdk_retries() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let connector = Connector::new(Roots::CompiledIn, Some(Duration::from_secs(1)));
        let request = HttpRequest::try_from(
            http::Request::get(format!("http://{addr}/"))
                .body(SdkBody::empty())
                .unwrap(),
        )
        .unwrap();
        let err = connector.call(request).await.unwrap_err();
        assert!(err.is_io(), "{err:?}");
    }
}
