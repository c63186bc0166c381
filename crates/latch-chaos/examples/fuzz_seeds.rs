//! Write the fuzz seed corpus (`fuzz/corpus/<target>/seed-*`) and the
//! hand-picked regression inputs (`fuzz/regressions/<target>/*`).
//!
//! `cargo run -p latch-chaos --example fuzz_seeds`. Files that exist are left
//! alone (sealed tokens are random, so rewriting would only churn the repo):
//! delete a file to have it made again, for instance after a change of the
//! token layout makes the `fuzz_regressions` test call seed tokens stale.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a tool that fails loudly

#[path = "../../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod harness;

use std::path::Path;

use latch::{Record, SessionId};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut written = 0;
    for (dir, target, name, bytes) in inputs() {
        let folder = root.join(dir).join(target);
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join(name);
        if !path.exists() {
            std::fs::write(&path, bytes).unwrap();
            written += 1;
        }
    }
    println!(
        "fuzz_seeds: {written} files written under {}",
        root.display()
    );
}

fn cat(head: &[u8], tail: impl AsRef<[u8]>) -> Vec<u8> {
    [head, tail.as_ref()].concat()
}

fn token(selector: u8, issued_at: i64, payload: &[u8]) -> String {
    harness::codec(selector, &harness::keyring())
        .seal(harness::NAME, issued_at, payload)
        .unwrap()
}

fn old_token(selector: u8) -> String {
    harness::codec(selector, &harness::old_keyring())
        .seal(harness::NAME, harness::NOW, br#"{"c":1,"d":{}}"#)
        .unwrap()
}

fn format_token(selector: u8) -> String {
    let mut record = Record::new(harness::NOW - 60);
    record.user_id = Some("alice".into());
    record.data.insert("theme".into(), "dark".into());
    record
        .data
        .insert("n".into(), serde_json::json!([1, 2.5, null, {"x": true}]));
    harness::format(selector, &harness::keyring())
        .encode(harness::NAME, &record, harness::NOW)
        .unwrap()
}

/// `(folder, target, file name, bytes)` for every seed and regression input.
fn inputs() -> Vec<(&'static str, &'static str, &'static str, Vec<u8>)> {
    const C: &str = "corpus";
    const R: &str = "regressions";
    let now = harness::NOW;
    let mut v = vec![
        // cookie_header: [name pick] + header lines separated by \n.
        (
            C,
            "cookie_header",
            "seed-one",
            cat(&[0], "x=1; __Host-session=abc; y=2"),
        ),
        (
            C,
            "cookie_header",
            "seed-lines",
            cat(&[1], "a=1\nsession=v\nb=2; c=3"),
        ),
        (
            R,
            "cookie_header",
            "duplicate-across-lines",
            cat(&[0], "a=1; __Host-session=x\n__Host-session=y"),
        ),
        (
            R,
            "cookie_header",
            "quoted-and-spaced",
            cat(&[0], "  __Host-session = \"v\" ;x"),
        ),
        (
            R,
            "cookie_header",
            "control-bytes",
            cat(&[2], ";;;=; \x7f\x00 s=\x01; s"),
        ),
        (
            R,
            "cookie_header",
            "near-miss-names",
            cat(
                &[0],
                "__host-session=a; __Host-session2=b; __Host-session=c",
            ),
        ),
        // session_id: the text.
        (
            C,
            "session_id",
            "seed-valid",
            SessionId::generate().encode().into_bytes(),
        ),
        (C, "session_id", "seed-short", b"AAAA".to_vec()),
        (
            R,
            "session_id",
            "non-canonical-tail",
            format!("{}B", "A".repeat(42)).into_bytes(),
        ),
        (
            R,
            "session_id",
            "multibyte-43-bytes",
            format!("{}A", "\u{e9}".repeat(21)).into_bytes(),
        ),
        (
            R,
            "session_id",
            "padded",
            format!("{}=", "A".repeat(42)).into_bytes(),
        ),
        (
            R,
            "session_id",
            "standard-alphabet",
            format!("{}+/A", "A".repeat(40)).into_bytes(),
        ),
        // signed_open: [mode] + value (raw) or [mode, pos, pos] + payload (tamper).
        (
            C,
            "signed_open",
            "seed-valid-current",
            cat(&[0], token(0, now, br#"{"c":1,"d":{}}"#)),
        ),
        (
            C,
            "signed_open",
            "seed-tamper",
            cat(&[1, 5, 0], br#"{"c":1,"d":{"k":"v"}}"#),
        ),
        (R, "signed_open", "old-key-token", cat(&[0], old_token(0))),
        (
            R,
            "signed_open",
            "tamper-old-key-last-bit",
            cat(&[3, 0xff, 0xff], b"{}"),
        ),
        (R, "signed_open", "empty", vec![0]),
        (R, "signed_open", "oversized", cat(&[0], "A".repeat(4090))),
        // sealed_open: [aead, mode] + value, or [aead, mode, pos, pos] + payload.
        (
            C,
            "sealed_open",
            "seed-valid-xchacha",
            cat(&[0, 0], token(1, now, b"{}")),
        ),
        (
            C,
            "sealed_open",
            "seed-valid-gcm",
            cat(&[1, 0], token(2, now, b"{}")),
        ),
        (
            C,
            "sealed_open",
            "seed-tamper",
            cat(&[0, 1, 9, 0], br#"{"c":1,"d":{}}"#),
        ),
        (
            R,
            "sealed_open",
            "gcm-token-offered-as-xchacha",
            cat(&[0, 0], token(2, now, b"{}")),
        ),
        (
            R,
            "sealed_open",
            "old-key-token",
            cat(&[1, 0], old_token(2)),
        ),
        (
            R,
            "sealed_open",
            "tamper-nonce",
            cat(&[1, 3, 8, 0], b"payload"),
        ),
        (
            R,
            "sealed_open",
            "header-only",
            cat(
                &[0, 0],
                "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ),
        ),
    ];
    // latch_format: [mode] + value (raw), [4|codec] + payload, [8|codec] + time + payload.
    for (pick, name) in [
        (0u8, "seed-valid-signed"),
        (1, "seed-valid-xchacha"),
        (2, "seed-valid-gcm"),
    ] {
        v.push((C, "latch_format", name, cat(&[pick], format_token(pick))));
    }
    let json = |s: &str| s.as_bytes().to_vec();
    let manager = |pick: u8, ago: i64, payload: &str| {
        cat(
            &[8 | pick],
            [ago.to_le_bytes().as_slice(), payload.as_bytes()].concat(),
        )
    };
    let deep = format!(
        r#"{{"c":1,"d":{{"k":{}{}}}}}"#,
        "[".repeat(300),
        "]".repeat(300)
    );
    v.extend([
        (C, "latch_format", "seed-json", cat(&[4], json(r#"{"c":1,"u":"bob","r":true,"d":{"k":"v"}}"#))),
        (C, "latch_format", "seed-manager", manager(0, 10, &format!(r#"{{"c":{},"d":{{}}}}"#, now - 100))),
        (R, "latch_format", "lone-surrogate", cat(&[4], json(r#"{"c":1,"d":{"k":"\ud800"}}"#))),
        (R, "latch_format", "deep-nesting", cat(&[5], deep.into_bytes())),
        (R, "latch_format", "unknown-field", cat(&[4], json(r#"{"c":1,"d":{},"x":1}"#))),
        (R, "latch_format", "extreme-numbers", cat(&[6], json(r#"{"c":-9223372036854775808,"d":{"f":1e308,"g":-0.0,"h":5e-324,"i":18446744073709551615}}"#))),
        (R, "latch_format", "manager-issued-in-the-future", manager(1, -100, &format!(r#"{{"c":{},"d":{{}}}}"#, now - 1000))),
        (R, "latch_format", "manager-idle-boundary", manager(0, 1800, &format!(r#"{{"c":{},"d":{{}}}}"#, now - 2000))),
        (R, "latch_format", "manager-created-after-issued", manager(2, 10, &format!(r#"{{"c":{},"d":{{}}}}"#, now))),
        (R, "latch_format", "manager-remembered", manager(1, 1799, &format!(r#"{{"c":{},"r":true,"d":{{}}}}"#, now - 5000))),
    ]);
    v
}
