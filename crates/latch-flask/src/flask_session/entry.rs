//! A Flask-Session Redis value: msgpack or JSON of the session dict, and the
//! pickle of old versions, which is refused.

use std::collections::BTreeMap;

use crate::pyjson;
use crate::tagged::{FlaskValue, TagError};

use super::msgpack;

/// How Flask-Session encodes the session (`SESSION_SERIALIZATION_FORMAT`).
///
/// Either way, entries in the other format are read too, as Flask-Session does.
///
/// # Example
/// ```
/// assert_eq!(latch_flask::SerializationFormat::default(), latch_flask::SerializationFormat::Msgpack);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SerializationFormat {
    /// msgpack (Flask-Session's default): keeps bytes and datetimes.
    #[default]
    Msgpack,
    /// JSON: bytes become base64 text and datetimes RFC 3339 text, as msgspec
    /// writes them; Flask then reads them back as `str`.
    Json,
}

/// What old Flask-Session pickles start with: the PROTO opcode and a protocol
/// of 2 to 5.
fn is_pickle(bytes: &[u8]) -> bool {
    matches!(bytes, [0x80, 2..=5, ..])
}

/// The session dict in a Redis value. Like Flask-Session, msgpack is tried
/// first, then JSON; unlike it, a pickle is never loaded.
pub(crate) fn decode(bytes: &[u8]) -> latch::Result<BTreeMap<String, FlaskValue>> {
    if let Some(dict) = decode_msgpack(bytes) {
        return dict.map_err(unreadable);
    }
    if let Ok(value) = pyjson::parse(bytes) {
        return match FlaskValue::from_plain(&value).map_err(unreadable)? {
            FlaskValue::Dict(dict) => Ok(dict),
            _ => Err(latch::Error::invalid_config(
                "a Flask-Session entry holds JSON that is not a dict",
            )),
        };
    }
    if is_pickle(bytes) {
        return Err(latch::Error::invalid_config(
            "a Flask-Session entry is in the pickle format of Flask-Session before 0.7; \
             latch never unpickles (loading a pickle can run arbitrary code). Let \
             Flask-Session 0.8 rewrite the session, or delete it",
        ));
    }
    Err(latch::Error::invalid_config(
        "a Flask-Session entry is neither msgpack nor JSON",
    ))
}

/// `Some` when `bytes` is exactly one msgpack map (msgspec also refuses trailing
/// bytes, which is how JSON text fails as msgpack).
fn decode_msgpack(bytes: &[u8]) -> Option<Result<BTreeMap<String, FlaskValue>, TagError>> {
    let mut rest = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut rest, msgpack::MAX_DEPTH).ok()?;
    match value {
        rmpv::Value::Map(entries) if rest.is_empty() => Some(msgpack::dict(&entries, 0)),
        _ => None,
    }
}

fn unreadable(err: TagError) -> latch::Error {
    latch::Error::serialization(
        "a Flask-Session entry holds a value latch cannot represent",
        err,
    )
}

/// The Redis value for the session dict in `format`.
pub(crate) fn encode(
    dict: BTreeMap<String, FlaskValue>,
    format: SerializationFormat,
) -> latch::Result<Vec<u8>> {
    let dict = FlaskValue::Dict(dict);
    match format {
        SerializationFormat::Msgpack => {
            let value = msgpack::to_msgpack(&dict).map_err(crate::mapping::data_error)?;
            let mut out = Vec::new();
            // OK because writing msgpack into a Vec cannot fail.
            rmpv::encode::write_value(&mut out, &value).expect("msgpack into a Vec");
            Ok(out)
        }
        SerializationFormat::Json => {
            let value = dict.to_plain().map_err(crate::mapping::data_error)?;
            let mut out = String::new();
            pyjson::write(&value, &mut out);
            Ok(out.into_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_formats_and_refuses_pickle() {
        let dict = BTreeMap::from([("a".to_owned(), FlaskValue::Int(1))]);
        for format in [SerializationFormat::Msgpack, SerializationFormat::Json] {
            let bytes = encode(dict.clone(), format).unwrap();
            assert_eq!(decode(&bytes).unwrap(), dict);
        }
        // Python: pickle.dumps({'a': 1}).hex()  (protocol 4, Python 3.11)
        let pickle = [
            0x80, 0x04, 0x95, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0x7d, 0x94, 0x8c, 0x01, 0x61, 0x94, 0x4b,
            0x01, 0x73, 0x2e,
        ];
        let err = decode(&pickle).unwrap_err();
        assert!(err.to_string().contains("pickle format"), "{err}");
        assert!(decode(b"\x93\x01").is_err()); // a msgpack array, not a map
    }
}
