//! Cross-site request forgery: two checks on every state-changing request.
//!
//! 1. **The session-bound token** ([`latch::Session::csrf_token`] in the form
//!    or a header, checked with [`latch::Session::verify_csrf`]): only pages
//!    of this site, for this session, have it.
//! 2. **The origin** ([`check_origin_with_scheme`]): browsers say where a
//!    request comes from (`Sec-Fetch-Site`, `Origin`); a request from another
//!    site is refused even where a token leaked.
//!
//! [`CsrfLayer`] does both for every route it wraps, so handlers need no
//! glue; the functions are there for apps that check by hand.
//!
//! Signing in or out starts a new token (the session's secret changes), so
//! a form fetched before that fails with [`CsrfTokenMismatch`], whose body
//! says so: reload the page.
//!
//! [`CsrfTokenMismatch`]: crate::rejection::CsrfTokenMismatch

mod layer;
mod origin;

pub use crate::rejection::CrossSiteRequest;
pub use layer::{CsrfLayer, CsrfService};
pub use origin::{check_origin, check_origin_at, check_origin_with_scheme};
