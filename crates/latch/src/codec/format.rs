//! Formats: how a whole session travels in a cookie (cookie-only sessions), and
//! how a session ID is written in a cookie and keyed in a store (server-side).
//!
//! latch's own formats are the defaults. Other formats exist for
//! interoperability (for example with Flask's cookies and Flask-Session's IDs in
//! the `latch-flask` crate) and plug in through
//! [`SessionManagerBuilder::cookie_format`](crate::SessionManagerBuilder::cookie_format) and
//! [`SessionManagerBuilder::id_format`](crate::SessionManagerBuilder::id_format).

use serde::{Deserialize, Serialize};

use super::{CookieCodec, Rejected};
use crate::error::{Error, ErrorKind, Result};
use crate::id::{SessionId, StoreKey};
use crate::record::{Data, Record};
use crate::time::UnixTime;

/// A cookie value that was authentic and parsed into a record.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedCookie {
    /// The session; `last_seen` is the time the value was issued.
    pub record: Record,
    /// Which key verified it: 0 is current; higher means "re-issue under the
    /// current key".
    pub key_index: usize,
    /// Written in an older layout of the format: re-issue it in the current one.
    pub outdated: bool,
}

/// How a cookie-only session's record is written into the cookie value and read
/// back. Implementations must authenticate everything they decode and reject
/// every defect with the same [`Rejected`].
pub trait CookieFormat: Send + Sync + std::fmt::Debug + 'static {
    /// The cookie value carrying `record`, issued at `now`.
    ///
    /// # Errors
    /// When the record cannot be serialized or the codec cannot run.
    fn encode(&self, cookie_name: &str, record: &Record, now: UnixTime) -> Result<String>;

    /// Verify and parse a cookie value.
    ///
    /// # Errors
    /// [`Rejected`] for any defect.
    fn decode(&self, cookie_name: &str, value: &str) -> Result<DecodedCookie, Rejected>;

    /// Data keys this format gives a meaning of its own (another framework's
    /// sign-in state, say), which the application may not set: `insert`,
    /// `update` and `remove` refuse them with
    /// [`ErrorKind::InvalidKey`](crate::ErrorKind::InvalidKey), as they refuse
    /// latch's own `_latch.` keys. None by default.
    fn reserved_keys(&self) -> &'static [&'static str] {
        &[]
    }

    /// The form in which a value the application stores is kept in the
    /// record (called on every `insert` and `update`); for a format whose
    /// data has a syntax of its own, such as Flask's tagged JSON, this escapes
    /// plain values that would otherwise read as something else. The value
    /// as given by default.
    ///
    /// # Errors
    /// A value the format cannot carry.
    fn prepare_value(&self, value: serde_json::Value) -> Result<serde_json::Value> {
        Ok(value)
    }
}

/// What latch's signed and sealed cookies carry besides the issue time. Short
/// field names keep cookies small; unknown fields are refused.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    /// created_at
    c: UnixTime,
    /// remember
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    r: bool,
    /// user_id
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<String>,
    /// data
    d: Data,
}

/// latch's own cookie format: the record as compact JSON inside a signed or
/// sealed [`CookieCodec`] value.
///
/// # Example
/// ```
/// use latch::codec::{CookieFormat, LatchFormat, SignedCodec};
/// use latch::{Keyring, Record, SecretKey};
///
/// let format = LatchFormat::new(SignedCodec::new(&Keyring::new(SecretKey::generate())));
/// let mut record = Record::new(100);
/// record.data.insert("theme".into(), "dark".into());
/// let value = format.encode("__Host-session", &record, 160)?;
/// let decoded = format.decode("__Host-session", &value).unwrap();
/// assert_eq!(decoded.record.data["theme"], "dark");
/// assert_eq!((decoded.record.created_at, decoded.record.last_seen), (100, 160));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LatchFormat<C> {
    codec: C,
}

impl<C: CookieCodec> LatchFormat<C> {
    /// The format over `codec`.
    pub fn new(codec: C) -> Self {
        Self { codec }
    }
}

impl<C: CookieCodec> CookieFormat for LatchFormat<C> {
    fn encode(&self, cookie_name: &str, record: &Record, now: UnixTime) -> Result<String> {
        #[derive(Serialize)]
        struct PayloadRef<'a> {
            c: UnixTime,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            r: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            u: Option<&'a str>,
            d: &'a Data,
        }
        let bytes = serde_json::to_vec(&PayloadRef {
            c: record.created_at,
            r: record.remember,
            u: record.user_id.as_deref(),
            d: &record.data,
        })
        .map_err(|e| {
            Error::new(ErrorKind::Serialization, "cannot serialize the session").with_source(e)
        })?;
        self.codec.seal(cookie_name, now, &bytes)
    }

    fn decode(&self, cookie_name: &str, value: &str) -> Result<DecodedCookie, Rejected> {
        let opened = self.codec.open(cookie_name, value)?;
        // The MAC/tag has been checked: only now is the payload parsed.
        let payload: Payload = serde_json::from_slice(&opened.payload)
            .map_err(|_| Rejected("authentic cookie with an unreadable payload"))?;
        let mut record = Record::new(payload.c);
        record.last_seen = opened.issued_at;
        record.remember = payload.r;
        record.user_id = payload.u;
        record.data = payload.d;
        Ok(DecodedCookie {
            record,
            key_index: opened.key_index,
            outdated: opened.outdated,
        })
    }
}

/// How a server-side session's ID is written in the cookie and which key the
/// store files it under.
pub trait IdFormat: Send + Sync + std::fmt::Debug + 'static {
    /// Parse a cookie value strictly; `None` for anything malformed.
    fn parse(&self, value: &str) -> Option<SessionId>;
    /// The cookie value for `id`.
    fn encode(&self, id: &SessionId) -> String;
    /// The store key for `id`.
    fn store_key(&self, id: &SessionId) -> StoreKey;

    /// As [`CookieFormat::reserved_keys`], for stored sessions shared with
    /// another framework. None by default.
    fn reserved_keys(&self) -> &'static [&'static str] {
        &[]
    }

    /// As [`CookieFormat::prepare_value`]. The value as given by default.
    ///
    /// # Errors
    /// A value the format cannot carry.
    fn prepare_value(&self, value: serde_json::Value) -> Result<serde_json::Value> {
        Ok(value)
    }
}

/// latch's ID format: 43 characters of base64url in the cookie, SHA-256 of the
/// ID as the store key, so stores never hold a usable ID.
///
/// # Example
/// ```
/// use latch::SessionId;
/// use latch::codec::{HashedIds, IdFormat};
///
/// let id = SessionId::generate();
/// let value = HashedIds.encode(&id);
/// assert_eq!(HashedIds.parse(&value), Some(id.clone()));
/// assert_eq!(HashedIds.store_key(&id), id.store_key());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HashedIds;

impl IdFormat for HashedIds {
    fn parse(&self, value: &str) -> Option<SessionId> {
        SessionId::parse(value)
    }

    fn encode(&self, id: &SessionId) -> String {
        id.encode()
    }

    fn store_key(&self, id: &SessionId) -> StoreKey {
        id.store_key()
    }
}
