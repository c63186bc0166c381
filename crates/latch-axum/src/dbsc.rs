//! The DBSC registration and refresh paths (see [`latch::dbsc`]), answered by
//! the session layer itself before any handler or other middleware runs: a
//! device proves its key with a signed challenge, so these posts need no CSRF
//! token, and they are never routed to the application.

use std::future::Future;
use std::pin::Pin;

use axum::body::Body;
use axum::response::Response;
use http::header::{HOST, SET_COOKIE};
use http::{HeaderValue, Method, Request, StatusCode};
use latch::SessionManager;
use latch::dbsc::{BindingAnswer, BindingRequest, Endpoint, RESPONSE_HEADER, SESSION_ID_HEADER};

use crate::client::ClientIp;

/// Which DBSC path `req` is a post to, when device-bound sessions are on.
pub(crate) fn endpoint<B>(manager: &SessionManager, req: &Request<B>) -> Option<Endpoint> {
    let binding = manager.device_binding()?;
    if req.method() != Method::POST {
        return None;
    }
    let path = req.uri().path();
    if path == binding.registration() {
        Some(Endpoint::Register)
    } else if path == binding.refresh() {
        Some(Endpoint::Refresh)
    } else {
        None
    }
}

/// Answer a post to a DBSC path. The body is never read.
pub(crate) fn answer<B>(
    manager: &SessionManager,
    req: &Request<B>,
    client: ClientIp,
    endpoint: Endpoint,
) -> Pin<Box<dyn Future<Output = Response> + Send>> {
    let raw = crate::service::raw_request(req.headers(), client);
    // One value each: with two, which one a proxy or the app reads is
    // anyone's guess, so neither is.
    let header = |name: &str| {
        let mut values = req.headers().get_all(name).iter();
        match (values.next(), values.next()) {
            (first, None) => Ok(first.map(|v| v.as_bytes().to_vec())),
            (Some(_), Some(_)) | (None, Some(_)) => Err(()),
        }
    };
    let (Ok(session_id), Ok(proof)) = (header(SESSION_ID_HEADER), header(RESPONSE_HEADER)) else {
        tracing::debug!("device binding request with a repeated header refused");
        let answer = BindingAnswer {
            status: 400,
            headers: vec![("cache-control", "no-store".into())],
            set_cookies: Vec::new(),
            body: None,
        };
        return Box::pin(std::future::ready(response(answer)));
    };
    let request = BindingRequest {
        session_id,
        proof,
        origin: origin(manager, req),
    };
    let manager = manager.clone();
    Box::pin(async move {
        let answer = manager.answer_device_binding(raw, endpoint, &request).await;
        response(answer)
    })
}

/// `https://host[:port]` from the request's `Host` (plain `http` only in
/// latch's insecure development mode), if it is a plausible authority.
fn origin<B>(manager: &SessionManager, req: &Request<B>) -> Option<String> {
    let host = req.headers().get(HOST)?.to_str().ok()?;
    let authority: http::uri::Authority = host.parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let scheme = if manager.cookie_config().is_secure() {
        "https"
    } else {
        "http"
    };
    Some(format!(
        "{scheme}://{}",
        authority.as_str().to_ascii_lowercase()
    ))
}

fn response(answer: BindingAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = Response::new(answer.body.map_or_else(Body::empty, Body::from));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
    for cookie in answer.set_cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(SET_COOKIE, value);
        }
    }
    response
}
