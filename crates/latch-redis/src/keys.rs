//! The names of the keys a store writes, all under its prefix.

use latch::StoreKey;

/// Builds key names under one prefix (default `latch:`):
///
/// | key | type | holds |
/// |---|---|---|
/// | `{prefix}s:{hex store key}` | hash | one session; TTL = its `expires_at` |
/// | `{prefix}u:{user id}` | sorted set | that user's store keys, scored by `expires_at`; TTL = highest score |
/// | `{prefix}expiry` | sorted set | every session's store key scored by `expires_at`, for `purge_expired` |
/// | `{prefix}o:{user id}` | string | a random token while one "sign out everywhere else" or device revocation of that user runs; TTL = the operation timeout |
/// | `{prefix}probe:{random hex}` | string | the read cache's check of the server, when it connects; deleted at once (TTL 60 s) |
///
/// The `s:`, `u:` and `o:` tags keep the families apart whatever the user id is.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// Key names under `prefix` (already validated by the builder).
    pub(crate) fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix in force.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The hash holding the session filed under `key`.
    pub(crate) fn session(&self, key: &StoreKey) -> String {
        format!("{}s:{}", self.prefix, key.to_hex())
    }

    /// The sorted set indexing the sessions of `user`.
    pub(crate) fn user(&self, user: &str) -> String {
        format!("{}u:{user}", self.prefix)
    }

    /// The lock held while one "sign out everywhere else" of `user` runs.
    pub(crate) fn sign_out_lock(&self, user: &str) -> String {
        format!("{}o:{user}", self.prefix)
    }

    /// The sorted set of every session by expiry, read by `purge_expired`.
    pub(crate) fn expiry(&self) -> String {
        format!("{}expiry", self.prefix)
    }

    /// A fresh throwaway key for the read cache's probe of the server (random,
    /// so that app instances starting together do not share one).
    pub(crate) fn probe(&self) -> String {
        let random = latch::SessionId::generate().store_key().to_hex();
        format!("{}probe:{}", self.prefix, &random[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_prefixed_and_tagged() {
        let keys = Keys::new("app:");
        let key = StoreKey::from_bytes([0xab; 32]);
        assert_eq!(keys.session(&key), format!("app:s:{}", "ab".repeat(32)));
        assert_eq!(keys.user("alice@example.com"), "app:u:alice@example.com");
        assert_eq!(keys.expiry(), "app:expiry");
        assert_eq!(keys.sign_out_lock("alice"), "app:o:alice");
        assert!(keys.probe().starts_with("app:probe:"));
        assert_ne!(keys.probe(), keys.probe());
    }
}
