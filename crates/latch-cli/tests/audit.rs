//! `latch audit`: the rule table as data, exit codes, JSON shape, HAR input and
//! live URLs against a local server.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::path::Path;

use common::{json, latch, stderr, stdout};
use predicates::prelude::*;
use serde_json::{Value, json};

/// The clean cookie latch itself sends: no finding.
const CLEAN: &str = "__Host-session=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo; Secure; HttpOnly; SameSite=Lax; Path=/";

/// One line of `tests/data/audit_cases.txt`.
#[derive(Debug)]
struct Case {
    line: usize,
    expected: Vec<String>,
    host: Option<String>,
    header: String,
    why: String,
}

fn cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/audit_cases.txt");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let parts: Vec<&str> = l.splitn(4, " | ").collect();
            assert_eq!(parts.len(), 4, "line {}: {l}", i + 1);
            Case {
                line: i + 1,
                expected: match parts[0] {
                    "none" => Vec::new(),
                    ids => ids.split(' ').map(str::to_owned).collect(),
                },
                host: (parts[1] != "-").then(|| parts[1].to_owned()),
                header: parts[2].to_owned(),
                why: parts[3].to_owned(),
            }
        })
        .collect()
}

/// `RULE/severity` of each finding of one cookie in a JSON report.
fn found(cookie: &Value) -> Vec<String> {
    cookie["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}/{}",
                f["rule"].as_str().unwrap(),
                f["severity"].as_str().unwrap()
            )
        })
        .collect()
}

fn audit_json(args: &[&str], stdin: Option<String>) -> (Option<i32>, Value) {
    let mut cmd = latch();
    cmd.arg("audit").arg("--json").args(args);
    if let Some(input) = stdin {
        cmd.write_stdin(input);
    }
    let out = cmd.output().unwrap();
    (out.status.code(), json(&out))
}

fn check_cases(report: &Value, cases: &[&Case]) {
    let cookies = report["cookies"].as_array().unwrap();
    assert_eq!(cookies.len(), cases.len());
    let mut wrong = Vec::new();
    for (case, cookie) in cases.iter().zip(cookies) {
        let got = found(cookie);
        if got != case.expected {
            wrong.push(format!(
                "line {} ({}): expected {:?}, got {:?}\n    {}",
                case.line, case.why, case.expected, got, case.header
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_case_table_is_big_enough_and_covers_every_rule() {
    let cases = cases();
    assert!(cases.len() >= 25, "{}", cases.len());
    let mentioned: std::collections::BTreeSet<String> = cases
        .iter()
        .flat_map(|c| c.expected.iter().map(|e| e[..8].to_owned()))
        .collect();
    let all: Vec<String> = (0..=15).map(|i| format!("LATCH{i:03}")).collect();
    assert_eq!(mentioned.into_iter().collect::<Vec<_>>(), all);
}

#[test]
fn every_case_as_header_lines() {
    let cases = cases();
    let lines: Vec<&Case> = cases.iter().filter(|c| c.host.is_none()).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("headers.txt");
    // Alternate with and without the header name.
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                format!("Set-Cookie: {}\n", c.header)
            } else {
                format!("{}\n", c.header)
            }
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    let (code, report) = audit_json(&["--file", file.to_str().unwrap()], None);
    assert_eq!(code, Some(0));
    check_cases(&report, &lines);
    let first = &report["cookies"][0];
    assert_eq!(first["source"], format!("{}:1", file.display()));
    assert_eq!(first["url"], Value::Null);
}

#[test]
fn every_case_as_a_har_file() {
    let cases = cases();
    let names = ["Set-Cookie", "set-cookie", "SET-COOKIE"];
    let entries: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut entry = json!({
                "response": {"status": 200, "headers": [
                    {"name": "Content-Type", "value": "text/html"},
                    {"name": names[i % 3], "value": c.header},
                ]}
            });
            if let Some(host) = &c.host {
                entry["request"] = json!({"method": "GET", "url": format!("https://{host}/path")});
            }
            entry
        })
        .collect();
    let har = json!({"log": {"version": "1.2", "entries": entries}}).to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.har");
    std::fs::write(&file, &har).unwrap();
    let (code, report) = audit_json(&["--file", file.to_str().unwrap()], None);
    assert_eq!(code, Some(0));
    check_cases(&report, &cases.iter().collect::<Vec<_>>());
    // The same HAR on standard input.
    let (_, from_stdin) = audit_json(&["-"], Some(har));
    check_cases(&from_stdin, &cases.iter().collect::<Vec<_>>());
    assert_eq!(from_stdin["cookies"][0]["source"], "stdin entry 1");
}

#[test]
fn clean_cookie_has_no_finding_and_passes_the_strictest_gate() {
    let out = latch()
        .args(["audit", "--fail-on", "low", "-"])
        .write_stdin(format!("Set-Cookie: {CLEAN}\n"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "__Host-session  (stdin:1)  ok\n\n1 cookie, 0 findings (0 high, 0 medium, 0 low)\n"
    );
}

#[test]
fn fail_on_sets_exit_code_3_at_or_above_the_level() {
    let low_only = "theme=dark; Secure\n"; // LATCH003 low
    let medium = "theme=dark; Secure; SameSite=Lax; Max-Age=40000000\n"; // LATCH012 medium
    let high = "sid=abc\n";
    for (input, level, code) in [
        (low_only, None, 0),
        (low_only, Some("low"), 3),
        (low_only, Some("medium"), 0),
        (medium, Some("low"), 3),
        (medium, Some("medium"), 3),
        (medium, Some("high"), 0),
        (high, Some("high"), 3),
        (high, None, 0),
    ] {
        let mut cmd = latch();
        cmd.arg("audit").arg("-");
        if let Some(level) = level {
            cmd.args(["--fail-on", level]);
        }
        cmd.write_stdin(input).assert().code(code);
    }
}

#[test]
fn json_shape_is_stable_and_values_are_never_printed() {
    let secret_value = "s3cr3tV4lue0123456789abcdefABCDEF";
    let input = format!("Set-Cookie: sid={secret_value}; Path=/; Priority=High\n{CLEAN}\n");
    let out = latch()
        .args(["audit", "--json", "-"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert!(!stdout(&out).contains(secret_value));
    let report = json(&out);
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&report), ["cookies", "errors", "summary", "version"]);
    assert_eq!(report["version"], 1);
    assert_eq!(report["errors"], json!([]));
    let sid = &report["cookies"][0];
    assert_eq!(
        keys(sid),
        [
            "attributes",
            "estimated_bits",
            "findings",
            "lifetime_seconds",
            "name",
            "removal",
            "session_like",
            "source",
            "url",
            "value_bytes"
        ]
    );
    assert_eq!(sid["name"], "sid");
    assert_eq!(sid["source"], "stdin:1");
    assert_eq!(
        sid["attributes"],
        json!([{"name": "Path", "value": "/"}, {"name": "Priority", "value": "High"}])
    );
    assert_eq!(sid["session_like"], true);
    assert_eq!(sid["removal"], false);
    assert_eq!(sid["value_bytes"], secret_value.len());
    assert_eq!(sid["estimated_bits"], 196); // 33 base62 characters
    assert_eq!(sid["lifetime_seconds"], Value::Null);
    let finding = &sid["findings"][0];
    assert_eq!(keys(finding), ["fix", "message", "rule", "severity"]);
    assert_eq!(finding["rule"], "LATCH001");
    assert_eq!(finding["severity"], "high");
    assert_eq!(finding["fix"], "add `Secure`");
    assert_eq!(
        report["summary"],
        json!({"cookies": 2, "findings": 4, "high": 2, "medium": 1, "low": 1})
    );
    assert_eq!(report["cookies"][1]["findings"], json!([]));
}

#[test]
fn har_joined_headers_and_cookie_lists() {
    let har = json!({"log": {"entries": [
        {"request": {"url": "https://shop.example.com/login"},
         "response": {"headers": [
             {"name": "set-cookie", "value": format!("{CLEAN}\ntheme=dark; Secure; SameSite=Lax")}
         ], "cookies": [{"name": "ignored", "value": "because headers are there"}]}},
        {"request": {"url": "https://shop.example.com/next"},
         "response": {"headers": [{"name": "Location", "value": "/"}],
                      "cookies": [{"name": "sid", "value": "0123456789abcdef", "path": "/",
                                   "domain": "example.com", "httpOnly": true, "secure": true,
                                   "sameSite": "Lax", "expires": "2099-01-01T00:00:00.000Z"}]}},
        {"response": {}},
        "not an entry"
    ]}});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("browser.har");
    std::fs::write(&file, har.to_string()).unwrap();
    let (code, report) = audit_json(&["--file", file.to_str().unwrap()], None);
    assert_eq!(code, Some(0));
    let cookies = report["cookies"].as_array().unwrap();
    let names: Vec<&str> = cookies
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["__Host-session", "theme", "sid"]);
    assert_eq!(cookies[0]["url"], "https://shop.example.com/login");
    assert_eq!(cookies[2]["source"], format!("{} entry 2", file.display()));
    assert_eq!(
        found(&cookies[2]),
        [
            "LATCH008/low",
            "LATCH009/medium",
            "LATCH012/medium",
            "LATCH013/medium",
            "LATCH015/high"
        ]
    );
}

#[test]
fn bad_inputs_are_errors_exit_2() {
    latch()
        .arg("audit")
        .assert()
        .code(2)
        .stderr("latch: nothing to audit: give URLs, --file FILE, or - to read standard input\n");
    latch()
        .args(["audit", "cookies.txt"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("use --file cookies.txt"));
    latch()
        .args(["audit", "--file", "/nonexistent/x.txt"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "latch: reading /nonexistent/x.txt: ",
        ));
    let (code, err) = audit_json(&["--file", "/nonexistent/x.txt"], None);
    assert_eq!(code, Some(2));
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("reading /nonexistent/x.txt")
    );
    let (code, err) = audit_json(&["-"], Some("{\"log\": 3}".into()));
    assert_eq!(code, Some(2));
    assert_eq!(
        err["error"],
        "stdin is JSON but not a HAR file: it has no log.entries"
    );
}

#[test]
fn junk_lines_never_panic() {
    let junk = "\u{0}\u{1}\n;;;\n=\n\u{1f512}=\u{1f512}; Max-Age=99999999999999999999999; Expires=\u{1f512}\n\
                a=b; Domain=; Path=; SameSite=; Expires=31 Feb 2020 00:00:00\n";
    let out = latch()
        .args(["audit", "-"])
        .write_stdin(junk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
}

mod live {
    //! Live URLs against a server on 127.0.0.1 started by the test.

    use super::*;
    use axum::Router;
    use axum::http::StatusCode;
    use axum::http::header::{LOCATION, SET_COOKIE};
    use axum::response::AppendHeaders;
    use axum::routing::get;

    /// Serve the test site on a free port; returns its base URL. The server
    /// runs on its own thread until the test process ends.
    fn serve() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app()).await.unwrap();
            });
        });
        base
    }

    fn app() -> Router {
        Router::new()
            .route(
                "/start",
                get(|| async {
                    (
                        StatusCode::FOUND,
                        AppendHeaders([
                            (SET_COOKIE, "hop1=1; Path=/"),
                            (SET_COOKIE, "sid=abc; Path=/"),
                            (LOCATION, "/landing"),
                        ]),
                    )
                }),
            )
            .route(
                "/landing",
                get(|| async {
                    (
                        AppendHeaders([
                            (SET_COOKIE, CLEAN),
                            (
                                SET_COOKIE,
                                "prefs=x; Secure; SameSite=Lax; Domain=example.com",
                            ),
                        ]),
                        "welcome",
                    )
                }),
            )
            .route("/plain", get(|| async { "no cookies here" }))
            .route(
                "/loop",
                get(|| async { (StatusCode::FOUND, [(LOCATION, "/loop")]) }),
            )
    }

    #[test]
    fn redirects_are_followed_and_every_hops_cookies_audited() {
        let base = serve();
        let (code, report) = audit_json(&["--fail-on", "high", &format!("{base}/start")], None);
        assert_eq!(code, Some(3), "{report}");
        let cookies = report["cookies"].as_array().unwrap();
        let seen: Vec<(&str, &str)> = cookies
            .iter()
            .map(|c| (c["name"].as_str().unwrap(), c["source"].as_str().unwrap()))
            .collect();
        let (start, landing) = (format!("{base}/start"), format!("{base}/landing"));
        assert_eq!(
            seen,
            [
                ("hop1", start.as_str()),
                ("sid", start.as_str()),
                ("__Host-session", landing.as_str()),
                ("prefs", landing.as_str()),
            ]
        );
        assert_eq!(cookies[2]["findings"], json!([]));
        // The host is known, so a Domain that does not cover 127.0.0.1 is caught.
        assert_eq!(found(&cookies[3]), ["LATCH011/high"]);
        assert_eq!(cookies[3]["url"], landing);
        assert_eq!(
            found(&cookies[1]),
            [
                "LATCH001/high",
                "LATCH002/high",
                "LATCH003/medium",
                "LATCH008/low",
                "LATCH015/high"
            ]
        );
    }

    #[test]
    fn several_urls_and_failures_exit_2_with_the_others_audited() {
        let base = serve();
        // A port that was free a moment ago: nothing listens there.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/", l.local_addr().unwrap())
        };
        let out = latch()
            .args([
                "audit",
                "--timeout",
                "5",
                &format!("{base}/plain"),
                &closed,
                &format!("{base}/landing"),
            ])
            .args(["--max-redirects", "3", &format!("{base}/loop")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let text = stdout(&out);
        assert!(
            text.contains("__Host-session  (") && text.contains("2 inputs failed"),
            "{text}"
        );
        let err = stderr(&out);
        assert!(
            err.contains(&format!("latch: {closed}: requesting {closed}")),
            "{err}"
        );
        assert!(
            err.contains(&format!("latch: {base}/loop: more than 3 redirects")),
            "{err}"
        );
        // Not a terminal: no progress bar, only the two error lines.
        assert_eq!(err.lines().count(), 2, "{err}");

        let (code, report) = audit_json(&[&closed, &format!("{base}/landing")], None);
        assert_eq!(code, Some(2));
        assert_eq!(report["errors"][0]["source"], closed);
        assert_eq!(report["cookies"].as_array().unwrap().len(), 2);
    }
}
