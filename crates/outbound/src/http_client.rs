//! The one outbound HTTP client of the gateway and of users' remote auth mode (feature
//! `http-client`): a [`Service`] per downstream base URL, each with its own pool of
//! HTTP/1 keep-alive connections, no proxy, no redirects, `CONNECT_TIMEOUT_MS` per
//! connection and one deadline per call (answer and body together). Plain TCP unless
//! feature `http-tls` adds HTTPS through hyper-rustls on ring, the TLS stack of the
//! DynamoDB client too (one per binary).
//!
//! A call drives its connection in the caller's own task (hyper's connection future,
//! polled beside the answer) and reads the whole answer before it hands the connection
//! back to the pool: no connection task, so no hand-off to another task or worker
//! thread and back for every request, which was most of what a forwarded request cost
//! beyond the sockets with a pooled client that spawns one (BENCHMARKS.md).
//!
//! As deployed the gateway forwards nothing (API Gateway routes to each function), so
//! its Lambda build leaves TLS out: no rustls, no ring, no system roots to read at
//! start. `--features gateway/tls` gives a gateway that forwards to `https://` service
//! URLs too; without it such a URL is refused at start.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderValue, Response, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::ServiceExt;

use crate::config::join_service_url;

use settings::{ConfigError, HttpClientConfig, Url};

/// What dials a service's connections: TCP, and TLS where the build has it. Cheap to
/// clone; one per process, shared by its services.
#[cfg(feature = "http-tls")]
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "http-tls"))]
pub type Connector = HttpConnector;

/// One open connection: its request handle and the connection itself, which only makes
/// progress while a call polls it.
type Stream = <Connector as tower::Service<Uri>>::Response;
/// Boxed: it is big (hundreds of bytes), and moved in and out of the pool and held
/// across every await of a call, whose future would otherwise carry several copies.
type Connection = Pin<Box<http1::Connection<Stream, Full<Bytes>>>>;

/// Whether this build can forward to `https://` URLs.
pub const TLS: bool = cfg!(feature = "http-tls");

/// The most idle connections kept per service; more are closed when handed back.
const MAX_IDLE: usize = 256;

/// A downstream service at a base URL, with its pool of open connections. Shared by
/// every request (behind the caller's `Arc`).
pub struct Service {
    url: Url,
    /// The base URL's path without a trailing slash: what request paths are appended to.
    prefix: String,
    /// `scheme://authority/`, what the connector dials.
    origin: Uri,
    /// The `Host` header of every request.
    host: HeaderValue,
    connector: Connector,
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    sender: http1::SendRequest<Full<Bytes>>,
    connection: Connection,
    since: Instant,
}

/// A call's answer, its body read in full.
pub type Answer = Response<Bytes>;

/// Why a call has no (usable) answer.
#[derive(Debug)]
pub enum Failure {
    /// No connection, or the connection failed before an answer's head arrived.
    Unreachable(String),
    /// The deadline passed before the answer was complete.
    TimedOut(Duration),
    /// The answer's body is longer than the caller's limit.
    TooBig(usize),
    /// The answer's body broke off.
    Broken(String),
}

impl Failure {
    /// Whether the service failed to answer (unreachable or too slow), rather than
    /// answering something unusable: what a circuit breaker counts.
    pub fn is_no_answer(&self) -> bool {
        matches!(self, Self::Unreachable(_) | Self::TimedOut(_))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(cause) => f.write_str(cause),
            Self::TimedOut(timeout) => f.write_str(&timed_out(*timeout)),
            Self::TooBig(limit) => write!(f, "answered a body over {limit} bytes"),
            Self::Broken(cause) => write!(f, "answer could not be read: {cause}"),
        }
    }
}

/// The bytes a path keeps as they are in a URI: letters, digits and `-._~!$&'()*+,;=:@/%`.
const PLAIN_PATH: [bool; 256] = plain_bytes(b"");

/// The same for a query, which may also hold `?`.
const PLAIN_QUERY: [bool; 256] = plain_bytes(b"?");

/// A lookup table of [`PLAIN_PATH`]'s bytes and `extra`: one per byte of each forwarded
/// path.
const fn plain_bytes(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let marks = b"-._~!$&'()*+,;=:@/%";
    let mut i = 0;
    while i < marks.len() {
        table[marks[i] as usize] = true;
        i += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

impl Service {
    /// The service at `url`, the value of `var`, dialled through `connector`; an
    /// `https://` one needs the `tls` feature. Connections are kept open for
    /// [`HttpClientConfig::POOL_IDLE_TIMEOUT`] between calls.
    pub fn new(var: &str, url: &Url, connector: &Connector) -> Result<Self, ConfigError> {
        if url.scheme() == "https" && !TLS {
            return Err(ConfigError(format!(
                "{var} is an https:// URL, but this build has no TLS \
                 (build the gateway with `--features gateway/tls`, or use http://)"
            )));
        }
        let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let invalid = || ConfigError(format!("{var} has no usable host: {authority:?}"));
        let origin =
            Uri::try_from(format!("{}://{authority}/", url.scheme())).map_err(|_| invalid())?;
        let host = HeaderValue::from_str(authority).map_err(|_| invalid())?;
        Ok(Self {
            url: url.clone(),
            prefix: url.path().trim_end_matches('/').to_owned(),
            origin,
            host,
            connector: connector.clone(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// The request target (`/path?query`, below the base URL's own path) of a request's
    /// `path` (starting with `/`) and `query`, as [`join_service_url`] makes it:
    /// ordinary paths are appended as they are, anything the URL parser would encode
    /// goes through it.
    pub fn target(&self, path: &str, query: Option<&str>) -> Option<Uri> {
        let plain = |s: &str, allowed: &[bool; 256]| s.bytes().all(|b| allowed[usize::from(b)]);
        let text = if plain(path, &PLAIN_PATH) && query.is_none_or(|q| plain(q, &PLAIN_QUERY)) {
            match query {
                Some(query) => format!("{}{path}?{query}", self.prefix),
                None => format!("{}{path}", self.prefix),
            }
        } else {
            join_service_url(&self.url, path, query)[url::Position::BeforePath..].to_owned()
        };
        Uri::try_from(text).ok()
    }

    /// The service's host, for log lines.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or("-")
    }

    /// `request` (its URI a [`target`](Self::target)) to the service, its whole answer
    /// due by `deadline` (`timeout` after the call began, named in the failure) and its
    /// body at most `limit` bytes.
    pub async fn call(
        &self,
        mut request: hyper::Request<Full<Bytes>>,
        deadline: tokio::time::Instant,
        timeout: Duration,
        limit: usize,
    ) -> Result<Answer, Failure> {
        request
            .headers_mut()
            .insert(header::HOST, self.host.clone());
        tokio::time::timeout_at(deadline, self.exchange(request, limit))
            .await
            .unwrap_or(Err(Failure::TimedOut(timeout)))
    }

    async fn exchange(
        &self,
        request: hyper::Request<Full<Bytes>>,
        limit: usize,
    ) -> Result<Answer, Failure> {
        let pooled = self.checkout();
        let reused = pooled.is_some();
        let (mut sender, connection) = match pooled {
            Some(idle) => (idle.sender, idle.connection),
            None => self.connect().await?,
        };
        let mut connection = Some(connection);
        let sent = drive(&mut connection, sender.try_send_request(request)).await;
        let answer = match sent {
            Ok(answer) => answer,
            Err(mut err) => match err.take_message() {
                // A pooled connection that closed before the request was written: once
                // more on a new one (nothing reached the service).
                Some(request) if reused => {
                    let (fresh, opened) = self.connect().await?;
                    sender = fresh;
                    connection = Some(opened);
                    drive(&mut connection, sender.try_send_request(request))
                        .await
                        .map_err(|err| unreachable(err.into_error()))?
                }
                _ => return Err(unreachable(err.into_error())),
            },
        };
        let (head, mut incoming) = answer.into_parts();
        let declared = head
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(Failure::TooBig(limit));
        }
        let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        while let Some(frame) = drive(&mut connection, incoming.frame()).await {
            let frame = frame.map_err(|err| Failure::Broken(Chain(&err).to_string()))?;
            let Ok(chunk) = frame.into_data() else {
                continue; // trailers: not kept
            };
            if body.len() + chunk.len() > limit {
                return Err(Failure::TooBig(limit));
            }
            body.extend_from_slice(&chunk);
        }
        if let Some(connection) = connection {
            self.checkin(sender, connection);
        }
        Ok(Response::from_parts(head, Bytes::from(body)))
    }

    /// A new connection to the service.
    async fn connect(&self) -> Result<(http1::SendRequest<Full<Bytes>>, Connection), Failure> {
        let stream = self
            .connector
            .clone()
            .oneshot(self.origin.clone())
            .await
            .map_err(unreachable)?;
        let (sender, connection) = http1::handshake(stream).await.map_err(unreachable)?;
        Ok((sender, Box::pin(connection)))
    }

    /// The most recently used idle connection that is still open, if any.
    fn checkout(&self) -> Option<Idle> {
        loop {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()?;
            if idle.since.elapsed() >= HttpClientConfig::POOL_IDLE_TIMEOUT {
                continue;
            }
            // A close by the service that arrived while nobody polled the connection
            // ends it here rather than under the next request.
            if can_take_another(&idle.sender, &mut idle.connection) {
                return Some(idle);
            }
        }
    }

    /// `connection`, its answer read in full, back to the pool if it can take another
    /// request; the pool's expired connections closed meanwhile.
    fn checkin(&self, sender: http1::SendRequest<Full<Bytes>>, mut connection: Connection) {
        if !can_take_another(&sender, &mut connection) {
            return; // closed (e.g. `Connection: close`)
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle
            .first()
            .is_some_and(|oldest| now - oldest.since >= HttpClientConfig::POOL_IDLE_TIMEOUT)
        {
            idle.retain(|c| now - c.since < HttpClientConfig::POOL_IDLE_TIMEOUT);
        }
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                sender,
                connection,
                since: now,
            });
        }
    }
}

/// Whether `connection` is still open and ready for a request, once it has seen what
/// arrived since it was last polled (one poll, with nobody to wake: nothing waits).
fn can_take_another(sender: &http1::SendRequest<Full<Bytes>>, connection: &mut Connection) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(connection).poll(&mut cx).is_pending() && sender.is_ready()
}

/// A connection that failed, or could not be opened (TCP, or TLS where the build has it).
fn unreachable(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Failure {
    Failure::Unreachable(Chain(err.into().as_ref()).to_string())
}

/// `future`, with `connection` polled beside it so that its I/O makes progress. A
/// connection that ends (closed or failed) is dropped, which settles whatever waits on
/// it.
async fn drive<F: Future>(connection: &mut Option<Connection>, future: F) -> F::Output {
    let mut future = pin!(future);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if let Some(open) = connection.as_mut()
            && Pin::new(open).poll(cx).is_ready()
        {
            *connection = None;
            return future.as_mut().poll(cx);
        }
        Poll::Pending
    })
    .await
}

/// The connector of `http`'s bounds: TCP with no Nagle delay, TLS on ring with the
/// system's roots (read here, once) when the build has it.
pub fn connector(http: &HttpClientConfig) -> Result<Connector, ConfigError> {
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
    Ok(connector)
}

/// Why a call that outlasted `timeout` failed.
fn timed_out(timeout: Duration) -> String {
    format!("no answer within {timeout:?}")
}

/// An error with its sources, `outer: inner: innermost` (hyper's own messages say
/// little without their causes).
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn service(url: &str) -> Service {
        let connector = connector(&HttpClientConfig::default()).unwrap();
        Service::new("USER_SERVICE_URL", &Url::parse(url).unwrap(), &connector).unwrap()
    }

    #[test]
    fn targets_as_the_url_parser_does() {
        for prefix in [
            "http://127.0.0.1:3001",
            "http://127.0.0.1:9000/lambda-url/users",
            "http://127.0.0.1:9000/lambda-url/users/",
        ] {
            let service = service(prefix);
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
                let fast = service.target(path, query).map(|u| u.to_string());
                let slow = join_service_url(&url, path, query);
                assert_eq!(
                    fast.as_deref(),
                    Some(&slow[url::Position::BeforePath..]),
                    "{prefix} {path} {query:?}"
                );
            }
        }
    }

    #[test]
    fn the_host_header_is_the_url_authority() {
        assert_eq!(service("http://127.0.0.1:3001/x").host, "127.0.0.1:3001");
        assert_eq!(service("http://[::1]:80/").host, "[::1]");
        assert_eq!(service("http://users.internal").host, "users.internal");
    }

    #[test]
    fn an_https_url_needs_the_tls_feature() {
        let url = Url::parse("https://users.example.com").unwrap();
        let connector = connector(&HttpClientConfig::default()).unwrap();
        let built = Service::new("USER_SERVICE_URL", &url, &connector);
        assert_eq!(built.is_ok(), TLS);
        if let Err(err) = built {
            assert!(
                err.to_string()
                    .contains("USER_SERVICE_URL is an https:// URL"),
                "{err}"
            );
        }
    }

    /// How a test server answers each request on a connection.
    #[derive(Clone, Copy)]
    enum Answering {
        /// `200` with the request's target and `Host` as the body, keep-alive.
        Echo,
        /// The same, then the connection is closed without saying so beforehand.
        EchoThenClose,
        /// Nothing: the request is read and left unanswered.
        Silence,
        /// `200` with a chunked body of this many bytes.
        Chunked(usize),
        /// `200` declaring a body of this many bytes, and sending none.
        Declared(usize),
    }

    /// A server on loopback answering every request of every connection as `answering`
    /// says; its base URL and the number of connections it accepted.
    async fn server(answering: Answering) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    loop {
                        let mut chunk = [0; 4096];
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                        buffer.drain(..end + 4);
                        let target = head.split(' ').nth(1).unwrap_or("").to_owned();
                        let host = head
                            .lines()
                            .find_map(|l| l.strip_prefix("host: "))
                            .unwrap_or("")
                            .to_owned();
                        let answer = match answering {
                            Answering::Echo | Answering::EchoThenClose => {
                                let body = format!("{target} {host}");
                                format!(
                                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                                    body.len()
                                )
                            }
                            Answering::Silence => continue,
                            Answering::Chunked(n) => format!(
                                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{n:x}\r\n{}\r\n0\r\n\r\n",
                                "x".repeat(n)
                            ),
                            Answering::Declared(n) => {
                                format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n")
                            }
                        };
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                        if matches!(answering, Answering::EchoThenClose) {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    async fn get(service: &Service, path: &str, limit: usize) -> Result<Answer, Failure> {
        let mut request = hyper::Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = service.target(path, None).unwrap();
        let timeout = Duration::from_millis(500);
        service
            .call(
                request,
                tokio::time::Instant::now() + timeout,
                timeout,
                limit,
            )
            .await
    }

    fn text(answer: &Answer) -> &str {
        std::str::from_utf8(answer.body()).unwrap()
    }

    #[tokio::test]
    async fn calls_in_turn_share_one_connection() {
        let (url, accepted) = server(Answering::Echo).await;
        let service = service(&format!("{url}/base/"));
        let authority = url.trim_start_matches("http://");
        for i in 0..5 {
            let answer = get(&service, &format!("/users/{i}"), 1024).await.unwrap();
            assert_eq!(answer.status(), 200);
            assert_eq!(text(&answer), format!("/base/users/{i} {authority}"));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_calls_open_connections_that_are_kept() {
        let (url, accepted) = server(Answering::Echo).await;
        let service = Arc::new(service(&url));
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let service = service.clone();
            calls.spawn(async move { get(&service, "/a", 1024).await });
        }
        while let Some(answer) = calls.join_next().await {
            assert!(text(&answer.unwrap().unwrap()).starts_with("/a "));
        }
        let opened = accepted.load(Ordering::SeqCst);
        assert!((1..=8).contains(&opened), "{opened}");
        for _ in 0..8 {
            get(&service, "/again", 1024).await.unwrap();
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            opened,
            "a kept connection is reused"
        );
    }

    #[tokio::test]
    async fn a_connection_the_service_closed_is_not_reused() {
        let (url, accepted) = server(Answering::EchoThenClose).await;
        let service = service(&url);
        for i in 0..3 {
            let answer = get(&service, "/x", 1024).await.unwrap();
            assert!(text(&answer).starts_with("/x "));
            assert_eq!(accepted.load(Ordering::SeqCst), i + 1);
            // The close reaches the client while it is idle, as with a service that
            // closes idle connections.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_silent_service_times_out_at_the_deadline() {
        let (url, _) = server(Answering::Silence).await;
        let service = service(&url);
        let started = std::time::Instant::now();
        let failure = get(&service, "/", 1024).await.unwrap_err();
        assert!(matches!(failure, Failure::TimedOut(_)), "{failure:?}");
        assert!(failure.is_no_answer());
        assert_eq!(failure.to_string(), "no answer within 500ms");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let failure = get(&service(&url), "/", 1024).await.unwrap_err();
        assert!(matches!(failure, Failure::Unreachable(_)), "{failure:?}");
        assert!(failure.is_no_answer());
        assert!(failure.to_string().contains("onnect"), "{failure}");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_declared_or_counted() {
        for answering in [Answering::Declared(2048), Answering::Chunked(2048)] {
            let (url, _) = server(answering).await;
            let failure = get(&service(&url), "/", 1024).await.unwrap_err();
            assert!(matches!(failure, Failure::TooBig(1024)), "{failure:?}");
            assert!(!failure.is_no_answer());
            assert_eq!(failure.to_string(), "answered a body over 1024 bytes");
        }
        let (url, _) = server(Answering::Chunked(1024)).await;
        let answer = get(&service(&url), "/", 1024).await.unwrap();
        assert_eq!(
            answer.body().len(),
            1024,
            "a body of the limit itself is read"
        );
    }
}
