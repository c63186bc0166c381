//! [`FlaskValue`]: a Python session value, and its tagged JSON form.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};
use time::OffsetDateTime;

use super::{TAGS, date};

/// Nesting deeper than this is refused, so hostile data cannot exhaust the stack.
const MAX_DEPTH: usize = 128;

/// `value`, stored by a latch application, in the form Flask reads back as
/// the same value: a map whose only key is a tag is escaped as Flask's
/// `TagDict` does (`{" di": {"<tag>__": ...}}`) unless it is a well-formed
/// tuple, bytes, UUID or datetime; `{" m": ...}` (Markup, which templates
/// render unescaped) is always escaped. Applied at every depth.
pub(crate) fn escape_plain(value: Value) -> Result<Value, TagError> {
    escape_at(value, 0)
}

fn escape_at(value: Value, depth: usize) -> Result<Value, TagError> {
    if depth > MAX_DEPTH {
        return Err(TagError("nested too deep"));
    }
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|v| escape_at(v, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) if map.len() == 1 && map.keys().all(|k| TAGS.contains(&k.as_str())) => {
            escape_tagged(map, depth)
        }
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| Ok((k, escape_at(v, depth + 1)?)))
            .collect::<Result<Map<_, _>, _>>()
            .map(Value::Object),
        other => Ok(other),
    }
}

/// A one-key map whose key is a tag: kept when it is a well-formed value of
/// a type latch may write (its contents escaped in turn), escaped otherwise.
fn escape_tagged(map: Map<String, Value>, depth: usize) -> Result<Value, TagError> {
    let well_formed = FlaskValue::from_tagged(&Value::Object(map.clone())).is_ok();
    let Some((tag, inner)) = map.into_iter().next() else {
        return Ok(Value::Object(Map::new()));
    };
    let kept = match (tag.as_str(), inner) {
        (" t", Value::Array(items)) if well_formed => {
            Ok(escape_at(Value::Array(items), depth + 1)?)
        }
        (" di", Value::Object(inner)) if well_formed => {
            let inner = escape_at(Value::Object(inner), depth + 1)?;
            let mut map = Map::new();
            map.insert(tag.clone(), inner);
            return Ok(Value::Object(map));
        }
        (" b" | " u" | " d", inner) if well_formed => Ok(inner),
        (_, inner) => Err(inner),
    };
    let mut map = Map::new();
    match kept {
        Ok(inner) => {
            map.insert(tag, inner);
        }
        Err(inner) => {
            let mut escaped = Map::new();
            escaped.insert(format!("{tag}__"), escape_at(inner, depth + 1)?);
            map.insert(" di".to_owned(), Value::Object(escaped));
        }
    }
    Ok(Value::Object(map))
}

/// A value as Flask's session holds it: the JSON types plus the Python types
/// Flask's tagged JSON adds.
///
/// Serializes to (and deserializes from) the tagged JSON form, so it can be
/// stored and read with [`latch::Session::insert`] and [`latch::Session::get`].
///
/// # Example
/// ```
/// use std::collections::BTreeMap;
/// use latch_flask::tagged::FlaskValue;
///
/// // A dict whose only key is a tag is escaped the way Flask escapes it.
/// let dict = FlaskValue::Dict(BTreeMap::from([(" t".to_owned(), FlaskValue::Int(1))]));
/// assert_eq!(dict.to_tagged()?, serde_json::json!({" di": {" t__": 1}}));
/// assert_eq!(FlaskValue::from_tagged(&dict.to_tagged()?)?, dict);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum FlaskValue {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// `int`, within `i64::MIN..=u64::MAX` (what latch's JSON data holds).
    Int(i128),
    /// `float`, finite.
    Float(f64),
    /// `str`.
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
    /// `list`.
    List(Vec<FlaskValue>),
    /// `tuple`.
    Tuple(Vec<FlaskValue>),
    /// `dict` with `str` keys.
    Dict(BTreeMap<String, FlaskValue>),
    /// `markupsafe.Markup`: HTML that templates do not escape again.
    Markup(String),
    /// `uuid.UUID`.
    Uuid(uuid::Uuid),
    /// An aware `datetime`. Flask's cookie keeps whole seconds in UTC;
    /// Flask-Session's msgpack keeps microseconds.
    DateTime(OffsetDateTime),
}

/// A value that is not valid Flask tagged JSON, or that Flask could not read back.
///
/// # Example
/// ```
/// use latch_flask::tagged::FlaskValue;
///
/// let err = FlaskValue::from_tagged(&serde_json::json!({" b": 5})).unwrap_err();
/// assert_eq!(err.to_string(), "invalid Flask tagged value: \" b\" needs base64 text");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagError(pub(crate) &'static str);

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid Flask tagged value: {}", self.0)
    }
}

impl std::error::Error for TagError {}

impl TagError {
    /// Why, in a few words.
    pub fn reason(&self) -> &'static str {
        self.0
    }
}

impl From<date::DateError> for TagError {
    fn from(e: date::DateError) -> Self {
        Self(e.0)
    }
}

/// How datetimes are written into tagged JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateStyle {
    /// Always Flask's HTTP date, dropping sub-seconds as Flask does: for cookies.
    Http,
    /// HTTP date for whole seconds, RFC 3339 otherwise: for values that go on to
    /// Flask-Session's msgpack, which keeps sub-seconds.
    Exact,
}

type Tagged<T> = Result<T, TagError>;

impl FlaskValue {
    /// Read a value from Flask's tagged JSON. Tags are checked strictly: a
    /// tagged object with the wrong content is an error, never a plain dict.
    ///
    /// # Errors
    /// [`TagError`] for malformed tag content or nesting deeper than 128.
    pub fn from_tagged(value: &Value) -> Result<Self, TagError> {
        untag(value, 0)
    }

    /// The tagged JSON form of this value, as Flask's `TaggedJSONSerializer.tag`
    /// builds it (datetimes with sub-seconds as RFC 3339, see [`FlaskValue::DateTime`]).
    ///
    /// # Errors
    /// [`TagError`] for an integer outside `i64::MIN..=u64::MAX`, a non-finite
    /// float, or a datetime outside the years 100..=9999.
    pub fn to_tagged(&self) -> Result<Value, TagError> {
        self.tag(DateStyle::Exact)
    }

    pub(crate) fn tag(&self, style: DateStyle) -> Tagged<Value> {
        Ok(match self {
            FlaskValue::Dict(map) => tag_dict(map, style)?,
            FlaskValue::List(items) => Value::Array(tag_all(items, style)?),
            FlaskValue::Tuple(items) => tagged(" t", Value::Array(tag_all(items, style)?)),
            FlaskValue::Bytes(bytes) => tagged(" b", STANDARD.encode(bytes).into()),
            FlaskValue::Markup(html) => tagged(" m", html.clone().into()),
            FlaskValue::Uuid(uuid) => tagged(" u", uuid.simple().to_string().into()),
            FlaskValue::DateTime(dt) => tagged(" d", tag_date(*dt, style)?.into()),
            other => other.plain_scalar()?,
        })
    }

    /// Read a value from plain JSON (Flask-Session's JSON format): no tags.
    pub(crate) fn from_plain(value: &Value) -> Tagged<Self> {
        from_plain(value, 0)
    }

    /// Plain JSON as msgspec writes these types: tuples as arrays, bytes as
    /// base64 text, UUIDs and markup as text, datetimes as RFC 3339.
    pub(crate) fn to_plain(&self) -> Tagged<Value> {
        Ok(match self {
            FlaskValue::Dict(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), v.to_plain()?)))
                    .collect::<Tagged<Map<_, _>>>()?,
            ),
            FlaskValue::List(items) | FlaskValue::Tuple(items) => Value::Array(
                items
                    .iter()
                    .map(FlaskValue::to_plain)
                    .collect::<Tagged<_>>()?,
            ),
            FlaskValue::Bytes(bytes) => STANDARD.encode(bytes).into(),
            FlaskValue::Markup(html) => html.clone().into(),
            FlaskValue::Uuid(uuid) => uuid.hyphenated().to_string().into(),
            FlaskValue::DateTime(dt) => date::format_rfc3339(*dt)?.into(),
            other => other.plain_scalar()?,
        })
    }

    fn plain_scalar(&self) -> Tagged<Value> {
        Ok(match self {
            FlaskValue::None => Value::Null,
            FlaskValue::Bool(b) => Value::Bool(*b),
            FlaskValue::Int(i) => Value::Number(int_number(*i)?),
            FlaskValue::Float(f) => Value::Number(
                Number::from_f64(*f).ok_or(TagError("NaN and infinity have no JSON form"))?,
            ),
            FlaskValue::Str(s) => Value::String(s.clone()),
            _ => return Err(TagError("not a scalar")),
        })
    }
}

fn int_number(i: i128) -> Tagged<Number> {
    if let Ok(i) = i64::try_from(i) {
        Ok(Number::from(i))
    } else {
        u64::try_from(i)
            .map(Number::from)
            .map_err(|_| TagError("integer outside i64::MIN..=u64::MAX"))
    }
}

fn tagged(tag: &str, content: Value) -> Value {
    let mut map = Map::new();
    map.insert(tag.to_owned(), content);
    Value::Object(map)
}

fn tag_all(items: &[FlaskValue], style: DateStyle) -> Tagged<Vec<Value>> {
    items.iter().map(|item| item.tag(style)).collect()
}

fn tag_dict(map: &BTreeMap<String, FlaskValue>, style: DateStyle) -> Tagged<Value> {
    if let Some((key, only)) = single_tag_entry(map) {
        // Flask's TagDict: escape the key so the dict is not read as that tag.
        return Ok(tagged(" di", tagged(&format!("{key}__"), only.tag(style)?)));
    }
    Ok(Value::Object(
        map.iter()
            .map(|(k, v)| Ok((k.clone(), v.tag(style)?)))
            .collect::<Tagged<Map<_, _>>>()?,
    ))
}

fn single_tag_entry(map: &BTreeMap<String, FlaskValue>) -> Option<(&String, &FlaskValue)> {
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) if TAGS.contains(&entry.0.as_str()) => Some(entry),
        _ => None,
    }
}

fn tag_date(dt: OffsetDateTime, style: DateStyle) -> Tagged<String> {
    let text = if style == DateStyle::Http || dt.nanosecond() == 0 {
        date::format_http(dt)?
    } else {
        date::format_rfc3339(dt)?
    };
    Ok(text)
}

fn check_depth(depth: usize) -> Tagged<()> {
    if depth > MAX_DEPTH {
        return Err(TagError("nested too deeply"));
    }
    Ok(())
}

fn untag(value: &Value, depth: usize) -> Tagged<FlaskValue> {
    check_depth(depth)?;
    match value {
        Value::Object(map) => {
            if let Some((tag, content)) = single_entry(map)
                && TAGS.contains(&tag.as_str())
            {
                return untag_content(tag, content, depth);
            }
            Ok(FlaskValue::Dict(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), untag(v, depth + 1)?)))
                    .collect::<Tagged<_>>()?,
            ))
        }
        Value::Array(items) => Ok(FlaskValue::List(untag_all(items, depth)?)),
        scalar => scalar_from_json(scalar),
    }
}

fn single_entry(map: &Map<String, Value>) -> Option<(&String, &Value)> {
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) => Some(entry),
        _ => None,
    }
}

fn untag_all(items: &[Value], depth: usize) -> Tagged<Vec<FlaskValue>> {
    items.iter().map(|item| untag(item, depth + 1)).collect()
}

fn text<'a>(content: &'a Value, what: &'static str) -> Tagged<&'a str> {
    content.as_str().ok_or(TagError(what))
}

fn untag_content(tag: &str, content: &Value, depth: usize) -> Tagged<FlaskValue> {
    match tag {
        " t" => match content {
            Value::Array(items) => Ok(FlaskValue::Tuple(untag_all(items, depth)?)),
            _ => Err(TagError("\" t\" needs an array")),
        },
        " b" => decode_bytes(text(content, "\" b\" needs base64 text")?),
        " m" => Ok(FlaskValue::Markup(
            text(content, "\" m\" needs text")?.to_owned(),
        )),
        " u" => decode_uuid(text(content, "\" u\" needs 32 hex digits")?),
        " d" => Ok(FlaskValue::DateTime(date::parse(text(
            content,
            "\" d\" needs an HTTP date",
        )?)?)),
        _ => untag_escaped_dict(content, depth),
    }
}

fn decode_bytes(b64: &str) -> Tagged<FlaskValue> {
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| TagError("\" b\" needs base64 text"))?;
    Ok(FlaskValue::Bytes(bytes))
}

fn decode_uuid(hex: &str) -> Tagged<FlaskValue> {
    // `uuid.hex`: exactly 32 lowercase hex digits.
    if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(TagError("\" u\" needs 32 hex digits"));
    }
    uuid::Uuid::try_parse(hex)
        .map(FlaskValue::Uuid)
        .map_err(|_| TagError("\" u\" needs 32 hex digits"))
}

/// `{" di": {"<tag>__": v}}` is the dict `{"<tag>": v}`.
fn untag_escaped_dict(content: &Value, depth: usize) -> Tagged<FlaskValue> {
    let escaped = content
        .as_object()
        .and_then(single_entry)
        .and_then(|(key, v)| Some((key.strip_suffix("__")?, v)))
        .filter(|(key, _)| TAGS.contains(key));
    let Some((key, inner)) = escaped else {
        return Err(TagError("\" di\" needs one escaped tag key"));
    };
    let inner = untag(inner, depth + 1)?;
    Ok(FlaskValue::Dict(BTreeMap::from([(key.to_owned(), inner)])))
}

fn scalar_from_json(value: &Value) -> Tagged<FlaskValue> {
    Ok(match value {
        Value::Null => FlaskValue::None,
        Value::Bool(b) => FlaskValue::Bool(*b),
        Value::String(s) => FlaskValue::Str(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                FlaskValue::Int(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                FlaskValue::Int(i128::from(u))
            } else {
                FlaskValue::Float(n.as_f64().ok_or(TagError("unreadable number"))?)
            }
        }
        _ => return Err(TagError("not a scalar")),
    })
}

fn from_plain(value: &Value, depth: usize) -> Tagged<FlaskValue> {
    check_depth(depth)?;
    Ok(match value {
        Value::Object(map) => FlaskValue::Dict(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), from_plain(v, depth + 1)?)))
                .collect::<Tagged<_>>()?,
        ),
        Value::Array(items) => FlaskValue::List(
            items
                .iter()
                .map(|v| from_plain(v, depth + 1))
                .collect::<Tagged<_>>()?,
        ),
        scalar => scalar_from_json(scalar)?,
    })
}

impl Serialize for FlaskValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_tagged()
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FlaskValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        FlaskValue::from_tagged(&value).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn round_trip(value: FlaskValue, tagged: Value) {
        assert_eq!(value.to_tagged().unwrap(), tagged);
        assert_eq!(FlaskValue::from_tagged(&tagged).unwrap(), value);
    }

    #[test]
    fn every_tag_both_ways() {
        round_trip(
            FlaskValue::Tuple(vec![FlaskValue::Int(1), FlaskValue::Str("a".into())]),
            json!({" t": [1, "a"]}),
        );
        round_trip(FlaskValue::Bytes(vec![0, 1, 255]), json!({" b": "AAH/"}));
        round_trip(FlaskValue::Markup("<b>".into()), json!({" m": "<b>"}));
        round_trip(
            FlaskValue::Uuid(uuid::Uuid::from_u128(0x1234)),
            json!({" u": "00000000000000000000000000001234"}),
        );
        round_trip(
            FlaskValue::DateTime(datetime!(2015-10-21 07:28:00 UTC)),
            json!({" d": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        );
        round_trip(
            FlaskValue::Dict(BTreeMap::from([(
                " di".to_owned(),
                FlaskValue::Tuple(vec![]),
            )])),
            json!({" di": {" di__": {" t": []}}}),
        );
        round_trip(
            FlaskValue::List(vec![FlaskValue::None, FlaskValue::Float(1.5)]),
            json!([null, 1.5]),
        );
    }

    #[test]
    fn malformed_tags_are_errors_not_dicts() {
        for bad in [
            json!({" t": 1}),
            json!({" b": "!!"}),
            json!({" b": "AAH"}),
            json!({" m": 1}),
            json!({" u": "0000000000000000000000000000123"}),
            json!({" u": "0000000000000000000000000000123G"}),
            json!({" u": "00000000-0000-0000-0000-000000001234"}),
            json!({" d": "yesterday"}),
            json!({" di": {" x__": 1}}),
            json!({" di": {" t": 1}}),
            json!({" di": {" t__": 1, " b__": 2}}),
            json!({" di": 3}),
        ] {
            assert!(FlaskValue::from_tagged(&bad).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn sub_second_datetimes_keep_precision_except_in_cookies() {
        let dt = FlaskValue::DateTime(datetime!(2024-01-02 03:04:05.123456 UTC));
        assert_eq!(
            dt.to_tagged().unwrap(),
            json!({" d": "2024-01-02T03:04:05.123456Z"})
        );
        assert_eq!(
            dt.tag(DateStyle::Http).unwrap(),
            json!({" d": "Tue, 02 Jan 2024 03:04:05 GMT"})
        );
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(
            FlaskValue::Int(i128::from(u64::MAX) + 1)
                .to_tagged()
                .is_err()
        );
        assert!(FlaskValue::Float(f64::NAN).to_tagged().is_err());
        assert!(
            FlaskValue::DateTime(datetime!(0050-01-01 00:00 UTC))
                .to_tagged()
                .is_err()
        );
    }

    #[test]
    fn plain_json_escapes_nothing() {
        let v = FlaskValue::from_plain(&json!({" t": [1]})).unwrap();
        assert_eq!(v.to_tagged().unwrap(), json!({" di": {" t__": [1]}}));
        assert_eq!(v.to_plain().unwrap(), json!({" t": [1]}));
    }
}
