//! The keys to verify with, in the order they were given.

use std::fmt;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::ArgMatches;
use latch::{Keyring, SecretKey};

use super::Args;

/// The variable read when no key option is given.
pub const DEFAULT_ENV: &str = "LATCH_SECRET_KEY";

/// Where one key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An environment variable.
    Env(String),
    /// A file.
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env(var) => write!(f, "--secret-env {var}"),
            KeySource::File(path) => write!(f, "--secret-file {}", path.display()),
        }
    }
}

impl KeySource {
    /// The key's bytes as they are, without strength checks (for Flask keys,
    /// which the Flask app already uses). Trailing whitespace is removed.
    ///
    /// # Errors
    /// An unset variable or an unreadable file.
    pub fn raw_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let mut bytes = match self {
            KeySource::Env(var) => std::env::var(var)
                .with_context(|| format!("reading the key from {var}"))?
                .into_bytes(),
            KeySource::File(path) => std::fs::read(path)
                .with_context(|| format!("reading the key file {}", path.display()))?,
        };
        while bytes.last().is_some_and(u8::is_ascii_whitespace) {
            bytes.pop();
        }
        Ok(bytes)
    }

    /// Load the key exactly as an application would (strength checks included).
    fn load(&self) -> latch::Result<SecretKey> {
        match self {
            KeySource::Env(var) => SecretKey::from_env(var),
            KeySource::File(path) => SecretKey::from_file(path),
        }
    }
}

/// The key options in command-line order: clap keeps `--secret-env` and
/// `--secret-file` in two lists, and only the raw matches know how they
/// interleave. Without any option, [`DEFAULT_ENV`].
pub fn ordered(args: &Args, matches: Option<&ArgMatches>) -> Vec<KeySource> {
    let index = |id: &str| -> Vec<usize> {
        matches
            .and_then(|m| m.indices_of(id))
            .map(Iterator::collect)
            .unwrap_or_default()
    };
    let envs = args
        .secret_env
        .iter()
        .map(|v| KeySource::Env(v.clone()))
        .zip(index("secret_env").into_iter().chain(0..));
    let files = args
        .secret_file
        .iter()
        .map(|p| KeySource::File(p.clone()))
        .zip(index("secret_file").into_iter().chain(usize::MAX / 2..));
    let mut all: Vec<(KeySource, usize)> = envs.chain(files).collect();
    all.sort_by_key(|(_, at)| *at);
    let mut sources: Vec<KeySource> = all.into_iter().map(|(source, _)| source).collect();
    if sources.is_empty() {
        sources.push(KeySource::Env(DEFAULT_ENV.to_owned()));
    }
    sources
}

/// Load every key into a keyring, the first as current.
///
/// # Errors
/// A key that cannot be read or that latch refuses as weak, naming which.
pub fn keyring(sources: &[KeySource]) -> anyhow::Result<Keyring> {
    let mut keys = sources
        .iter()
        .enumerate()
        .map(|(i, source)| source.load().with_context(|| format!("key {i} ({source})")));
    let first = keys.next().unwrap_or_else(|| {
        Err(anyhow::anyhow!(
            "no key given; use --secret-env or --secret-file"
        ))
    })?;
    keys.try_fold(
        Keyring::new(first),
        |ring, key| Ok(ring.with_previous(key?)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, FromArgMatches as _};

    fn sources(argv: &[&str]) -> Vec<KeySource> {
        let matches = crate::cli::Cli::command().get_matches_from(argv);
        let (_, sub) = matches.subcommand().unwrap();
        let args = Args::from_arg_matches(sub).unwrap();
        ordered(&args, Some(sub))
    }

    #[test]
    fn interleaved_options_keep_their_order() {
        let got = sources(&[
            "latch",
            "inspect",
            "--secret-file",
            "a",
            "--secret-env",
            "B",
            "--secret-file",
            "c",
            "x",
        ]);
        assert_eq!(
            got,
            vec![
                KeySource::File("a".into()),
                KeySource::Env("B".into()),
                KeySource::File("c".into())
            ]
        );
    }

    #[test]
    fn no_option_means_latch_secret_key() {
        assert_eq!(
            sources(&["latch", "inspect", "x"]),
            vec![KeySource::Env(DEFAULT_ENV.into())]
        );
    }
}
