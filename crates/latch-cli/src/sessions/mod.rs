//! `latch sessions`: administer the sessions of a SQLite, Redis or PostgreSQL
//! store.
//!
//! Single-session operations and per-user ones go through the store crates'
//! own `SessionStore` implementations, so they behave exactly as in the
//! application. What the trait cannot answer (every session, counts) is read by
//! [`inventory`], one module per backend. Session IDs given on the command line
//! are hashed here ([`target`]); only store keys are ever printed.

mod commands;
mod inventory;
mod open;
mod target;

use crate::exit::Status;

/// Administer the sessions of a SQLite, Redis or PostgreSQL store.
///
/// Sessions are named by their store key (SHA-256 of the session ID, 64 hex
/// digits), which is safe to show: it does not work as a cookie. Commands that
/// take an ID accept the session ID itself (the cookie value, hashed here) or
/// the store key, or `-` to read either from standard input.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  latch sessions --store sqlite:latch-demo-data/latch-demo.db stats
  latch sessions --store redis://127.0.0.1:6379/ list --user alice
  latch sessions --store postgres://app@db/app show 3f2a...e5d   (a 64-hex store key)
  pbpaste | latch sessions --store sqlite:app.db revoke -        (a session ID, kept out of history)
  latch sessions --store sqlite:app.db revoke-user alice
  latch sessions --store $LATCH_STORE purge --dry-run

Store URLs: sqlite:PATH (an existing latch-sqlite file), redis://[USER:PASS@]HOST:PORT/DB
(with --redis-prefix if the application set one), redis-cluster://[USER:PASS@]HOST:PORT,...
(a Redis Cluster: one node or more; every master is scanned),
redis+sentinel://HOST:PORT,HOST:PORT/MASTER[/DB] (the master the sentinels name),
postgres://USER[:PASS]@HOST/DB (with --pg-schema if the application set one). TLS as in the
stores: rediss:// (and rediss+sentinel://) with ?cacert=PATH&cert=PATH&key=PATH, and
postgres://...?sslmode=verify-full&sslrootcert=PATH (sslcert, sslkey); without sslmode a
server on another machine is verified (verify-full), one on loopback is plain text.

Exit codes: 0 done; 1 show/revoke found no such session; 2 error (bad URL or ID,
unreachable store, not a latch store).")]
pub struct Args {
    /// The store: sqlite:PATH, redis://HOST:PORT/DB (or rediss://),
    /// redis-cluster://HOST:PORT,..., redis+sentinel://HOST:PORT,.../MASTER (or
    /// rediss+sentinel://) or postgres://USER@HOST/DB.
    #[arg(long, env = "LATCH_STORE", value_name = "URL", hide_env_values = true)]
    pub store: String,

    /// Key prefix of a Redis store.
    #[arg(long, value_name = "PREFIX", default_value = latch_redis::DEFAULT_PREFIX)]
    pub redis_prefix: String,

    /// PostgreSQL schema of the sessions table [default: the search path].
    #[arg(long, value_name = "SCHEMA")]
    pub pg_schema: Option<String>,

    /// Print results (and errors) as JSON on standard output.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The admin commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List sessions: one user's live sessions, or every session (most recent first).
    #[command(
        after_help = "Examples:\n  latch sessions --store sqlite:app.db list\n  \
                            latch sessions --store sqlite:app.db list --user alice --json"
    )]
    List {
        /// Only this user's live sessions.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// List at most this many sessions.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
    },
    /// Show one session: its times, user, client and data.
    #[command(
        after_help = "Examples:\n  latch sessions --store sqlite:app.db show 3f2a...e5d\n  \
                            latch sessions --store sqlite:app.db show - < cookie.txt"
    )]
    Show {
        /// Session ID (cookie value), 64-hex store key, or `-` for standard input.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Delete one session (its user is signed out on that device).
    #[command(after_help = "Examples:\n  latch sessions --store sqlite:app.db revoke 3f2a...e5d")]
    Revoke {
        /// Session ID (cookie value), 64-hex store key, or `-` for standard input.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Delete every session of a user (signed out everywhere).
    #[command(
        after_help = "Examples:\n  latch sessions --store redis://127.0.0.1:6379/ revoke-user alice"
    )]
    RevokeUser {
        /// The user id, as the application recorded it.
        #[arg(allow_hyphen_values = true)]
        user: String,
    },
    /// Delete expired sessions, in batches, with a progress bar.
    #[command(
        after_help = "Examples:\n  latch sessions --store sqlite:app.db purge --dry-run\n  \
                            latch sessions --store postgres://app@db/app purge --batch 5000"
    )]
    Purge {
        /// Only count what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Sessions deleted per store call.
        #[arg(long, value_name = "N", default_value_t = 1000,
              value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        batch: u64,
    },
    /// Count sessions: total, live, expired, users, anonymous.
    #[command(after_help = "Examples:\n  latch sessions --store sqlite:app.db stats --json")]
    Stats,
}

/// Run `latch sessions`.
///
/// # Errors
/// A bad store URL or ID, an unreachable store, or a session that does not exist
/// ([`crate::exit::Refused`], exit code 1).
pub fn run(args: &Args) -> anyhow::Result<Status> {
    let url = target::StoreUrl::parse(&args.store)?;
    crate::runtime::block_on(async {
        let store = open::open(&url, &args.redis_prefix, args.pg_schema.as_deref()).await?;
        commands::run(&store, &args.command, args.json).await
    })?;
    Ok(Status::Success)
}
