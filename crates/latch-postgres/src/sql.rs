//! The text of every statement the store runs, built once for the configured schema.
//!
//! Table and schema names cannot be bound as parameters, so they are checked
//! ([`check_schema`]) and quoted before they are put into SQL; every value is a
//! bound parameter.

use latch::{Error, Result};

/// The sessions table, as created by migration 1.
pub(crate) const SESSIONS: &str = "latch_sessions";
/// The table recording which migrations were applied.
pub(crate) const MIGRATIONS: &str = "latch_schema_migrations";

/// Longest identifier PostgreSQL keeps without truncating it.
const MAX_IDENTIFIER: usize = 63;

/// Refuse a schema name unless it is a plain lowercase identifier.
///
/// Only `a-z`, `0-9` and `_`, not starting with a digit, at most 63 bytes: such a
/// name means the same quoted or unquoted, so what the operator typed is what
/// `psql` shows, and nothing in it can end the quoting.
pub(crate) fn check_schema(name: &str) -> Result<()> {
    let plain = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let starts_well = name.bytes().next().is_some_and(|b| !b.is_ascii_digit());
    if plain && starts_well && name.len() <= MAX_IDENTIFIER {
        Ok(())
    } else {
        Err(Error::invalid_config(format!(
            "PostgreSQL schema name {name:?} refused: use 1 to {MAX_IDENTIFIER} characters \
             of a-z, 0-9 and _, not starting with a digit"
        )))
    }
}

/// Statement texts for one schema.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    /// The schema, quoted, when one was configured.
    pub(crate) schema: Option<String>,
    /// The sessions table, qualified when a schema was configured.
    pub(crate) sessions: String,
    /// The migrations table, qualified like `sessions`.
    pub(crate) migrations: String,
    pub(crate) create: String,
    pub(crate) load: String,
    pub(crate) save: String,
    pub(crate) touch: String,
    pub(crate) delete: String,
    pub(crate) list_by_user: String,
    pub(crate) delete_by_user: String,
    /// `delete_by_user` with a session to keep (`$2`): deletes only while
    /// that session exists. The user's rows and the kept one are locked in
    /// key order first, so two such statements for one user queue behind
    /// each other (no deadlock), and the second sees the first's deletions.
    pub(crate) delete_by_user_except: String,
    /// Delete `$2` if it is user `$1`'s.
    pub(crate) delete_one_by_user: String,
    /// `delete_one_by_user` only while session `$3` exists, under the same
    /// locks as `delete_by_user_except`, so the two take turns.
    pub(crate) delete_one_by_user_except: String,
    pub(crate) purge: String,
}

/// The ten columns of a record, in the order of parameters `$1` (key) to `$10`.
const COLUMNS: &str = "key, version, data, created_at, last_seen, expires_at, remember, \
                       user_id, user_agent, ip";

impl Sql {
    /// Statements for `schema` (already checked), or for the connection's
    /// `search_path` when `None`.
    pub(crate) fn new(schema: Option<&str>) -> Self {
        let schema = schema.map(|s| format!("\"{s}\""));
        let qualify = |table: &str| match &schema {
            Some(s) => format!("{s}.{table}"),
            None => table.to_owned(),
        };
        let t = qualify(SESSIONS);
        Self {
            create: format!(
                "INSERT INTO {t} ({COLUMNS}) \
                 VALUES ($1, $2, $3::text::json, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (key) DO NOTHING"
            ),
            load: format!(
                "SELECT version, data::text AS data, created_at, last_seen, expires_at, \
                 remember, user_id, user_agent, ip FROM {t} WHERE key = $1"
            ),
            save: save(&t),
            touch: format!("UPDATE {t} SET last_seen = $2, expires_at = $3 WHERE key = $1"),
            delete: format!("DELETE FROM {t} WHERE key = $1"),
            list_by_user: format!(
                "SELECT key, created_at, last_seen, expires_at, user_agent, ip, \
                 (data #>> '{{_latch.dbsc,d,proved}}')::bigint AS device_proved_at FROM {t} \
                 WHERE user_id = $1 AND expires_at > $2 ORDER BY last_seen DESC, key"
            ),
            delete_by_user: format!("DELETE FROM {t} WHERE user_id = $1"),
            delete_by_user_except: format!(
                "WITH locked AS (SELECT key, user_id FROM {t} \
                 WHERE user_id = $1 OR key = $2 ORDER BY key FOR UPDATE) \
                 DELETE FROM {t} WHERE key IN \
                 (SELECT key FROM locked WHERE user_id = $1 AND key <> $2) \
                 AND EXISTS (SELECT 1 FROM locked WHERE key = $2)"
            ),
            delete_one_by_user: format!("DELETE FROM {t} WHERE key = $2 AND user_id = $1"),
            delete_one_by_user_except: format!(
                "WITH locked AS (SELECT key, user_id FROM {t} \
                 WHERE user_id = $1 OR key = $3 ORDER BY key FOR UPDATE) \
                 DELETE FROM {t} WHERE key = $2 AND key IN \
                 (SELECT key FROM locked WHERE user_id = $1) \
                 AND EXISTS (SELECT 1 FROM locked WHERE key = $3)"
            ),
            purge: purge(&t),
            migrations: qualify(MIGRATIONS),
            sessions: t,
            schema,
        }
    }
}

/// Compare-and-swap in one statement: the update happens only at the expected
/// version, and the same snapshot says whether the row exists, so a miss is told
/// apart as `Conflict` (row there) or `Gone` (no row) without a second round trip
/// and without ever inserting.
fn save(t: &str) -> String {
    format!(
        "WITH saved AS ( \
             UPDATE {t} SET version = $2, data = $3::text::json, created_at = $4, \
                 last_seen = $5, expires_at = $6, remember = $7, user_id = $8, \
                 user_agent = $9, ip = $10 \
             WHERE key = $1 AND version = $11 \
             RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM saved) AS saved, \
                EXISTS (SELECT 1 FROM {t} WHERE key = $1) AS present"
    )
}

/// Delete one batch of the oldest expired sessions.
///
/// The keys are collected into an array first (`= ANY(ARRAY(...))`) rather than
/// `key IN (SELECT ...)`: with a prepared statement PostgreSQL may switch to a
/// generic plan that cannot see the `LIMIT`, and for `IN` that plan is a hash
/// semi-join over a sequential scan of the whole table on every batch. The array
/// form is always a walk of the `expires_at` index plus primary-key look-ups.
/// `SKIP LOCKED` lets several servers purge at once without queueing on each
/// other's rows.
fn purge(t: &str) -> String {
    format!(
        "DELETE FROM {t} WHERE key = ANY(ARRAY( \
             SELECT key FROM {t} WHERE expires_at <= $1 \
             ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED))"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_schema_names_are_accepted() {
        for name in ["latch", "auth_2", "_private", &"a".repeat(63)] {
            assert!(check_schema(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn schema_names_that_need_quoting_are_refused() {
        for name in [
            "",
            "Auth",
            "9lives",
            "a-b",
            "a\"; DROP TABLE x; --",
            "sch ema",
            "é",
            &"a".repeat(64),
        ] {
            let err = check_schema(name).unwrap_err();
            assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig, "{name}");
        }
    }

    #[test]
    fn refusal_message_says_what_is_allowed() {
        let err = check_schema("Auth").unwrap_err();
        assert_eq!(
            err.to_string(),
            "PostgreSQL schema name \"Auth\" refused: use 1 to 63 characters of a-z, 0-9 \
             and _, not starting with a digit"
        );
    }

    #[test]
    fn tables_are_qualified_only_when_a_schema_is_set() {
        let plain = Sql::new(None);
        assert_eq!(plain.sessions, "latch_sessions");
        assert_eq!(plain.migrations, "latch_schema_migrations");
        let scoped = Sql::new(Some("auth"));
        assert_eq!(scoped.sessions, "\"auth\".latch_sessions");
        assert!(
            scoped
                .purge
                .contains("FROM \"auth\".latch_sessions WHERE expires_at")
        );
    }
}
