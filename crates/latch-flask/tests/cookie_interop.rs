//! Flask's signed cookie against the real Flask 3.1 (tests/python/flask_helper.py).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::Duration;

use common::{KEY, NOW, every_type, every_type_reprs, flask, flask_cookie, flask_reads, python};
use latch::codec::CookieFormat;
use latch::{ManualClock, Record};
use latch_flask::FlaskCookieFormat;
use serde_json::{Value, json};

const NAME: &str = "session";
const MAX_AGE: u64 = 3600;

fn format_at(now: i64) -> FlaskCookieFormat {
    FlaskCookieFormat::new(KEY)
        .max_age(Duration::from_secs(MAX_AGE))
        .clock(ManualClock::new(now))
}

fn record_with(data: &Value) -> Record {
    let mut record = Record::new(NOW);
    for (k, v) in data.as_object().unwrap() {
        record.data.insert(k.clone(), v.clone());
    }
    record
}

fn data_of(record: &Record) -> Value {
    Value::Object(record.data.clone().into_iter().collect())
}

#[test]
fn every_tagged_type_from_flask_to_latch() {
    let Some(py) = python() else { return };
    let mut data = every_type();
    data["_permanent"] = json!(true);
    data["_user_id"] = json!("alice");
    let cookie = flask_cookie(&py, KEY, NOW, &data);
    let decoded = format_at(NOW).decode(NAME, &cookie).unwrap();
    assert_eq!(decoded.key_index, 0);
    assert!(decoded.record.remember, "_permanent is remember");
    assert_eq!(decoded.record.user_id.as_deref(), Some("alice"));
    assert_eq!(decoded.record.last_seen, NOW);
    assert_eq!(data_of(&decoded.record), every_type());
}

#[test]
fn every_tagged_type_from_latch_to_flask() {
    let Some(py) = python() else { return };
    let mut record = record_with(&every_type());
    record.remember = true;
    record.user_id = Some("alice".into());
    let cookie = format_at(NOW).encode(NAME, &record, NOW).unwrap();
    let seen = flask_reads(&py, KEY, NOW, MAX_AGE, &cookie);
    let mut expected = every_type();
    expected["_permanent"] = json!(true);
    expected["_user_id"] = json!("alice");
    assert_eq!(seen["data"], expected);
    for (key, repr) in every_type_reprs() {
        assert_eq!(seen["repr"][key], repr, "Python type of {key}");
    }
}

/// Byte-identical cookies for the same data and time, compressed or not.
#[test]
fn cookies_are_byte_identical_to_flask() {
    let Some(py) = python() else { return };
    let long_text = "the same words again and again ".repeat(20);
    let cases = [
        (json!({"user": "alice"}), false),
        (every_type(), true),
        (
            json!({"long": long_text, "n": [1e16, 1e-5, 123.456, -0.0]}),
            true,
        ),
        (
            json!({"ünïcödé": "\u{1f512}\u{7f}\n", "Z": 1, "a": 2}),
            true,
        ),
        (
            json!({"floats": [0.1, 1.0, 1e22, 5e-324, 1.7976931348623157e308]}),
            false,
        ),
        (json!({"_permanent": true}), false),
    ];
    for (data, compressed) in cases {
        let from_flask = flask_cookie(&py, KEY, NOW, &data);
        let mut record = record_with(&data);
        record.remember = record.data.remove("_permanent").is_some();
        let from_latch = format_at(NOW).encode(NAME, &record, NOW).unwrap();
        assert_eq!(from_latch, from_flask, "for {data}");
        assert_eq!(
            from_flask.starts_with('.'),
            compressed,
            "compression of {data}"
        );
    }
}

#[test]
fn fallback_keys_are_accepted_and_marked_for_reissue() {
    let Some(py) = python() else { return };
    let old = "the-previous-flask-secret-key-0123456789";
    let older = "the-oldest-flask-secret-key-0123456789ab";
    let cookie = flask_cookie(&py, old, NOW, &json!({"k": "v"}));
    let format = format_at(NOW).fallbacks([older, old]);
    let decoded = format.decode(NAME, &cookie).unwrap();
    assert_eq!(decoded.key_index, 1, "the newest fallback is tried first");
    assert_eq!(decoded.record.data["k"], "v");
    let oldest = flask_cookie(&py, older, NOW, &json!({"k": "v"}));
    assert_eq!(format.decode(NAME, &oldest).unwrap().key_index, 2);
    // Without the fallback the cookie is refused, as Flask refuses it.
    assert!(format_at(NOW).decode(NAME, &cookie).is_err());
    assert_eq!(
        flask_reads(&py, KEY, NOW, MAX_AGE, &cookie)["data"],
        json!({})
    );
    // Flask with the same fallbacks reads it too.
    let seen = flask(
        &py,
        "read-cookie",
        json!({"secret_key": KEY, "fallbacks": [older, old], "now": NOW,
               "lifetime": MAX_AGE, "cookie": cookie}),
    );
    assert_eq!(seen["data"], json!({"k": "v"}));
}

/// Exactly at max age: accepted; one second past: refused; from the future:
/// refused. Flask decides the same at each instant.
#[test]
fn expiry_edges_match_flask() {
    let Some(py) = python() else { return };
    let cookie = flask_cookie(&py, KEY, NOW, &json!({"k": "v"}));
    let max_age = MAX_AGE as i64;
    for (now, accepted) in [
        (NOW, true),
        (NOW + max_age, true),
        (NOW + max_age + 1, false),
        (NOW - 1, false),
    ] {
        let latch_accepts = format_at(now).decode(NAME, &cookie).is_ok();
        let flask_accepts = flask_reads(&py, KEY, now, MAX_AGE, &cookie)["data"] != json!({});
        assert_eq!(
            latch_accepts,
            accepted,
            "latch at now = NOW + {}",
            now - NOW
        );
        assert_eq!(
            flask_accepts,
            accepted,
            "Flask at now = NOW + {}",
            now - NOW
        );
    }
}

/// Every single-character change, every truncation, a wrong key and a wrong
/// salt: one outcome (`Rejected`, displayed the same), no panic.
#[test]
fn tampered_flask_cookies_are_rejected() {
    let Some(py) = python() else { return };
    let short = flask_cookie(&py, KEY, NOW, &json!({"user": "alice"}));
    let long = flask_cookie(&py, KEY, NOW, &every_type());
    let format = format_at(NOW);
    for cookie in [&short, &long] {
        assert!(format.decode(NAME, cookie).is_ok());
        for i in 0..cookie.len() {
            for replacement in ['A', '_', '.', '0'] {
                let mut bytes = cookie.clone().into_bytes();
                if bytes[i] == replacement as u8 {
                    continue;
                }
                bytes[i] = replacement as u8;
                let tampered = String::from_utf8(bytes).unwrap();
                let err = format.decode(NAME, &tampered).unwrap_err();
                assert_eq!(err.to_string(), "invalid session cookie");
            }
        }
        for len in 0..cookie.len() {
            assert!(
                format.decode(NAME, &cookie[..len]).is_err(),
                "truncated to {len}"
            );
        }
    }
    let wrong_key = flask_cookie(
        &py,
        "another-flask-secret-key-0123456789abcd",
        NOW,
        &json!({"a": 1}),
    );
    assert!(format.decode(NAME, &wrong_key).is_err());
    let wrong_salt = flask(
        &py,
        "sign-cookie",
        json!({"secret_key": KEY, "salt": "not-cookie-session", "now": NOW, "data": {"a": 1}}),
    )["cookie"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(format.decode(NAME, &wrong_salt).is_err());
    let right_salt = flask(
        &py,
        "sign-cookie",
        json!({"secret_key": KEY, "salt": "cookie-session", "now": NOW, "data": {"a": 1}}),
    )["cookie"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        format.decode(NAME, &right_salt).unwrap().record.data["a"],
        1
    );
}

/// A weak Flask key is used (the Flask app already signs with it) but logged.
#[test]
fn weak_flask_keys_work() {
    let Some(py) = python() else { return };
    let cookie = flask_cookie(&py, "dev", NOW, &json!({"k": 1}));
    let format = FlaskCookieFormat::new("dev").clock(ManualClock::new(NOW));
    assert_eq!(format.decode(NAME, &cookie).unwrap().record.data["k"], 1);
    let written = format
        .encode(NAME, &record_with(&json!({"k": 2})), NOW)
        .unwrap();
    assert_eq!(
        flask_reads(&py, "dev", NOW, 60, &written)["data"],
        json!({"k": 2})
    );
}

/// Python's float repr over many magnitudes and random bit patterns.
#[test]
fn floats_are_written_as_python_writes_them() {
    let Some(py) = python() else { return };
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut floats = Vec::new();
    for exp in -40..40 {
        let mantissa = (next() % 1_000_000) as f64 / 997.0;
        floats.push(json!(mantissa * 10f64.powi(exp)));
    }
    while floats.len() < 300 {
        let f = f64::from_bits(next());
        if f.is_finite() {
            floats.push(json!(f));
        }
    }
    // In cookies small enough to be read back (4 KiB).
    for chunk in floats.chunks(60) {
        let data = json!({ "f": chunk });
        let from_flask = flask_cookie(&py, KEY, NOW, &data);
        let from_latch = format_at(NOW)
            .encode(NAME, &record_with(&data), NOW)
            .unwrap();
        assert_eq!(from_latch, from_flask);
        let decoded = format_at(NOW).decode(NAME, &from_flask).unwrap();
        assert_eq!(data_of(&decoded.record), data);
    }
}

/// Through the manager: a fallback-signed cookie is re-issued under the current
/// key (Flask without the fallback then reads it), and latch's expiry policy
/// from `configure` does not cut in before Flask's rule.
#[tokio::test]
async fn manager_reissues_and_keeps_flask_expiry() {
    let Some(py) = python() else { return };
    let old = "the-previous-flask-secret-key-0123456789";
    let cookie = flask_cookie(&py, old, NOW, &json!({"k": "v"}));
    let clock = ManualClock::new(NOW + MAX_AGE as i64);
    let manager = format_at(NOW)
        .fallbacks([old])
        .clock(clock.clone())
        .configure(latch::SessionManager::builder())
        .unwrap()
        .clock(clock.clone())
        .cookie(latch::CookieConfig::builder().name(NAME).build().unwrap())
        .build()
        .unwrap();
    let header = format!("{NAME}={cookie}");
    let session = manager.start(Some(header.as_str()), Default::default());
    assert_eq!(
        session.get::<String>("k").await.unwrap().as_deref(),
        Some("v")
    );
    let set = manager.finish(&session).await.unwrap().set_cookie.unwrap();
    let reissued = common::cookie_value(&set);
    assert_ne!(reissued, cookie);
    let seen = flask_reads(&py, KEY, NOW + MAX_AGE as i64, MAX_AGE, &reissued);
    assert_eq!(seen["data"], json!({"k": "v"}));
    // One second past max age the manager starts a fresh session.
    clock.advance(1);
    let session = manager.start(Some(header.as_str()), Default::default());
    assert!(session.facts().await.unwrap().is_new);
}
