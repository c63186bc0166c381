//! Flask-Session 0.8's server-side sessions in Redis.
//!
//! Flask-Session keeps `dict(session)` under `SESSION_KEY_PREFIX + sid` (default
//! prefix `session:`) with a TTL of `PERMANENT_SESSION_LIFETIME`, encoded with
//! msgspec as msgpack (`SESSION_SERIALIZATION_FORMAT = "msgpack"`, the default)
//! or JSON. The cookie holds the sid, `secrets.token_urlsafe(32)`, optionally
//! signed (`SESSION_USE_SIGNER`). [`FlaskSessionIds`] reads and writes that
//! cookie and [`FlaskSessionStore`] that Redis layout, so a latch service and a
//! Flask app see the same sessions.

mod entry;
mod ids;
mod msgpack;
mod store;

pub use entry::SerializationFormat;
pub use ids::FlaskSessionIds;
pub use store::{FlaskSessionStore, FlaskSessionStoreBuilder};
