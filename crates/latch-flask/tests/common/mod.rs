//! Running the real Flask (through tests/python/flask_helper.py) and reaching
//! the real Redis, for the interop tests.
#![allow(dead_code)] // each test file uses part of this

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

/// A fixed "now" for deterministic cookies (2023-11-14).
pub const NOW: i64 = 1_700_000_000;

/// A Flask secret key that latch would also accept as strong.
pub const KEY: &str = "l11KCqdjVDbj7JZqeTWmRIUcjVOXsORHX2xJBLU5xzDCXld9VXJb67VbDmxCHhTx";

/// The Python interpreter of the pinned Flask virtualenv; `None` after a loud
/// skip (or a panic under `LATCH_REQUIRE_BACKENDS=1`) when there is none.
///
/// `LATCH_FLASK_PYTHON` names it; unset, scripts/venv.sh makes (or reuses)
/// target/flask-venv, once per test binary.
pub fn python() -> Option<PathBuf> {
    static FLASK: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match FLASK.get_or_init(find_python) {
        Ok(path) => Some(path.clone()),
        Err(why) => latch_conformance::skip_or_fail("Flask", why),
    }
}

/// The interpreter, checked to import the Flask stack, or why there is none.
fn find_python() -> Result<PathBuf, String> {
    let found = match std::env::var_os("LATCH_FLASK_PYTHON") {
        Some(path) => Ok(PathBuf::from(path)),
        None => provision(),
    };
    let checked = found.and_then(|path| imports_flask(&path).map(|()| path));
    if let Err(why) = &checked {
        announce_skip(why);
    }
    checked
}

/// Run scripts/venv.sh (the one recipe for the virtualenv, also CI's): the
/// python it prints, or its error output.
fn provision() -> Result<PathBuf, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/venv.sh");
    let mut venv = Command::new("bash");
    venv.arg(script).stdin(Stdio::null());
    let (done, ran) = mpsc::channel();
    std::thread::spawn(move || done.send(venv.output()));
    let out = ran
        .recv_timeout(Duration::from_secs(2))
        .or_else(|_| {
            // The first run downloads Flask: say why the tests stand still.
            loud(
                "latch-flask: installing the pinned Flask into target/flask-venv (scripts/venv.sh)",
            );
            ran.recv()
        })
        .expect("the venv.sh thread answers")
        .map_err(|e| format!("cannot run bash {script}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scripts/venv.sh failed ({}): {}; or set LATCH_FLASK_PYTHON",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let printed = String::from_utf8_lossy(&out.stdout);
    Ok(PathBuf::from(printed.trim()))
}

/// Whether `python` imports what tests/python/flask_helper.py needs.
fn imports_flask(python: &Path) -> Result<(), String> {
    let out = Command::new(python)
        .args(["-c", "import flask, flask_session, msgspec, redis"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{} cannot import Flask and Flask-Session: {}",
        python.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// Once per test binary, the skip in plain `cargo test` output too: the
/// harness captures `eprintln!` of each test (`skip_or_fail` prints there).
fn announce_skip(why: &str) {
    if std::env::var("LATCH_REQUIRE_BACKENDS").is_ok_and(|v| v == "1") {
        return; // every Flask test fails, saying why
    }
    loud(&format!(
        "SKIPPED: Flask unavailable ({why}); this binary's Flask tests pass without running"
    ));
}

/// A line on the real stderr, past the test harness's capture.
fn loud(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
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
