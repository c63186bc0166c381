//! Every command's `--help` has examples, and the root help lists the exit codes.

mod common;

use common::latch;
use predicates::prelude::*;

#[test]
fn every_subcommand_help_has_examples() {
    let commands: &[&[&str]] = &[
        &["keygen"],
        &["inspect"],
        &["audit"],
        &["sessions"],
        &["sessions", "list"],
        &["sessions", "show"],
        &["sessions", "revoke"],
        &["sessions", "revoke-user"],
        &["sessions", "purge"],
        &["sessions", "stats"],
    ];
    for command in commands {
        for flag in ["-h", "--help"] {
            latch()
                .args(*command)
                .arg(flag)
                .assert()
                .success()
                .stdout(predicate::str::contains("Examples:\n  latch "));
        }
    }
}

#[test]
fn root_help_documents_the_exit_codes() {
    latch().arg("--help").assert().success().stdout(
        predicate::str::contains("Exit codes:\n  0  success")
            .and(predicate::str::contains("\n  1  refused"))
            .and(predicate::str::contains("\n  2  error"))
            .and(predicate::str::contains("\n  3  audit")),
    );
}

#[test]
fn audit_long_help_has_every_rule_and_the_json_format() {
    let out = latch()
        .args(["audit", "--help"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    for i in 0..=15 {
        assert!(
            text.contains(&format!("LATCH{i:03}  ")),
            "LATCH{i:03} missing"
        );
    }
    assert!(text.contains("JSON (--json), version 1:"), "{text}");
}

#[test]
fn no_subcommand_is_a_usage_error() {
    latch()
        .assert()
        .code(2)
        .stderr(predicate::str::contains("Usage: latch"));
}
