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
/// A strong key the Flask app used before [`KEY`].
const OLD_KEY: &str = "Tg5vQ1mX8rLc3NwZ7pKa0HsE6yJd2UbF9oRi4VtWq1CnYx5B";
const MAX_AGE: u64 = 3600;

fn format_at(now: i64) -> FlaskCookieFormat {
    FlaskCookieFormat::new(KEY)
        .unwrap()
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
    let old = OLD_KEY;
    let older = "Kc7pW2xN9qRt4LmV0sHy6BfJ3eZa8UdG1oTi5XwQ2nEr7YkM";
    let cookie = flask_cookie(&py, old, NOW, &json!({"k": "v"}));
    let format = format_at(NOW).fallbacks([older, old]).unwrap();
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

/// K1/issue 11: a weak Flask key (`dev`, Flask's tutorial key, or an empty
/// one) is refused for signing, so nobody can forge `_user_id`; during a
/// migration it may still verify old cookies by the loudly named option, and
/// those are re-issued under the strong key, which Flask then reads.
#[tokio::test]
async fn weak_flask_keys_are_refused_and_verify_only_during_a_migration() {
    for weak in ["dev", "", "changeme", "my-flask-secret-key-0123456789"] {
        let err = FlaskCookieFormat::new(weak).unwrap_err();
        assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig);
        assert!(
            err.to_string().contains("too weak to sign sessions"),
            "{err}"
        );
        assert!(err.to_string().contains("insecure_weak_fallbacks"), "{err}");
        let strong = FlaskCookieFormat::new(KEY).unwrap();
        assert!(strong.fallbacks([weak]).is_err(), "{weak:?} as a fallback");
    }
    let Some(py) = python() else { return };
    let cookie = flask_cookie(&py, "dev", NOW, &json!({"k": 1}));
    let manager = format_at(NOW)
        .insecure_weak_fallbacks(["dev"])
        .configure(latch::SessionManager::builder())
        .unwrap()
        .clock(ManualClock::new(NOW))
        .cookie(latch::CookieConfig::builder().name(NAME).build().unwrap())
        .build()
        .unwrap();
    let header = format!("{NAME}={cookie}");
    let session = manager.start(Some(header.as_str()), Default::default());
    assert_eq!(session.get::<i64>("k").await.unwrap(), Some(1));
    let set = manager.finish(&session).await.unwrap().set_cookie.unwrap();
    let reissued = common::cookie_value(&set);
    assert_eq!(
        flask_reads(&py, KEY, NOW, MAX_AGE, &reissued)["data"],
        json!({"k": 1}),
        "re-issued under the strong key"
    );
}

/// Issue 11, item 14: under the Flask format a data key that Flask gives a
/// meaning (`_user_id`, `_permanent`, Flask-Login's and Flask-WTF's) cannot
/// be set by the application, so no data becomes sign-in state; and a map
/// whose only key is a tag is written as Flask escapes it, so Flask reads
/// back the same map, never `Markup` (HTML its templates render unescaped).
#[tokio::test]
async fn flask_keys_are_reserved_and_tag_shaped_maps_are_escaped() {
    let manager = format_at(NOW)
        .configure(latch::SessionManager::builder())
        .unwrap()
        .clock(ManualClock::new(NOW))
        .cookie(latch::CookieConfig::builder().name(NAME).build().unwrap())
        .build()
        .unwrap();
    let session = manager.start(std::iter::empty(), Default::default());
    for key in latch_flask::FLASK_KEYS {
        let err = session.insert(key, "alice").await.unwrap_err();
        assert_eq!(err.kind(), &latch::ErrorKind::InvalidKey, "{key}");
        assert!(
            session.update(key, |_: Option<bool>| true).await.is_err(),
            "{key}"
        );
    }
    // The same keys are reserved for Flask-Session's stored sessions.
    let stored = latch::SessionManager::builder()
        .store(latch::MemoryStore::new())
        .id_format(latch_flask::FlaskSessionIds::unsigned())
        .build()
        .unwrap();
    let other = stored.start(std::iter::empty(), Default::default());
    assert!(other.insert("_user_id", "alice").await.is_err());
    assert!(other.insert("_permanent", true).await.is_err());
    let user_chosen = std::collections::BTreeMap::from([(" m", "<script>alert(1)</script>")]);
    session.insert("scratch", &user_chosen).await.unwrap();
    session
        .insert(
            "nested",
            json!({"a": [{" m": "<b>"}], "b": {" t": [{" m": "<i>"}]}}),
        )
        .await
        .unwrap();
    session
        .insert("bad", json!({" b": "not base64!"}))
        .await
        .unwrap();
    let set = manager.finish(&session).await.unwrap().set_cookie.unwrap();
    let cookie = common::cookie_value(&set);
    let decoded = format_at(NOW).decode(NAME, &cookie).unwrap().record;
    assert_eq!(decoded.user_id, None);
    assert_eq!(
        decoded.data["scratch"],
        json!({" di": {" m__": "<script>alert(1)</script>"}})
    );
    let Some(py) = python() else { return };
    let seen = flask_reads(&py, KEY, NOW, MAX_AGE, &cookie);
    for (key, repr) in [
        ("scratch", "{' m': '<script>alert(1)</script>'}"),
        ("nested", "{'a': [{' m': '<b>'}], 'b': ({' m': '<i>'},)}"),
        ("bad", "{' b': 'not base64!'}"),
    ] {
        assert_eq!(seen["repr"][key], repr, "Python value of {key}");
    }
    assert!(seen["repr"].get("_user_id").is_none());
    let text = seen.to_string();
    assert!(!text.contains("Markup"), "{text}");
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
    let old = OLD_KEY;
    let cookie = flask_cookie(&py, old, NOW, &json!({"k": "v"}));
    let clock = ManualClock::new(NOW + MAX_AGE as i64);
    let manager = format_at(NOW)
        .fallbacks([old])
        .unwrap()
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
