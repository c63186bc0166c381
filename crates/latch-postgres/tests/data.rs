//! Session data comes back from PostgreSQL exactly as written, including values
//! `jsonb` would refuse.

mod common;

use latch::{Record, SessionId, SessionStore};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_values_round_trip_exactly() {
    let Some(store) = common::store().await else {
        return;
    };
    let mut record = Record::new(1_800_000_000);
    let values = [
        ("nul", json!("before\u{0}after")),
        ("u64_max", json!(u64::MAX)),
        ("i64_min", json!(i64::MIN)),
        ("tenth", json!(0.1)),
        ("huge", json!(1e300)),
        ("text", json!("é \u{1f512} \"quoted\" \\ back\nslash")),
        ("nested", json!({"a": [1, {"b": null}], "": true})),
        ("", json!("empty key")),
    ];
    for (k, v) in values {
        record.data.insert(k.into(), v);
    }
    record.user_agent = Some("agent \u{1f512}".into());
    record.version = u64::try_from(i64::MAX).unwrap();

    let key = SessionId::generate().store_key();
    assert!(store.create(&key, &record).await.unwrap());
    assert_eq!(store.load(&key).await.unwrap(), Some(record));
}
