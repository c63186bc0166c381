//! # latch-axum: latch sessions for axum and tower
//!
//! Add a [`SessionLayer`] to the router and take a [`Session`] in handlers. The
//! layer loads nothing until a handler uses the session, writes only what changed,
//! and sets `Vary: Cookie`, `Cache-Control: no-store` and the cookie as needed. A
//! store outage becomes `503 Service Unavailable` with a plain body.
//!
//! ## Example
//! ```
//! use axum::{Router, routing::get};
//! use latch::{MemoryStore, SessionManager};
//! use latch_axum::{Session, SessionError, SessionLayer};
//!
//! async fn visits(session: Session) -> Result<String, SessionError> {
//!     let n: u64 = session.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//!     Ok(format!("visit number {n}"))
//! }
//!
//! let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
//! let app: Router = Router::new()
//!     .route("/", get(visits))
//!     .layer(SessionLayer::new(manager));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
pub mod csrf;
mod dbsc;
mod error;
mod extract;
mod layer;
pub mod rejection;
mod service;
pub mod testing;

pub use client::{ClientIp, ForwardedHeader, TrustedProxies};
pub use error::{OncePerSecond, SessionError};
pub use extract::{Session, SignedIn};
pub use layer::SessionLayer;
pub use service::{ResponseFuture, SessionService};

/// The README's code blocks, compiled and run as doctests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
