//! How a [`Record`] is laid out in its session hash.
//!
//! | field | value |
//! |---|---|
//! | `ver` | the record's version, compared by the save script |
//! | `rec` | the whole record as JSON (serde; plain data only) |
//! | `seen` | `last_seen`, moved by `touch` without rewriting `rec` |
//! | `exp` | `expires_at`, moved by `touch` without rewriting `rec` |
//! | `user` | the user id, when there is one, for index upkeep in scripts |
//!
//! `seen` and `exp` override the copies inside `rec`: a touch changes only them,
//! so the data and version are never rewritten by a request that only reads.

use latch::{Error, Record, Result, UnixTime};

/// The latest time used as a Redis expiry or score: the last second of year
/// 9999. Larger values would overflow Redis's millisecond arithmetic or lose
/// precision as a sorted-set score (a double).
const LAST_DEADLINE: i64 = 253_402_300_799;

/// `t` as an `EXPIREAT` argument or sorted-set score. Times at or before the
/// epoch become 1, which Redis treats as already past (the key is deleted).
pub(crate) fn deadline(t: UnixTime) -> i64 {
    t.clamp(1, LAST_DEADLINE)
}

/// The `rec` field for `record`.
pub(crate) fn encode(record: &Record) -> Result<String> {
    serde_json::to_string(record).map_err(|e| Error::store("encoding a session record", e))
}

/// The record stored as `rec`, with the `seen` and `exp` fields applied.
pub(crate) fn decode(rec: &str, seen: UnixTime, exp: UnixTime) -> Result<Record> {
    let mut record: Record =
        serde_json::from_str(rec).map_err(|e| Error::store("decoding a stored session", e))?;
    record.last_seen = seen;
    record.expires_at = exp;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_takes_times_from_their_own_fields() {
        let mut record = Record::new(100);
        record.expires_at = 200;
        record.data.insert("k".into(), "v".into());
        let rec = encode(&record).unwrap();
        let back = decode(&rec, 150, 900).unwrap();
        assert_eq!((back.last_seen, back.expires_at), (150, 900));
        assert_eq!(back.data, record.data);
        assert_eq!(back.created_at, 100);
    }

    #[test]
    fn corrupt_record_is_a_store_error_with_its_cause() {
        let err = decode("{not json", 0, 0).unwrap_err();
        assert_eq!(err.kind(), &latch::ErrorKind::Store);
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn deadlines_stay_in_the_range_redis_accepts() {
        assert_eq!(deadline(1_800_000_000), 1_800_000_000);
        assert_eq!(deadline(-5), 1);
        assert_eq!(deadline(0), 1);
        assert_eq!(deadline(i64::MAX), LAST_DEADLINE);
    }
}
