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
    crate::config::ensure_parent(file)?;
    // Written whole under a name of this process's own, then linked into
    // place: a link fails if the file exists, so when two processes start
    // on a fresh directory at once, one key wins and the other process reads
    // it, never a half-written file.
    static TRIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let try_no = TRIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = file.with_extension(format!("key.{}.{try_no}.tmp", std::process::id()));
    let written = write_new(&tmp, &text).and_then(|()| {
        std::fs::hard_link(&tmp, file)
            .with_context(|| format!("creating the key file {}", file.display()))
    });
    // OK to ignore: a leftover temporary file holds a key nobody uses.
    let _ = std::fs::remove_file(&tmp);
    if let Err(err) = written {
        if file.exists() {
            return SecretKey::from_file(file).map_err(Into::into);
        }
        return Err(err);
    }
    let key = SecretKey::from_bytes(text.as_bytes())?;
    println!(
        "latch-demo: no {KEY_VAR} given, so a new secret key was generated and saved to {} \
         (mode 0600); keep it to keep sessions valid across restarts",
        file.display()
    );
    Ok(key)
}

/// Write `text` and a newline to a new file at `path`, readable by its owner
/// only.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating the key file {}", path.display()))?;
    writeln!(out, "{text}").with_context(|| format!("writing the key file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_starting_at_once_on_a_fresh_directory_share_one_key() {
        // Found by the black-box attack: the second of two demos started
        // together exited with "File exists".
        let dir = std::env::temp_dir().join(format!("latch-demo-keys-{}", std::process::id()));
        let file = dir.join("latch-demo.key");
        let _ = std::fs::remove_dir_all(&dir);
        let keys: Vec<SecretKey> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| load_or_generate(&file)))
                .collect();
            starts
                .into_iter()
                .map(|start| start.join().expect("no panic").expect("a key"))
                .collect()
        });
        for key in &keys {
            assert_eq!(key.expose_bytes(), keys[0].expose_bytes(), "different keys");
        }
        assert_eq!(
            load_or_generate(&file).unwrap().expose_bytes(),
            keys[0].expose_bytes(),
            "a restart reads another key"
        );
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1, "temporary files left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
