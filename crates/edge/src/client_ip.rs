//! Who a request comes from, for counting login attempts per client address.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderName};
use ipnet::IpNet;
use lambda_http::request::RequestContext;

use settings::{ConfigError, Secret, Vars};

/// The client's address, when it can be known: API Gateway's `sourceIp` in Lambda,
/// else the TCP peer, unless that peer is a trusted proxy ([`TrustedProxies`]): then
/// the `X-Forwarded-For` entry it added. An IPv4-mapped IPv6 address is its IPv4
/// address. Requests without either (tests calling the router directly) have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    Arc<TrustedProxies>: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let trusted = Arc::<TrustedProxies>::from_ref(state);
        Ok(Self(client_ip(&parts.extensions, &parts.headers, &trusted)))
    }
}

/// The header with which the local stack's gateway proves that it is the hop that
/// wrote the `X-Forwarded-For` next to it ([`TrustedProxies::with_hop_key`]).
pub const HOP_KEY: HeaderName = HeaderName::from_static("x-local-hop-key");

/// Whose `X-Forwarded-For` is believed: peers in `TRUSTED_PROXIES` (addresses or
/// networks, comma separated; by default none), and, in the local stack, its own
/// gateway, which sends a key only this process knows. Any other peer, loopback or
/// not, is the client itself, whatever it forwards.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    hop_key: Option<Secret>,
}

impl TrustedProxies {
    /// `TRUSTED_PROXIES`: addresses (`10.0.0.7`, `::1`) or networks (`10.0.0.0/8`).
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let Some(value) = vars.get("TRUSTED_PROXIES") else {
            return Ok(Self::default());
        };
        let nets = value
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .map(|net| net.trunc())
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        ConfigError(format!(
                            "TRUSTED_PROXIES must be addresses or networks (10.0.0.0/8), \
                             comma separated, got {entry:?}"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            nets,
            hop_key: None,
        })
    }

    /// These proxies, and also any request carrying `key` in [`HOP_KEY`]: how the
    /// local stack trusts its own gateway, and no other loopback peer (a port forward
    /// connects from loopback too).
    pub fn with_hop_key(mut self, key: Secret) -> Self {
        self.hop_key = Some(key);
        self
    }

    /// The key a trusted hop of this process sends, if there is one.
    pub fn hop_key(&self) -> Option<&Secret> {
        self.hop_key.as_ref()
    }

    /// Whether a request from `peer` with `headers` came through a trusted proxy.
    fn trusts(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        self.trusts_address(peer)
            || self.hop_key.as_ref().is_some_and(|key| {
                headers
                    .get(HOP_KEY)
                    .is_some_and(|sent| same_bytes(sent.as_bytes(), key.expose().as_bytes()))
            })
    }

    fn trusts_address(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

/// `a == b` in a time that does not depend on where they differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// See [`ClientIp`].
pub fn client_ip(
    extensions: &Extensions,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    match extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => return parse(ctx.http.source_ip.as_deref()),
        Some(RequestContext::ApiGatewayV1(ctx)) => return parse(ctx.identity.source_ip.as_deref()),
        _ => {}
    }
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()?
        .0
        .ip()
        .to_canonical();
    if trusted.trusts(peer, headers)
        && let Some(forwarded) = forwarded_client(headers, trusted)
    {
        return Some(forwarded);
    }
    Some(peer)
}

fn parse(ip: Option<&str>) -> Option<IpAddr> {
    ip?.trim()
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}

/// The client a trusted proxy names: the last address of the last `X-Forwarded-For`
/// header that is not itself a trusted proxy (each proxy appends the peer it saw).
fn forwarded_client(headers: &HeaderMap, trusted: &TrustedProxies) -> Option<IpAddr> {
    let value = headers.get_all("x-forwarded-for").iter().next_back()?;
    let mut hops = value.to_str().ok()?.rsplit(',');
    let first = parse(hops.next())?;
    if !trusted.trusts_address(first) {
        return Some(first);
    }
    let mut last_parsed = first;
    for hop in hops {
        let Some(ip) = parse(Some(hop)) else {
            break;
        };
        if !trusted.trusts_address(ip) {
            return Some(ip);
        }
        last_parsed = ip;
    }
    Some(last_parsed)
}

/// The address the per-address limits count `ip` under: an IPv4 address as it is, an
/// IPv6 address as its /64 (one customer's network, whose hosts pick addresses in it
/// at will).
pub fn limited_address(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trusting(value: &str) -> TrustedProxies {
        let lookup = |key: &str| (key == "TRUSTED_PROXIES").then(|| value.to_owned());
        TrustedProxies::read(&Vars::new(&lookup)).unwrap()
    }

    fn from_peer_with(
        peer: &str,
        forwarded: &[&str],
        trusted: &TrustedProxies,
        extra: &[(&HeaderName, &str)],
    ) -> Option<IpAddr> {
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        for (name, value) in extra {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        client_ip(&extensions, &headers, trusted)
    }

    fn from_peer(peer: &str, forwarded: &[&str], trusted: &TrustedProxies) -> Option<IpAddr> {
        from_peer_with(peer, forwarded, trusted, &[])
    }

    /// The client of a request from `peer` that forwards nothing, no proxy trusted.
    fn alone(peer: &str) -> Option<IpAddr> {
        from_peer(peer, &[], &TrustedProxies::default())
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn by_default_every_peer_is_the_client_whatever_it_forwards_loopback_too() {
        assert_eq!(alone("198.51.100.4:5000"), ip("198.51.100.4"));
        let nobody = TrustedProxies::default();
        for peer in ["198.51.100.4:5000", "127.0.0.1:5000", "[::1]:5000"] {
            let own = peer.parse::<SocketAddr>().unwrap().ip();
            assert_eq!(
                from_peer(peer, &["203.0.113.9"], &nobody),
                Some(own),
                "{peer}"
            );
        }
    }

    #[test]
    fn a_trusted_proxy_names_the_client_in_its_last_forwarded_hop() {
        let proxies = trusting(" 127.0.0.1, 10.0.0.0/8 ,::1");
        let cases: [(&str, &[&str], &str, &str); 7] = [
            (
                "127.0.0.1:5000",
                &[],
                "127.0.0.1",
                "a trusted peer that forwards nothing is the client",
            ),
            (
                "127.0.0.1:5000",
                &["203.0.113.9"],
                "203.0.113.9",
                "the forwarded hop",
            ),
            (
                "10.1.2.3:5000",
                &["10.9.9.9, 203.0.113.9"],
                "203.0.113.9",
                "earlier hops are whatever the client sent",
            ),
            (
                "127.0.0.1:5000",
                &["203.0.113.9, 10.4.4.4"],
                "203.0.113.9",
                "a chain of trusted proxies is walked back to the first untrusted hop",
            ),
            (
                "[::1]:5000",
                &["1.1.1.1", " 2001:db8::1 "],
                "2001:db8::1",
                "the last of several headers",
            ),
            (
                "127.0.0.1:5000",
                &["not-an-ip"],
                "127.0.0.1",
                "an unreadable hop is not believed",
            ),
            (
                "198.51.100.4:5000",
                &["203.0.113.9"],
                "198.51.100.4",
                "an untrusted peer is the client",
            ),
        ];
        for (peer, forwarded, client, why) in cases {
            assert_eq!(from_peer(peer, forwarded, &proxies), ip(client), "{why}");
        }
    }

    #[test]
    fn only_the_hop_that_knows_the_key_is_believed_among_loopback_peers() {
        let key = "k".repeat(Secret::MIN_BYTES);
        let gateway =
            TrustedProxies::default().with_hop_key(Secret::named("key", key.clone()).unwrap());
        let with = |sent: &str| {
            from_peer_with(
                "127.0.0.1:5000",
                &["203.0.113.9"],
                &gateway,
                &[(&HOP_KEY, sent)],
            )
        };
        assert_eq!(with(&key), ip("203.0.113.9"));
        assert_eq!(with("guess"), ip("127.0.0.1"));
        assert_eq!(with(&format!("{key}x")), ip("127.0.0.1"));
        assert_eq!(
            from_peer("127.0.0.1:5000", &["203.0.113.9"], &gateway),
            ip("127.0.0.1"),
            "a port forward's loopback peer without the key"
        );
    }

    #[test]
    fn an_ipv4_mapped_address_is_its_ipv4_address() {
        assert_eq!(alone("[::ffff:198.51.100.4]:5000"), ip("198.51.100.4"));
        let proxies = trusting("127.0.0.1");
        assert_eq!(
            from_peer("[::ffff:127.0.0.1]:5000", &["::ffff:203.0.113.9"], &proxies),
            ip("203.0.113.9"),
            "the mapped loopback is the trusted proxy, the mapped client its IPv4"
        );
    }

    #[test]
    fn limits_count_an_ipv6_client_by_its_64_and_an_ipv4_one_by_its_address() {
        let limited = |s: &str| limited_address(s.parse().unwrap()).to_string();
        assert_eq!(limited("203.0.113.9"), "203.0.113.9");
        assert_eq!(limited("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(
            limited("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "2001:db8:1:2::"
        );
        assert_eq!(limited("2001:db8:1:2::1"), "2001:db8:1:2::");
        assert_ne!(limited("2001:db8:1:3::1"), "2001:db8:1:2::");
    }

    #[test]
    fn unreadable_trusted_proxies_are_refused_naming_the_variable() {
        for bad in ["localhost", "10.0.0.0/33", "10.0.0.1:80", "*"] {
            let lookup = |key: &str| (key == "TRUSTED_PROXIES").then(|| bad.to_owned());
            let err = TrustedProxies::read(&Vars::new(&lookup)).unwrap_err();
            assert!(err.to_string().contains("TRUSTED_PROXIES"), "{bad}: {err}");
        }
        assert!(trusting(" , ").nets.is_empty());
    }

    #[test]
    fn without_peer_or_request_context_there_is_no_address() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        assert_eq!(
            client_ip(&Extensions::new(), &headers, &trusting("127.0.0.1")),
            None
        );
    }
}
