//! Demo users: names and Argon2id password hashes in SQLite.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use std::cell::RefCell;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rusqlite::{Connection, OptionalExtension, params};

use crate::hashing::Hashers;

/// The longest password accepted, in bytes: far beyond any passphrase, and it
/// bounds the work one sign-in attempt can ask for.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The form of a username that is stored and looked up: the rules allow only
/// ASCII, so `Carol` and `carol` are one account.
pub fn normalize(username: &str) -> String {
    username.trim().to_ascii_lowercase()
}

/// Why a sign-up was refused (shown to the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignupError {
    /// The name is taken.
    Taken,
    /// The name or password does not meet the rules; the message says which.
    Invalid(&'static str),
}

/// Where users are kept: the SQLite file of the demo, or PostgreSQL when
/// sessions live there.
#[derive(Clone)]
enum Backend {
    Sqlite(Arc<Mutex<Connection>>),
    Postgres(deadpool_postgres::Pool),
}

/// How long a PostgreSQL users query (connecting included) may take before
/// the request fails instead of waiting on a server that stopped answering.
const PG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// `f` within [`PG_TIMEOUT`].
async fn bounded<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::time::timeout(PG_TIMEOUT, f)
        .await
        .map_err(|_| anyhow::anyhow!("PostgreSQL did not answer within {PG_TIMEOUT:?}"))?
}

/// The users table.
#[derive(Clone)]
pub struct Users {
    backend: Backend,
    /// Where passwords are hashed: a fixed number at once (A7).
    hashers: Hashers,
    /// A real hash, verified against when the user does not exist, so a failed
    /// sign-in takes as long whatever was wrong.
    dummy_hash: Arc<String>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Users(..)")
    }
}

thread_local! {
    /// This thread's Argon2 working memory (19 MiB with the default
    /// parameters), allocated on its first hash and kept: a hash then
    /// allocates nothing. Hashes run only on the few [`Hashers`] threads, so
    /// the demo holds at most one such buffer per hashing thread, whatever the
    /// load; letting each hash allocate and free its own left the allocator
    /// holding a growing pile of them under a flood (A7).
    static ARGON2_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Argon2 `argon` of `password` and `salt` into `out`, in this thread's
/// working memory.
fn argon2_into(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    ARGON2_MEMORY.with_borrow_mut(|memory| {
        let needed = argon.params().block_count();
        if memory.len() < needed {
            memory.resize(needed, Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut memory[..needed])
    })
}

/// A new Argon2id hash of `password` (default parameters), as a PHC string.
fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let argon = Argon2::default();
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("decoding a fresh salt: {e}"))?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        argon2_into(&argon, password.as_bytes(), salt_bytes, out)
            .map_err(password_hash::Error::from)
    })
    .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params())
            .map_err(|e| anyhow::anyhow!("encoding Argon2 parameters: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// A hash to check unknown users' passwords against. Made with the crate's
/// own hasher, which frees its memory, so the thread that starts the app
/// keeps no 19 MiB buffer.
fn dummy_hash() -> anyhow::Result<String> {
    use argon2::password_hash::PasswordHasher as _;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(b"latch-demo timing equaliser", &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Whether `password` matches the PHC string `stored` (compared in constant
/// time by `password_hash::Output`).
fn matches(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let Ok(version) = version else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    argon2_into(&argon, password.as_bytes(), salt_bytes, &mut out).is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Check the sign-up rules.
/// Whether a sign-in as `account` (normalized) with `password` could
/// succeed at all: a name or a password length that no sign-up accepts can
/// match no account, so the attempt is answered without counting or hashing.
pub fn could_sign_in(account: &str, password: &str) -> bool {
    name_ok(account) && password.chars().count() >= 8 && password.len() <= MAX_PASSWORD_BYTES
}

/// Whether `username` is 3 to 32 letters, digits, dots, dashes or underscores.
fn name_ok(username: &str) -> bool {
    (3..=32).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Whether `username` and `password` meet the sign-up rules (checked before
/// anything is counted or hashed).
///
/// # Errors
/// [`SignupError::Invalid`] with the rule broken.
pub fn validate(username: &str, password: &str) -> Result<(), SignupError> {
    if !name_ok(username) {
        return Err(SignupError::Invalid(
            "Usernames are 3 to 32 letters, digits, dots, dashes or underscores.",
        ));
    }
    if password.chars().count() < 8 {
        return Err(SignupError::Invalid(
            "Passwords need at least 8 characters.",
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(SignupError::Invalid(
            "Passwords can be at most 1024 bytes long.",
        ));
    }
    // NIST SP 800-63B 5.1.1.2: refuse passwords on lists of common and
    // guessable ones; zxcvbn's estimate stands in for such a list (score 2:
    // about 10^8 guesses and up), with the username counted as known.
    if u8::from(zxcvbn::zxcvbn(password, &[username]).score()) < 2 {
        return Err(SignupError::Invalid(
            "That password is too easy to guess (a common password, a pattern or your \
             username); a few unrelated words make a good one.",
        ));
    }
    Ok(())
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS demo_users (
    username      TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL
)";

/// SQLite calls block: run them off the async executor.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("users database task failed")
}

impl Users {
    fn with_backend(backend: Backend) -> anyhow::Result<Self> {
        Ok(Self {
            backend,
            hashers: Hashers::for_this_machine()?,
            // Its password need not be secret: it is only ever checked when the
            // user does not exist, and the answer is "no" either way.
            dummy_hash: Arc::new(dummy_hash()?),
        })
    }

    /// The same users, their passwords hashed behind a queue of `jobs`
    /// (instead of 256 per core; see [`Hashers::for_this_machine`]).
    ///
    /// # Errors
    /// When a hashing thread cannot be started.
    pub fn with_hash_queue(self, jobs: usize) -> anyhow::Result<Self> {
        Ok(Self {
            hashers: Hashers::with_queue(jobs)?,
            ..self
        })
    }

    /// Open the users table in the SQLite file at `path` (created if needed).
    ///
    /// # Errors
    /// When the file cannot be opened or the table created.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        // It holds password hashes: readable by its owner only (A9).
        crate::config::create_owner_only(path)?;
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(CREATE_TABLE)
            .context("creating the users table")?;
        Self::with_backend(Backend::Sqlite(Arc::new(Mutex::new(conn))))
    }

    /// Open the users table in the PostgreSQL database at `url`.
    ///
    /// # Errors
    /// When the database cannot be reached or the table created.
    pub async fn open_postgres(url: &str) -> anyhow::Result<Self> {
        // Read as the session store reads it, TLS settings included.
        let (mut config, tls) = latch_postgres::connect_config(url)?;
        config.connect_timeout(PG_TIMEOUT);
        let manager = deadpool_postgres::Manager::new(config, tls);
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(4)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(PG_TIMEOUT))
            .create_timeout(Some(PG_TIMEOUT))
            .recycle_timeout(Some(PG_TIMEOUT))
            .build()
            .context("building the PostgreSQL pool")?;
        bounded(async {
            let client = pool
                .get()
                .await
                .context("connecting to PostgreSQL for users")?;
            client
                .batch_execute(CREATE_TABLE)
                .await
                .context("creating the users table")
        })
        .await?;
        Self::with_backend(Backend::Postgres(pool))
    }

    /// The stored hash of `username`, if the user exists.
    async fn stored_hash(&self, username: &str) -> anyhow::Result<Option<String>> {
        let sql = "SELECT password_hash FROM demo_users WHERE username = $1";
        match &self.backend {
            Backend::Sqlite(conn) => {
                let (conn, username) = (Arc::clone(conn), username.to_owned());
                blocking(move || {
                    let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                    conn.query_row(sql, [&username], |row| row.get(0))
                        .optional()
                })
                .await?
                .context("reading a user")
            }
            Backend::Postgres(pool) => {
                bounded(async {
                    let client = pool.get().await.context("connecting to PostgreSQL")?;
                    let row = client
                        .query_opt(sql, &[&username])
                        .await
                        .context("reading a user")?;
                    Ok(row.map(|r| r.get(0)))
                })
                .await
            }
        }
    }

    /// Insert a user; `false` when the name is taken.
    async fn insert(&self, username: &str, hashed: String) -> anyhow::Result<bool> {
        let sql = "INSERT INTO demo_users (username, password_hash) VALUES ($1, $2) ON CONFLICT DO NOTHING";
        let n = match &self.backend {
            Backend::Sqlite(conn) => {
                let (conn, username) = (Arc::clone(conn), username.to_owned());
                blocking(move || {
                    let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                    conn.execute(sql, params![username, hashed])
                })
                .await?
                .context("creating a user")? as u64
            }
            Backend::Postgres(pool) => {
                bounded(async {
                    let client = pool.get().await.context("connecting to PostgreSQL")?;
                    client
                        .execute(sql, &[&username, &hashed])
                        .await
                        .context("creating a user")
                })
                .await?
            }
        };
        Ok(n == 1)
    }

    /// Create a user, its name normalized (see [`normalize`]);
    /// `Err(SignupError)` for a taken name or bad input. The hash waits its
    /// turn with `client`'s other requests ([`Hashers::run`]).
    ///
    /// # Errors
    /// The outer error is a database failure, or
    /// [`Busy`](crate::hashing::Busy) when every hasher is taken.
    pub async fn create(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> anyhow::Result<Result<(), SignupError>> {
        if let Err(e) = validate(username, password) {
            return Ok(Err(e));
        }
        let password = password.to_owned();
        let hashed = self.hashers.run(client, move || hash(&password)).await??;
        Ok(if self.insert(&normalize(username), hashed).await? {
            Ok(())
        } else {
            Err(SignupError::Taken)
        })
    }

    /// Whether `password` is `username`'s (any case). Takes the same time for
    /// an unknown user as for a wrong password. The hash waits its turn with
    /// `client`'s other requests ([`Hashers::run`]).
    ///
    /// # Errors
    /// A database failure, or [`Busy`](crate::hashing::Busy) when every
    /// hasher is taken.
    pub async fn verify(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> anyhow::Result<bool> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Ok(false); // no such password can have been set
        }
        let stored = self.stored_hash(&normalize(username)).await?;
        let exists = stored.is_some();
        let hashed = stored.unwrap_or_else(|| self.dummy_hash.as_str().to_owned());
        let password = password.to_owned();
        let ok = self
            .hashers
            .run(client, move || matches(&password, &hashed))
            .await?;
        Ok(exists && ok)
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
        assert!(validate("alice.b-c_d", "correct horse").is_ok());
        assert!(validate("al ice", "correct horse").is_err());
        for guessable in [
            "        ",
            "12345678",
            "password1",
            "qwertyuiop",
            "alice.b-c_d1",
        ] {
            assert!(
                matches!(validate("alice.b-c_d", guessable), Err(SignupError::Invalid(m)) if m.contains("too easy")),
                "{guessable:?}"
            );
        }
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(matches("correct horse", &h));
        assert!(!matches("wrong", &h));
        assert!(!matches("correct horse", "not a hash"));
    }

    #[test]
    fn hashes_agree_with_the_argon2_crates_own_hasher_and_verifier() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        // Ours, checked by the crate's verifier.
        let ours = hash("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        // The crate's, checked by ours (also with other parameters, which
        // need more memory than the thread's buffer holds).
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        assert!(matches("correct horse", &theirs));
        let bigger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(32 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        assert!(matches("pw", &bigger));
        assert!(!matches("pW", &bigger));
    }
}
