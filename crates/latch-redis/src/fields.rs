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

/// The score of a session expiring at `t` in the expiry index, filed
/// `millis` milliseconds into the current second: the deadline plus that
/// fraction of a second.
///
/// Why the fraction: members with equal scores sort by member, and session
/// keys are random, so without it every session filed in one second lands
/// at a random place among that second's entries, and each `ZADD` walks a
/// different path of a skip list of every session (cache misses all the
/// way down). With it, a later write sorts later and the walk follows the
/// path the last one took: on this project's machine `ZADD` into 300,000
/// entries took 2.2 µs instead of 4.4 µs. Any fraction in `[0, 1)` is
/// correct: an entry is due when its score is below `now + 1`
/// ([`due_before`]), which is when its deadline is at or before `now`.
pub(crate) fn expiry_score(t: UnixTime, millis: u32) -> f64 {
    // A double keeps every millisecond apart: below 2^38 (the last
    // deadline) its spacing is 2^-14 s.
    deadline(t) as f64 + f64::from(millis.min(999)) / 1000.0
}

/// The expiry-index score of a session filed now (see [`expiry_score`]).
pub(crate) fn expiry_score_now(t: UnixTime) -> f64 {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    expiry_score(t, millis)
}

/// The exclusive upper bound of the expiry-index scores due at `now`, as a
/// `ZRANGEBYSCORE`/`ZCOUNT` argument: `(now+1`.
pub(crate) fn due_before(now: UnixTime) -> String {
    format!("({}", deadline(now).saturating_add(1))
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
    fn an_entry_is_due_exactly_when_its_deadline_is() {
        let bound = |now: i64| -> f64 { due_before(now)[1..].parse().unwrap() };
        for millis in [0, 1, 500, 999, 5000] {
            let score = expiry_score(1_800_000_000, millis);
            assert!(
                score < bound(1_800_000_000),
                "due at the deadline ({millis} ms)"
            );
            assert!(
                score >= bound(1_799_999_999),
                "not due a second before ({millis} ms)"
            );
        }
        let last = expiry_score(LAST_DEADLINE, 999);
        assert!(last < bound(LAST_DEADLINE) && last > LAST_DEADLINE as f64);
        assert_eq!(due_before(i64::MAX), format!("({}", LAST_DEADLINE + 1));
    }

    #[test]
    fn later_writes_in_one_second_score_higher() {
        let scores: Vec<f64> = (0..1000)
            .map(|ms| expiry_score(1_800_000_000, ms))
            .collect();
        assert!(scores.windows(2).all(|w| w[0] < w[1]));
        // The next second's earliest entry still sorts after this second's last.
        assert!(expiry_score(1_800_000_001, 0) > expiry_score(1_800_000_000, 999));
    }

    #[test]
    fn deadlines_stay_in_the_range_redis_accepts() {
        assert_eq!(deadline(1_800_000_000), 1_800_000_000);
        assert_eq!(deadline(-5), 1);
        assert_eq!(deadline(0), 1);
        assert_eq!(deadline(i64::MAX), LAST_DEADLINE);
    }
}
