//! The one error type of the `latch` crate.

use std::fmt;
use std::sync::Arc;

/// The cause of an [`Error`], kept so `source()` chains stay intact.
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in latch, as one type with a [`kind`](Error::kind).
///
/// Configuration problems (weak keys, unsafe cookie settings) are reported when the
/// configuration is built, never later. Store problems keep their cause available
/// through [`std::error::Error::source`], so logs show the whole chain.
///
/// Cheap to clone (the inside is shared): one failed store call can fail
/// every request that waited on it with the same error, cause included.
/// [`Display`](fmt::Display) is the message; [`Debug`](fmt::Debug) is the
/// message and each cause once, readable where a program prints it (an error
/// returned from `main`).
///
/// # Example
/// ```
/// use latch::{ErrorKind, SecretKey};
///
/// let err = SecretKey::from_bytes(b"changeme").unwrap_err();
/// assert_eq!(err.kind(), &ErrorKind::WeakKey);
/// ```
#[derive(Clone)]
pub struct Error(Arc<Inner>);

struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Cause>,
}

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A secret key is too weak to be used; the message says how to make a good one.
    WeakKey,
    /// A configuration value is refused (unsafe or rejected by browsers).
    InvalidConfig,
    /// The session store failed (connection lost, query failed, ...).
    Store,
    /// The session store did not answer within the configured timeout.
    StoreTimeout,
    /// A session cookie would exceed the 4096-byte limit for name plus value.
    CookieTooLarge {
        /// Size of name plus value in bytes.
        size: usize,
        /// The limit in bytes (4096).
        limit: usize,
    },
    /// A server-side session record would exceed the configured size limit
    /// ([`SessionManagerBuilder::max_record_bytes`](crate::SessionManagerBuilder::max_record_bytes)).
    RecordTooLarge {
        /// Size of the record's data, user and client facts in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A value could not be serialized into, or deserialized out of, the session.
    Serialization,
    /// A session key uses a reserved prefix or is otherwise not allowed.
    InvalidKey,
    /// A store kept conflicting on a save even after repeated retries.
    Conflict,
    /// A [`Session::try_update`](crate::Session::try_update) closure refused
    /// the value it found: in the handler, or (answered `409 Conflict` by
    /// adapters) when another request's change made it refuse on replay, in
    /// which case nothing this request changed is saved.
    UpdateRefused,
}

impl Error {
    /// Build an error of `kind` with a human message.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::from_parts(kind, message.into(), None)
    }

    fn from_parts(kind: ErrorKind, message: String, source: Option<Cause>) -> Self {
        Self(Arc::new(Inner {
            kind,
            message,
            source,
        }))
    }

    /// Build an [`ErrorKind::Store`] error that keeps `cause` as its source.
    ///
    /// Store implementations use this to report backend failures.
    ///
    /// # Example
    /// ```
    /// let io = std::io::Error::other("connection refused");
    /// let err = latch::Error::store("loading a session", io);
    /// assert_eq!(err.kind(), &latch::ErrorKind::Store);
    /// assert!(std::error::Error::source(&err).is_some());
    /// ```
    pub fn store(
        context: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::from_parts(ErrorKind::Store, context.into(), Some(Box::new(cause)))
    }

    /// Build an [`ErrorKind::Store`] error with a message and no further cause.
    ///
    /// # Example
    /// ```
    /// let err = latch::Error::store_msg("schema version 9 is newer than this build knows");
    /// assert_eq!(err.kind(), &latch::ErrorKind::Store);
    /// ```
    pub fn store_msg(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Store, message)
    }

    /// Build an [`ErrorKind::Serialization`] error that keeps `cause`: session data
    /// that cannot be written or read back in a store's or format's encoding.
    ///
    /// # Example
    /// ```
    /// let bad = serde_json::from_str::<u8>("x").unwrap_err();
    /// let err = latch::Error::serialization("decoding a session entry", bad);
    /// assert_eq!(err.kind(), &latch::ErrorKind::Serialization);
    /// ```
    pub fn serialization(
        context: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::from_parts(
            ErrorKind::Serialization,
            context.into(),
            Some(Box::new(cause)),
        )
    }

    /// Build an [`ErrorKind::InvalidConfig`] error; used by adapters and stores to
    /// refuse configuration at start-up with one consistent kind.
    ///
    /// # Example
    /// ```
    /// let err = latch::Error::invalid_config("pool size must be at least 1");
    /// assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig);
    /// ```
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }

    /// This error as the cause of a new one of the same kind that says what
    /// was being done, as `anyhow`'s `context` does: the message chain reads
    /// outermost first.
    ///
    /// # Example
    /// ```
    /// let err = latch::Error::store_msg("connection refused").context("connecting to Redis");
    /// assert_eq!(err.to_string(), "connecting to Redis");
    /// assert_eq!(err.kind(), &latch::ErrorKind::Store);
    /// assert_eq!(std::error::Error::source(&err).unwrap().to_string(), "connection refused");
    /// ```
    #[must_use]
    pub fn context(self, message: impl Into<String>) -> Self {
        let kind = self.0.kind.clone();
        Self::from_parts(kind, message.into(), Some(Box::new(self)))
    }

    /// This error with `cause` as its source (replacing any), for stores and
    /// adapters that report a failure of a library they do not expose.
    ///
    /// # Example
    /// ```
    /// let bad = "x".parse::<u16>().unwrap_err();
    /// let err = latch::Error::invalid_config("pool size is not a number").with_source(bad);
    /// assert!(std::error::Error::source(&err).is_some());
    /// ```
    #[must_use]
    pub fn with_source(self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::from_parts(
            self.0.kind.clone(),
            self.0.message.clone(),
            Some(Box::new(cause)),
        )
    }

    /// What kind of error this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// Whether this error means the store is unavailable (down, failing or too slow),
    /// which HTTP adapters answer with `503 Service Unavailable`.
    ///
    /// # Example
    /// ```
    /// let err = latch::Error::store_msg("down");
    /// assert!(err.is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self.0.kind,
            ErrorKind::Store | ErrorKind::StoreTimeout | ErrorKind::Conflict
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Error {
    /// The message, then each cause once (a cause whose text the previous
    /// one already ends with, as some libraries repeat it, is skipped), then
    /// the kind: `connecting to Redis: Connection refused (os error 111) [Store]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.message.clone();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let text = c.to_string();
            if !text.is_empty() && !shown.ends_with(&text) {
                shown.push_str(": ");
                shown.push_str(&text);
            }
            cause = c.source();
        }
        write!(f, "{shown} [{:?}]", self.0.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Io(&'static str);

    impl fmt::Display for Io {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Io {}

    #[test]
    fn debug_reads_as_the_message_and_each_cause_once() {
        // A driver that repeats its cause in its own text ("broken pipe:
        // broken pipe") shows it once.
        let err = Error::store("loading a session: broken pipe", Io("broken pipe"))
            .context("finishing a request");
        assert_eq!(
            format!("{err:?}"),
            "finishing a request: loading a session: broken pipe [Store]"
        );
        let err = Error::store(
            "connecting to Redis",
            Io("Connection refused (os error 111)"),
        );
        assert_eq!(
            format!("{err:?}"),
            "connecting to Redis: Connection refused (os error 111) [Store]"
        );
    }

    #[test]
    fn clones_share_the_cause() {
        // One failed store call answers every request that waited on it, each
        // with the real cause (it used to be a copy of the cause's text).
        let err = Error::store("saving a session", Io("timed out"));
        let copy = err.clone();
        let cause = std::error::Error::source(&copy).expect("a cause");
        assert!(cause.downcast_ref::<Io>().is_some());
        assert_eq!(copy.kind(), err.kind());
    }
}
