//! A Flask session dict and a latch [`Record`]: which keys carry latch's fields.

use std::collections::BTreeMap;

use latch::{Record, UnixTime};

use crate::tagged::{FlaskValue, TagError};

/// Flask's `session.permanent` lives under this key; latch calls it `remember`.
pub const PERMANENT_KEY: &str = "_permanent";

/// Flask-Login keeps the signed-in user's id (a `str`) under this key; latch
/// maps it to [`Record::user_id`], so sign-in is shared both ways.
pub const USER_ID_KEY: &str = "_user_id";

/// Keys of a Flask session that Flask and its usual extensions give a meaning
/// of their own: the sign-in state (Flask, Flask-Login), flash messages and
/// Flask-WTF's CSRF secret. A latch application may not set them through
/// `insert`/`update` (refused as [`latch::ErrorKind::InvalidKey`]): a data
/// key `_user_id` written while nobody is signed in would otherwise be read
/// back, by Flask and by latch, as the signed-in user. Sign in with
/// [`latch::Session::log_in`] and use [`latch::Session::set_remember`].
pub const FLASK_KEYS: &[&str] = &[
    PERMANENT_KEY,
    USER_ID_KEY,
    "_fresh",
    "_id",
    "_remember",
    "_remember_seconds",
    "_flashes",
    "csrf_token",
];

/// The record for a Flask session `dict` issued (or last written) at `issued`.
///
/// Flask has no creation time, user agent or address; `created_at` is the issue
/// time. Values stay in tagged JSON form (see [`crate::tagged`]).
pub(crate) fn record_from_dict(
    mut dict: BTreeMap<String, FlaskValue>,
    issued: UnixTime,
) -> Result<Record, TagError> {
    let mut record = Record::new(issued);
    if let Some(FlaskValue::Bool(permanent)) = dict.get(PERMANENT_KEY) {
        record.remember = *permanent;
        dict.remove(PERMANENT_KEY);
    }
    if let Some(FlaskValue::Str(user)) = dict.get(USER_ID_KEY) {
        record.user_id = Some(user.clone());
        dict.remove(USER_ID_KEY);
    }
    for (key, value) in dict {
        record.data.insert(key, value.to_tagged()?);
    }
    Ok(record)
}

/// The Flask session `dict` for `record`: its data, plus `_permanent: True` when
/// remembered and `_user_id` when signed in (these win over data keys of the same
/// name).
pub(crate) fn dict_from_record(record: &Record) -> Result<BTreeMap<String, FlaskValue>, TagError> {
    let mut dict = record
        .data
        .iter()
        .map(|(k, v)| Ok((k.clone(), FlaskValue::from_tagged(v)?)))
        .collect::<Result<BTreeMap<_, _>, TagError>>()?;
    if record.remember {
        dict.insert(PERMANENT_KEY.to_owned(), FlaskValue::Bool(true));
    }
    if let Some(user) = &record.user_id {
        dict.insert(USER_ID_KEY.to_owned(), FlaskValue::Str(user.clone()));
    }
    Ok(dict)
}

/// A value a latch application stores, in the form Flask reads back as that
/// same value (see [`crate::tagged::escape_plain`]).
pub(crate) fn prepare_value(value: serde_json::Value) -> latch::Result<serde_json::Value> {
    crate::tagged::escape_plain(value).map_err(data_error)
}

/// A [`TagError`] in session data as a latch error (a programming error in what
/// the application stored, so not "unavailable").
pub(crate) fn data_error(err: TagError) -> latch::Error {
    latch::Error::invalid_config(format!(
        "the session holds a value Flask cannot read back ({}); store Flask types \
         through latch_flask::tagged",
        err.reason()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn permanent_and_user_map_to_record_fields() {
        let dict = BTreeMap::from([
            (PERMANENT_KEY.to_owned(), FlaskValue::Bool(true)),
            (USER_ID_KEY.to_owned(), FlaskValue::Str("42".into())),
            ("t".to_owned(), FlaskValue::Tuple(vec![FlaskValue::Int(1)])),
        ]);
        let record = record_from_dict(dict.clone(), 7).unwrap();
        assert!(record.remember);
        assert_eq!(record.user_id.as_deref(), Some("42"));
        assert_eq!(record.data["t"], json!({" t": [1]}));
        assert_eq!((record.created_at, record.last_seen), (7, 7));
        assert_eq!(dict_from_record(&record).unwrap(), dict);
    }

    #[test]
    fn non_permanent_sessions_carry_no_permanent_key() {
        let dict = BTreeMap::from([(PERMANENT_KEY.to_owned(), FlaskValue::Bool(false))]);
        let record = record_from_dict(dict, 0).unwrap();
        assert!(!record.remember && record.data.is_empty());
        assert!(dict_from_record(&record).unwrap().is_empty());
    }
}
