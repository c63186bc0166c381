//! The `latch-demo` binary: start-up checks and the generated key file.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "latch-demo-bin-{tag}-{}-{}",
        std::process::id(),
        &latch::SessionId::generate().store_key().to_hex()[..8]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn demo() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latch-demo"));
    cmd.env_remove("LATCH_SECRET_KEY")
        .env_remove("LATCH_STORE")
        .env("RUST_LOG", "warn");
    cmd
}

/// Start the demo, wait for its "serving" line, and return everything it printed
/// on stdout before that; then stop it.
fn start_and_stop(cmd: &mut Command) -> String {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("serving http://") || Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.contains("serving http://"),
        "demo did not start: {seen}"
    );
    seen
}

#[test]
fn weak_key_is_refused_at_start_up() {
    let dir = temp_dir("weak");
    let out = demo()
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("LATCH_SECRET_KEY", "changeme")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reading the secret key from LATCH_SECRET_KEY: secret key refused: it is a well-known placeholder value"),
        "{err}"
    );
    assert!(err.contains("latch keygen"), "says how to fix: {err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unknown_store_is_refused_with_the_known_forms() {
    let out = demo()
        .args(["--store", "mysql://x", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(
            "latch-demo: --store \"mysql://x\" is not a store latch-demo knows; use one of:"
        ),
        "{err}"
    );
}

#[test]
fn key_is_generated_once_with_mode_0600_and_reused() {
    let dir = temp_dir("keygen");
    let first = start_and_stop(
        demo()
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir),
    );
    assert_eq!(
        first.matches("a new secret key was generated").count(),
        1,
        "{first}"
    );
    let key_file = dir.join("latch-demo.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        latch::SecretKey::from_bytes(key.trim().as_bytes()).is_ok(),
        "generated key is strong"
    );
    let second = start_and_stop(
        demo()
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir),
    );
    assert!(!second.contains("generated"), "said twice: {second}");
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        key,
        "key kept across restarts"
    );
    assert!(
        dir.join("latch-demo.db").exists(),
        "embedded SQLite store created"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `--tls-cert`/`--tls-key`: the demo serves HTTPS with the operator's
/// certificate (verified here against its CA, so no check is switched off),
/// sends `Strict-Transport-Security`, and refuses plain http on that port.
#[tokio::test]
async fn serves_https_with_certificate_files_and_hsts() {
    let dir = temp_dir("tls");
    let certs = latch_conformance::servers::CertFiles::generate(&dir).unwrap();
    let mut child = demo()
        .args(["--listen", "127.0.0.1:0", "--store", "memory", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(&certs.server_cert)
        .arg("--tls-key")
        .arg(&certs.server_key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let url = stdout
        .lines()
        .map(Result::unwrap)
        .find_map(|l| {
            l.split("serving ")
                .nth(1)
                .map(|r| r.split_whitespace().next().unwrap().to_owned())
        })
        .expect("serving line");
    assert!(url.starts_with("https://localhost:"), "{url}");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let response = client.get(format!("{url}/login")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let plain = url.replace("https://", "http://");
    assert!(
        reqwest::get(format!("{plain}/login")).await.is_err(),
        "plain http to the TLS port must fail"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A bad certificate flag is refused at start-up with the flag to fix.
#[test]
fn unreadable_tls_files_are_refused_at_start_up() {
    let dir = temp_dir("badtls");
    let out = demo()
        .args(["--listen", "127.0.0.1:0", "--store", "memory", "--data-dir"])
        .arg(&dir)
        .args([
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    let out = demo()
        .args(["--tls-cert", "/nonexistent/cert.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "--tls-cert without --tls-key");
    let _ = std::fs::remove_dir_all(&dir);
}
