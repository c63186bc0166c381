//! The client's address, for throttling and the devices list.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;

/// The address of the client that sent the request, as the server saw the
/// connection (an IPv4 client of a dual-stack listener as its IPv4 address,
/// not `::ffff:a.b.c.d`); `None` when the app is not served with
/// [`into_make_service_with_connect_info::<SocketAddr>()`](axum::Router::into_make_service_with_connect_info)
/// (in-process tests with `oneshot`, for instance).
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
        Ok(ClientIp(client_ip(parts)))
    }
}

/// The connection's peer address, if the server recorded it.
fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_canonical())
}
