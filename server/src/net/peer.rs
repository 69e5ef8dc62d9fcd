//! Who is on the other end of a request: the client's address and whether it came over https.
//!
//! Behind a load balancer the TCP peer is the balancer; the client's address and scheme are in
//! its `X-Forwarded-For` and `X-Forwarded-Proto` headers. Anyone can send those headers, so they
//! are believed only from a peer in `[server] trusted_proxies`; from anyone else the TCP peer is
//! the client. Of `X-Forwarded-For` the rightmost address that is not itself a trusted proxy is
//! taken: what is left of it was written by the client and proves nothing.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use tracing::Instrument as _;

use crate::AppState;

/// The caller's address and scheme, as a request extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The client's address.
    pub addr: IpAddr,
    /// Whether the client reached MONTI over https (directly or at the trusted proxy).
    pub https: bool,
}

impl Peer {
    /// The peer of a connection from `socket` carrying `headers`, on a listener that is
    /// (`tls`) or is not serving TLS itself.
    pub fn of(socket: SocketAddr, headers: &HeaderMap, tls: bool, trusted: &[IpNet]) -> Peer {
        let direct = Peer {
            addr: socket.ip().to_canonical(),
            https: tls,
        };
        let is_trusted = |addr: &IpAddr| trusted.iter().any(|net| net.contains(addr));
        if !is_trusted(&direct.addr) {
            return direct;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|part| part.trim().parse::<IpAddr>().ok())
            .map(|addr| addr.to_canonical())
            .collect();
        let addr = forwarded
            .iter()
            .rev()
            .find(|addr| !is_trusted(addr))
            .or(forwarded.first())
            .copied()
            .unwrap_or(direct.addr);
        // The last proxy's word on the scheme (each appends its own).
        let https = headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .next_back()
            .map_or(tls, |proto| proto.trim().eq_ignore_ascii_case("https"));
        Peer { addr, https }
    }
}

/// Records the [`Peer`] on every request and names the client in everything logged for it.
pub async fn layer(
    State(state): State<AppState>,
    ConnectInfo(socket): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = Peer::of(
        socket,
        request.headers(),
        state.config.server.tls(),
        &state.trusted_proxies,
    );
    request.extensions_mut().insert(peer);
    let span = tracing::info_span!(
        "request",
        client = %peer.addr,
        scheme = if peer.https { "https" } else { "http" }
    );
    next.run(request).instrument(span).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        map
    }

    fn socket(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 40_000)
    }

    #[test]
    fn forwarded_headers_from_strangers_are_ignored() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let forged = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        let peer = Peer::of(socket("192.0.2.7"), &forged, false, &trusted);
        assert_eq!(peer.addr, "192.0.2.7".parse::<IpAddr>().expect("ip"));
        assert!(!peer.https);
        let none = Peer::of(socket("192.0.2.7"), &forged, false, &[]);
        assert_eq!(none.addr, "192.0.2.7".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_the_scheme() {
        let trusted: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().expect("net"),
            "127.0.0.1/32".parse().expect("net"),
        ];
        // The client claims an address of its own; the balancer appends the real one, and an
        // inner trusted hop appends the balancer's.
        let forwarded = headers(&[
            ("x-forwarded-for", "198.51.100.1, 203.0.113.9"),
            ("x-forwarded-for", "10.1.2.3"),
            ("x-forwarded-proto", "http, https"),
        ]);
        let peer = Peer::of(socket("10.0.0.2"), &forwarded, false, &trusted);
        assert_eq!(peer.addr, "203.0.113.9".parse::<IpAddr>().expect("ip"));
        assert!(peer.https);
        // Without the headers the proxy itself is the peer.
        let bare = Peer::of(socket("127.0.0.1"), &HeaderMap::new(), true, &trusted);
        assert_eq!(bare.addr, "127.0.0.1".parse::<IpAddr>().expect("ip"));
        assert!(bare.https);
        // IPv4 mapped into IPv6 is the same address.
        let mapped = Peer::of(socket("::ffff:10.0.0.2"), &forwarded, false, &trusted);
        assert_eq!(mapped.addr, "203.0.113.9".parse::<IpAddr>().expect("ip"));
    }
}
