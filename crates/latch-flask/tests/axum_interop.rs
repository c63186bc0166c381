//! An axum handler behind `latch_axum::SessionLayer` shares sessions with the
//! real Flask: it reads what Flask wrote, and Flask reads what it wrote.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use common::{
    KEY, NOW, cookie_value, flask, flask_cookie, flask_reads, python, redis_url, unique_prefix,
};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use latch::{CookieConfig, ManualClock, SessionManager};
use latch_axum::{Session, SessionError, SessionLayer};
use latch_flask::tagged::{Bytes, FlaskValue, Tuple};
use latch_flask::{FlaskCookieFormat, FlaskSessionIds, FlaskSessionStore, flask_expiry};
use serde_json::json;
use tower::ServiceExt;

const MAX_AGE: u64 = 3600;

/// Reads the user and the cart Flask stored, adds an item and a bytes value.
async fn add_to_cart(session: Session) -> Result<String, SessionError> {
    let user = session
        .user_id()
        .await?
        .unwrap_or_else(|| "anonymous".into());
    // Flask's cookie keeps the tuple; Flask-Session's msgpack turns it into a list.
    let mut cart: Vec<i64> = match session.get::<FlaskValue>("cart").await? {
        Some(FlaskValue::Tuple(items) | FlaskValue::List(items)) => items
            .iter()
            .filter_map(|v| match v {
                FlaskValue::Int(i) => i64::try_from(*i).ok(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    cart.push(3);
    session.insert("cart", Tuple(cart.clone())).await?;
    session.insert("token", Bytes(vec![0, 1, 2])).await?;
    Ok(format!("{user}: {cart:?}"))
}

fn app(manager: SessionManager) -> Router {
    Router::new()
        .route("/cart", post(add_to_cart))
        .layer(SessionLayer::new(manager))
}

async fn call(app: Router, cookie: &str) -> (String, String) {
    let response = app
        .oneshot(
            Request::post("/cart")
                .header(header::COOKIE, format!("session={cookie}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (String::from_utf8(body.to_vec()).unwrap(), set_cookie)
}

#[tokio::test]
async fn handler_shares_flask_cookie_sessions() {
    let Some(py) = python() else { return };
    let cookie = flask_cookie(
        &py,
        KEY,
        NOW,
        &json!({"_user_id": "alice", "_permanent": true, "cart": {" t": [1, 2]}}),
    );
    let clock = ManualClock::new(NOW + 10);
    let manager = FlaskCookieFormat::new(KEY)
        .unwrap()
        .max_age(Duration::from_secs(MAX_AGE))
        .clock(clock.clone())
        .configure(SessionManager::builder())
        .unwrap()
        .clock(clock)
        .cookie(CookieConfig::builder().name("session").build().unwrap())
        .build()
        .unwrap();
    let (body, set_cookie) = call(app(manager), &cookie).await;
    assert_eq!(body, "alice: [1, 2, 3]");
    assert!(
        set_cookie.contains("Max-Age="),
        "permanent: a persistent cookie"
    );
    let seen = flask_reads(&py, KEY, NOW + 10, MAX_AGE, &cookie_value(&set_cookie));
    assert_eq!(
        seen["data"],
        json!({"_user_id": "alice", "_permanent": true, "cart": {" t": [1, 2, 3]},
               "token": {" b": "AAEC"}})
    );
    assert_eq!(seen["repr"]["cart"], "(1, 2, 3)");
    assert_eq!(seen["repr"]["token"], "b'\\x00\\x01\\x02'");
}

#[tokio::test]
async fn handler_shares_flask_session_redis_sessions() {
    let Some(py) = python() else { return };
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("axum");
    let request = json!({"redis_url": url, "prefix": prefix, "secret_key": KEY,
                         "use_signer": true, "format": "msgpack", "lifetime": MAX_AGE});
    let mut make = request.clone();
    make["data"] = json!({"_user_id": "bob", "cart": {" t": [7]}});
    let cookie = flask(&py, "make-redis-session", make)["cookie"]
        .as_str()
        .unwrap()
        .to_owned();
    let store = FlaskSessionStore::builder()
        .key_prefix(&prefix)
        .lifetime(Duration::from_secs(MAX_AGE))
        .connect(&url)
        .await
        .unwrap();
    let manager = SessionManager::builder()
        .store(store)
        .id_format(FlaskSessionIds::signed(KEY))
        .expiry(flask_expiry(Duration::from_secs(MAX_AGE)).unwrap())
        .cookie(CookieConfig::builder().name("session").build().unwrap())
        .build()
        .unwrap();
    let (body, set_cookie) = call(app(manager), &cookie).await;
    assert_eq!(body, "bob: [7, 3]");
    assert_eq!(cookie_value(&set_cookie), cookie, "same signed sid");
    let mut read = request;
    read["cookie"] = json!(cookie);
    let seen = flask(&py, "read-redis-session", read);
    assert_eq!(seen["data"]["_user_id"], "bob");
    assert_eq!(seen["data"]["cart"], json!([7, 3]));
    assert_eq!(seen["repr"]["token"], "b'\\x00\\x01\\x02'");
}
