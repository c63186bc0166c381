//! Encryption at rest: a wrapper that seals what a store keeps, so a dump of
//! the database or of Redis shows no session data, no user names and no
//! client facts.
//!
//! What the inner store sees of a record:
//!
//! | field | kept as |
//! |---|---|
//! | `data` and the signed-in user | one AEAD-sealed value under the data key `_latch.sealed` |
//! | `user_id` | `HMAC(user)` under a key derived for the purpose, so the per-user index still works and a dump names nobody |
//! | `user_agent`, `ip` | each sealed on its own (the devices list reads them without the data) |
//! | times, `remember`, `version` | in clear: the store needs them to expire, purge and compare-and-swap |
//!
//! Every seal binds the record's [`StoreKey`] and the field's name in its
//! associated data, so a sealed value copied under another session, or into
//! another field, does not open; the data seal also binds `created_at` and
//! `remember`, so those cannot be moved either. A record that does not open
//! (tampered, copied, written before encryption was turned on, or sealed
//! under a key no longer in the ring) loads as no session: the visitor gets
//! a fresh one, never an error page.
//!
//! Keys come from the [`Keyring`]: the current key seals, every key opens,
//! and each save seals anew under the current key, so after a rotation
//! records move to the new key as they are written.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead as _, KeyInit, Payload};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{ExpiredDeletion, SaveOutcome, SessionInfo, SessionStore, UserIndex};
use crate::error::{Error, ErrorKind, Result};
use crate::id::StoreKey;
use crate::key::{Keyring, Purpose};
use crate::record::{Data, Record};
use crate::time::UnixTime;

/// The data key holding the sealed data.
const SEALED_KEY: &str = "_latch.sealed";
/// The format of sealed values; part of every seal's associated data.
const VERSION: &str = "v1";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

const SEALING: Purpose = Purpose::custom("latch/v1/at-rest-sealing");
const USER_MAC: Purpose = Purpose::custom("latch/v1/at-rest-user");

/// The sealed part of a record.
#[derive(Serialize, Deserialize)]
struct Sealed {
    data: Data,
    user: Option<String>,
}

/// A [`SessionStore`] that keeps every record sealed in `inner` (see the
/// module docs for what is sealed and what is not). It has the capabilities
/// of the store it wraps.
///
/// Usually made by
/// [`SessionManagerBuilder::encrypt_at_rest`](crate::SessionManagerBuilder::encrypt_at_rest);
/// wrap a store yourself to read an encrypted store from a tool.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use latch::store::EncryptedStore;
/// use latch::{Keyring, MemoryStore, Record, SecretKey, SessionId, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let raw = Arc::new(MemoryStore::new());
/// let store = EncryptedStore::new(raw.clone(), &Keyring::new(SecretKey::generate()));
/// let key = SessionId::generate().store_key();
/// let mut record = Record::new(1_700_000_000);
/// record.data.insert("card".into(), "4111 1111 1111 1111".into());
/// record.user_id = Some("ada".into());
/// store.create(&key, &record).await?;
///
/// assert_eq!(store.load(&key).await?, Some(record.clone()));
/// let stored = raw.load(&key).await?.expect("stored");
/// assert!(!format!("{stored:?}").contains("4111"));
/// assert!(!format!("{stored:?}").contains("ada"));
/// # Ok::<(), latch::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EncryptedStore {
    inner: Arc<dyn SessionStore>,
    /// Current first: it seals; all open.
    ciphers: Vec<XChaCha20Poly1305>,
    /// Current first: it names users in new records; all are looked up.
    user_macs: Vec<Hmac<Sha256>>,
}

impl std::fmt::Debug for EncryptedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedStore")
            .field("inner", &self.inner)
            .field("keys", &self.ciphers.len())
            .finish()
    }
}

impl EncryptedStore {
    /// Seal what `inner` keeps with keys derived from `keys`.
    pub fn new(inner: Arc<dyn SessionStore>, keys: &Keyring) -> Self {
        let ciphers = keys
            .derive_all(SEALING)
            .iter()
            .map(|k| XChaCha20Poly1305::new(k.as_bytes().into()))
            .collect();
        let user_macs = keys
            .derive_all(USER_MAC)
            .iter()
            .map(|k| {
                // OK because HMAC takes keys of any length.
                <Hmac<Sha256> as Mac>::new_from_slice(k.as_bytes()).expect("any key length")
            })
            .collect();
        Self {
            inner,
            ciphers,
            user_macs,
        }
    }

    /// The store underneath.
    pub fn inner(&self) -> &Arc<dyn SessionStore> {
        &self.inner
    }

    /// How `user` is named in the store under key number `index`.
    fn user_name(&self, index: usize, user: &str) -> String {
        let mut mac = self.user_macs[index].clone();
        mac.update(user.as_bytes());
        format!("u1.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// Every name `user` may have in the store (one per key in the ring).
    fn user_names(&self, user: &str) -> Vec<String> {
        (0..self.user_macs.len())
            .map(|i| self.user_name(i, user))
            .collect()
    }

    fn aad(key: &StoreKey, field: &str, extra: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64 + field.len() + extra.len());
        aad.extend_from_slice(SEALING.label().as_bytes());
        aad.push(0);
        aad.extend_from_slice(VERSION.as_bytes());
        aad.push(0);
        aad.extend_from_slice(field.as_bytes());
        aad.push(0);
        aad.extend_from_slice(key.as_bytes());
        aad.extend_from_slice(extra);
        aad
    }

    fn seal(&self, key: &StoreKey, field: &str, extra: &[u8], plain: &[u8]) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::rand::fill(&mut nonce);
        let aad = Self::aad(key, field, extra);
        let sealed = self.ciphers[0]
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::new(ErrorKind::Store, "sealing a session record failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(format!("{VERSION}.{}", B64.encode(out)))
    }

    fn open(&self, key: &StoreKey, field: &str, extra: &[u8], text: &str) -> Option<Vec<u8>> {
        let body = text.strip_prefix(VERSION)?.strip_prefix('.')?;
        let bytes = B64.decode(body).ok()?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let aad = Self::aad(key, field, extra);
        self.ciphers.iter().find_map(|cipher| {
            cipher
                .decrypt(
                    nonce.into(),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .ok()
        })
    }

    /// What binds the data seal to the record's fixed facts.
    fn data_extra(record: &Record) -> [u8; 9] {
        let mut extra = [0u8; 9];
        extra[..8].copy_from_slice(&record.created_at.to_be_bytes());
        extra[8] = u8::from(record.remember);
        extra
    }

    fn seal_fact(
        &self,
        key: &StoreKey,
        field: &str,
        value: Option<&String>,
    ) -> Result<Option<String>> {
        value
            .map(|v| self.seal(key, field, &[], v.as_bytes()))
            .transpose()
    }

    fn open_fact(&self, key: &StoreKey, field: &str, value: Option<&String>) -> Option<String> {
        let plain = self.open(key, field, &[], value?)?;
        String::from_utf8(plain).ok()
    }

    /// `record` as the inner store keeps it.
    fn seal_record(&self, key: &StoreKey, record: &Record) -> Result<Record> {
        let sealed = Sealed {
            data: record.data.clone(),
            user: record.user_id.clone(),
        };
        let plain = serde_json::to_vec(&sealed)
            .map_err(|e| Error::serialization("encoding a session record", e))?;
        let value = self.seal(key, "data", &Self::data_extra(record), &plain)?;
        let mut data = Data::new();
        data.insert(SEALED_KEY.to_owned(), serde_json::Value::String(value));
        Ok(Record {
            data,
            user_id: record.user_id.as_deref().map(|u| self.user_name(0, u)),
            user_agent: self.seal_fact(key, "user_agent", record.user_agent.as_ref())?,
            ip: self.seal_fact(key, "ip", record.ip.as_ref())?,
            ..record.clone()
        })
    }

    /// The record `stored` under `key` holds, or `None` when it does not open.
    fn open_record(&self, key: &StoreKey, stored: Record) -> Option<Record> {
        let text = stored.data.get(SEALED_KEY)?.as_str()?;
        let plain = self.open(key, "data", &Self::data_extra(&stored), text)?;
        let sealed: Sealed = serde_json::from_slice(&plain).ok()?;
        // The index name must be the user's under one of the keys: a user
        // name moved between records does not open (the data seal binds the
        // user), and this catches an index entry moved alone.
        match (&sealed.user, &stored.user_id) {
            (None, None) => {}
            (Some(user), Some(name)) if self.user_names(user).contains(name) => {}
            _ => return None,
        }
        Some(Record {
            data: sealed.data,
            user_id: sealed.user,
            user_agent: self.open_fact(key, "user_agent", stored.user_agent.as_ref()),
            ip: self.open_fact(key, "ip", stored.ip.as_ref()),
            ..stored
        })
    }
}

#[async_trait]
impl SessionStore for EncryptedStore {
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        self.inner
            .create(key, &self.seal_record(key, record)?)
            .await
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        let Some(stored) = self.inner.load(key).await? else {
            return Ok(None);
        };
        let opened = self.open_record(key, stored);
        if opened.is_none() {
            tracing::warn!(
                store_key = %key,
                "a stored session record did not open (tampered, moved, unencrypted or under \
                 a retired key); treating it as no session"
            );
        }
        Ok(opened)
    }

    async fn save(&self, key: &StoreKey, record: &Record, expected: u64) -> Result<SaveOutcome> {
        self.inner
            .save(key, &self.seal_record(key, record)?, expected)
            .await
    }

    async fn touch(
        &self,
        key: &StoreKey,
        user_hint: Option<&str>,
        last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool> {
        let hint = user_hint.map(|u| self.user_name(0, u));
        self.inner
            .touch(key, hint.as_deref(), last_seen, expires_at)
            .await
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        self.inner.delete(key).await
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        self.inner.user_index().map(|_| self as &dyn UserIndex)
    }

    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        self.inner.expired_deletion()
    }

    fn call_timeout(&self) -> Option<std::time::Duration> {
        self.inner.call_timeout()
    }
}

#[async_trait]
impl UserIndex for EncryptedStore {
    async fn list_by_user(&self, user_id: &str, now: UnixTime) -> Result<Vec<SessionInfo>> {
        let index = self.inner.user_index().ok_or_else(no_index)?;
        let mut all: Vec<SessionInfo> = Vec::new();
        for name in self.user_names(user_id) {
            for mut info in index.list_by_user(&name, now).await? {
                if all.iter().any(|seen| seen.key == info.key) {
                    continue;
                }
                info.user_agent = self.open_fact(&info.key, "user_agent", info.user_agent.as_ref());
                info.ip = self.open_fact(&info.key, "ip", info.ip.as_ref());
                // The binding is in the sealed data, out of the inner store's
                // sight: read it from the record (a few loads per devices page).
                if let Some(record) = self.load(&info.key).await? {
                    info.device_proved_at = crate::dbsc::proved_at(&record);
                }
                all.push(info);
            }
        }
        // As the inner store orders them: most recently used first.
        all.sort_by_key(|info| std::cmp::Reverse(info.last_seen));
        Ok(all)
    }

    async fn delete_by_user(&self, user_id: &str, keep: Option<&StoreKey>) -> Result<u64> {
        let index = self.inner.user_index().ok_or_else(no_index)?;
        let mut deleted = 0;
        for name in self.user_names(user_id) {
            deleted += index.delete_by_user(&name, keep).await?;
        }
        Ok(deleted)
    }

    async fn delete_one_by_user(
        &self,
        user_id: &str,
        key: &StoreKey,
        keep: Option<&StoreKey>,
    ) -> Result<bool> {
        let index = self.inner.user_index().ok_or_else(no_index)?;
        for name in self.user_names(user_id) {
            if index.delete_one_by_user(&name, key, keep).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn no_index() -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        "the store under the encryption has no per-user index",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly on purpose

    use super::*;
    use crate::{MemoryStore, SecretKey, SessionId};

    fn record() -> Record {
        let mut record = Record::new(1_700_000_000);
        record.expires_at = 1_700_003_600;
        record.data.insert("secret".into(), "hunter2".into());
        record.user_id = Some("ada".into());
        record.user_agent = Some("Firefox".into());
        record.ip = Some("192.0.2.1".into());
        record
    }

    fn pair(keys: &Keyring) -> (Arc<MemoryStore>, EncryptedStore) {
        let raw = Arc::new(MemoryStore::new());
        let store = EncryptedStore::new(raw.clone(), keys);
        (raw, store)
    }

    #[tokio::test]
    async fn t3_nothing_readable_is_stored_and_everything_comes_back() {
        let (raw, store) = pair(&Keyring::new(SecretKey::generate()));
        let key = SessionId::generate().store_key();
        assert!(store.create(&key, &record()).await.unwrap());
        let stored = raw.load(&key).await.unwrap().unwrap();
        let dump = format!("{stored:?}");
        for secret in ["hunter2", "ada", "Firefox", "192.0.2.1"] {
            assert!(!dump.contains(secret), "{secret} readable in {dump}");
        }
        assert_eq!(store.load(&key).await.unwrap(), Some(record()));
        let listed = store.list_by_user("ada", 0).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].user_agent.as_deref(), Some("Firefox"));
        assert_eq!(listed[0].ip.as_deref(), Some("192.0.2.1"));
    }

    #[tokio::test]
    async fn t3_records_swapped_or_copied_between_sessions_do_not_open() {
        let (raw, store) = pair(&Keyring::new(SecretKey::generate()));
        let (a, b) = (
            SessionId::generate().store_key(),
            SessionId::generate().store_key(),
        );
        let mut other = record();
        other.user_id = Some("bob".into());
        store.create(&a, &record()).await.unwrap();
        store.create(&b, &other).await.unwrap();
        let (sa, sb) = (
            raw.load(&a).await.unwrap().unwrap(),
            raw.load(&b).await.unwrap().unwrap(),
        );
        raw.save(&a, &sb, sa.version).await.unwrap();
        raw.save(&b, &sa, sb.version).await.unwrap();
        assert_eq!(store.load(&a).await.unwrap(), None);
        assert_eq!(store.load(&b).await.unwrap(), None);

        // Only the index name moved: bob's session does not become ada's.
        let c = SessionId::generate().store_key();
        store.create(&c, &other).await.unwrap();
        let mut forged = raw.load(&c).await.unwrap().unwrap();
        forged.user_id = Some(store.user_name(0, "ada"));
        raw.save(&c, &forged, forged.version).await.unwrap();
        assert_eq!(store.load(&c).await.unwrap(), None);

        // Nor does a longer life: created_at is bound to the data.
        let d = SessionId::generate().store_key();
        store.create(&d, &record()).await.unwrap();
        let mut younger = raw.load(&d).await.unwrap().unwrap();
        younger.created_at += 86_400;
        raw.save(&d, &younger, younger.version).await.unwrap();
        assert_eq!(store.load(&d).await.unwrap(), None);
    }

    #[tokio::test]
    async fn t3_an_unencrypted_or_garbled_record_is_no_session() {
        let (raw, store) = pair(&Keyring::new(SecretKey::generate()));
        let key = SessionId::generate().store_key();
        raw.create(&key, &record()).await.unwrap();
        assert_eq!(
            store.load(&key).await.unwrap(),
            None,
            "plaintext is not trusted"
        );
        let mut garbled = record();
        garbled.data.clear();
        garbled.data.insert(SEALED_KEY.into(), "v1.AAAA".into());
        raw.save(&key, &garbled, 0).await.unwrap();
        assert_eq!(store.load(&key).await.unwrap(), None);
    }

    #[tokio::test]
    async fn t3_rotation_opens_old_records_and_reseals_them_on_save() {
        let (old, new) = (SecretKey::generate(), SecretKey::generate());
        let raw = Arc::new(MemoryStore::new());
        let before = EncryptedStore::new(raw.clone(), &Keyring::new(old.clone()));
        let key = SessionId::generate().store_key();
        before.create(&key, &record()).await.unwrap();

        let rotated =
            EncryptedStore::new(raw.clone(), &Keyring::new(new.clone()).with_previous(old));
        let mut loaded = rotated.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded, record());
        assert_eq!(rotated.list_by_user("ada", 0).await.unwrap().len(), 1);
        loaded.version += 1;
        let saved = rotated.save(&key, &loaded, 0).await.unwrap();
        assert_eq!(saved, SaveOutcome::Saved);

        // Re-sealed under the new key: it opens without the old one.
        let new_only = EncryptedStore::new(raw, &Keyring::new(new));
        assert_eq!(new_only.load(&key).await.unwrap(), Some(loaded));
        assert_eq!(new_only.list_by_user("ada", 0).await.unwrap().len(), 1);
        assert_eq!(new_only.delete_by_user("ada", None).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_store_without_an_index_gives_none() {
        #[derive(Debug, Default)]
        struct Bare(MemoryStore);
        #[async_trait]
        impl SessionStore for Bare {
            async fn create(&self, k: &StoreKey, r: &Record) -> Result<bool> {
                self.0.create(k, r).await
            }
            async fn load(&self, k: &StoreKey) -> Result<Option<Record>> {
                self.0.load(k).await
            }
            async fn save(&self, k: &StoreKey, r: &Record, e: u64) -> Result<SaveOutcome> {
                self.0.save(k, r, e).await
            }
            async fn touch(
                &self,
                k: &StoreKey,
                u: Option<&str>,
                l: UnixTime,
                e: UnixTime,
            ) -> Result<bool> {
                self.0.touch(k, u, l, e).await
            }
            async fn delete(&self, k: &StoreKey) -> Result<bool> {
                self.0.delete(k).await
            }
        }
        let store = EncryptedStore::new(
            Arc::new(Bare::default()),
            &Keyring::new(SecretKey::generate()),
        );
        assert!(store.user_index().is_none());
        assert!(store.expired_deletion().is_none());
    }
}
