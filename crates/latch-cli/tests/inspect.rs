//! `latch inspect` against cookies made with latch's own codecs.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use common::{Made, cookie, json, latch, now, record, stderr, stdout, text_key};
use latch::Keyring;
use latch::codec::Aead;
use predicates::prelude::*;

const NAME: &str = "__Host-session";

/// A unique variable name per test, so parallel tests never share one.
fn var(tag: &str) -> String {
    format!("LATCH_CLI_TEST_{tag}")
}

#[test]
fn signed_cookie_via_env_key_shows_data_times_and_key_0() {
    let (text, key) = text_key();
    let t = now();
    let rec = record(t - 120, Some("alice"));
    let value = cookie(Made::Signed, &Keyring::new(key), NAME, &rec, t - 60);
    let out = latch()
        .args(["inspect", "--secret-env", &var("SIGNED"), &value])
        .env(var("SIGNED"), &text)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text_out = stdout(&out);
    for expected in [
        "cookie    __Host-session, signed (HMAC-SHA256)",
        "key       0, the current key (--secret-env LATCH_CLI_TEST_SIGNED)",
        "user      alice",
        "remember  no",
        "status    valid, expires in 2",
        "\"theme\": \"dark\"",
        "\"visits\": 3",
    ] {
        assert!(
            text_out.contains(expected),
            "{expected:?} missing from:\n{text_out}"
        );
    }
    assert!(
        text_out.contains(&format!("issued    {}", latch_cli_utc(t - 60))),
        "{text_out}"
    );
    assert!(
        text_out.contains(&format!("created   {}", latch_cli_utc(t - 120))),
        "{text_out}"
    );
}

/// RFC 3339 as the CLI prints it, computed independently.
fn latch_cli_utc(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn encrypted_cookies_with_either_aead_via_key_file() {
    let (text, key) = text_key();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latch.key");
    common::write_key_file(&path, &format!("{text}\n"));
    let ring = Keyring::new(key);
    let t = now();
    for (aead, label) in [
        (Aead::XChaCha20Poly1305, "encrypted (XChaCha20-Poly1305)"),
        (Aead::Aes256Gcm, "encrypted (AES-256-GCM)"),
    ] {
        let value = cookie(Made::Encrypted(aead), &ring, NAME, &record(t, None), t);
        for kind in ["auto", "encrypted"] {
            let out = latch()
                .args(["inspect", "--json", "--kind", kind, "--secret-file"])
                .arg(&path)
                .arg(&value)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            let report = json(&out);
            assert_eq!(report["kind"], label);
            assert_eq!(report["key_index"], 0);
            assert_eq!(report["data"]["theme"], "dark");
        }
        // The signed kind does not open an encrypted cookie.
        latch()
            .args(["inspect", "--kind", "signed", "--secret-file"])
            .arg(&path)
            .arg(&value)
            .assert()
            .code(1)
            .stderr("latch: cookie refused: not a latch cookie of the kind asked for (try --kind auto)\n");
    }
}

#[test]
fn previous_key_is_index_1_whatever_option_kinds_are_mixed() {
    let (new_text, _new) = text_key();
    let (old_text, old) = text_key();
    let dir = tempfile::tempdir().unwrap();
    let new_file = dir.path().join("new.key");
    common::write_key_file(&new_file, &new_text);
    let t = now();
    let value = cookie(Made::Signed, &Keyring::new(old), NAME, &record(t, None), t);
    let out = latch()
        .args(["inspect", "--json", "--secret-file"])
        .arg(&new_file)
        .args(["--secret-env", &var("OLD_KEY")])
        .arg(&value)
        .env(var("OLD_KEY"), &old_text)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["key_index"], 1);
    assert_eq!(report["key_source"], "--secret-env LATCH_CLI_TEST_OLD_KEY");
    // Given the other way round, the old key is current.
    let out = latch()
        .args(["inspect", "--secret-env", &var("OLD_KEY"), "--secret-file"])
        .arg(&new_file)
        .arg(&value)
        .env(var("OLD_KEY"), &old_text)
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("key       0, the current key"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn expired_cookie_still_shows_data_marked_expired() {
    let (text, key) = text_key();
    let t = now();
    // Issued an hour ago: past the 30-minute idle timeout.
    let value = cookie(
        Made::Signed,
        &Keyring::new(key),
        NAME,
        &record(t - 7200, Some("bob")),
        t - 3600,
    );
    let run = |extra: &[&str]| {
        latch()
            .args(["inspect", "--secret-env", &var("EXPIRED")])
            .args(extra)
            .arg(&value)
            .env(var("EXPIRED"), &text)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    // 30m ago, or 30m 1s if the clock ticked between the test and the binary.
    assert!(shown.contains("status    EXPIRED 30m"), "{shown}");
    assert!(
        shown.contains("ago (idle timeout); latch refuses it"),
        "{shown}"
    );
    assert!(shown.contains("\"theme\": \"dark\""), "{shown}");
    assert!(shown.contains("user      bob"), "{shown}");

    let report = json(&run(&["--json"]));
    assert_eq!(report["status"], "expired");
    assert_eq!(report["expired"], true);
    assert_eq!(report["expired_by"], "idle");
    assert_eq!(report["idle_expires_at"], t - 3600 + 1800);
    assert_eq!(report["absolute_expires_at"], t - 7200 + 12 * 3600);
    assert_eq!(report["expires_at"], t - 1800);
    assert_eq!(report["data"]["visits"], 3);

    // A longer idle timeout makes it valid; a shorter absolute one expires it
    // by the absolute deadline.
    assert_eq!(json(&run(&["--json", "--idle", "7200"]))["status"], "valid");
    let report = json(&run(&["--json", "--idle", "7200", "--absolute", "3600"]));
    assert_eq!(report["expired_by"], "absolute");
    assert_eq!(report["expires_at"], t - 3600);
}

#[test]
fn remember_me_sessions_use_the_remember_timeouts() {
    let (text, key) = text_key();
    let t = now();
    let mut rec = record(t - 86_400, None);
    rec.remember = true;
    let value = cookie(Made::Signed, &Keyring::new(key), NAME, &rec, t - 3600);
    let report = json(
        &latch()
            .args([
                "inspect",
                "--json",
                "--secret-env",
                &var("REMEMBER"),
                &value,
            ])
            .env(var("REMEMBER"), &text)
            .output()
            .unwrap(),
    );
    assert_eq!(report["remember"], true);
    assert_eq!(report["status"], "valid");
    assert_eq!(report["idle_timeout"], 7 * 86_400);
    assert_eq!(report["absolute_timeout"], 30 * 86_400);
}

#[test]
fn tampered_cookie_is_a_one_line_refusal_exit_1() {
    let (text, key) = text_key();
    let t = now();
    let value = cookie(Made::Signed, &Keyring::new(key), NAME, &record(t, None), t);
    let mid = value.len() / 2;
    let flipped = if &value[mid..=mid] == "A" { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &value[..mid], &value[mid + 1..]);
    let out = latch()
        .args(["inspect", "--secret-env", &var("TAMPER"), &tampered])
        .env(var("TAMPER"), &text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "latch: cookie refused: not authentic under the key given (tampered, signed with \
         another key, or issued under another cookie name than \"__Host-session\")\n"
    );
    // base64url values may start with `-`: still a cookie, not a flag.
    let dashed = format!("-{}", &value[1..]);
    let out = latch()
        .args(["inspect", "--secret-env", &var("TAMPER"), &dashed])
        .env(var("TAMPER"), &text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("latch: cookie refused"));
}

#[test]
fn wrong_key_and_wrong_name_are_refused_and_json_errors_go_to_stdout() {
    let (_, key) = text_key();
    let (other_text, _) = text_key();
    let (other2_text, _) = text_key();
    let t = now();
    let value = cookie(
        Made::Encrypted(Aead::default()),
        &Keyring::new(key.clone()),
        NAME,
        &record(t, None),
        t,
    );
    let out = latch()
        .args([
            "inspect",
            "--json",
            "--secret-env",
            &var("WRONG1"),
            "--secret-env",
            &var("WRONG2"),
            &value,
        ])
        .env(var("WRONG1"), &other_text)
        .env(var("WRONG2"), &other2_text)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "");
    let err = json(&out);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("cookie refused: not authentic under any of the 2 keys given"),
        "{err}"
    );
    assert_eq!(err.as_object().unwrap().len(), 1);

    // The right key, but the cookie presented under another name.
    let (text, key) = text_key();
    let value = cookie(Made::Signed, &Keyring::new(key), NAME, &record(t, None), t);
    latch()
        .args([
            "inspect",
            "--secret-env",
            &var("RENAMED"),
            &format!("__Host-other={value}"),
        ])
        .env(var("RENAMED"), &text)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "another cookie name than \"__Host-other\"",
        ));
}

#[test]
fn reads_the_cookie_from_stdin_with_name() {
    let (text, key) = text_key();
    let t = now();
    let value = cookie(
        Made::Signed,
        &Keyring::new(key),
        "app_session",
        &record(t, Some("carol")),
        t,
    );
    let out = latch()
        .args(["inspect", "--json", "--secret-env", &var("STDIN"), "-"])
        .env(var("STDIN"), &text)
        .write_stdin(format!(
            "Set-Cookie: app_session={value}; Path=/; HttpOnly\n"
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["cookie"], "app_session");
    assert_eq!(report["user_id"], "carol");
    // A bare value on stdin with --name.
    latch()
        .args([
            "inspect",
            "--name",
            "app_session",
            "--secret-env",
            &var("STDIN"),
            "-",
        ])
        .env(var("STDIN"), &text)
        .write_stdin(format!("{value}\n"))
        .assert()
        .success()
        .stdout(predicate::str::contains("user      carol"));
}

#[test]
fn json_report_has_every_documented_field() {
    let (text, key) = text_key();
    let t = now();
    let value = cookie(
        Made::Signed,
        &Keyring::new(key),
        NAME,
        &record(t - 10, None),
        t - 5,
    );
    let report = json(
        &latch()
            .args(["inspect", "--json", "--secret-env", &var("FIELDS"), &value])
            .env(var("FIELDS"), &text)
            .output()
            .unwrap(),
    );
    let keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "version",
        "cookie",
        "kind",
        "key_index",
        "key_source",
        "issued_at",
        "created_at",
        "user_id",
        "remember",
        "idle_timeout",
        "absolute_timeout",
        "idle_expires_at",
        "absolute_expires_at",
        "expires_at",
        "now",
        "status",
        "expired",
        "expired_by",
        "data",
    ];
    expected.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, expected);
    assert_eq!(report["version"], 1);
    assert_eq!(report["issued_at"], t - 5);
    assert_eq!(report["created_at"], t - 10);
    assert_eq!(report["user_id"], serde_json::Value::Null);
    assert_eq!(report["expired_by"], serde_json::Value::Null);
    assert_eq!(report["expired"], false);
    assert_eq!(report["idle_timeout"], 1800);
}

#[test]
fn weak_or_missing_keys_are_errors_exit_2() {
    latch()
        .args(["inspect", "--secret-env", &var("WEAK"), "AQAA"])
        .env(var("WEAK"), "changeme")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "secret key refused: it is a well-known placeholder value",
        ));
    latch()
        .args(["inspect", "AQAA"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "latch: key 0 (--secret-env LATCH_SECRET_KEY): secret key variable LATCH_SECRET_KEY cannot be read",
        ));
}

#[test]
fn garbage_never_panics() {
    let (text, _) = text_key();
    for junk in [
        "",
        "=",
        "a=",
        "====",
        "%%%",
        "AQ",
        &"A".repeat(5000),
        "\u{1f512}",
        "__Host-session=\"\"",
    ] {
        let out = latch()
            .args(["inspect", "--secret-env", &var("JUNK"), "--", junk])
            .env(var("JUNK"), &text)
            .output()
            .unwrap();
        let code = out.status.code();
        assert!(code == Some(1) || code == Some(2), "{junk:?}: {code:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with("latch: ") && err.lines().count() == 1,
            "{junk:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `--kind flask`: a Flask cookie (made with latch-flask's byte-identical
/// writer) under a fallback key, read with a current key that latch would
/// refuse to sign with (inspecting takes keys as they are); old cookies, even
/// past 400 days (issue 11), are shown with their data and marked expired by
/// Flask's max age.
#[test]
fn flask_cookie_with_fallback_key_and_flask_expiry() {
    use latch::codec::CookieFormat as _;
    let t = now();
    let mut rec = latch::Record::new(t);
    rec.data.insert("cart".into(), serde_json::json!([1, 2]));
    let old_key = "Zr4mQ8vT1xLk6NbW0cYp3HsG9dEa2UjF5oRi7KtVw1BnXq8C";
    let format = latch_flask::FlaskCookieFormat::new(old_key).unwrap();
    let fresh = format.encode("session", &rec, t - 60).unwrap();
    let stale = format.encode("session", &rec, t - 40 * 86_400).unwrap();
    let ancient = format.encode("session", &rec, t - 500 * 86_400).unwrap();
    let run = |value: &str| {
        latch()
            .args([
                "inspect",
                "--kind",
                "flask",
                "--secret-env",
                &var("FLASK_NEW"),
                "--secret-env",
            ])
            .arg(var("FLASK_OLD"))
            .arg(value)
            .env(var("FLASK_NEW"), "the-new-flask-secret-key")
            .env(var("FLASK_OLD"), old_key)
            .output()
            .unwrap()
    };
    let out = run(&fresh);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("flask (itsdangerous, HMAC-SHA1)"), "{text}");
    assert!(
        text.contains("key       1"),
        "verified by the fallback: {text}"
    );
    assert!(text.contains("\"cart\""), "{text}");
    assert!(text.contains("status    valid"), "{text}");
    for old in [&stale, &ancient] {
        let out = run(old);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains("EXPIRED") || text.contains("expired"),
            "{text}"
        );
        assert!(
            text.contains("\"cart\""),
            "expired cookie still shows its data: {text}"
        );
    }
    let mut tampered = fresh.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let out = run(&String::from_utf8(tampered).unwrap());
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}
