//! Flask-Session 0.8 in the real Redis against the real Flask-Session
//! (tests/python/flask_helper.py).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{
    KEY, cookie_value, every_type, every_type_reprs, flask, python, redis_url, unique_prefix,
};
use latch::{CookieConfig, SessionManager, SessionStore};
use latch_flask::tagged::FlaskValue;
use latch_flask::{FlaskSessionIds, FlaskSessionStore, SerializationFormat, flask_expiry};
use serde_json::{Value, json};

const LIFETIME: u64 = 600;

struct Setup {
    py: PathBuf,
    url: String,
    prefix: String,
    signed: bool,
    format: SerializationFormat,
}

impl Setup {
    fn new(test: &str, signed: bool, format: SerializationFormat) -> Option<Self> {
        let py = python()?;
        let url = redis_url()?;
        Some(Self {
            py,
            url,
            prefix: unique_prefix(test),
            signed,
            format,
        })
    }

    fn flask_request(&self) -> Value {
        json!({
            "redis_url": self.url,
            "prefix": self.prefix,
            "secret_key": KEY,
            "use_signer": self.signed,
            "format": match self.format {
                SerializationFormat::Msgpack => "msgpack",
                SerializationFormat::Json => "json",
            },
            "lifetime": LIFETIME,
        })
    }

    /// Flask-Session creates a session holding `data`; its cookie value.
    fn flask_creates(&self, data: &Value) -> String {
        let mut request = self.flask_request();
        request["data"] = data.clone();
        flask(&self.py, "make-redis-session", request)["cookie"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// What Flask-Session finds for `cookie`.
    fn flask_reads(&self, cookie: &str) -> Value {
        let mut request = self.flask_request();
        request["cookie"] = json!(cookie);
        flask(&self.py, "read-redis-session", request)
    }

    async fn store(&self) -> FlaskSessionStore {
        FlaskSessionStore::builder()
            .key_prefix(&self.prefix)
            .lifetime(Duration::from_secs(LIFETIME))
            .format(self.format)
            .connect(&self.url)
            .await
            .unwrap()
    }

    async fn manager(&self) -> SessionManager {
        let ids = if self.signed {
            FlaskSessionIds::signed(KEY)
        } else {
            FlaskSessionIds::unsigned()
        };
        SessionManager::builder()
            .store(self.store().await)
            .id_format(ids)
            .expiry(flask_expiry(Duration::from_secs(LIFETIME)).unwrap())
            .cookie(CookieConfig::builder().name("session").build().unwrap())
            .build()
            .unwrap()
    }

    fn redis(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

fn header(cookie: &str) -> String {
    format!("session={cookie}")
}

/// The data latch sees through the `Session` API, as tagged JSON.
async fn latch_reads(manager: &SessionManager, cookie: &str) -> (Value, latch::Session) {
    let h = header(cookie);
    let session = manager.start(Some(h.as_str()), Default::default());
    let mut data = serde_json::Map::new();
    for key in every_type().as_object().unwrap().keys() {
        if let Some(v) = session.get::<FlaskValue>(key).await.unwrap() {
            data.insert(key.clone(), v.to_tagged().unwrap());
        }
    }
    (Value::Object(data), session)
}

/// msgpack keeps every type but tuples (msgspec writes them as lists), UUIDs
/// (as text) and Markup (msgspec cannot encode it, so the Flask side leaves it
/// out).
fn msgpack_data() -> Value {
    let mut data = every_type();
    data.as_object_mut().unwrap().remove("markup");
    data["nested"]["dict"]["k"] = json!("x");
    data
}

fn as_flask_session_keeps_it(data: &Value) -> Value {
    let mut data = data.clone();
    data["tuple"] = json!([1, "a", []]);
    data["uuid"] = json!("12345678-1234-5678-1234-567812345678");
    data
}

async fn flask_writes_latch_reads(signed: bool) {
    let Some(setup) = Setup::new("flask-to-latch", signed, SerializationFormat::Msgpack) else {
        return;
    };
    let mut data = msgpack_data();
    data["_user_id"] = json!("alice");
    let cookie = setup.flask_creates(&data);
    assert_eq!(cookie.contains('.'), signed);
    let manager = setup.manager().await;
    let (seen, session) = latch_reads(&manager, &cookie).await;
    assert_eq!(seen, as_flask_session_keeps_it(&msgpack_data()));
    assert_eq!(session.user_id().await.unwrap().as_deref(), Some("alice"));
    let facts = session.facts().await.unwrap();
    assert!(!facts.is_new);
    assert!(facts.remember, "SESSION_PERMANENT's _permanent is remember");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_writes_latch_reads_unsigned() {
    flask_writes_latch_reads(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_writes_latch_reads_signed() {
    flask_writes_latch_reads(true).await;
}

async fn latch_writes_flask_reads(signed: bool, format: SerializationFormat) {
    let Some(setup) = Setup::new("latch-to-flask", signed, format) else {
        return;
    };
    let manager = setup.manager().await;
    let session = manager.start(None, Default::default());
    for (key, value) in every_type().as_object().unwrap() {
        session
            .insert(key, FlaskValue::from_tagged(value).unwrap())
            .await
            .unwrap();
    }
    session.log_in("bob").await.unwrap();
    session.set_remember(true).await.unwrap();
    let set = manager.finish(&session).await.unwrap().set_cookie.unwrap();
    let cookie = cookie_value(&set);
    assert_eq!(cookie.contains('.'), signed);
    let seen = setup.flask_reads(&cookie);
    assert_eq!(seen["data"]["_user_id"], "bob");
    assert_eq!(seen["data"]["_permanent"], true);
    assert_eq!(seen["repr"]["_permanent"], "True");
    // Redis holds it under the prefix and the plain sid, for the lifetime.
    let sid = cookie.split('.').next().unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("{}{sid}", setup.prefix))
        .query(&mut setup.redis())
        .unwrap();
    assert!(
        (LIFETIME as i64 - 2..=LIFETIME as i64).contains(&ttl),
        "TTL {ttl}"
    );
    if format == SerializationFormat::Msgpack {
        // latch writes Markup as text, which msgspec cannot encode at all.
        let mut expected = as_flask_session_keeps_it(&every_type());
        expected["markup"] = json!("<b>bold</b>");
        expected["nested"]["dict"]["k"] = json!("x");
        for (key, value) in expected.as_object().unwrap() {
            assert_eq!(&seen["data"][key], value, "{key}");
        }
        for (key, repr) in every_type_reprs() {
            if !["tuple", "uuid", "markup"].contains(&key) {
                assert_eq!(seen["repr"][key], repr, "Python type of {key}");
            }
        }
    } else {
        // JSON keeps JSON: bytes as base64 text, datetimes as RFC 3339 text.
        assert_eq!(seen["data"]["bytes"], "AP8Q");
        assert_eq!(seen["data"]["datetime"], "2015-10-21T07:28:00Z");
        assert_eq!(seen["data"]["uuid"], "12345678-1234-5678-1234-567812345678");
        assert_eq!(seen["data"]["escaped"], json!({" di": {" t__": "aGk="}}));
        assert_eq!(
            seen["data"]["nested"]["list"],
            every_type()["nested"]["list"]
        );
        assert_eq!(seen["data"]["nested"]["dict"]["k"], "x");
        assert_eq!(seen["repr"]["big"], "18446744073709551615");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latch_writes_flask_reads_unsigned_msgpack() {
    latch_writes_flask_reads(false, SerializationFormat::Msgpack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latch_writes_flask_reads_signed_msgpack() {
    latch_writes_flask_reads(true, SerializationFormat::Msgpack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latch_writes_flask_reads_json() {
    latch_writes_flask_reads(false, SerializationFormat::Json).await;
}

/// Flask-Session's JSON format read by latch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_json_entries_are_read() {
    let Some(setup) = Setup::new("json", false, SerializationFormat::Json) else {
        return;
    };
    let cookie = setup.flask_creates(&json!({"n": 1, "t": {" t": [1]}, "b": {" b": "aGk="}}));
    let manager = setup.manager().await;
    let session = manager.start(Some(header(&cookie).as_str()), Default::default());
    assert_eq!(session.get::<i64>("n").await.unwrap(), Some(1));
    assert_eq!(session.get::<Vec<i64>>("t").await.unwrap(), Some(vec![1]));
    assert_eq!(
        session.get::<String>("b").await.unwrap().as_deref(),
        Some("aGk=")
    );
}

/// Both apps edit the same session in turn; neither loses the other's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_apps_share_one_session() {
    let Some(setup) = Setup::new("shared", true, SerializationFormat::Msgpack) else {
        return;
    };
    let cookie = setup.flask_creates(&json!({"from_flask": 1}));
    let manager = setup.manager().await;
    let session = manager.start(Some(header(&cookie).as_str()), Default::default());
    session.insert("from_latch", 2).await.unwrap();
    let finished = manager.finish(&session).await.unwrap();
    // Remembered (permanent) sessions get their cookie re-sent, as Flask does.
    let resent = cookie_value(&finished.set_cookie.unwrap());
    assert_eq!(resent, cookie, "same id, same cookie");
    let seen = setup.flask_reads(&cookie);
    assert_eq!(seen["data"]["from_flask"], 1);
    assert_eq!(seen["data"]["from_latch"], 2);
}

/// Logging out in latch ends the session for Flask too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_in_latch_ends_it_for_flask() {
    let Some(setup) = Setup::new("logout", false, SerializationFormat::Msgpack) else {
        return;
    };
    let cookie = setup.flask_creates(&json!({"_user_id": "carol"}));
    let manager = setup.manager().await;
    let session = manager.start(Some(header(&cookie).as_str()), Default::default());
    assert_eq!(session.user_id().await.unwrap().as_deref(), Some("carol"));
    session.destroy().await.unwrap();
    manager.finish(&session).await.unwrap();
    // Flask-Session finds nothing and starts a fresh (SESSION_PERMANENT) session.
    assert_eq!(
        setup.flask_reads(&cookie)["data"],
        json!({"_permanent": true})
    );
}

/// An entry in the pickle format of Flask-Session before 0.7 is refused with a
/// clear error; nothing is unpickled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pickle_entries_are_refused() {
    let Some(setup) = Setup::new("pickle", false, SerializationFormat::Msgpack) else {
        return;
    };
    let id = latch::SessionId::generate();
    flask(
        &setup.py,
        "write-pickle-entry",
        json!({"redis_url": setup.url, "key": format!("{}{}", setup.prefix, id.encode()),
               "data": {"user": "mallory"}}),
    );
    let manager = setup.manager().await;
    let session = manager.start(Some(header(&id.encode()).as_str()), Default::default());
    let err = session.get::<String>("user").await.unwrap_err();
    assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("pickle format"), "{err}");
    assert!(err.to_string().contains("never unpickles"), "{err}");
}

/// A sid with a bad signature, or unknown, starts a fresh session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_unknown_sids_start_fresh() {
    let Some(setup) = Setup::new("tamper", true, SerializationFormat::Msgpack) else {
        return;
    };
    let cookie = setup.flask_creates(&json!({"k": 1}));
    let manager = setup.manager().await;
    let mut tampered = cookie.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [
        tampered.as_str(),
        &cookie[..cookie.len() - 1],
        cookie.split('.').next().unwrap(),
    ] {
        let session = manager.start(Some(header(bad).as_str()), Default::default());
        assert!(session.facts().await.unwrap().is_new, "{bad}");
        assert_eq!(session.get::<i64>("k").await.unwrap(), None);
    }
    assert_eq!(manager.rejected_cookies(), 3);
}

/// Flask-Session keeps no per-user index and needs no purge (Redis' TTLs):
/// the store says so, and an app that requires the per-user features is
/// refused at start-up rather than failing at request time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_user_index() {
    let Some(setup) = Setup::new("index", false, SerializationFormat::Msgpack) else {
        return;
    };
    let store = setup.store().await;
    assert!(store.user_index().is_none());
    assert!(store.expired_deletion().is_none());
    let err = SessionManager::builder()
        .store(store)
        .id_format(FlaskSessionIds::unsigned())
        .require_user_index()
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig);
    assert!(
        err.to_string()
            .contains("keeps no index of sessions by user"),
        "{err}"
    );
}

/// Redis' TTL is the session's life: an expired entry is gone for both apps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_is_the_lifetime_and_touch_refreshes_it() {
    let Some(setup) = Setup::new("ttl", false, SerializationFormat::Msgpack) else {
        return;
    };
    let cookie = setup.flask_creates(&json!({"k": 1}));
    let key = format!("{}{cookie}", setup.prefix);
    let _: () = redis::cmd("EXPIRE")
        .arg(&key)
        .arg(100)
        .query(&mut setup.redis())
        .unwrap();
    let manager = setup.manager().await;
    let session = manager.start(Some(header(&cookie).as_str()), Default::default());
    let facts = session.facts().await.unwrap();
    assert!(facts.last_seen <= latch::Clock::now(&latch::SystemClock) - (LIFETIME as i64 - 101));
    manager.finish(&session).await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query(&mut setup.redis())
        .unwrap();
    assert!(
        ttl > 100,
        "reading refreshed the TTL as Flask-Session does: {ttl}"
    );
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query(&mut setup.redis())
        .unwrap();
    let session = manager.start(Some(header(&cookie).as_str()), Default::default());
    assert!(session.facts().await.unwrap().is_new);
}

/// The conformance cases that apply to Flask-Session's layout. Not run:
/// `load_returns_every_field` (Flask-Session keeps only the dict),
/// `save_is_compare_and_swap` and `touch_refreshes_times_only` (versions and
/// times derive from the bytes and the TTL, not from what the caller passed),
/// the per-user cases (no user index), `purge_removes_only_expired_in_batches`
/// (Redis expires by TTL) and `idle_and_absolute_expiry_to_the_second` (TTLs run
/// on Redis' clock, not a manual one; see `ttl_is_the_lifetime...` above).
mod conformance {
    use super::*;

    /// The conformance suite's clock start (its `T0`), so TTL-derived times line
    /// up with the suite's manual clock.
    const T0: i64 = 1_800_000_000;

    async fn make() -> Option<Arc<dyn SessionStore>> {
        let url = redis_url()?;
        let store = FlaskSessionStore::builder()
            .key_prefix(unique_prefix("conformance"))
            .lifetime(Duration::from_secs(1800))
            .clock(latch::ManualClock::new(T0))
            .connect(&url)
            .await
            .unwrap();
        Some(Arc::new(store))
    }

    // Flask-Session keeps neither a per-user index nor expiry beyond Redis'
    // TTL, no creation time, user agent or address, and versions entries by
    // their bytes; those cases do not apply.
    latch_conformance::store_conformance!(make; except: [
        load_returns_every_field,
        save_is_compare_and_swap,
        save_replaces_every_field,
        touch_refreshes_times_only,
        touch_keeps_the_user_index_current,
        list_by_user_lists_live_sessions_of_that_user_only,
        user_change_moves_index_entry,
        delete_by_user_keeps_current,
        sign_out_elsewhere_needs_the_kept_session,
        racing_sign_outs_elsewhere_leave_one_session,
        revoking_a_device_needs_the_revoking_session,
        purge_removes_only_expired_in_batches,
        records_over_the_size_limit_are_refused,
        regenerate_does_not_revive_an_ended_session,
        regenerate_keeps_changes_saved_meanwhile,
        idle_and_absolute_expiry_to_the_second,
        devices_list_and_revoke_through_sessions,
        sign_out_elsewhere_through_sessions,
        sign_in_records_its_client,
    ]);
}
