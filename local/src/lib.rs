//! The local stack: the three function routers served on loopback ports, sharing one
//! process (and so one signing secret and one set of stores).

pub mod config;
pub mod serve;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use mail::{Mailbox, MailerKind};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use outbound::config::AuthMode;

use settings::{ConfigError, Secret, Url};

pub use config::Config;
use edge::server::ServerLimits;
use stores::{KeyStore, Stores};
use tokens::{Ed25519Key, Tokens};

const _: () = assert!(
    2 * users::MAX_PAGE_BYTES <= gateway::MAX_UPSTREAM_BODY_BYTES,
    "a page of GET /users must fit, with room to spare, in what the gateway relays"
);

/// The local stack's CORS origins when `CORS_ALLOWED_ORIGINS` is unset: any, as the
/// services it replaces allowed (no credentials; the API takes bearer tokens).
pub const ANY_ORIGIN: &str = "*";

/// Where each service listens; 0 picks a free port.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub auth: u16,
    pub users: u16,
    pub gateway: u16,
}

impl Ports {
    pub const DEFAULT: Ports = Ports {
        auth: 3000,
        users: 3001,
        gateway: 3002,
    };
    pub const ANY: Ports = Ports {
        auth: 0,
        users: 0,
        gateway: 0,
    };

    /// The defaults, overridden by `AUTH_PORT`, `USERS_PORT` and `GATEWAY_PORT`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let port = |key: &str, default: u16| -> Result<u16, ConfigError> {
            match std::env::var(key) {
                Ok(v) if !v.trim().is_empty() => v
                    .trim()
                    .parse()
                    .map_err(|_| ConfigError(format!("{key} must be a port number, got {v:?}"))),
                _ => Ok(default),
            }
        };
        Ok(Self {
            auth: port("AUTH_PORT", Self::DEFAULT.auth)?,
            users: port("USERS_PORT", Self::DEFAULT.users)?,
            gateway: port("GATEWAY_PORT", Self::DEFAULT.gateway)?,
        })
    }
}

/// A running stack; dropping it (or calling `stop`) shuts every server down.
pub struct Stack {
    pub auth: SocketAddr,
    pub users: SocketAddr,
    pub gateway: SocketAddr,
    /// The mails auth sent (`MAILER=mailbox`, the default), also served at the
    /// gateway's `GET /_aws/ses` (LocalStack's convention).
    pub mailbox: Mailbox,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

impl Stack {
    pub fn auth_url(&self) -> String {
        format!("http://{}", self.auth)
    }

    pub fn users_url(&self) -> String {
        format!("http://{}", self.users)
    }

    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.gateway)
    }

    /// Stops accepting, lets requests in flight finish, and waits for every server.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for server in self.servers.drain(..) {
            let _ = server.await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// What signs the stack's tokens: `JWT_SIGNING_KEY` (EdDSA) or `JWT_SECRET` (HS256)
/// when set, else a random Ed25519 key (said in the log). `keys` gets the public key.
pub fn signer(config: &Config, keys: Arc<dyn KeyStore>) -> Result<Tokens, ConfigError> {
    let config = &config.auth.tokens;
    if let Some(tokens) = config.signer(keys.clone())? {
        return Ok(tokens);
    }
    tracing::warn!(
        "neither JWT_SIGNING_KEY nor JWT_SECRET is set: signing EdDSA with a random Ed25519 \
         key; tokens die with this process"
    );
    let tokens = Tokens::ed25519(Ed25519Key::random(), Some(keys), config.access_ttl);
    Ok(tokens.with_issuer(&config.issuer, &config.audience))
}

/// Binds every port, then serves all three routers until stopped. Users checks
/// tokens with auth's own `Tokens` and auth's sessions (one shared session store),
/// or, with `AUTH_MODE=remote`, by calling auth over HTTP (this stack's, unless
/// `AUTH_SERVICE_URL` is set).
pub async fn start(config: &Config, ports: Ports) -> Result<Stack, Box<dyn std::error::Error>> {
    let stores = Stores::from_config(config).await?;
    start_with(config, ports, stores).await
}

/// [`start`] over the given stores instead of those `config` names.
pub async fn start_with(
    config: &Config,
    ports: Ports,
    stores: Stores,
) -> Result<Stack, Box<dyn std::error::Error>> {
    let tokens = Arc::new(signer(config, stores.keys.clone())?);
    let mut listeners = Vec::new();
    for port in [ports.auth, ports.users, ports.gateway] {
        listeners.push(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?);
    }
    let addrs = listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<Result<Vec<_>, _>>()?;
    let wired = wired(config, addrs[0], addrs[1], addrs[2]);
    let auth_state = auth::AppState::new(&stores, tokens.clone(), &wired.auth);
    let authenticator = match config.users.services.auth_mode {
        AuthMode::Local => users::Authenticator::local(tokens, stores.checks.clone()),
        AuthMode::Remote => users::Authenticator::remote_from_config(&wired.users)?,
    };
    let users_state = users::AppState::new(stores.profiles.clone(), authenticator)
        .with_profile_emails(config.users.profile_emails);
    let mail = &wired.auth.mail;
    let mailbox = Mailbox::new(&mail.from);
    let auth_state = match mail.mailer {
        MailerKind::Mailbox => auth_state.with_mailer(Arc::new(mailbox.clone())),
        MailerKind::Ses => auth_state.with_mailer(mail::mailer(mail, &wired.auth.http).await?),
    };
    let gateway_app = gateway::router(gateway::AppState::from_config(&wired.gateway)?);
    let apps = [
        auth::router(auth_state),
        users::router(users_state),
        gateway_app.merge(mailbox.router()),
    ];
    let (stop, stopped) = watch::channel(false);
    let [auth_app, users_app, gateway_app] = apps;
    let [auth_listener, users_listener, gateway_listener]: [TcpListener; 3] = listeners
        .try_into()
        .map_err(|_| "three listeners were bound")?;
    let limits = config.server;
    let servers = vec![
        tokio::spawn(serve::serve(
            auth_listener,
            auth_app,
            limits,
            wait_for(stopped.clone()),
        )),
        tokio::spawn(serve::serve(
            users_listener,
            users_app,
            limits,
            wait_for(stopped.clone()),
        )),
        serve_on_own_thread(
            gateway_listener,
            gateway_app,
            limits,
            wait_for(stopped.clone()),
        )?,
    ];
    Ok(Stack {
        auth: addrs[0],
        users: addrs[1],
        gateway: addrs[2],
        mailbox,
        stop,
        servers,
    })
}

/// `config` with the service URLs pointed at this stack's own auth and users, unless
/// `AUTH_SERVICE_URL` or `USER_SERVICE_URL` were set; browsers on any origin let in
/// unless `CORS_ALLOWED_ORIGINS` was set (an empty value turns CORS off); the gateway's
/// address as the API's public URL unless `PUBLIC_URL` was set; and the gateway, alone
/// of all loopback peers, trusted to name the client to auth, by a key made here
/// ([`TrustedProxies::with_hop_key`](edge::client_ip::TrustedProxies::with_hop_key)).
pub fn wired(config: &Config, auth: SocketAddr, users: SocketAddr, gateway: SocketAddr) -> Config {
    let own = |addr: SocketAddr| {
        Some(Url::parse(&format!("http://{addr}")).expect("a socket address makes a URL"))
    };
    let mut config = config.clone();
    config
        .gateway
        .cors_allowed_origins
        .get_or_insert_with(|| vec![ANY_ORIGIN.to_owned()]);
    config.auth.public_url = config.auth.public_url.take().or_else(|| own(gateway));
    let trusted = config
        .auth
        .trusted_proxies
        .clone()
        .with_hop_key(Secret::random());
    config.auth.trusted_proxies = trusted.clone();
    config.gateway.trusted_proxies = trusted;
    for services in [&mut config.users.services, &mut config.gateway.services] {
        services.auth_url = services.auth_url.take().or_else(|| own(auth));
        services.users_url = services.users_url.take().or_else(|| own(users));
    }
    config
}

async fn wait_for(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// [`serve`] on a thread of its own with a single-threaded runtime, like one nginx
/// worker: the gateway only moves requests and answers between sockets, and on the
/// runtime that auth and users share each forwarded request woke tasks on both of its
/// worker threads (CPU per forwarded request about 20 % higher, BENCHMARKS.md). The
/// returned handle ends when the thread's server does.
fn serve_on_own_thread(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let listener = listener.into_std()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done, ended) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("gateway".into())
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => serve::serve(listener, app, limits, shutdown).await,
                    Err(err) => tracing::error!(error = %err, "gateway cannot listen"),
                }
            });
            let _ = done.send(());
        })?;
    Ok(tokio::spawn(async move {
        let _ = ended.await;
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway's server runs on its own thread, and stops with the stack.
    #[tokio::test]
    async fn a_server_on_its_own_thread_answers_and_stops() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/",
            axum::routing::get(|| async {
                std::thread::current().name().unwrap_or("-").to_owned()
            }),
        );
        let (stop, stopped) = watch::channel(false);
        let server =
            serve_on_own_thread(listener, app, ServerLimits::default(), wait_for(stopped)).unwrap();
        let answer = reqwest::get(format!("http://{addr}/")).await.unwrap();
        assert_eq!(answer.text().await.unwrap(), "gateway");
        assert_ne!(std::thread::current().name(), Some("gateway"));
        stop.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .expect("the server stops")
            .unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "no longer listening"
        );
    }
}
