//! Helpers shared by the integration tests: the binary, keys and cookies.

#![allow(dead_code)] // each test binary uses its own part of these helpers
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use assert_cmd::Command;
use base64::Engine as _;
use latch::codec::{Aead, CookieFormat, LatchFormat, SealedCodec, SignedCodec};
use latch::{Keyring, Record, SecretKey};

/// The `latch` binary built for these tests.
pub fn latch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latch"));
    // Tests pass keys explicitly; a developer's own key must not leak in.
    cmd.env_remove("LATCH_SECRET_KEY");
    cmd
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    latch::Clock::now(&latch::SystemClock)
}

/// A fresh key as the text an operator would put in a variable or file, and the
/// same key loaded as latch loads it.
pub fn text_key() -> (String, SecretKey) {
    let mut raw = [0u8; 48];
    getrandom::fill(&mut raw).unwrap();
    let text = base64::engine::general_purpose::STANDARD.encode(raw);
    let key = SecretKey::from_bytes(text.as_bytes()).unwrap();
    (text, key)
}

/// A record created at `created`, for user `user`, holding `theme = dark`.
pub fn record(created: i64, user: Option<&str>) -> Record {
    let mut record = Record::new(created);
    record.user_id = user.map(str::to_owned);
    record.data.insert("theme".into(), "dark".into());
    record.data.insert("visits".into(), 3.into());
    record
}

/// The cookie kinds the tests make.
#[derive(Debug, Clone, Copy)]
pub enum Made {
    Signed,
    Encrypted(Aead),
}

/// A cookie value of `kind` for `record`, issued at `issued`, under `ring`.
pub fn cookie(kind: Made, ring: &Keyring, name: &str, record: &Record, issued: i64) -> String {
    let format: Box<dyn CookieFormat> = match kind {
        Made::Signed => Box::new(LatchFormat::new(SignedCodec::new(ring))),
        Made::Encrypted(aead) => Box::new(LatchFormat::new(SealedCodec::new(ring, aead))),
    };
    format.encode(name, record, issued).unwrap()
}

/// Standard output of a finished command, as text.
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Standard error of a finished command, as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Standard output parsed as JSON.
pub fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(output)))
}

/// Write a key file readable by its owner only, as `SecretKey::from_file`
/// requires.
pub fn write_key_file(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
