//! Flask-Session's session id in the cookie.

use latch::codec::IdFormat;
use latch::{SessionId, StoreKey};

use crate::signing::{self, DerivedKey};

/// Flask-Session's salt for signed session ids.
const SALT: &[u8] = b"flask-session";

/// The longest signed id: 43 characters, a dot, a 27-character signature.
const MAX_SIGNED_CHARS: usize = 43 + 1 + 27;

/// Flask-Session's session id as a latch [`IdFormat`].
///
/// Flask-Session's ids are `secrets.token_urlsafe(32)`: 32 random bytes as 43
/// characters of base64url, exactly latch's own [`SessionId`] text. With
/// `SESSION_USE_SIGNER = True` the cookie carries `sid.signature` (itsdangerous
/// `Signer(SECRET_KEY, salt="flask-session", key_derivation="hmac")`).
///
/// **IDs are not hashed at rest.** Flask-Session files a session under the plain
/// sid, so the [`StoreKey`] this format gives a store is the raw id itself, not
/// its SHA-256: whoever reads Redis (or a log of store keys, or
/// [`latch::Session::store_key`]) holds usable session ids. Treat store keys
/// from this format as secrets. Ids of other lengths (`SESSION_ID_LENGTH` other
/// than 32) are not read.
///
/// # Example
/// ```
/// use latch::SessionId;
/// use latch::codec::IdFormat;
/// use latch_flask::FlaskSessionIds;
///
/// let ids = FlaskSessionIds::signed("a-long-random-flask-secret-key-0123456789");
/// let id = SessionId::generate();
/// let cookie = ids.encode(&id);
/// assert_eq!(cookie.len(), 43 + 1 + 27);
/// assert_eq!(ids.parse(&cookie), Some(id.clone()));
/// assert_eq!(ids.store_key(&id).as_bytes(), id.expose_bytes());
/// assert_eq!(FlaskSessionIds::unsigned().parse(&cookie), None);
/// ```
#[derive(Debug)]
pub struct FlaskSessionIds {
    signer: Option<DerivedKey>,
}

impl FlaskSessionIds {
    /// Plain sids in the cookie (`SESSION_USE_SIGNER = False`, the default).
    pub fn unsigned() -> Self {
        Self { signer: None }
    }

    /// Signed sids (`SESSION_USE_SIGNER = True`) under the Flask `SECRET_KEY`.
    /// Flask-Session signs with the current key only, so there are no fallbacks.
    pub fn signed(secret_key: impl AsRef<[u8]>) -> Self {
        Self {
            signer: Some(DerivedKey::new(secret_key.as_ref(), SALT, "SECRET_KEY")),
        }
    }
}

impl IdFormat for FlaskSessionIds {
    fn parse(&self, value: &str) -> Option<SessionId> {
        let sid = match &self.signer {
            None => value,
            Some(key) => {
                if value.len() > MAX_SIGNED_CHARS {
                    return None;
                }
                signing::unsign(std::slice::from_ref(key), value).ok()?.0
            }
        };
        SessionId::parse(sid)
    }

    fn encode(&self, id: &SessionId) -> String {
        let sid = id.encode();
        match &self.signer {
            None => sid,
            Some(key) => key.sign(&sid),
        }
    }

    fn store_key(&self, id: &SessionId) -> StoreKey {
        // Flask-Session's layout needs the plain sid back: see the type's docs.
        StoreKey::from_bytes(*id.expose_bytes())
    }

    fn reserved_keys(&self) -> &'static [&'static str] {
        crate::mapping::FLASK_KEYS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_ids_match_itsdangerous() {
        // Python: itsdangerous.Signer("secret", salt="flask-session",
        //   key_derivation="hmac").sign("A" * 43)  (itsdangerous 2.2.0)
        let sid = "A".repeat(43);
        let ids = FlaskSessionIds::signed("secret");
        let id = SessionId::parse(&sid).unwrap();
        assert_eq!(
            ids.encode(&id),
            format!("{sid}.R5-X4H688gM8WwGjostihKFefeg")
        );
    }

    #[test]
    fn tampered_or_foreign_ids_are_refused() {
        let ids = FlaskSessionIds::signed("secret");
        let other = FlaskSessionIds::signed("other");
        let id = SessionId::generate();
        let cookie = ids.encode(&id);
        assert_eq!(other.parse(&cookie), None);
        assert_eq!(ids.parse(&id.encode()), None);
        assert_eq!(ids.parse(&cookie[..cookie.len() - 1]), None);
        assert_eq!(ids.parse(&format!("{cookie}A")), None);
        let short = FlaskSessionIds::unsigned();
        assert_eq!(short.parse("abc"), None);
        assert_eq!(short.parse(&id.encode()), Some(id));
    }
}
