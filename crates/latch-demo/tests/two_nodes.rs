//! Two demo processes sharing one Redis: a session made on one works on the
//! other, and a revoke on one is refused by the other on the next request;
//! with and without the Redis read cache (`--redis-read-cache`).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode, redirect};

struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(redis: &str, data: &Path, extra: &[&str]) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latch-demo"))
        .args(["--listen", "127.0.0.1:0", "--store", redis, "--data-dir"])
        .arg(data)
        .args(extra)
        .env_remove("LATCH_SECRET_KEY")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut base = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("serving ").nth(1) {
            base = Some(rest.split_whitespace().next().unwrap().to_owned());
            break;
        }
    }
    Node {
        child,
        base: base.expect("node started"),
    }
}

/// One browser's cookies (the session's, and the pre-session CSRF cookie of
/// a form), carried by hand so they can be replayed on either node.
#[derive(Default)]
struct Browser {
    jar: std::collections::BTreeMap<String, String>,
    cookie: Option<String>,
}

impl Browser {
    fn keep(&mut self, res: &reqwest::Response) {
        for set in res.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        self.cookie = (!self.jar.is_empty()).then(|| {
            self.jar
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
    }

    async fn get(&mut self, http: &Client, url: &str) -> (StatusCode, String) {
        let mut req = http.get(url);
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        let res = req.send().await.unwrap();
        self.keep(&res);
        (res.status(), res.text().await.unwrap())
    }

    async fn post(
        &mut self,
        http: &Client,
        url: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
            .collect::<Vec<_>>()
            .join("&");
        let mut req = http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c);
        }
        let res = req.send().await.unwrap();
        self.keep(&res);
        let location = res
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (res.status(), location)
    }

    async fn form(
        &mut self,
        http: &Client,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> StatusCode {
        let (_, body) = self.get(http, page).await;
        let marker = "name=\"csrf_token\" value=\"";
        let start = body.find(marker).unwrap() + marker.len();
        let token = body[start..].split('"').next().unwrap().to_owned();
        let mut all = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post(http, action, &all).await.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_sessions_through_redis() {
    share_sessions("plain", &[]).await;
}

/// The same with both nodes caching sessions: node two must not serve the
/// revoked phone session from its cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_caching_nodes_share_sessions_and_revocations() {
    share_sessions("cached", &["--redis-read-cache"]).await;
}

async fn share_sessions(tag: &str, extra: &[&str]) {
    let redis =
        std::env::var("LATCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    if let Err(e) =
        std::net::TcpStream::connect(redis.trim_start_matches("redis://").trim_end_matches('/'))
    {
        latch_conformance::skip_or_fail::<()>("Redis", &e.to_string());
        return;
    }
    let data: PathBuf =
        std::env::temp_dir().join(format!("latch-two-nodes-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    // Both nodes share the users database (SQLite, WAL) and the Redis store.
    let one = start(&redis, &data, extra);
    let two = start(&redis, &data, extra);
    let http = Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let user = format!(
        "node{}",
        &latch::SessionId::generate().store_key().to_hex()[..10]
    );
    let creds = [("username", user.as_str()), ("password", "correct horse")];

    let mut laptop = Browser::default();
    let signup = laptop
        .form(
            &http,
            &format!("{}/signup", one.base),
            &format!("{}/signup", one.base),
            &creds,
        )
        .await;
    assert_eq!(signup, StatusCode::SEE_OTHER);
    let (status, me) = laptop.get(&http, &format!("{}/api/me", two.base)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "session made on node one unknown to node two"
    );
    assert!(me.contains(&user));

    let mut phone = Browser::default();
    let login = phone
        .form(
            &http,
            &format!("{}/login", two.base),
            &format!("{}/login", two.base),
            &creds,
        )
        .await;
    assert_eq!(login, StatusCode::SEE_OTHER);
    assert_eq!(
        phone.get(&http, &format!("{}/api/me", one.base)).await.0,
        StatusCode::OK
    );
    // Node two has read (and, caching, keeps) the phone's session.
    assert_eq!(
        phone.get(&http, &format!("{}/api/me", two.base)).await.0,
        StatusCode::OK
    );

    // Node one revokes every other session; node two refuses the phone next time.
    let revoke = laptop
        .form(
            &http,
            &format!("{}/devices", one.base),
            &format!("{}/devices/revoke-others", one.base),
            &[],
        )
        .await;
    assert_eq!(revoke, StatusCode::SEE_OTHER);
    assert_eq!(
        phone.get(&http, &format!("{}/api/me", two.base)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        laptop.get(&http, &format!("{}/api/me", two.base)).await.0,
        StatusCode::OK
    );
    drop((one, two));
    let _ = std::fs::remove_dir_all(&data);
}
