//! The demo's secret key: from `LATCH_SECRET_KEY`, or generated once and kept.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use latch::SecretKey;

/// The environment variable holding the key.
pub const KEY_VAR: &str = "LATCH_SECRET_KEY";

/// Load the key from `LATCH_SECRET_KEY`, else from `file`, else generate one
/// into `file` (mode 0600) and say so.
///
/// # Errors
/// A weak key in the variable or the file (refused with how to make a good
/// one), or a file that cannot be read or written.
pub fn load_or_generate(file: &Path) -> anyhow::Result<SecretKey> {
    if std::env::var_os(KEY_VAR).is_some() {
        return Ok(SecretKey::from_env(KEY_VAR)?);
    }
    if file.exists() {
        return SecretKey::from_file(file).map_err(Into::into);
    }
    // The file holds base64 text and is read back as text, so the key in use is
    // that text too: the same key before and after a restart.
    let text = STANDARD.encode(SecretKey::generate().expose_bytes());
    let key = SecretKey::from_bytes(text.as_bytes())?;
    crate::config::ensure_parent(file)?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("creating the key file {}", file.display()))?;
    writeln!(out, "{text}").with_context(|| format!("writing the key file {}", file.display()))?;
    println!(
        "latch-demo: no {KEY_VAR} given, so a new secret key was generated and saved to {} \
         (mode 0600); keep it to keep sessions valid across restarts",
        file.display()
    );
    Ok(key)
}
