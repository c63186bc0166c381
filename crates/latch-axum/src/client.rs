//! The client's address, for throttling and the devices list: the
//! connection's peer, or (behind a reverse proxy you name) the address the
//! proxy says it forwarded for.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use http::HeaderMap;
use http::request::Parts;
use ipnet::IpNet;

/// The address of the client that sent the request.
///
/// Under a [`SessionLayer`](crate::SessionLayer) this is the address the layer
/// recorded for the session: the connection's peer, or, when the peer is one
/// of the layer's [`TrustedProxies`], the client that proxy forwarded for.
/// Elsewhere it is the connection's peer. An IPv4 client of a dual-stack
/// listener is given as its IPv4 address, not `::ffff:a.b.c.d`.
///
/// `None` when the app is not served with
/// [`into_make_service_with_connect_info::<SocketAddr>()`](axum::Router::into_make_service_with_connect_info)
/// (in-process tests with `oneshot`, for instance): axum only knows the peer
/// when asked to record it.
///
/// # Example
/// ```
/// use latch_axum::ClientIp;
///
/// async fn whoami(ClientIp(ip): ClientIp) -> String {
///     ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(client) = crate::service::request_client(&parts.headers, &parts.extensions) {
            return Ok(client);
        }
        Ok(ClientIp(peer(&parts.extensions)))
    }
}

/// The connection's peer address, if the server recorded it.
pub(crate) fn peer(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical())
}

/// Which header a trusted proxy puts the client's address in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load
    /// balancers).
    #[default]
    XForwardedFor,
    /// The standard `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// The reverse proxies whose word on the client's address is believed.
///
/// Behind a reverse proxy every connection comes from the proxy, so the
/// client's address is in a header the proxy adds. Anyone can send that
/// header, so it is read only when the connection comes from one of these
/// addresses, and then from the right: each trusted hop vouches for the entry
/// before it, and the first address that is not a trusted proxy is the
/// client. Entries further left were written by the client and are ignored.
///
/// Give the addresses your proxies connect from (single addresses or CIDR
/// ranges); with none, the header is never read. The app must still be served
/// with [`into_make_service_with_connect_info::<SocketAddr>()`](axum::Router::into_make_service_with_connect_info),
/// since the peer address decides whether the header is believed.
///
/// # Example
/// ```
/// use latch::{MemoryStore, SessionManager};
/// use latch_axum::{ForwardedHeader, SessionLayer, TrustedProxies};
///
/// let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
/// let proxies = TrustedProxies::new(["127.0.0.1", "10.0.0.0/8"])?
///     .header(ForwardedHeader::XForwardedFor);
/// let layer = SessionLayer::new(manager).trusted_proxies(proxies);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// Trust proxies at these addresses or CIDR ranges (`"10.0.0.0/8"`,
    /// `"::1"`), reading [`ForwardedHeader::XForwardedFor`].
    ///
    /// # Errors
    /// [`latch::ErrorKind::InvalidConfig`] naming an entry that is neither.
    pub fn new<I, S>(proxies: I) -> latch::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut nets = Vec::new();
        for proxy in proxies {
            let text = proxy.as_ref().trim();
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    latch::Error::invalid_config(format!(
                        "trusted proxy {text:?} is neither an IP address nor a CIDR range \
                         (write it like 10.0.0.5, 10.0.0.0/8 or ::1)"
                    ))
                })?;
            nets.push(canonical_net(net));
        }
        Ok(Self {
            nets,
            header: ForwardedHeader::default(),
        })
    }

    /// Read the client's address from `header` instead.
    #[must_use]
    pub fn header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub(crate) fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        // A header repeated on several lines is one list, in order.
        let lines: Vec<&[u8]> = headers
            .get_all(name)
            .iter()
            .map(http::HeaderValue::as_bytes)
            .collect();
        let mut client = peer;
        for line in lines.iter().rev() {
            let Ok(line) = std::str::from_utf8(line) else {
                return Some(client);
            };
            for element in line.rsplit(',') {
                let hop = match self.header {
                    ForwardedHeader::XForwardedFor => parse_hop(element),
                    ForwardedHeader::Forwarded => forwarded_for(element),
                };
                // An entry that is not an address ("unknown", an obfuscated
                // name, garbage): nobody vouches for what lies beyond it, so
                // the last address we could believe is the client.
                let Some(hop) = hop else {
                    return Some(client);
                };
                client = hop;
                if !self.trusts(client) {
                    return Some(client);
                }
            }
        }
        Some(client)
    }
}

/// `::ffff:10.0.0.0/104` and `10.0.0.0/8` mean the same proxies; peers are
/// compared in canonical form, so ranges are too.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
            Some(v4) if v6.prefix_len() >= 96 => {
                ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4)
            }
            _ => net,
        },
        IpNet::V4(_) => net,
    }
}

/// One hop's address: `192.0.2.1`, `2001:db8::1`, or with a port
/// (`192.0.2.1:443`, `[2001:db8::1]:443`) as some proxies write it.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim_matches([' ', '\t']);
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
        })?;
    Some(ip.to_canonical())
}

/// The `for=` parameter of one `Forwarded` element
/// (`for=192.0.2.60;proto=https`, `For="[2001:db8::1]:4711"`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if !name.trim_matches([' ', '\t']).eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.trim_matches([' ', '\t']);
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        parse_hop(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &str, lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|_| unreachable!()),
                line.parse().unwrap_or_else(|_| unreachable!()),
            );
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(["10.0.0.0/8", "::1"]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(proxies().client(ip("198.51.100.1"), &h), ip("198.51.100.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        // The client wrote "1.2.3.4" itself; the proxy appended its real address.
        let h = headers("x-forwarded-for", &["1.2.3.4, 198.51.100.7", "10.1.1.1"]);
        assert_eq!(proxies().client(ip("10.0.0.2"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        assert_eq!(
            proxies().client(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn garbage_stops_at_the_last_believable_address() {
        let h = headers("x-forwarded-for", &["nonsense, 10.9.9.9"]);
        assert_eq!(proxies().client(ip("10.0.0.2"), &h), ip("10.9.9.9"));
        let h = headers("x-forwarded-for", &["198.51.100.7, , 10.9.9.9"]);
        assert_eq!(proxies().client(ip("10.0.0.2"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        let h = headers("x-forwarded-for", &["[2001:db8::5]:443"]);
        assert_eq!(proxies().client(ip("::1"), &h), ip("2001:db8::5"));
        let h = headers("x-forwarded-for", &["198.51.100.7:5000"]);
        assert_eq!(proxies().client(ip("::1"), &h), ip("198.51.100.7"));
        let h = headers("x-forwarded-for", &["::ffff:198.51.100.7"]);
        assert_eq!(proxies().client(ip("::1"), &h), ip("198.51.100.7"));
        let mapped = TrustedProxies::new(["::ffff:10.0.0.0/104"]).unwrap_or_else(|e| panic!("{e}"));
        let h = headers("x-forwarded-for", &["198.51.100.7"]);
        assert_eq!(mapped.client(ip("10.2.3.4"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn the_forwarded_header_is_read_when_chosen() {
        let p = proxies().header(ForwardedHeader::Forwarded);
        let h = headers(
            "forwarded",
            &[r#"for=1.2.3.4, For="[2001:db8::7]:4711";proto=https, for=10.3.3.3"#],
        );
        assert_eq!(p.client(ip("10.0.0.2"), &h), ip("2001:db8::7"));
        // X-Forwarded-For is not consulted then.
        let h = headers("x-forwarded-for", &["198.51.100.7"]);
        assert_eq!(p.client(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        let h = headers("forwarded", &["for=unknown"]);
        assert_eq!(p.client(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn no_peer_means_no_address() {
        let h = headers("x-forwarded-for", &["198.51.100.7"]);
        assert_eq!(proxies().client(None, &h), None);
    }

    #[test]
    fn bad_entries_are_refused_with_an_example() {
        let err = TrustedProxies::new(["10.0.0.0/33"]).unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/8"), "{err}");
        assert!(TrustedProxies::new(["proxy.internal"]).is_err());
    }
}
