//! Running the real Flask (through tests/python/flask_helper.py) and reaching
//! the real Redis, for the interop tests.
#![allow(dead_code)] // each test file uses part of this

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// A fixed "now" for deterministic cookies (2023-11-14).
pub const NOW: i64 = 1_700_000_000;

/// A Flask secret key that latch would also accept as strong.
pub const KEY: &str = "l11KCqdjVDbj7JZqeTWmRIUcjVOXsORHX2xJBLU5xzDCXld9VXJb67VbDmxCHhTx";

/// The Python interpreter of the pinned Flask virtualenv, from
/// `LATCH_FLASK_PYTHON` (see scripts/venv.sh); `None` after a loud skip (or a
/// panic under `LATCH_REQUIRE_BACKENDS=1`) when unset or unusable.
pub fn python() -> Option<PathBuf> {
    let Ok(path) = std::env::var("LATCH_FLASK_PYTHON") else {
        return latch_conformance::skip_or_fail(
            "Flask",
            "LATCH_FLASK_PYTHON is not set; run crates/latch-flask/scripts/venv.sh",
        );
    };
    let check = Command::new(&path)
        .args(["-c", "import flask, flask_session, msgspec, redis"])
        .output();
    match check {
        Ok(out) if out.status.success() => Some(PathBuf::from(path)),
        Ok(out) => latch_conformance::skip_or_fail(
            "Flask",
            &format!(
                "{path} cannot import Flask and Flask-Session: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        ),
        Err(e) => latch_conformance::skip_or_fail("Flask", &format!("cannot run {path}: {e}")),
    }
}

/// Run one helper command with `request` on stdin; its JSON answer.
pub fn flask(python: &PathBuf, command: &str, request: Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/flask_helper.py");
    let mut child = Command::new(python)
        .args([script, command])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Flask helper");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write the request");
    let out = child.wait_with_output().expect("run the Flask helper");
    assert!(
        out.status.success(),
        "flask_helper.py {command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the helper answers JSON")
}

/// `make-cookie`: the cookie Flask sets for `data` at `now`.
pub fn flask_cookie(python: &PathBuf, key: &str, now: i64, data: &Value) -> String {
    let out = flask(
        python,
        "make-cookie",
        json!({"secret_key": key, "now": now, "data": data}),
    );
    out["cookie"].as_str().expect("cookie").to_owned()
}

/// `read-cookie`: what Flask finds in `cookie` at `now` (`data` is `{}` when it
/// refuses the cookie).
pub fn flask_reads(python: &PathBuf, key: &str, now: i64, max_age: u64, cookie: &str) -> Value {
    flask(
        python,
        "read-cookie",
        json!({"secret_key": key, "now": now, "lifetime": max_age, "cookie": cookie}),
    )
}

/// The Redis URL from `LATCH_REDIS_URL` (default local), if Redis answers;
/// `None` after a loud skip otherwise.
pub fn redis_url() -> Option<String> {
    let url =
        std::env::var("LATCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let ping = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection())
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    match ping {
        Ok(_) => Some(url),
        Err(e) => latch_conformance::skip_or_fail("Redis", &format!("{url}: {e}")),
    }
}

/// A key prefix no other test uses.
pub fn unique_prefix(test: &str) -> String {
    format!(
        "latch-flask-test:{test}:{}:",
        &latch::SessionId::generate().encode()[..12]
    )
}

pub use latch_conformance::requests::cookie_value;

/// Session data covering every tag Flask defines, plus plain JSON types.
pub fn every_type() -> Value {
    json!({
        "tuple": {" t": [1, "a", {" t": []}]},
        "bytes": {" b": "AP8Q"},
        "markup": {" m": "<b>bold</b>"},
        "uuid": {" u": "12345678123456781234567812345678"},
        "datetime": {" d": "Wed, 21 Oct 2015 07:28:00 GMT"},
        "escaped": {" di": {" t__": {" b": "aGk="}}},
        "nested": {"list": [1, 2.5, null, true, "é\u{1f512}"], "dict": {"k": {" m": "x"}}},
        "int": -42,
        "big": 18_446_744_073_709_551_615_u64,
        "float": 0.1,
        "text": "plain \"quoted\" \\ text"
    })
}

/// Python's repr of each value of [`every_type`], as Flask reads it back.
pub fn every_type_reprs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("tuple", "(1, 'a', ())"),
        ("bytes", "b'\\x00\\xff\\x10'"),
        ("markup", "Markup('<b>bold</b>')"),
        ("uuid", "UUID('12345678-1234-5678-1234-567812345678')"),
        (
            "datetime",
            "datetime.datetime(2015, 10, 21, 7, 28, tzinfo=datetime.timezone.utc)",
        ),
        ("escaped", "{' t': b'hi'}"),
        ("int", "-42"),
        ("big", "18446744073709551615"),
        ("float", "0.1"),
    ]
}
