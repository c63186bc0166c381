//! `latch keygen`: a new secret key from the operating system's CSPRNG.

use std::io::Write as _;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::exit::Status;

/// Fewer random bytes than this cannot reach latch's 256-bit minimum.
const MIN_BYTES: usize = 32;
/// More than this is no stronger and only makes unwieldy keys.
const MAX_BYTES: usize = 1024;
/// Draws before giving up on a key latch's strength estimate accepts (see [`draw`]).
const MAX_DRAWS: usize = 100;

/// Print a new random secret key.
///
/// The key is random bytes from the operating system, written as text: latch
/// uses the text as given, so it can go straight into LATCH_SECRET_KEY or a key
/// file. Every key printed is one latch accepts.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  latch keygen
      64 random bytes as base64 (88 characters)
  latch keygen --format env >> .env
      LATCH_SECRET_KEY=... ready for an env file
  latch keygen --out latch.key
      a key file for SecretKey::from_file, created readable by you only
      (mode 0600; latch refuses a key file other users can read)")]
pub struct Args {
    /// How many random bytes; at least 32 (256 bits, latch's minimum).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub bytes: usize,

    /// How to write the key.
    #[arg(long, value_enum, default_value_t = Format::Base64)]
    pub format: Format,

    /// Write the key to this new file (mode 0600) instead of standard output;
    /// an existing file is never overwritten.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

/// How a key is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Standard base64 with padding, as `openssl rand -base64` prints.
    Base64,
    /// Lowercase hexadecimal.
    Hex,
    /// `LATCH_SECRET_KEY=<base64>`, a line for an env file.
    Env,
}

/// Run `latch keygen`.
///
/// # Errors
/// A byte count out of range, or no random source.
pub fn run(args: &Args) -> anyhow::Result<Status> {
    check_bytes(args.bytes)?;
    let key = draw(args.bytes, args.format, |buf| {
        getrandom::fill(buf).context("reading the operating system's random source")
    })?;
    match &args.out {
        Some(path) => write_owner_only(path, key.as_str())?,
        None => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", key.as_str()).context("writing the key")?;
        }
    }
    Ok(Status::Success)
}

/// Create `path` readable by its owner only and write `key` to it.
fn write_owner_only(path: &std::path::Path, key: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "creating the key file {} (it must not exist yet)",
                path.display()
            )
        })?;
    writeln!(file, "{key}").with_context(|| format!("writing the key file {}", path.display()))
}

fn check_bytes(n: usize) -> anyhow::Result<()> {
    if n < MIN_BYTES {
        bail!(
            "refusing --bytes {n}: a secret key needs at least {MIN_BYTES} random bytes \
             (256 bits), which latch requires; the default is 64"
        );
    }
    if n > MAX_BYTES {
        bail!("refusing --bytes {n}: at most {MAX_BYTES} (64 is plenty)");
    }
    Ok(())
}

/// Draw keys until one passes latch's strength check. It almost always passes at
/// once, but the check estimates rather than measures: 64 random hex digits show
/// fewer than 13 distinct digits about once in 50 000 draws, and latch refuses
/// such a key as patterned. Printing a key latch would refuse is never right.
fn draw(
    bytes: usize,
    format: Format,
    mut fill: impl FnMut(&mut [u8]) -> anyhow::Result<()>,
) -> anyhow::Result<Zeroizing<String>> {
    for _ in 0..MAX_DRAWS {
        let mut raw = Zeroizing::new(vec![0u8; bytes]);
        fill(&mut raw)?;
        let key = encode(&raw, format);
        if latch::SecretKey::from_bytes(secret_part(&key).as_bytes()).is_ok() {
            return Ok(key);
        }
    }
    bail!("the random source gave {MAX_DRAWS} keys in a row that latch refuses; it is broken")
}

fn encode(raw: &[u8], format: Format) -> Zeroizing<String> {
    Zeroizing::new(match format {
        Format::Base64 => STANDARD.encode(raw),
        Format::Hex => raw.iter().map(|b| format!("{b:02x}")).collect(),
        Format::Env => format!("LATCH_SECRET_KEY={}", STANDARD.encode(raw)),
    })
}

/// The part of a printed key that latch reads (without the `env` assignment).
fn secret_part(printed: &str) -> &str {
    printed.strip_prefix("LATCH_SECRET_KEY=").unwrap_or(printed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_count_bounds() {
        assert!(check_bytes(31).is_err());
        assert!(check_bytes(32).is_ok());
        assert!(check_bytes(1024).is_ok());
        assert!(check_bytes(1025).is_err());
    }

    #[test]
    fn encodings() {
        let raw = [0xabu8, 0x01, 0xff];
        assert_eq!(encode(&raw, Format::Hex).as_str(), "ab01ff");
        assert_eq!(encode(&raw, Format::Base64).as_str(), "qwH/");
        assert_eq!(encode(&raw, Format::Env).as_str(), "LATCH_SECRET_KEY=qwH/");
        assert_eq!(secret_part("LATCH_SECRET_KEY=qwH/"), "qwH/");
    }

    #[test]
    fn a_draw_latch_would_refuse_is_drawn_again() {
        // First draw: 32 bytes using only 12 hex digits, which latch refuses.
        let patterned: Vec<u8> = (0u8..32).map(|i| 0x10 * (i % 12) + (i % 12)).collect();
        assert!(latch::SecretKey::from_bytes(encode(&patterned, Format::Hex).as_bytes()).is_err());
        let mut draws = 0;
        let key = draw(32, Format::Hex, |buf| {
            draws += 1;
            if draws == 1 {
                buf.copy_from_slice(&patterned);
            } else {
                getrandom::fill(buf)?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(draws, 2);
        assert!(latch::SecretKey::from_bytes(key.as_bytes()).is_ok());
    }

    #[test]
    fn a_broken_random_source_is_an_error_not_a_weak_key() {
        let err = draw(32, Format::Base64, |buf| {
            buf.fill(7);
            Ok(())
        })
        .unwrap_err();
        assert!(err.to_string().contains("latch refuses"), "{err}");
    }
}
