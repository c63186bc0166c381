//! The one error type of the `latch` crate.

use std::fmt;

/// Boxed cause of an [`Error`], kept so `source()` chains stay intact.
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in latch, as one type with a [`kind`](Error::kind).
///
/// Configuration problems (weak keys, unsafe cookie settings) are reported when the
/// configuration is built, never later. Store problems keep their cause available
/// through [`std::error::Error::source`], so logs show the whole chain.
///
/// # Example
/// ```
/// use latch::{ErrorKind, SecretKey};
///
/// let err = SecretKey::from_bytes(b"changeme").unwrap_err();
/// assert_eq!(err.kind(), &ErrorKind::WeakKey);
/// ```
pub struct Error {
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
        Self {
            kind,
            message: message.into(),
            source: None,
        }
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
        Self {
            kind: ErrorKind::Store,
            message: context.into(),
            source: Some(Box::new(cause)),
        }
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
        Self {
            kind: ErrorKind::Serialization,
            message: context.into(),
            source: Some(Box::new(cause)),
        }
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

    pub(crate) fn with_source(
        mut self,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Box::new(cause));
        self
    }

    /// A copy for another waiter of the same failed operation (one store call
    /// that failed for several requests): same kind and message, the cause
    /// kept as text.
    pub(crate) fn duplicate(&self) -> Self {
        Self {
            kind: self.kind.clone(),
            message: self.message.clone(),
            source: self
                .source
                .as_ref()
                .map(|cause| -> Cause { Box::new(CauseText(cause.to_string())) }),
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
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
            self.kind,
            ErrorKind::Store | ErrorKind::StoreTimeout | ErrorKind::Conflict
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The text of a cause, for [`Error::duplicate`].
#[derive(Debug)]
struct CauseText(String);

impl fmt::Display for CauseText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CauseText {}
