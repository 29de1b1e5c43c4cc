//! Who a request comes from, for counting login attempts per client address.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use lambda_http::request::RequestContext;

/// The client's address, when it can be known: API Gateway's `sourceIp` in Lambda,
/// else the TCP peer. A loopback peer is a local proxy (the local gateway), so its
/// `X-Forwarded-For` is believed: the last entry, the one that proxy added. Requests
/// without either (tests calling the router directly) have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Self(client_ip(&parts.extensions, &parts.headers)))
    }
}

/// See [`ClientIp`].
pub fn client_ip(extensions: &Extensions, headers: &HeaderMap) -> Option<IpAddr> {
    match extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) => return parse(ctx.http.source_ip.as_deref()),
        Some(RequestContext::ApiGatewayV1(ctx)) => return parse(ctx.identity.source_ip.as_deref()),
        _ => {}
    }
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    if peer.is_loopback() {
        if let Some(forwarded) = last_forwarded(headers) {
            return Some(forwarded);
        }
    }
    Some(peer)
}

fn parse(ip: Option<&str>) -> Option<IpAddr> {
    ip?.trim().parse().ok()
}

/// The last address of the last `X-Forwarded-For` header.
fn last_forwarded(headers: &HeaderMap) -> Option<IpAddr> {
    let value = headers.get_all("x-forwarded-for").iter().next_back()?;
    parse(value.to_str().ok()?.rsplit(',').next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn from_peer(peer: &str, forwarded: &[&str]) -> Option<IpAddr> {
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        client_ip(&extensions, &headers)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_remote_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(from_peer("198.51.100.4:5000", &[]), ip("198.51.100.4"));
        assert_eq!(
            from_peer("198.51.100.4:5000", &["203.0.113.9"]),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn a_loopback_peer_is_a_proxy_whose_last_forwarded_hop_is_the_client() {
        assert_eq!(from_peer("127.0.0.1:5000", &[]), ip("127.0.0.1"));
        assert_eq!(
            from_peer("127.0.0.1:5000", &["203.0.113.9"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            from_peer("127.0.0.1:5000", &["10.9.9.9, 203.0.113.9"]),
            ip("203.0.113.9"),
            "earlier hops are whatever the client sent"
        );
        assert_eq!(
            from_peer("[::1]:5000", &["1.1.1.1", " 2001:db8::1 "]),
            ip("2001:db8::1")
        );
        assert_eq!(from_peer("127.0.0.1:5000", &["not-an-ip"]), ip("127.0.0.1"));
    }

    #[test]
    fn without_peer_or_request_context_there_is_no_address() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        assert_eq!(client_ip(&Extensions::new(), &headers), None);
    }
}
