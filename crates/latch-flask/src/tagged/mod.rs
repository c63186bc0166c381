//! Flask's tagged JSON (`flask.json.tag.TaggedJSONSerializer`) and the Rust
//! values it maps to.
//!
//! Flask stores Python values that JSON lacks as one-key objects whose key is a
//! *tag*. latch keeps a Flask session's data in exactly this tagged form, so
//! nothing is lost between the two apps, and these types read and write it:
//!
//! | Python | tagged JSON | Rust |
//! |---|---|---|
//! | `tuple` | `{" t": [...]}` | [`Tuple<T>`], [`FlaskValue::Tuple`] |
//! | `bytes` | `{" b": "<base64>"}` | [`Bytes`], [`FlaskValue::Bytes`] |
//! | `markupsafe.Markup` | `{" m": "<html>"}` | [`Markup`], [`FlaskValue::Markup`] |
//! | `uuid.UUID` | `{" u": "<32 hex>"}` | [`Uuid`], [`FlaskValue::Uuid`] |
//! | `datetime` | `{" d": "<HTTP date>"}` | [`DateTime`], [`FlaskValue::DateTime`] |
//! | a dict whose only key is a tag | `{" di": {"<tag>__": ...}}` | [`FlaskValue::Dict`] |
//! | `dict`, `list`, `str`, `int`, `float`, `bool`, `None` | plain JSON | plain serde values |
//!
//! Plain serde values (`String`, `i64`, `Vec<T>`, structs, ...) need no wrapper.
//! A plain map whose only key is a tag (a scratch map with a user-chosen key
//! `" m"`, say) is escaped the way Flask escapes it (`" di"`) when stored
//! with `insert` or `update`, so Flask reads back the same map and never
//! HTML: latch writes no `Markup` (`{" m": ...}` is always escaped), while
//! `Markup` that Flask wrote is kept and written back unchanged. Tuples,
//! bytes, UUIDs and datetimes stored with the types below keep their type.
//!
//! # Example
//! ```
//! use latch_flask::tagged::{Bytes, FlaskValue, Tuple};
//!
//! let value = serde_json::to_value(Tuple((1, "a")))?;
//! assert_eq!(value, serde_json::json!({" t": [1, "a"]}));
//! let back: Tuple<(i32, String)> = serde_json::from_value(value)?;
//! assert_eq!(back.0, (1, "a".to_owned()));
//!
//! let bytes = serde_json::to_value(Bytes(vec![0, 255]))?;
//! assert_eq!(bytes, serde_json::json!({" b": "AP8="}));
//! assert_eq!(FlaskValue::from_tagged(&bytes)?, FlaskValue::Bytes(vec![0, 255]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod date;
mod types;
mod value;

pub use types::{Bytes, DateTime, Markup, Tuple, Uuid};
pub use value::{FlaskValue, TagError};

pub(crate) use value::{DateStyle, escape_plain};

/// The tags Flask 3.1 registers, in its order.
pub(crate) const TAGS: [&str; 6] = [" di", " t", " b", " m", " u", " d"];
