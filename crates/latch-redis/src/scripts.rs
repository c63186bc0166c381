//! The Lua scripts and their typed replies.
//!
//! Every script touches exactly one key (`KEYS[1]`), so each runs atomically on
//! the node that owns that key, in a Redis Cluster too. Index upkeep, which
//! touches other keys (other hash slots), is done with separate commands by the
//! store; see the crate docs for the order and why it is safe.

use std::sync::LazyLock;

use redis::{FromRedisValue, ParsingError, Script, Value};

/// Set-if-absent of a whole session hash, with its TTL. Replies `1`/`0`.
pub(crate) static CREATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/create.lua")));

/// Compare-and-swap of a session hash on its version. Replies [`SaveReply`].
pub(crate) static SAVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/save.lua")));

/// Write a throwaway key and read it back: the read cache's check that the
/// server keeps tracking keys a script read (see `cache.rs`). Replies `1`.
pub(crate) static PROBE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/probe.lua")));

/// Refresh `seen`/`exp` and the TTL of an existing session. Replies [`TouchReply`].
pub(crate) static TOUCH: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/touch.lua")));

/// Delete a session, optionally only if it is a given user's. Replies [`DeleteReply`].
pub(crate) static DELETE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/delete.lua")));

/// Delete a session if it expired by a given time. Replies [`PurgeReply`].
pub(crate) static PURGE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/purge.lua")));

/// Delete a lock if it still holds the caller's token. Replies `1`/`0`.
pub(crate) static UNLOCK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/unlock.lua")));

/// Add (or raise) an entry in a user's index and extend the index's TTL.
pub(crate) static INDEX_ADD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/index_add.lua")));

/// What [`SAVE`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SaveReply {
    /// No session under the key.
    Gone,
    /// The stored version was another one.
    Conflict,
    /// Written; `previous` is the user id the session had before, and
    /// `sooner` says the new expiry is earlier than the stored one.
    Saved {
        previous: Option<String>,
        sooner: bool,
    },
}

/// What [`TOUCH`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TouchReply {
    /// No session under the key.
    Gone,
    /// Refreshed; `user` is the session's user id, and `sooner` says the new
    /// expiry is earlier than the stored one.
    Touched { user: Option<String>, sooner: bool },
}

/// What [`DELETE`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeleteReply {
    /// No session under the key.
    Gone,
    /// The session belongs to another user and was left alone.
    Kept,
    /// Deleted; `user` is the user id it had.
    Deleted { user: Option<String> },
}

/// What [`PURGE`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PurgeReply {
    /// No session under the key (its TTL or a delete removed it).
    Gone,
    /// Not expired yet: it now expires at `expires_at`.
    Live { expires_at: i64 },
    /// Deleted; `user` is the user id it had.
    Purged { user: Option<String> },
}

/// A script reply `{tag [, value]}` split into its parts.
fn tagged(v: Value) -> Result<(String, Option<String>), ParsingError> {
    let mut parts: Vec<String> = FromRedisValue::from_redis_value(v)?;
    if parts.is_empty() || parts.len() > 2 {
        return Err(format!("unexpected script reply with {} parts", parts.len()).into());
    }
    let value = (parts.len() == 2).then(|| parts.remove(1));
    Ok((parts.remove(0), value))
}

fn unexpected(tag: &str) -> ParsingError {
    format!("unexpected script reply tag {tag:?}").into()
}

impl FromRedisValue for SaveReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        match tagged(v)? {
            (tag, _) if tag == "gone" => Ok(Self::Gone),
            (tag, _) if tag == "conflict" => Ok(Self::Conflict),
            (tag, previous) if tag == "saved" => Ok(Self::Saved {
                previous,
                sooner: false,
            }),
            (tag, previous) if tag == "saved-sooner" => Ok(Self::Saved {
                previous,
                sooner: true,
            }),
            (tag, _) => Err(unexpected(&tag)),
        }
    }
}

impl FromRedisValue for TouchReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        match tagged(v)? {
            (tag, _) if tag == "gone" => Ok(Self::Gone),
            (tag, user) if tag == "touched" => Ok(Self::Touched {
                user,
                sooner: false,
            }),
            (tag, user) if tag == "touched-sooner" => Ok(Self::Touched { user, sooner: true }),
            (tag, _) => Err(unexpected(&tag)),
        }
    }
}

impl FromRedisValue for DeleteReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        match tagged(v)? {
            (tag, _) if tag == "gone" => Ok(Self::Gone),
            (tag, _) if tag == "kept" => Ok(Self::Kept),
            (tag, user) if tag == "deleted" => Ok(Self::Deleted { user }),
            (tag, _) => Err(unexpected(&tag)),
        }
    }
}

impl FromRedisValue for PurgeReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        match tagged(v)? {
            (tag, _) if tag == "gone" => Ok(Self::Gone),
            (tag, Some(at)) if tag == "live" => at
                .parse()
                .map(|expires_at| Self::Live { expires_at })
                .map_err(|_| format!("expiry {at:?} is not an integer").into()),
            (tag, user) if tag == "purged" => Ok(Self::Purged { user }),
            (tag, _) => Err(unexpected(&tag)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(parts: &[&str]) -> Value {
        Value::Array(
            parts
                .iter()
                .map(|p| Value::BulkString(p.as_bytes().to_vec()))
                .collect(),
        )
    }

    #[test]
    fn replies_parse_with_and_without_value() {
        assert_eq!(
            SaveReply::from_redis_value(reply(&["saved", "alice"])).unwrap(),
            SaveReply::Saved {
                previous: Some("alice".into()),
                sooner: false
            }
        );
        assert_eq!(
            SaveReply::from_redis_value(reply(&["saved-sooner"])).unwrap(),
            SaveReply::Saved {
                previous: None,
                sooner: true
            }
        );
        assert_eq!(
            TouchReply::from_redis_value(reply(&["touched-sooner", "bob"])).unwrap(),
            TouchReply::Touched {
                user: Some("bob".into()),
                sooner: true
            }
        );
        assert_eq!(
            PurgeReply::from_redis_value(reply(&["live", "1800000000"])).unwrap(),
            PurgeReply::Live {
                expires_at: 1_800_000_000
            }
        );
        assert_eq!(
            DeleteReply::from_redis_value(reply(&["kept"])).unwrap(),
            DeleteReply::Kept
        );
    }

    #[test]
    fn unknown_or_malformed_replies_are_errors() {
        assert!(SaveReply::from_redis_value(reply(&["maybe"])).is_err());
        assert!(TouchReply::from_redis_value(reply(&[])).is_err());
        assert!(PurgeReply::from_redis_value(reply(&["live", "soon"])).is_err());
        assert!(DeleteReply::from_redis_value(reply(&["deleted", "a", "b"])).is_err());
    }
}
