//! One request's session cycle without HTTP: start, let the test use the
//! session, finish; and reading cookie values back out of `Set-Cookie`.

use latch::{RequestMeta, SessionManager};

/// The value of a `Set-Cookie` header value (empty for a removal cookie).
pub fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    pair.split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// Run one request through `manager` carrying the session cookie value
/// `cookie`, letting `f` use the session; returns the `Set-Cookie`, if any.
///
/// # Panics
/// When `finish` fails (tests want that loud).
pub async fn request<F, Fut>(manager: &SessionManager, cookie: Option<&str>, f: F) -> Option<String>
where
    F: FnOnce(latch::Session) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    request_as(manager, cookie, RequestMeta::default(), f).await
}

/// [`request`] from a client that says `meta` about itself.
///
/// # Panics
/// When `finish` fails.
pub async fn request_as<F, Fut>(
    manager: &SessionManager,
    cookie: Option<&str>,
    meta: RequestMeta,
    f: F,
) -> Option<String>
where
    F: FnOnce(latch::Session) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let header = cookie.map(|c| format!("{}={c}", manager.cookie_config().name()));
    let session = manager.start(header.as_deref(), meta);
    f(session.clone()).await;
    // OK because a failing finish is a failing test.
    manager.finish(&session).await.expect("finish").set_cookie
}

/// T3: what [`fill_for_dump`] stored, none of which may show in a dump of an
/// encrypted store.
#[derive(Debug, Clone)]
pub struct Planted {
    /// Every value a reader of the store must not find, in clear.
    pub secrets: Vec<String>,
    /// The signed-in session's cookie value (it must still load).
    pub cookie: String,
}

/// Sign `user` in from a recognisable browser and address, and store a
/// recognisable value in the session: the scenario of the encryption-at-rest
/// dump tests.
///
/// # Panics
/// When a request fails.
pub async fn fill_for_dump(manager: &SessionManager, user: &str) -> Planted {
    let card = format!("card-4111-1111-{}", &user[user.len().saturating_sub(6)..]);
    let agent = "Mozilla/5.0 (X11; Linux x86_64) DumpCheck/1.0".to_owned();
    let ip = "198.51.100.77".to_owned();
    let meta = RequestMeta {
        user_agent: Some(agent.clone()),
        ip: Some(ip.clone()),
    };
    let (user_owned, card_owned) = (user.to_owned(), card.clone());
    let set = request_as(manager, None, meta, |s| async move {
        s.insert("card", card_owned).await.expect("insert");
        s.log_in(user_owned).await.expect("log in");
    })
    .await
    .expect("a new session sets a cookie");
    let cookie = cookie_value(&set);
    // Still readable through the manager.
    let check = card.clone();
    request(manager, Some(&cookie), |s| async move {
        assert_eq!(s.get::<String>("card").await.expect("get"), Some(check));
    })
    .await;
    Planted {
        secrets: vec![card, user.to_owned(), agent, ip],
        cookie,
    }
}
