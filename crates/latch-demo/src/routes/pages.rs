//! Home, profile and devices.

use std::fmt::Write as _;

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use latch::{ErrorKind, StoreKey};
use latch_axum::Session;
use serde::Deserialize;

use crate::error::AppError;
use crate::html::{Page, escape, time};
use crate::state::AppState;

/// The signed-in user, or a redirect to the sign-in page.
async fn require_user(session: &Session) -> Result<Result<String, Response>, AppError> {
    Ok(match session.user_id().await? {
        Some(user) => Ok(user),
        None => Err(Redirect::to("/login").into_response()),
    })
}

/// Render a signed-in page.
async fn signed_in_page(
    session: &Session,
    user: &str,
    title: &str,
    body: &str,
) -> Result<Response, AppError> {
    let csrf = session.csrf_token().await?;
    let flashes = session.take_flashes().await?;
    let page = Page {
        title,
        user: Some(user),
        csrf: Some(&csrf),
        flashes: &flashes,
    };
    Ok(page.respond(StatusCode::OK, body))
}

/// `GET /`.
pub async fn home(session: Session) -> Result<Response, AppError> {
    let Some(user) = session.user_id().await? else {
        let flashes = session.take_flashes().await?;
        let page = Page {
            title: "latch demo",
            user: None,
            csrf: None,
            flashes: &flashes,
        };
        let body = "<p>A small site on <b>latch</b> sessions. <a href=\"/signup\">Create an account</a> \
                    or <a href=\"/login\">sign in</a>.</p>";
        return Ok(page.respond(StatusCode::OK, body));
    };
    let body = format!(
        "<p>Hello, <b>{}</b>. You are signed in.</p>\
         <p>See your <a href=\"/profile\">session</a> or your <a href=\"/devices\">devices</a>.</p>",
        escape(&user)
    );
    signed_in_page(&session, &user, "Home", &body).await
}

/// `GET /profile`: the session's facts.
pub async fn profile(session: Session) -> Result<Response, AppError> {
    let user = match require_user(&session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let f = session.facts().await?;
    let body = format!(
        "<table><tr><th>User</th><td>{}</td></tr>\
         <tr><th>Created</th><td id=\"created\">{}</td></tr>\
         <tr><th>Last seen</th><td id=\"last-seen\">{}</td></tr>\
         <tr><th>Expires if idle</th><td id=\"idle-expiry\">{}</td></tr>\
         <tr><th>Expires at the latest</th><td id=\"absolute-expiry\">{}</td></tr>\
         <tr><th>Remembered on this device</th><td id=\"remember\">{}</td></tr></table>",
        escape(&user),
        time(f.created_at),
        time(f.last_seen),
        time(f.idle_expires_at),
        time(f.absolute_expires_at),
        if f.remember { "yes" } else { "no" }
    );
    signed_in_page(&session, &user, "Your session", &body).await
}

/// Shorten a user agent to something a person recognises.
fn browser(user_agent: Option<&str>) -> &str {
    let ua = user_agent.unwrap_or("");
    ["Edg/", "Firefox/", "Chrome/", "Safari/", "curl/"]
        .iter()
        .find(|marker| ua.contains(*marker))
        .map(|m| m.trim_end_matches('/'))
        .map_or(if ua.is_empty() { "unknown" } else { "other" }, |m| {
            if m == "Edg" { "Edge" } else { m }
        })
}

/// `GET /devices`: the user's live sessions with a revoke button each.
pub async fn devices(session: Session) -> Result<Response, AppError> {
    let user = match require_user(&session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let devices = match session.devices().await {
        Ok(list) => list,
        Err(e) if e.kind() == &ErrorKind::InvalidConfig => {
            let csrf = session.csrf_token().await?;
            let body = format!(
                "<p>This server keeps sessions in cookies, so it has no list of devices \
                 (run it with a server-side store to see one). You can still end every \
                 other session.</p>\
                 <form method=\"post\" action=\"/devices/revoke-others\">\
                 <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
                 <p><button type=\"submit\">Sign out everywhere else</button></p></form>",
                escape(&csrf)
            );
            return signed_in_page(&session, &user, "Your devices", &body).await;
        }
        Err(e) => return Err(e.into()),
    };
    let this = session.store_key().await?;
    let csrf = session.csrf_token().await?;
    let mut rows = String::new();
    for d in &devices {
        let is_this = Some(d.key) == this;
        let action = if is_this {
            "<span class=\"this\">this device</span>".to_owned()
        } else {
            format!(
                "<form class=\"inline\" method=\"post\" action=\"/devices/revoke\">\
                 <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
                 <input type=\"hidden\" name=\"key\" value=\"{}\">\
                 <button type=\"submit\">Revoke</button></form>",
                escape(&csrf),
                d.key.to_hex()
            )
        };
        let _ = write!(
            rows,
            "<tr class=\"device\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"bound\">{}</td><td>{action}</td></tr>",
            escape(browser(d.user_agent.as_deref())),
            escape(d.ip.as_deref().unwrap_or("unknown")),
            time(d.created_at),
            time(d.last_seen),
            d.device_proved_at.map_or_else(
                || "no".to_owned(),
                |at| format!("yes, key proved {}", time(at))
            ),
        );
    }
    let body = format!(
        "<table><tr><th>Browser</th><th>Address</th><th>Signed in</th><th>Last seen</th><th title=\"Device-bound (DBSC): a copied cookie stops working on any other machine\">Device-bound</th><th></th></tr>{rows}</table>\
         <form method=\"post\" action=\"/devices/revoke-others\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
         <p><button type=\"submit\">Sign out everywhere else</button></p></form>",
        escape(&csrf)
    );
    signed_in_page(&session, &user, "Your devices", &body).await
}

/// The revoke form.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    key: String,
}

/// `POST /devices/revoke`: end one of the user's other sessions.
pub async fn revoke_device(
    State(app): State<Arc<AppState>>,
    session: Session,
    Form(form): Form<RevokeForm>,
) -> Result<Response, AppError> {
    if session.user_id().await?.is_none() {
        return Ok(Redirect::to("/login").into_response());
    }
    let revoked = match StoreKey::from_hex(&form.key) {
        // A cookie store keeps no list of a user's sessions: the devices page
        // shows only this one, so no key names another device.
        Some(key) if app.manager.store().is_some() => session.revoke_device(&key).await?,
        _ => false,
    };
    let msg = if revoked {
        "That device is signed out."
    } else {
        "No such device."
    };
    session
        .flash(if revoked { "success" } else { "error" }, msg)
        .await?;
    Ok(Redirect::to("/devices").into_response())
}

/// `POST /devices/revoke-others`: end every other session of the user.
pub async fn revoke_others(
    State(app): State<Arc<AppState>>,
    session: Session,
) -> Result<Response, AppError> {
    if session.user_id().await?.is_none() {
        return Ok(Redirect::to("/login").into_response());
    }
    let n = session.sign_out_everywhere_else().await?;
    let msg = if app.manager.store().is_none() {
        "Every other session is signed out.".to_owned()
    } else {
        format!(
            "Signed out {n} other session{}.",
            if n == 1 { "" } else { "s" }
        )
    };
    session.flash("success", &msg).await?;
    Ok(Redirect::to("/devices").into_response())
}

#[cfg(test)]
mod tests {
    use super::browser;

    #[test]
    fn browsers_are_named() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
        assert_eq!(browser(Some(chrome)), "Chrome");
        assert_eq!(browser(Some("Mozilla/5.0 Firefox/130.0")), "Firefox");
        assert_eq!(browser(None), "unknown");
        assert_eq!(browser(Some("x")), "other");
    }
}
