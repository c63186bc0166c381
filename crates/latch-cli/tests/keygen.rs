//! `latch keygen`: lengths, formats, refusals, randomness, and that latch
//! accepts every key it prints.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{latch, stderr, stdout};
use predicates::prelude::*;

fn keygen(args: &[&str]) -> String {
    let output = latch().arg("keygen").args(args).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let out = stdout(&output);
    assert!(out.ends_with('\n') && out.lines().count() == 1, "{out:?}");
    out.trim_end().to_owned()
}

fn accepted(key: &str) {
    latch::SecretKey::from_bytes(key.as_bytes())
        .unwrap_or_else(|e| panic!("latch refused {key:?}: {e}"));
}

#[test]
fn default_is_64_bytes_of_base64() {
    let key = keygen(&[]);
    assert_eq!(key.len(), 88);
    assert_eq!(STANDARD.decode(&key).unwrap().len(), 64);
    accepted(&key);
}

#[test]
fn hex_and_base64_lengths_follow_bytes() {
    for n in [32usize, 33, 48, 100] {
        let hex = keygen(&["--bytes", &n.to_string(), "--format", "hex"]);
        assert_eq!(hex.len(), 2 * n);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        accepted(&hex);
        let b64 = keygen(&["--bytes", &n.to_string(), "--format", "base64"]);
        assert_eq!(STANDARD.decode(&b64).unwrap().len(), n);
        accepted(&b64);
    }
}

#[test]
fn env_format_is_an_assignment_latch_reads_from_the_environment() {
    let line = keygen(&["--format", "env"]);
    let value = line.strip_prefix("LATCH_SECRET_KEY=").unwrap();
    assert_eq!(STANDARD.decode(value).unwrap().len(), 64);
    accepted(value);
    // Through the environment, as an application loads it: a cookie signed with
    // this key verifies when the printed value is LATCH_SECRET_KEY.
    let ring = latch::Keyring::new(latch::SecretKey::from_bytes(value.as_bytes()).unwrap());
    let now = common::now();
    let cookie = common::cookie(
        common::Made::Signed,
        &ring,
        "__Host-session",
        &common::record(now, None),
        now,
    );
    latch()
        .args(["inspect", &cookie])
        .env("LATCH_SECRET_KEY", value)
        .assert()
        .success()
        .stdout(predicate::str::contains("status    valid"));
}

#[test]
fn two_runs_differ() {
    assert_ne!(keygen(&[]), keygen(&[]));
    assert_ne!(
        keygen(&["--bytes", "32", "--format", "hex"]),
        keygen(&["--bytes", "32", "--format", "hex"])
    );
}

#[test]
fn fewer_than_32_bytes_is_refused_with_the_reason() {
    latch()
        .args(["keygen", "--bytes", "31"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            "latch: refusing --bytes 31: a secret key needs at least 32 random bytes (256 bits), \
             which latch requires; the default is 64\n",
        );
}

#[test]
fn unknown_format_is_a_usage_error() {
    latch()
        .args(["keygen", "--format", "pem"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid value 'pem'"));
}

#[test]
fn help_has_examples() {
    latch()
        .args(["keygen", "--help"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Examples:").and(predicate::str::contains("--format env")),
        );
}

/// A9/K7: `--out` creates the key file readable by its owner only, which
/// `SecretKey::from_file` accepts (it refuses a file others can read), and
/// never overwrites an existing file.
#[test]
fn out_writes_an_owner_only_key_file_latch_accepts() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!(
        "latch-keygen-out-{}-{}",
        std::process::id(),
        &latch::SessionId::generate().encode()[..8]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latch.key");
    let output = latch()
        .args(["keygen", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "", "the key is not printed");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    latch::SecretKey::from_file(&path).unwrap();
    let again = latch()
        .args(["keygen", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("must not exist yet"),
        "{}",
        stderr(&again)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
