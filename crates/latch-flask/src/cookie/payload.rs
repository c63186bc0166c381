//! The payload part of a Flask cookie: tagged JSON, maybe zlib-compressed,
//! base64url.

use std::io::Read as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flate2::{Compress, Compression, FlushCompress, Status};
use latch::codec::Rejected;
use latch::{Record, UnixTime};

use crate::mapping::{data_error, dict_from_record, record_from_dict};
use crate::pyjson;
use crate::tagged::{DateStyle, FlaskValue};

/// The most JSON a compressed payload may inflate to. A browser cookie holds at
/// most 4 KiB; Flask data compresses a few times over, not a thousand.
const MAX_JSON_BYTES: u64 = 256 * 1024;

/// The session's JSON exactly as Flask's `session_json_serializer.dumps` writes
/// it (datetimes as HTTP dates, to the second, as Flask drops sub-seconds).
pub(super) fn session_json(record: &Record) -> latch::Result<String> {
    let dict = dict_from_record(record).map_err(data_error)?;
    let tagged = FlaskValue::Dict(dict)
        .tag(DateStyle::Http)
        .map_err(data_error)?;
    let mut json = String::new();
    pyjson::write(&tagged, &mut json);
    Ok(json)
}

/// itsdangerous' `URLSafeSerializerMixin.dump_payload`: compressed (and marked
/// with `.`) only when that saves at least two bytes.
pub(super) fn encode(json: &[u8]) -> String {
    let compressed = zlib_compress(json);
    match compressed {
        Some(c) if c.len() < json.len().saturating_sub(1) => {
            format!(".{}", URL_SAFE_NO_PAD.encode(c))
        }
        _ => URL_SAFE_NO_PAD.encode(json),
    }
}

/// `zlib.compress(data)`: level 6, one call that finishes the stream, as CPython
/// does (the C zlib, so the bytes are the same).
fn zlib_compress(data: &[u8]) -> Option<Vec<u8>> {
    let mut compress = Compress::new(Compression::default(), true);
    // zlib's deflateBound is below this for every input.
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 64);
    match compress.compress_vec(data, &mut out, FlushCompress::Finish) {
        Ok(Status::StreamEnd) => Some(out),
        _ => None,
    }
}

/// Decode an authenticated payload into the session record issued at `issued`.
pub(super) fn decode(payload: &str, issued: UnixTime) -> Result<Record, Rejected> {
    let json = payload_bytes(payload)?;
    let value = pyjson::parse(&json).map_err(|e| Rejected::new(e.0))?;
    let session = FlaskValue::from_tagged(&value)
        .map_err(|_| Rejected::new("authentic cookie with malformed tagged JSON"))?;
    // Only forms Flask itself writes are taken, so a re-issued cookie carries
    // exactly the values that came in.
    let canonical = session.tag(DateStyle::Http).ok();
    if canonical.as_ref() != Some(&value) {
        return Err(Rejected::new(
            "authentic cookie with non-canonical tagged JSON",
        ));
    }
    let FlaskValue::Dict(dict) = session else {
        return Err(Rejected::new(
            "authentic cookie whose session is not a dict",
        ));
    };
    record_from_dict(dict, issued).map_err(|_| Rejected::new("unrepresentable session value"))
}

fn payload_bytes(payload: &str) -> Result<Vec<u8>, Rejected> {
    let (compressed, b64) = match payload.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, payload),
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| Rejected::new("payload not base64url"))?;
    if compressed {
        inflate(&bytes)
    } else {
        Ok(bytes)
    }
}

fn inflate(bytes: &[u8]) -> Result<Vec<u8>, Rejected> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(bytes)
        .take(MAX_JSON_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|_| Rejected::new("payload does not inflate"))?;
    if out.len() as u64 > MAX_JSON_BYTES {
        return Err(Rejected::new("payload inflates too far"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compresses_only_when_two_bytes_shorter() {
        let short = br#"{"a":1}"#;
        assert_eq!(encode(short), URL_SAFE_NO_PAD.encode(short));
        let long = format!(r#"{{"a":"{}"}}"#, "x".repeat(200));
        let encoded = encode(long.as_bytes());
        assert!(encoded.starts_with('.'));
        assert_eq!(payload_bytes(&encoded).unwrap(), long.as_bytes());
    }

    #[test]
    fn zlib_output_matches_python() {
        // Python 3.11 / zlib 1.2.13:
        // base64.urlsafe_b64encode(zlib.compress(b'{"a":"' + b"x"*200 + b'"}')).rstrip(b"=")
        let long = format!(r#"{{"a":"{}"}}"#, "x".repeat(200));
        assert_eq!(encode(long.as_bytes()), ".eJyrVkpUslKqGCZAqRYAvw9f3A");
    }

    #[test]
    fn inflation_is_bounded() {
        let bomb = vec![b' '; 2 * MAX_JSON_BYTES as usize];
        let encoded = encode(&bomb);
        assert!(payload_bytes(&encoded).is_err());
    }
}
