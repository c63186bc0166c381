//! Converting between latch's types and table rows.

use latch::{Data, Error, Record, Result, SessionInfo, StoreKey};
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

/// The columns of a record that need converting before they are bound.
pub(crate) struct Encoded {
    /// `Record::version` as PostgreSQL's signed `bigint`.
    pub(crate) version: i64,
    /// `Record::data` as JSON text.
    pub(crate) data: String,
}

impl Encoded {
    /// Convert `record` for binding.
    ///
    /// # Errors
    /// A store error if the version passes `i64::MAX` (a counter that has run
    /// for longer than the universe) or the data cannot be written as JSON.
    pub(crate) fn new(record: &Record) -> Result<Self> {
        Ok(Self {
            version: version_to_sql(record.version)?,
            data: serde_json::to_string(&record.data)
                .map_err(|e| Error::store("encoding session data as JSON", e))?,
        })
    }
}

/// A version as bound to the `bigint` column.
pub(crate) fn version_to_sql(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|e| Error::store("session version does not fit a bigint", e))
}

/// The record in a row selected by the store's `load` statement.
pub(crate) fn record(row: &Row) -> Result<Record> {
    let version: i64 = get(row, "version")?;
    let data: String = get(row, "data")?;
    Ok(Record {
        data: serde_json::from_str::<Data>(&data)
            .map_err(|e| Error::store("decoding stored session data", e))?,
        created_at: get(row, "created_at")?,
        last_seen: get(row, "last_seen")?,
        expires_at: get(row, "expires_at")?,
        remember: get(row, "remember")?,
        user_id: get(row, "user_id")?,
        user_agent: get(row, "user_agent")?,
        ip: get(row, "ip")?,
        version: u64::try_from(version)
            .map_err(|e| Error::store("stored session version is negative", e))?,
    })
}

/// The devices-list entry in a row selected by the store's `list_by_user`.
pub(crate) fn info(row: &Row) -> Result<SessionInfo> {
    let key: Vec<u8> = get(row, "key")?;
    Ok(SessionInfo {
        key: store_key(&key)?,
        created_at: get(row, "created_at")?,
        last_seen: get(row, "last_seen")?,
        expires_at: get(row, "expires_at")?,
        user_agent: get(row, "user_agent")?,
        ip: get(row, "ip")?,
        device_proved_at: get(row, "device_proved_at")?,
    })
}

/// A key read back from the `bytea` column (the table refuses other lengths).
pub(crate) fn store_key(bytes: &[u8]) -> Result<StoreKey> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|e| Error::store("stored session key is not 32 bytes", e))?;
    Ok(StoreKey::from_bytes(bytes))
}

fn get<'a, T: FromSql<'a>>(row: &'a Row, column: &str) -> Result<T> {
    row.try_get(column)
        .map_err(|e| Error::store(format!("reading column {column} of a session row"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_up_to_i64_max_are_bound_and_above_refused() {
        assert_eq!(version_to_sql(7).unwrap(), 7);
        assert_eq!(version_to_sql(i64::MAX as u64).unwrap(), i64::MAX);
        let err = version_to_sql(i64::MAX as u64 + 1).unwrap_err();
        assert_eq!(err.kind(), &latch::ErrorKind::Store);
        assert!(std::error::Error::source(&err).is_some(), "cause kept");
    }

    #[test]
    fn keys_must_be_32_bytes() {
        let key = latch::SessionId::generate().store_key();
        assert_eq!(store_key(key.as_bytes()).unwrap(), key);
        assert!(store_key(&[0u8; 31]).is_err());
        assert!(store_key(&[0u8; 33]).is_err());
    }

    #[test]
    fn data_is_encoded_as_json_text() {
        let mut record = Record::new(0);
        record.data.insert("nul".into(), "a\u{0}b".into());
        record.version = 3;
        let encoded = Encoded::new(&record).unwrap();
        assert_eq!(encoded.data, r#"{"nul":"a\u0000b"}"#);
        assert_eq!(encoded.version, 3);
    }
}
