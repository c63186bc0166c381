//! The service: start a session before the handler, finish it after.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::header::Entry;
use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, USER_AGENT, VARY};
use http::{HeaderMap, HeaderValue, Request};
use latch::{Finished, RawRequest, SessionManager};
use pin_project_lite::pin_project;
use std::cell::OnceCell;
use tokio::task::futures::TaskLocalFuture;
use tower_service::Service;

use crate::client::{ClientIp, TrustedProxies, peer};
use crate::error::SessionError;

/// The service made by [`SessionLayer`](crate::SessionLayer).
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    manager: SessionManager,
    proxies: Arc<TrustedProxies>,
}

impl<S> SessionService<S> {
    pub(crate) fn new(inner: S, manager: SessionManager, proxies: Arc<TrustedProxies>) -> Self {
        Self {
            inner,
            manager,
            proxies,
        }
    }
}

impl<S, B> Service<Request<B>> for SessionService<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if let Some(endpoint) = crate::dbsc::endpoint(&self.manager, &req) {
            let client = ClientIp(self.proxies.client(peer(req.extensions()), req.headers()));
            let future = crate::dbsc::answer(&self.manager, &req, client, endpoint);
            return ResponseFuture {
                state: FutureState::Finishing { future },
            };
        }
        // Nothing is read, parsed or allocated for the session here: the
        // handler's future runs with a slot (a task-local, held inline in this
        // future) from which the first extractor that asks makes the session.
        let slot = Slot {
            manager: self.manager.clone(),
            proxies: Arc::clone(&self.proxies),
            session: OnceCell::new(),
        };
        // Called here, on the service `poll_ready` readied: the inner future
        // owns what it needs, so no clone of the service is taken (one
        // allocation per request for an axum route).
        ResponseFuture {
            state: FutureState::Handler {
                future: SLOT.scope(slot, self.inner.call(req)),
            },
        }
    }
}

tokio::task_local! {
    /// The session slot of the request being handled (see [`Slot`]).
    static SLOT: Slot;
}

/// What the layer gives one request: the manager and proxies to make its
/// session from, and the session once an extractor (or the CSRF layer) made
/// it. A request whose handler never asks costs no allocation at all.
struct Slot {
    manager: SessionManager,
    proxies: Arc<TrustedProxies>,
    session: OnceCell<latch::Session>,
}

/// The session of the request being handled, made on first use from its
/// headers and extensions; `None` outside a [`SessionLayer`](crate::SessionLayer).
pub(crate) fn request_session(
    headers: &HeaderMap,
    extensions: &http::Extensions,
) -> Option<latch::Session> {
    SLOT.try_with(|slot| {
        slot.session
            .get_or_init(|| {
                let client = ClientIp(slot.proxies.client(peer(extensions), headers));
                slot.manager.start_raw(raw_request(headers, client))
            })
            .clone()
    })
    .ok()
}

/// The client of the request being handled, as the layer's trusted proxies
/// say; `None` outside a [`SessionLayer`](crate::SessionLayer).
pub(crate) fn request_client(
    headers: &HeaderMap,
    extensions: &http::Extensions,
) -> Option<ClientIp> {
    SLOT.try_with(|slot| ClientIp(slot.proxies.client(peer(extensions), headers)))
        .ok()
}

pin_project! {
    /// The future of [`SessionService`]: the handler's response, then (only if
    /// the handler used the session) the session's save and headers.
    ///
    /// Written out rather than boxed so that a request that never touches its
    /// session costs no allocation and no copy of the handler's future.
    pub struct ResponseFuture<F> {
        #[pin]
        state: FutureState<F>,
    }
}

pin_project! {
    #[project = FutureStateProj]
    enum FutureState<F> {
        Handler {
            #[pin]
            future: TaskLocalFuture<Slot, F>,
        },
        Finishing {
            future: Pin<Box<dyn Future<Output = Response> + Send>>,
        },
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseFuture(..)")
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                FutureStateProj::Handler { mut future } => {
                    let Ok(response) = std::task::ready!(future.as_mut().poll(cx));
                    let Some(slot) = future.take_value() else {
                        // Polled again after completing: a caller bug; answer
                        // rather than panic.
                        return Poll::Ready(Ok(
                            http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
                        ));
                    };
                    let Some(session) = slot.session.into_inner() else {
                        return Poll::Ready(Ok(response));
                    };
                    if session.is_untouched() {
                        return Poll::Ready(Ok(response));
                    }
                    let manager = slot.manager;
                    // Most requests only read: finished here, with nothing
                    // boxed and no second lock to wait for.
                    if let Some(finished) = manager.finish_now(&session) {
                        return Poll::Ready(Ok(respond(response, finished)));
                    }
                    let future =
                        Box::pin(async move { respond(response, manager.finish(&session).await) });
                    this.state.set(FutureState::Finishing { future });
                }
                FutureStateProj::Finishing { future } => {
                    return future.as_mut().poll(cx).map(Ok);
                }
            }
        }
    }
}

/// The request's cookies and client facts as latch reads them: header
/// values are reference-counted, so this copies nothing, and nothing is
/// parsed until a handler uses the session.
pub(crate) fn raw_request(headers: &HeaderMap, client: ClientIp) -> RawRequest {
    let mut raw = RawRequest::new();
    for value in headers.get_all(COOKIE) {
        raw.cookie_header(value.clone());
    }
    if let Some(ua) = headers.get(USER_AGENT) {
        raw.user_agent(ua.clone());
    }
    if let ClientIp(Some(ip)) = client {
        raw.ip(ip);
    }
    raw
}

/// The handler's response with the session's headers, or the error's.
fn respond(response: Response, finished: latch::Result<Finished>) -> Response {
    match finished {
        Ok(finished) => apply(response, finished),
        Err(err) => SessionError::from(err).into_response(),
    }
}

/// Put the session's headers on the handler's response.
fn apply(mut response: Response, finished: Finished) -> Response {
    let headers = response.headers_mut();
    // Room for everything added below at once: one growth of the map at
    // most, rather than one per header.
    headers.reserve(finished.headers.len() + finished.other_cookies.len() + 3);
    for (name, value) in &finished.headers {
        match HeaderValue::from_str(value) {
            Ok(value) => {
                headers.append(*name, value);
            }
            Err(_) => tracing::error!(header = name, "latch produced an invalid header value"),
        }
    }
    if finished.vary_cookie {
        add_vary_cookie(headers);
    }
    // A page that shows a signed-in user's data must not be kept by any
    // cache (a shared one, or the browser's for "back" after sign-out), unless
    // the handler decided its caching itself.
    if finished.signed_in {
        if let Entry::Vacant(entry) = headers.entry(CACHE_CONTROL) {
            entry.insert(HeaderValue::from_static("no-store"));
        }
    }
    let cookies = finished
        .set_cookie
        .into_iter()
        .chain(finished.other_cookies);
    let mut any = false;
    for cookie in cookies {
        // Handed over, not copied: latch sizes the string exactly, so the
        // bytes become the header value without another allocation.
        let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(cookie)) else {
            // Cookie values are base64url and attributes are validated at start-up,
            // so this cannot happen; refuse rather than send a broken header.
            tracing::error!("latch produced a Set-Cookie value that is not a valid header");
            return http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        response.headers_mut().append(SET_COOKIE, value);
        any = true;
    }
    if any {
        // A response that sets a cookie is never stored by a cache, whatever
        // the handler chose.
        match response.headers_mut().entry(CACHE_CONTROL) {
            Entry::Occupied(mut entry) => {
                let no_store = entry.iter().any(|v| {
                    v.to_str()
                        .is_ok_and(|s| s.to_ascii_lowercase().contains("no-store"))
                });
                if !no_store {
                    entry.insert(HeaderValue::from_static("no-store"));
                }
            }
            Entry::Vacant(entry) => {
                entry.insert(HeaderValue::from_static("no-store"));
            }
        }
    }
    response
}

/// Add `Vary: Cookie` unless a `Vary` value already covers it (one lookup).
fn add_vary_cookie(headers: &mut HeaderMap) {
    match headers.entry(VARY) {
        Entry::Occupied(mut entry) => {
            let present = entry.iter().any(|v| {
                v.to_str().is_ok_and(|s| {
                    s.split(',')
                        .any(|t| t.trim() == "*" || t.trim().eq_ignore_ascii_case("cookie"))
                })
            });
            if !present {
                entry.append(HeaderValue::from_static("Cookie"));
            }
        }
        Entry::Vacant(entry) => {
            entry.insert(HeaderValue::from_static("Cookie"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    #[test]
    fn vary_is_not_duplicated() {
        let mut h = HeaderMap::new();
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding, cookie"));
        add_vary_cookie(&mut h);
        assert_eq!(h.get_all(VARY).iter().count(), 1);
        let mut h = HeaderMap::new();
        add_vary_cookie(&mut h);
        assert_eq!(h.get(VARY).unwrap(), "Cookie");
    }

    #[test]
    fn body_type_is_axum_body() {
        // Compile-time check that error responses and handler responses agree.
        let _: Response<Body> = SessionError::from(latch::Error::store_msg("x")).into_response();
    }
}
