//! Session IDs are hashed at rest: the table never holds a cookie's session ID,
//! in any column, in any encoding; rows are keyed by its SHA-256.

mod common;

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latch::{RequestMeta, SessionId, SessionManager, StoreKey};
use latch_conformance::requests::{cookie_value, request_as};

/// Run one request carrying `cookie` through `f`; returns the new cookie value,
/// if the response set one.
async fn request<F, Fut>(manager: &SessionManager, cookie: Option<&str>, f: F) -> Option<String>
where
    F: FnOnce(latch::Session) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let meta = RequestMeta {
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) test".into()),
        ip: Some("192.0.2.10".into()),
    };
    let set = request_as(manager, cookie, meta, f).await?;
    Some(cookie_value(&set)).filter(|v| !v.is_empty())
}

/// The hex form PostgreSQL prints a `bytea` in (`\x...`), without the prefix.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_hold_sha256_of_the_id_and_never_the_id() {
    let Some(db) = common::raw().await else {
        return;
    };
    let schema = common::Schema::new("hashed");
    let store = schema.store().await;
    let manager = SessionManager::builder()
        .store(store)
        .build()
        .expect("manager");
    let user = format!("alice-{}", schema.name);

    // Every ID a client was ever given, and the ones still valid.
    let mut issued = Vec::new();
    let anonymous = request(&manager, None, |s| async move {
        s.insert("note", "hello").await.expect("insert");
    })
    .await
    .expect("a new session sets a cookie");
    issued.push(anonymous.clone());

    let before_login = request(&manager, None, |s| async move {
        s.insert("cart", vec![1, 2, 3]).await.expect("insert");
    })
    .await
    .expect("a new session sets a cookie");
    issued.push(before_login.clone());
    let user_for_login = user.clone();
    let logged_in = request(&manager, Some(&before_login), |s| async move {
        s.log_in(user_for_login).await.expect("log in");
    })
    .await
    .expect("log in issues a new ID");
    issued.push(logged_in.clone());
    assert_ne!(logged_in, before_login);

    for _ in 0..3 {
        let again = request(&manager, Some(&logged_in), |s| async move {
            s.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
                .await
                .expect("update");
        })
        .await;
        issued.extend(again);
    }

    let rows = db
        .query(
            &format!(
                "SELECT key, t::text AS whole FROM {} AS t",
                schema.table("latch_sessions")
            ),
            &[],
        )
        .await
        .expect("read the table");
    let live: BTreeSet<String> = [anonymous, logged_in].into();
    let expected_keys: BTreeSet<StoreKey> = live
        .iter()
        .map(|v| SessionId::parse(v).expect("cookie holds an ID").store_key())
        .collect();
    let stored_keys: BTreeSet<StoreKey> = rows
        .iter()
        .map(|row| {
            let key: Vec<u8> = row.get("key");
            StoreKey::from_bytes(key.try_into().expect("32-byte key"))
        })
        .collect();
    assert_eq!(
        stored_keys, expected_keys,
        "one row per live session, keyed by SHA-256 of its ID; the pre-login ID is gone"
    );

    for row in &rows {
        let whole: String = row.get("whole");
        let key: Vec<u8> = row.get("key");
        assert!(whole.contains(&user) || whole.contains("hello"), "{whole}");
        for id in &issued {
            let raw = URL_SAFE_NO_PAD.decode(id).expect("IDs are base64url");
            assert!(
                !whole.contains(id.as_str()),
                "ID in clear in the row: {whole}"
            );
            assert!(
                !whole.contains(&hex(&raw)),
                "raw ID bytes in the row: {whole}"
            );
            assert_ne!(key, raw, "key column is the raw ID");
        }
    }
}

/// T3: with encryption at rest, no row of the sessions table, read as text,
/// holds the session's data, user, user agent or address; without it the
/// same dump shows them (so the check can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t3_an_encrypted_table_holds_no_session_value() {
    let Some(db) = common::raw().await else {
        return;
    };
    let mut found = Vec::new();
    for encrypted in [true, false] {
        let schema = common::Schema::new("sealed");
        let mut builder = SessionManager::builder().store(schema.store().await);
        if encrypted {
            builder = builder.encrypt_at_rest(latch::Keyring::new(latch::SecretKey::generate()));
        }
        let manager = builder.build().expect("manager");
        let user = format!("carol-{}", schema.name);
        let planted = latch_conformance::requests::fill_for_dump(&manager, &user).await;
        let rows = db
            .query(
                &format!(
                    "SELECT t::text AS whole FROM {} AS t",
                    schema.table("latch_sessions")
                ),
                &[],
            )
            .await
            .expect("read the table");
        assert_eq!(rows.len(), 1);
        let whole: String = rows[0].get("whole");
        found.push(
            planted
                .secrets
                .iter()
                .filter(|s| whole.contains(s.as_str()))
                .cloned()
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        found[0].is_empty(),
        "readable in the encrypted table: {:?}",
        found[0]
    );
    assert_eq!(
        found[1].len(),
        4,
        "the plain table shows all four: {:?}",
        found[1]
    );
}
