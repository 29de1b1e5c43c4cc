//! The one outbound HTTP client of the gateway and of users' remote auth mode (feature
//! `http-client`): hyper's pooled HTTP/1 client, no proxy, no redirects,
//! `CONNECT_TIMEOUT_MS` per connection (callers bound each call by
//! `REQUEST_TIMEOUT_MS`), plain TCP unless feature `http-tls` adds HTTPS through
//! hyper-rustls on ring, the TLS stack of the DynamoDB client too (one per binary).
//!
//! As deployed the gateway forwards nothing (API Gateway routes to each function), so
//! its Lambda build leaves TLS out: no rustls, no ring, no system roots to read at
//! start. `--features gateway/tls` gives a gateway that forwards to `https://` service
//! URLs too; without it such a URL is refused at start.

use axum::body::Bytes;
use axum::http::Uri;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{join_service_url, ConfigError, HttpClientConfig, Url};

#[cfg(feature = "http-tls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "http-tls"))]
type Connector = HttpConnector;

/// A pooled client; cheap to clone, shared by every request.
pub type Client = hyper_util::client::legacy::Client<Connector, Full<Bytes>>;

/// Whether this build can forward to `https://` URLs.
pub const TLS: bool = cfg!(feature = "http-tls");

/// The client for `http`'s bounds. Connections stay open for
/// [`HttpClientConfig::POOL_IDLE_TIMEOUT`] between requests.
pub fn build(http: &HttpClientConfig) -> Result<Client, ConfigError> {
    let mut tcp = HttpConnector::new();
    tcp.set_connect_timeout(Some(http.connect_timeout));
    tcp.set_nodelay(true);
    tcp.enforce_http(!TLS);
    #[cfg(feature = "http-tls")]
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|err| ConfigError(format!("cannot read the system's TLS roots: {err}")))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    #[cfg(not(feature = "http-tls"))]
    let connector = tcp;
    Ok(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(HttpClientConfig::POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(connector),
    )
}

/// A service's base URL, kept also as the text that request paths are appended to.
pub struct Base {
    url: Url,
    /// `scheme://authority/path` without a trailing slash.
    prefix: String,
}

impl Base {
    /// `url` as the base of `var`'s service; an `https://` one needs the `tls` feature.
    pub fn new(var: &str, url: &Url) -> Result<Self, ConfigError> {
        if url.scheme() == "https" && !TLS {
            return Err(ConfigError(format!(
                "{var} is an https:// URL, but this build has no TLS \
                 (build the gateway with `--features gateway/tls`, or use http://)"
            )));
        }
        Ok(Self {
            url: url.clone(),
            prefix: url.as_str().trim_end_matches('/').to_owned(),
        })
    }

    /// The downstream URI of a request's `path` (starting with `/`) and `query`, as
    /// [`join_service_url`] makes it: ordinary paths are appended as they are, anything
    /// the URL parser would encode goes through it.
    pub fn join(&self, path: &str, query: Option<&str>) -> Option<Uri> {
        let plain = |s: &str, extra: &[u8]| {
            s.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || b"-._~!$&'()*+,;=:@/%".contains(&b)
                    || extra.contains(&b)
            })
        };
        let text = if plain(path, b"") && query.is_none_or(|q| plain(q, b"?")) {
            match query {
                Some(query) => format!("{}{path}?{query}", self.prefix),
                None => format!("{}{path}", self.prefix),
            }
        } else {
            join_service_url(&self.url, path, query).into()
        };
        Uri::try_from(text).ok()
    }
}

/// `request` through `client`, its answer's head due by `deadline` (`timeout` after the
/// call began, named in the error): the answer, or why there is none, causes included.
pub async fn send(
    client: &Client,
    request: hyper::Request<Full<Bytes>>,
    deadline: tokio::time::Instant,
    timeout: std::time::Duration,
) -> Result<hyper::Response<hyper::body::Incoming>, String> {
    match tokio::time::timeout_at(deadline, client.request(request)).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(err)) => Err(Chain(&err).to_string()),
        Err(_) => Err(timed_out(timeout)),
    }
}

/// Why a call that outlasted `timeout` failed.
pub fn timed_out(timeout: std::time::Duration) -> String {
    format!("no answer within {timeout:?}")
}

/// An error with its sources, `outer: inner: innermost` (hyper's own messages say
/// little without their causes).
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(url: &str) -> Base {
        Base::new("USER_SERVICE_URL", &Url::parse(url).unwrap()).unwrap()
    }

    #[test]
    fn joins_as_the_url_parser_does() {
        for prefix in [
            "http://127.0.0.1:3001",
            "http://127.0.0.1:9000/lambda-url/users",
        ] {
            let base = base(prefix);
            let url = Url::parse(prefix).unwrap();
            for (path, query) in [
                ("/users/1", None),
                ("/users", Some("limit=2&cursor=abc%3D")),
                ("/users/a b", None),
                ("/users/a\\b", None),
                ("/users/{x}", Some("q=\"<>\"")),
                ("/users/%41b", Some("a?b")),
                ("/", None),
            ] {
                let fast = base.join(path, query).map(|u| u.to_string());
                let slow = join_service_url(&url, path, query).to_string();
                assert_eq!(
                    fast.as_deref(),
                    Some(slow.as_str()),
                    "{prefix} {path} {query:?}"
                );
            }
        }
    }

    #[test]
    fn an_https_base_needs_the_tls_feature() {
        let url = Url::parse("https://users.example.com").unwrap();
        let built = Base::new("USER_SERVICE_URL", &url);
        assert_eq!(built.is_ok(), TLS);
        if let Err(err) = built {
            assert!(
                err.to_string()
                    .contains("USER_SERVICE_URL is an https:// URL"),
                "{err}"
            );
        }
    }
}
