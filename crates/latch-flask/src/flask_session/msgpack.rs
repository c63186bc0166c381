//! [`FlaskValue`] and msgpack as msgspec (Flask-Session's encoder) writes it.
//!
//! msgspec writes tuples as arrays, UUIDs as hyphenated text and aware
//! datetimes as msgpack timestamps (extension -1), and reads bins back as
//! `bytes`. It cannot encode `Markup`; latch writes markup as text.

use std::collections::BTreeMap;

use rmpv::{Integer, Value};
use time::OffsetDateTime;

use crate::tagged::{FlaskValue, TagError};

/// The msgpack extension type of timestamps.
const TIMESTAMP_EXT: i8 = -1;

/// Deeper nesting than this is refused when reading.
pub(super) const MAX_DEPTH: usize = 128;

/// The msgpack value for `value`.
pub(super) fn to_msgpack(value: &FlaskValue) -> Result<Value, TagError> {
    Ok(match value {
        FlaskValue::None => Value::Nil,
        FlaskValue::Bool(b) => Value::Boolean(*b),
        FlaskValue::Int(i) => Value::Integer(integer(*i)?),
        FlaskValue::Float(f) => Value::F64(*f),
        FlaskValue::Str(s) | FlaskValue::Markup(s) => Value::from(s.as_str()),
        FlaskValue::Bytes(b) => Value::Binary(b.clone()),
        FlaskValue::List(items) | FlaskValue::Tuple(items) => {
            Value::Array(items.iter().map(to_msgpack).collect::<Result<_, _>>()?)
        }
        FlaskValue::Dict(map) => Value::Map(
            map.iter()
                .map(|(k, v)| Ok((Value::from(k.as_str()), to_msgpack(v)?)))
                .collect::<Result<_, TagError>>()?,
        ),
        FlaskValue::Uuid(u) => Value::from(u.hyphenated().to_string()),
        FlaskValue::DateTime(dt) => Value::Ext(TIMESTAMP_EXT, timestamp(*dt)),
    })
}

fn integer(i: i128) -> Result<Integer, TagError> {
    if let Ok(i) = i64::try_from(i) {
        Ok(Integer::from(i))
    } else {
        u64::try_from(i)
            .map(Integer::from)
            .map_err(|_| TagError("integer outside i64::MIN..=u64::MAX"))
    }
}

/// The msgpack timestamp body: 32-bit seconds, 30-bit nanoseconds with 34-bit
/// seconds, or 32-bit nanoseconds with 64-bit seconds, the smallest that fits
/// (the msgpack spec's rule, which msgspec follows).
fn timestamp(dt: OffsetDateTime) -> Vec<u8> {
    let secs = dt.unix_timestamp();
    let nanos = dt.nanosecond();
    if secs >> 34 == 0 {
        let data64 = (u64::from(nanos) << 34) | secs as u64;
        if data64 >> 32 == 0 {
            return (data64 as u32).to_be_bytes().to_vec();
        }
        return data64.to_be_bytes().to_vec();
    }
    let mut out = nanos.to_be_bytes().to_vec();
    out.extend_from_slice(&secs.to_be_bytes());
    out
}

fn read_timestamp(data: &[u8]) -> Result<OffsetDateTime, TagError> {
    let (secs, nanos) = match data.len() {
        4 => (i64::from(u32::from_be_bytes(arr(data)?)), 0),
        8 => {
            let data64 = u64::from_be_bytes(arr(data)?);
            ((data64 & ((1 << 34) - 1)) as i64, (data64 >> 34) as u32)
        }
        12 => (
            i64::from_be_bytes(arr(&data[4..])?),
            u32::from_be_bytes(arr(&data[..4])?),
        ),
        _ => return Err(TagError("malformed msgpack timestamp")),
    };
    if nanos >= 1_000_000_000 {
        return Err(TagError("malformed msgpack timestamp"));
    }
    let dt = OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| TagError("msgpack timestamp out of range"))?;
    dt.replace_nanosecond(nanos)
        .map_err(|_| TagError("malformed msgpack timestamp"))
}

fn arr<const N: usize>(bytes: &[u8]) -> Result<[u8; N], TagError> {
    bytes
        .try_into()
        .map_err(|_| TagError("malformed msgpack timestamp"))
}

/// The [`FlaskValue`] of a msgpack value as msgspec would read it.
pub(super) fn from_msgpack(value: &Value, depth: usize) -> Result<FlaskValue, TagError> {
    if depth > MAX_DEPTH {
        return Err(TagError("nested too deeply"));
    }
    Ok(match value {
        Value::Nil => FlaskValue::None,
        Value::Boolean(b) => FlaskValue::Bool(*b),
        Value::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(i), _) => FlaskValue::Int(i128::from(i)),
            (None, Some(u)) => FlaskValue::Int(i128::from(u)),
            _ => return Err(TagError("unreadable msgpack integer")),
        },
        Value::F32(f) => FlaskValue::Float(f64::from(*f)),
        Value::F64(f) => FlaskValue::Float(*f),
        Value::String(s) => FlaskValue::Str(text(s)?),
        Value::Binary(b) => FlaskValue::Bytes(b.clone()),
        Value::Array(items) => FlaskValue::List(
            items
                .iter()
                .map(|v| from_msgpack(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => FlaskValue::Dict(dict(entries, depth)?),
        Value::Ext(TIMESTAMP_EXT, data) => FlaskValue::DateTime(read_timestamp(data)?),
        Value::Ext(..) => return Err(TagError("msgpack extension type other than timestamps")),
    })
}

fn text(s: &rmpv::Utf8String) -> Result<String, TagError> {
    s.as_str()
        .map(str::to_owned)
        .ok_or(TagError("msgpack string is not UTF-8"))
}

pub(super) fn dict(
    entries: &[(Value, Value)],
    depth: usize,
) -> Result<BTreeMap<String, FlaskValue>, TagError> {
    let mut map = BTreeMap::new();
    for (key, value) in entries {
        let Value::String(key) = key else {
            return Err(TagError("msgpack map key that is not a string"));
        };
        if map
            .insert(text(key)?, from_msgpack(value, depth + 1)?)
            .is_some()
        {
            return Err(TagError("duplicate msgpack map key"));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn bytes(value: &FlaskValue) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, &to_msgpack(value).unwrap()).unwrap();
        out
    }

    #[test]
    fn encodes_like_msgspec() {
        // Python: msgspec.msgpack.encode(v).hex()  (msgspec 0.22.0)
        let cases: [(FlaskValue, &str); 7] = [
            (FlaskValue::Int(1), "01"),
            (FlaskValue::Int(-1), "ff"),
            (FlaskValue::Int(1 << 40), "cf0000010000000000"),
            (FlaskValue::Float(1.5), "cb3ff8000000000000"),
            (FlaskValue::Bytes(b"ab".to_vec()), "c4026162"),
            (
                FlaskValue::Tuple(vec![FlaskValue::Int(1), FlaskValue::Int(2)]),
                "920102",
            ),
            (
                FlaskValue::DateTime(datetime!(2024-01-02 03:04:05 UTC)),
                "d6ff65937d25",
            ),
        ];
        for (value, hex) in cases {
            let got: String = bytes(&value).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(got, hex, "{value:?}");
        }
    }

    #[test]
    fn timestamps_round_trip_in_all_three_sizes() {
        for dt in [
            datetime!(2024-01-02 03:04:05 UTC),
            datetime!(2024-01-02 03:04:05.123456 UTC),
            datetime!(2600-01-01 00:00:00.5 UTC),
            datetime!(1900-01-01 00:00 UTC),
        ] {
            let value = FlaskValue::DateTime(dt);
            assert_eq!(
                from_msgpack(&to_msgpack(&value).unwrap(), 0).unwrap(),
                value
            );
        }
    }

    #[test]
    fn refuses_what_flask_values_cannot_hold() {
        let int_key = Value::Map(vec![(Value::from(1), Value::from(2))]);
        assert!(from_msgpack(&int_key, 0).is_err());
        assert!(from_msgpack(&Value::Ext(5, vec![1]), 0).is_err());
        assert!(from_msgpack(&Value::Ext(-1, vec![1, 2, 3]), 0).is_err());
    }
}
