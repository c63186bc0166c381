//! Demo users: names and Argon2id password hashes in SQLite.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rusqlite::{Connection, OptionalExtension, params};

/// Why a sign-up was refused (shown to the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignupError {
    /// The name is taken.
    Taken,
    /// The name or password does not meet the rules; the message says which.
    Invalid(&'static str),
}

/// The users table.
#[derive(Clone)]
pub struct Users {
    conn: Arc<Mutex<Connection>>,
    /// A real hash, verified against when the user does not
    /// exist, so a failed sign-in takes as long whatever was wrong.
    dummy_hash: Arc<String>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Users(..)")
    }
}

fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

fn matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Check the sign-up rules.
fn validate(username: &str, password: &str) -> Result<(), SignupError> {
    let name_ok = (3..=32).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !name_ok {
        return Err(SignupError::Invalid(
            "Usernames are 3 to 32 letters, digits, dots, dashes or underscores.",
        ));
    }
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(SignupError::Invalid(
            "Passwords need at least 8 characters.",
        ));
    }
    Ok(())
}

impl Users {
    /// Open the users table in the SQLite file at `path` (created if needed).
    ///
    /// # Errors
    /// When the file cannot be opened or the table created.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        crate::config::ensure_parent(path)?;
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS demo_users (
                username      TEXT PRIMARY KEY NOT NULL,
                password_hash TEXT NOT NULL,
                created_at    INTEGER NOT NULL DEFAULT (unixepoch())
            )",
        )
        .context("creating the users table")?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            // Its password need not be secret: it is only ever checked when the
            // user does not exist, and the answer is "no" either way.
            dummy_hash: Arc::new(hash("latch-demo timing equaliser")?),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .context("user database task failed")?
    }

    /// Create a user; `Err(SignupError)` for a taken name or bad input.
    ///
    /// # Errors
    /// The outer error is a database failure.
    pub async fn create(
        &self,
        username: &str,
        password: &str,
    ) -> anyhow::Result<Result<(), SignupError>> {
        if let Err(e) = validate(username, password) {
            return Ok(Err(e));
        }
        let (username, password) = (username.to_owned(), password.to_owned());
        self.blocking(move |conn| {
            let hashed = hash(&password)?;
            let n = conn.execute(
                "INSERT INTO demo_users (username, password_hash) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![username, hashed],
            )?;
            Ok(if n == 1 { Ok(()) } else { Err(SignupError::Taken) })
        })
        .await
    }

    /// Whether `password` is `username`'s. Takes the same time for an unknown
    /// user as for a wrong password.
    ///
    /// # Errors
    /// A database failure.
    pub async fn verify(&self, username: &str, password: &str) -> anyhow::Result<bool> {
        let (username, password) = (username.to_owned(), password.to_owned());
        let dummy = Arc::clone(&self.dummy_hash);
        self.blocking(move |conn| {
            let stored: Option<String> = conn
                .query_row(
                    "SELECT password_hash FROM demo_users WHERE username = ?1",
                    [&username],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(match stored {
                Some(stored) => matches(&password, &stored),
                None => {
                    let _ = matches(&password, &dummy);
                    false
                }
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(
            validate("al", "longenough"),
            Err(SignupError::Invalid(
                "Usernames are 3 to 32 letters, digits, dots, dashes or underscores."
            ))
        );
        assert!(matches!(
            validate("alice", "short"),
            Err(SignupError::Invalid(_))
        ));
        assert!(validate("alice.b-c_d", "longenough").is_ok());
        assert!(validate("al ice", "longenough").is_err());
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(matches("correct horse", &h));
        assert!(!matches("wrong", &h));
    }
}
