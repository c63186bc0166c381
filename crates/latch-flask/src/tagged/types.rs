//! Typed wrappers for the tagged Python types, for `Session::get`/`insert`.

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::{Error as _, SerializeMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;

use super::{DateStyle, FlaskValue};

/// A Python `tuple`: `{" t": [...]}`. `T` is usually a Rust tuple or a `Vec`.
///
/// # Example
/// ```
/// use latch_flask::tagged::Tuple;
///
/// let v = serde_json::to_value(Tuple(("info", "Saved.")))?;
/// assert_eq!(v, serde_json::json!({" t": ["info", "Saved."]}));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tuple<T>(pub T);

/// Python `bytes`: `{" b": "<standard base64>"}`.
///
/// # Example
/// ```
/// use latch_flask::tagged::Bytes;
///
/// let v = serde_json::to_value(Bytes(b"hi".to_vec()))?;
/// assert_eq!(v, serde_json::json!({" b": "aGk="}));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

/// `markupsafe.Markup`: HTML that Jinja will not escape again. Only put HTML
/// you have made safe in it.
///
/// # Example
/// ```
/// use latch_flask::tagged::Markup;
///
/// let v = serde_json::to_value(Markup("<b>hi</b>".into()))?;
/// assert_eq!(v, serde_json::json!({" m": "<b>hi</b>"}));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Markup(pub String);

/// Python `uuid.UUID`: `{" u": "<32 lowercase hex digits>"}`.
///
/// # Example
/// ```
/// use latch_flask::tagged::Uuid;
///
/// let v = serde_json::to_value(Uuid(uuid::Uuid::from_u128(1)))?;
/// assert_eq!(v, serde_json::json!({" u": "00000000000000000000000000000001"}));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uuid(pub uuid::Uuid);

/// An aware Python `datetime`: `{" d": "<HTTP date>"}` (UTC, whole seconds, as
/// Flask writes it; sub-seconds are written as RFC 3339 and only Flask-Session's
/// msgpack keeps them).
///
/// # Example
/// ```
/// use latch_flask::tagged::DateTime;
///
/// let dt = time::OffsetDateTime::from_unix_timestamp(1_445_412_480)?;
/// let v = serde_json::to_value(DateTime(dt))?;
/// assert_eq!(v, serde_json::json!({" d": "Wed, 21 Oct 2015 07:28:00 GMT"}));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime(pub OffsetDateTime);

impl<T: Serialize> Serialize for Tuple<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(" t", &self.0)?;
        map.end()
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Tuple<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Repr {
            #[serde(rename = " t")]
            t: Value,
        }
        let repr = Repr::deserialize(deserializer)?;
        if !repr.t.is_array() {
            return Err(D::Error::custom("a tuple needs an array"));
        }
        T::deserialize(repr.t).map(Tuple).map_err(D::Error::custom)
    }
}

/// Serialize through [`FlaskValue`], so the wrappers and the enum agree.
fn serialize_as<S: Serializer>(value: FlaskValue, serializer: S) -> Result<S::Ok, S::Error> {
    value
        .tag(DateStyle::Exact)
        .map_err(S::Error::custom)?
        .serialize(serializer)
}

fn deserialize_as<'de, D, T>(
    deserializer: D,
    what: &'static str,
    pick: impl FnOnce(FlaskValue) -> Option<T>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let value = FlaskValue::deserialize(deserializer)?;
    pick(value).ok_or_else(|| D::Error::custom(what))
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_as(FlaskValue::Bytes(self.0.clone()), serializer)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_as(deserializer, "expected tagged bytes", |v| match v {
            FlaskValue::Bytes(b) => Some(Bytes(b)),
            _ => None,
        })
    }
}

impl Serialize for Markup {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_as(FlaskValue::Markup(self.0.clone()), serializer)
    }
}

impl<'de> Deserialize<'de> for Markup {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_as(deserializer, "expected tagged markup", |v| match v {
            FlaskValue::Markup(m) => Some(Markup(m)),
            _ => None,
        })
    }
}

impl Serialize for Uuid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_as(FlaskValue::Uuid(self.0), serializer)
    }
}

impl<'de> Deserialize<'de> for Uuid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_as(deserializer, "expected a tagged UUID", |v| match v {
            FlaskValue::Uuid(u) => Some(Uuid(u)),
            _ => None,
        })
    }
}

impl Serialize for DateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_as(FlaskValue::DateTime(self.0), serializer)
    }
}

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_as(deserializer, "expected a tagged datetime", |v| match v {
            FlaskValue::DateTime(d) => Some(DateTime(d)),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrappers_refuse_other_types() {
        assert!(serde_json::from_value::<Bytes>(json!({" m": "x"})).is_err());
        assert!(serde_json::from_value::<Bytes>(json!("AAH/")).is_err());
        assert!(serde_json::from_value::<Tuple<Vec<i32>>>(json!([1])).is_err());
        assert!(serde_json::from_value::<Tuple<Vec<i32>>>(json!({" t": 1})).is_err());
    }

    #[test]
    fn nested_wrappers_compose() {
        let v = serde_json::to_value(Tuple((Bytes(vec![1]), Uuid(uuid::Uuid::nil())))).unwrap();
        assert_eq!(
            v,
            json!({" t": [{" b": "AQ=="}, {" u": "00000000000000000000000000000000"}]})
        );
        let back: Tuple<(Bytes, Uuid)> = serde_json::from_value(v).unwrap();
        assert_eq!(back.0.0, Bytes(vec![1]));
    }
}
