//! The floor of a server-side session: hand-written handlers that call a
//! latch store themselves, so a configuration's cost splits into what its
//! store must do and what latch's session engine adds on top.
//!
//! The handlers do only what latch must for the counter, with the same
//! guarantees: find `__Host-session` in the `Cookie` header, parse the ID,
//! hash it to the store key, load the record (with the store's indexes and
//! expiry as the store keeps them), check its deadline; to write, add one to
//! `n` and save with the store's compare-and-swap, reloading and redoing the
//! change on a conflict (no update is lost); to start a session, draw an ID
//! and create the record. They answer with the same headers latch sends
//! (`Vary: Cookie`; a new session's `Set-Cookie` and `Cache-Control:
//! no-store`). Nothing a library adds: no layer, no session object, no
//! request state, no group commit, no timers. A yardstick, not an
//! application.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use latch::{Expiry, Record, SaveOutcome, SessionId, SessionStore, StoreKey};

use super::floor::{NAME, TAIL, now, session_cookie};

/// What the handlers share: the store and the expiry policy latch's
/// configurations run under.
struct Floor {
    store: Arc<dyn SessionStore>,
    expiry: Expiry,
}

/// The floor over `store`.
pub fn router(store: Arc<dyn SessionStore>) -> Router {
    Router::new()
        .route("/rw", get(read_write))
        .route("/ro", get(read_only))
        .route("/none", get(|| async { "ok" }))
        .with_state(Arc::new(Floor {
            store,
            expiry: super::latch::long_expiry(),
        }))
}

/// The store key of the session cookie in `headers`, if it holds a valid ID.
fn cookie_key(headers: &HeaderMap) -> Option<StoreKey> {
    Some(SessionId::parse(session_cookie(headers)?)?.store_key())
}

fn counter(record: &Record) -> u64 {
    record
        .data
        .get("n")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

fn unavailable() -> Response {
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

fn with_vary(body: String) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("Cookie"));
    response
}

impl Floor {
    /// The live record under `key`.
    async fn load(&self, key: &StoreKey, now: i64) -> Result<Option<Arc<Record>>, Response> {
        let record = self
            .store
            .load_shared(key)
            .await
            .map_err(|_| unavailable())?;
        Ok(record.filter(|r| !r.is_expired(now, &self.expiry)))
    }

    /// Start a session holding `n = 1`.
    async fn create(&self, now: i64) -> Response {
        let mut record = Record::new(now);
        record.data.insert("n".to_owned(), 1.into());
        record.expires_at = record.deadline(&self.expiry);
        record.version = 1;
        let record = Arc::new(record);
        let id = SessionId::generate();
        match self.store.create_shared(&id.store_key(), &record).await {
            Ok(true) => {}
            // A taken 256-bit ID means a broken random source: refuse.
            Ok(false) | Err(_) => return unavailable(),
        }
        let mut response = with_vary("1".to_owned());
        let headers = response.headers_mut();
        let cookie = format!("{NAME}={}{TAIL}", id.encode());
        headers.insert(
            SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("base64url and fixed attributes"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

async fn read_write(State(floor): State<Arc<Floor>>, headers: HeaderMap) -> Response {
    let now = now();
    let Some(key) = cookie_key(&headers) else {
        return floor.create(now).await;
    };
    let mut loaded = match floor.load(&key, now).await {
        Ok(Some(record)) => record,
        Ok(None) => return floor.create(now).await,
        Err(response) => return response,
    };
    // Compare-and-swap, redone on the newest record after a conflict.
    loop {
        let mut next = Record::clone(&loaded);
        let n = counter(&next) + 1;
        next.data.insert("n".to_owned(), n.into());
        next.version = loaded.version + 1;
        next.last_seen = now;
        next.expires_at = next.deadline(&floor.expiry);
        match floor
            .store
            .save_shared(&key, &Arc::new(next), loaded.version)
            .await
        {
            Ok(SaveOutcome::Saved) => return with_vary(n.to_string()),
            Ok(SaveOutcome::Gone) => return floor.create(now).await,
            Ok(SaveOutcome::Conflict) => {}
            Err(_) => return unavailable(),
        }
        loaded = match floor.load(&key, now).await {
            Ok(Some(record)) => record,
            Ok(None) => return floor.create(now).await,
            Err(response) => return response,
        };
    }
}

async fn read_only(State(floor): State<Arc<Floor>>, headers: HeaderMap) -> Response {
    let now = now();
    let record = match cookie_key(&headers) {
        Some(key) => match floor.load(&key, now).await {
            Ok(record) => record,
            Err(response) => return response,
        },
        None => None,
    };
    with_vary(record.map_or(0, |r| counter(&r)).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::COOKIE;
    use tower::ServiceExt as _;

    async fn get(
        app: &Router,
        path: &str,
        cookie: Option<&str>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = axum::http::Request::get(path);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        let res = app
            .clone()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        let body = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn counts_per_session_and_starts_one_for_an_unknown_cookie() {
        let store: Arc<dyn SessionStore> = Arc::new(latch::MemoryStore::new());
        let app = router(Arc::clone(&store));
        let (_, headers, body) = get(&app, "/rw", None).await;
        assert_eq!(body, "1");
        let set = headers[SET_COOKIE].to_str().unwrap();
        assert!(set.ends_with(TAIL), "{set}");
        let cookie = set.split(';').next().unwrap().to_owned();
        assert_eq!(get(&app, "/rw", Some(&cookie)).await.2, "2");
        let (_, headers, body) = get(&app, "/ro", Some(&cookie)).await;
        assert_eq!(body, "2");
        assert!(headers.get(SET_COOKIE).is_none());
        // A forged ID names no session: a fresh one starts.
        let forged = format!("{NAME}={}", SessionId::generate().encode());
        assert_eq!(get(&app, "/ro", Some(&forged)).await.2, "0");
        assert_eq!(get(&app, "/rw", Some(&forged)).await.2, "1");
        assert_eq!(
            store
                .as_ref()
                .load(&cookie_key_of(&cookie))
                .await
                .unwrap()
                .unwrap()
                .version,
            2
        );
    }

    fn cookie_key_of(cookie: &str) -> StoreKey {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
        cookie_key(&headers).unwrap()
    }
}
