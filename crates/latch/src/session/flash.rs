//! Flash messages: shown once, on the next page the user sees.

use serde::{Deserialize, Serialize};

/// The reserved data key that holds pending flash messages.
pub(crate) const FLASH_KEY: &str = "_latch.flash";

/// The most flash messages a session keeps pending; queueing one more drops
/// the oldest. Without a bound, a client that posts again and again without
/// loading a page in between piled them up until the session outgrew its size
/// limit (a 4 KB cookie after about 40) and every request failed.
pub const MAX_PENDING_FLASHES: usize = 10;

/// A message for the user's next page, such as "Signed out.".
///
/// # Example
/// ```
/// let flash = latch::Flash::new("info", "Signed out.");
/// assert_eq!(flash.level, "info");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// A level the application chooses, such as `info`, `success` or `error`.
    pub level: String,
    /// The message text (escape it when rendering).
    pub message: String,
}

impl Flash {
    /// A flash message with `level` and `message`.
    pub fn new(level: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            level: level.into(),
            message: message.into(),
        }
    }
}
