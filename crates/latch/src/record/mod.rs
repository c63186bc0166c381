//! The session record: what a store keeps for one session.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::time::{Expiry, UnixTime, secs};

/// Data keys starting with this are latch's own (flash messages, CSRF secret,
/// cookie-session ID and issue time); applications cannot set them.
pub(crate) const RESERVED_PREFIX: &str = "_latch.";

mod data;

pub use data::{Data, Iter as DataIter};

/// Everything a store keeps about one session.
///
/// Stores persist every field and hand it back unchanged; the fields other than
/// `data` also feed the per-user index and the devices list.
///
/// # Example
/// ```
/// let record = latch::Record::new(1_000);
/// assert_eq!(record.created_at, 1_000);
/// assert!(record.data.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The application's key/value data.
    pub data: Data,
    /// When the session was created.
    pub created_at: UnixTime,
    /// When the session was last used (refreshed at most once per touch interval).
    pub last_seen: UnixTime,
    /// When the session expires under the policy in force when it was last written:
    /// the earlier of the idle and absolute deadlines. Stores index it for purging.
    pub expires_at: UnixTime,
    /// Whether the user asked to be remembered (persistent cookie, longer timeouts).
    pub remember: bool,
    /// The signed-in user, if any; feeds the per-user index.
    pub user_id: Option<String>,
    /// The client's user agent as recorded when the session was created.
    pub user_agent: Option<String>,
    /// The client's address as the application reported it.
    pub ip: Option<String>,
    /// Incremented on every data save; stores use it for compare-and-swap.
    pub version: u64,
}

impl Record {
    /// An empty session created at `now`.
    pub fn new(now: UnixTime) -> Self {
        Self {
            data: Data::new(),
            created_at: now,
            last_seen: now,
            expires_at: now,
            remember: false,
            user_id: None,
            user_agent: None,
            ip: None,
            version: 0,
        }
    }

    /// The idle deadline under `policy`: the first second the session is expired.
    pub fn idle_deadline(&self, policy: &Expiry) -> UnixTime {
        self.last_seen
            .saturating_add(secs(policy.idle_timeout(self.remember)))
    }

    /// The absolute deadline under `policy`: the first second the session is expired.
    pub fn absolute_deadline(&self, policy: &Expiry) -> UnixTime {
        self.created_at
            .saturating_add(secs(policy.absolute_timeout(self.remember)))
    }

    /// The earlier of the two deadlines.
    pub fn deadline(&self, policy: &Expiry) -> UnixTime {
        self.idle_deadline(policy)
            .min(self.absolute_deadline(policy))
    }

    /// The bytes this record holds for a store: its data as JSON plus the user
    /// and client facts. What
    /// [`SessionManagerBuilder::max_record_bytes`](crate::SessionManagerBuilder::max_record_bytes)
    /// limits; measured without building the JSON text.
    ///
    /// # Example
    /// ```
    /// let mut record = latch::Record::new(0);
    /// record.data.insert("k".into(), "v".into());
    /// assert_eq!(record.stored_size(), r#"{"k":"v"}"#.len());
    /// ```
    pub fn stored_size(&self) -> usize {
        let mut counter = ByteCounter(0);
        // Writing to a counter cannot fail, and a map of JSON values always
        // serializes.
        let _ = serde_json::to_writer(&mut counter, &self.data);
        [&self.user_id, &self.user_agent, &self.ip]
            .into_iter()
            .flatten()
            .map(String::len)
            .fold(counter.0, usize::saturating_add)
    }

    /// Whether the session is expired at `now` under `policy`.
    ///
    /// # Example
    /// ```
    /// use latch::{Expiry, Record};
    ///
    /// let record = Record::new(0);
    /// let policy = Expiry::default(); // 30 minutes idle
    /// assert!(!record.is_expired(1799, &policy));
    /// assert!(record.is_expired(1800, &policy));
    /// ```
    pub fn is_expired(&self, now: UnixTime, policy: &Expiry) -> bool {
        now >= self.deadline(policy)
    }
}

/// A writer that only counts what it is given.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A request's record: its own, or shared with the store that holds it
/// ([`SessionStore::load_shared`](crate::SessionStore::load_shared)) and
/// copied only when the request changes it. A read then costs no copy of the
/// session's data, and a save hands the store the same allocation.
#[derive(Debug, Clone)]
pub(crate) enum RecordCell {
    /// Made by this request (fresh, or decoded from a cookie).
    Owned(Record),
    /// Possibly shared with a store; never changed in place while shared.
    Shared(Arc<Record>),
}

impl RecordCell {
    /// The record.
    pub(crate) fn get(&self) -> &Record {
        match self {
            Self::Owned(record) => record,
            Self::Shared(record) => record,
        }
    }

    /// The record, to change: a shared one is copied first (copy on write),
    /// so a store's record never sees a change it was not given.
    pub(crate) fn make_mut(&mut self) -> &mut Record {
        match self {
            Self::Owned(record) => record,
            Self::Shared(record) => Arc::make_mut(record),
        }
    }

    /// The record as an `Arc`, to hand to a store; an owned one moves into
    /// it, so later reads and the store share one allocation.
    pub(crate) fn share(&mut self) -> Arc<Record> {
        let mut shared = match std::mem::replace(self, Self::Owned(Record::new(0))) {
            Self::Owned(record) => Arc::new(record),
            Self::Shared(record) => record,
        };
        // A shared record is never changed again, and a store may keep it
        // for the session's whole life: room its data kept for more entries
        // would be kept as long (a decoded one-key map holds room for four,
        // 168 bytes). Maps built by inserting keep none (see
        // `Data::insert`), so for them this is only a check.
        if let Some(record) = Arc::get_mut(&mut shared) {
            record.data.shrink_to_fit();
        }
        *self = Self::Shared(Arc::clone(&shared));
        shared
    }
}

impl From<Record> for RecordCell {
    fn from(record: Record) -> Self {
        Self::Owned(record)
    }
}

impl From<Arc<Record>> for RecordCell {
    fn from(record: Arc<Record>) -> Self {
        Self::Shared(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_handed_to_a_store_keeps_no_spare_room() {
        // A decoded map grows as vectors do, by doubling.
        let mut record = Record::new(0);
        record.data = serde_json::from_str(r#"{"n":1}"#).unwrap();
        assert!(record.data.capacity() > 1, "a decoded map keeps room");
        let mut cell = RecordCell::from(record);
        assert_eq!(cell.share().data.capacity(), 1);
        // Changed after sharing (a copy), then shared again.
        cell.make_mut().data.insert("m".into(), 2.into());
        let shared = cell.share();
        assert_eq!(shared.data.capacity(), shared.data.len());
        assert_eq!(shared.data["m"], 2);
    }
}
