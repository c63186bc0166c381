//! Session IDs are kept only as their SHA-256: a dump of every key and value
//! the store wrote holds no session ID, and each session's key is named by the
//! hex SHA-256 of the decoded ID.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latch::SessionManager;
use latch_conformance::requests::{cookie_value, request};
use redis::aio::MultiplexedConnection;
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every key under `prefix`, with its value rendered as text.
async fn dump(conn: &mut MultiplexedConnection, prefix: &str) -> Vec<(String, String)> {
    let mut keys: Vec<String> = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut out = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(conn)
            .await
            .unwrap();
        let value: Vec<String> = match kind.as_str() {
            "hash" => redis::cmd("HGETALL")
                .arg(&key)
                .query_async(conn)
                .await
                .unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query_async(conn)
                .await
                .unwrap(),
            "none" => continue, // expired between SCAN and TYPE
            other => panic!("unexpected key type {other} at {key}"),
        };
        out.push((key, value.join("\n")));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_stored_only_as_their_sha256() {
    let prefix = common::unique_prefix("at-rest");
    let Some(store) = common::single_store(&prefix).await else {
        return;
    };
    let manager = SessionManager::builder().store(store).build().unwrap();

    // An anonymous session with data, and a signed-in one (log_in renews the ID).
    let anon = request(&manager, None, |s| async move {
        s.insert("cart", vec!["book"]).await.unwrap();
    })
    .await
    .map(|c| cookie_value(&c))
    .unwrap();
    let before_login = request(&manager, None, |s| async move {
        s.insert("step", 1).await.unwrap();
    })
    .await
    .map(|c| cookie_value(&c))
    .unwrap();
    let user = common::unique_user();
    let signed_in = request(&manager, Some(&before_login), |s| async move {
        s.log_in(user).await.unwrap();
    })
    .await
    .map(|c| cookie_value(&c))
    .unwrap();
    assert_ne!(signed_in, before_login);

    let mut conn = common::raw(&common::redis_url()).await;
    let dump = dump(&mut conn, &prefix).await;
    let everything: String = dump.iter().map(|(k, v)| format!("{k}\n{v}\n")).collect();
    let session_keys: Vec<&str> = dump
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with(&format!("{prefix}s:")))
        .collect();
    assert_eq!(session_keys.len(), 2, "{session_keys:?}");

    for (id, live) in [(&anon, true), (&signed_in, true), (&before_login, false)] {
        let raw = URL_SAFE_NO_PAD.decode(id).unwrap();
        assert_eq!(raw.len(), 32);
        assert!(
            !everything.contains(id.as_str()),
            "session ID stored in clear"
        );
        assert!(
            !everything.contains(&hex(&raw)),
            "raw ID bytes stored as hex"
        );
        let expected = format!("{prefix}s:{}", hex(&Sha256::digest(&raw)));
        assert_eq!(
            session_keys.contains(&expected.as_str()),
            live,
            "key for the SHA-256 of the ID"
        );
    }
    // The user's index names the signed-in session by its hash as well.
    let raw = URL_SAFE_NO_PAD.decode(&signed_in).unwrap();
    let index = dump
        .iter()
        .find(|(k, _)| k.starts_with(&format!("{prefix}u:")))
        .expect("a user index");
    assert!(index.1.contains(&hex(&Sha256::digest(&raw))));
}

/// T3: with encryption at rest, no key or value under the store's prefix
/// holds the session's data, user, user agent or address; without it the same
/// dump shows them (so the check can fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t3_an_encrypted_store_dump_holds_no_session_value() {
    let mut found = Vec::new();
    for encrypted in [true, false] {
        let prefix = common::unique_prefix("sealed");
        let Some(store) = common::single_store(&prefix).await else {
            return;
        };
        let mut builder = SessionManager::builder().store(store);
        if encrypted {
            builder = builder.encrypt_at_rest(latch::Keyring::new(latch::SecretKey::generate()));
        }
        let manager = builder.build().unwrap();
        let planted =
            latch_conformance::requests::fill_for_dump(&manager, &common::unique_user()).await;
        let mut conn = common::raw(&common::redis_url()).await;
        let everything: String = dump(&mut conn, &prefix)
            .await
            .iter()
            .map(|(k, v)| format!("{k}\n{v}\n"))
            .collect();
        assert!(
            everything.contains(&format!("{prefix}s:")),
            "the dump has the session"
        );
        found.push(
            planted
                .secrets
                .iter()
                .filter(|s| everything.contains(s.as_str()))
                .cloned()
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        found[0].is_empty(),
        "readable in the encrypted dump: {:?}",
        found[0]
    );
    assert_eq!(
        found[1].len(),
        4,
        "the plain dump shows all four: {:?}",
        found[1]
    );
}
