//! [`CsrfLayer`]: the token and origin checks on every state-changing request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderName, Request, StatusCode};
use http_body_util::BodyExt as _;
use tower_layer::Layer;
use tower_service::Service;

use super::origin::check_origin_with_scheme;
use crate::rejection::{CsrfTokenMismatch, MissingSessionLayer};

/// The form field that carries the token by default.
pub const DEFAULT_FIELD: &str = "csrf_token";

/// The header that carries the token by default (for scripts and APIs).
pub const DEFAULT_HEADER: &str = "x-csrf-token";

/// The largest form body read to find the token by default: 64 KiB.
pub const DEFAULT_MAX_FORM_BYTES: usize = 64 * 1024;

/// Refuses state-changing requests (every method but `GET`, `HEAD`,
/// `OPTIONS` and `TRACE`) that come from another site or lack this session's
/// CSRF token, before the handler runs.
///
/// The token is taken from the `x-csrf-token` header, or else from the
/// `csrf_token` field of an `application/x-www-form-urlencoded` body (read
/// up to 64 KiB, then handed on to the handler unchanged; larger forms get
/// `413`). Put [`Session::csrf_token`](latch::Session::csrf_token) in every
/// form (or the header of every script's request). Refusals answer
/// [`CrossSiteRequest`](crate::rejection::CrossSiteRequest) or
/// [`CsrfTokenMismatch`], both `403`.
///
/// The layer needs the request's session: add it *inside* the
/// [`SessionLayer`](crate::SessionLayer), that is, before it in the chain of
/// `.layer` calls.
///
/// # Example
/// ```
/// use axum::{Router, routing::post};
/// use latch::{MemoryStore, SessionManager};
/// use latch_axum::csrf::CsrfLayer;
/// use latch_axum::SessionLayer;
///
/// let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
/// let app: Router = Router::new()
///     .route("/settings", post(|| async { "saved" }))
///     .layer(CsrfLayer::new().scheme("https"))
///     .layer(SessionLayer::new(manager));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CsrfLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    scheme: Option<String>,
    field: String,
    header: HeaderName,
    max_form_bytes: usize,
    check_token: bool,
}

impl Default for CsrfLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl CsrfLayer {
    /// Check the origin and the token, with the defaults above.
    pub fn new() -> Self {
        Self {
            config: Arc::new(Config {
                scheme: None,
                field: DEFAULT_FIELD.to_owned(),
                header: HeaderName::from_static(DEFAULT_HEADER),
                max_form_bytes: DEFAULT_MAX_FORM_BYTES,
                check_token: true,
            }),
        }
    }

    /// Check the origin only: for JSON APIs that accept no form bodies,
    /// where a cross-site page cannot send the JSON content type without a
    /// CORS preflight this server never grants.
    #[must_use]
    pub fn origin_only(self) -> Self {
        self.with(|c| c.check_token = false)
    }

    /// Require the `Origin` of browsers that send one to use `scheme`
    /// (`"https"` for a site served over TLS, directly or through a proxy).
    /// Without it the scheme is not checked (see
    /// [`check_origin_with_scheme`]).
    #[must_use]
    pub fn scheme(self, scheme: impl Into<String>) -> Self {
        let scheme = scheme.into();
        self.with(|c| c.scheme = Some(scheme))
    }

    /// The form field that carries the token (default `csrf_token`).
    #[must_use]
    pub fn form_field(self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.with(|c| c.field = field)
    }

    /// The header that carries the token (default `x-csrf-token`).
    #[must_use]
    pub fn header(self, header: HeaderName) -> Self {
        self.with(|c| c.header = header)
    }

    /// The largest form body read to find the token (default 64 KiB).
    #[must_use]
    pub fn max_form_bytes(self, bytes: usize) -> Self {
        self.with(|c| c.max_form_bytes = bytes)
    }

    fn with(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(Arc::make_mut(&mut self.config));
        self
    }
}

impl<S> Layer<S> for CsrfLayer {
    type Service = CsrfService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CsrfService {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The service made by [`CsrfLayer`].
#[derive(Debug, Clone)]
pub struct CsrfService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Service<Request<Body>> for CsrfService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // Take the service that poll_ready readied; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        Box::pin(async move {
            match check(&config, req).await {
                Ok(req) => inner.call(req).await,
                Err(refusal) => Ok(refusal),
            }
        })
    }
}

/// The request, with its body restored, if it passes; the refusal otherwise.
async fn check(config: &Config, req: Request<Body>) -> Result<Request<Body>, Response> {
    if req.method().is_safe() {
        return Ok(req);
    }
    let scheme = config.scheme.as_deref();
    let origin = match scheme {
        Some(scheme) => {
            check_origin_with_scheme(req.method(), Some(req.uri()), req.headers(), scheme)
        }
        None => super::check_origin_at(req.method(), Some(req.uri()), req.headers()),
    };
    origin.map_err(IntoResponse::into_response)?;
    if !config.check_token {
        return Ok(req);
    }
    let Some(session) = crate::service::request_session(req.headers(), req.extensions()) else {
        return Err(MissingSessionLayer.into_response());
    };
    let (req, token) = token(config, req).await?;
    let Some(token) = token else {
        return Err(CsrfTokenMismatch.into_response());
    };
    match session.verify_csrf(&token).await {
        Ok(true) => Ok(req),
        Ok(false) => Err(CsrfTokenMismatch.into_response()),
        Err(err) => Err(crate::SessionError::from(err).into_response()),
    }
}

/// The token from the header, or else from the form body (which is read and
/// put back).
async fn token(
    config: &Config,
    req: Request<Body>,
) -> Result<(Request<Body>, Option<String>), Response> {
    if let Some(value) = req.headers().get(&config.header) {
        let token = value.to_str().ok().map(str::to_owned);
        return Ok((req, token));
    }
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, config.max_form_bytes);
    let bytes = match limited.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                "Payload Too Large: the form is larger than this site accepts.\n",
            )
                .into_response());
        }
        Err(_) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "Bad Request: the form could not be read.\n",
            )
                .into_response());
        }
    };
    let token = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == config.field.as_str())
        .map(|(_, value)| value.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}
