//! Sign-up, sign-in and sign-out.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use latch::{Clock as _, ErrorKind, SystemClock};
use latch_axum::{ClientIp, Session};
use serde::Deserialize;

use crate::error::AppError;
use crate::html::{Page, credentials_form};
use crate::state::AppState;
use crate::users::{SignupError, normalize};

/// The fields the sign-in and sign-up forms post.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
    remember: Option<String>,
}

async fn form_page(
    session: &Session,
    status: StatusCode,
    title: &str,
    action: &str,
    message: Option<(&str, &str)>,
) -> Result<Response, AppError> {
    let csrf = session.csrf_token().await?;
    let flashes = session.take_flashes().await?;
    let page = Page {
        title,
        user: None,
        csrf: None,
        flashes: &flashes,
    };
    Ok(page.respond(
        status,
        &credentials_form(action, &csrf, action == "/login", message),
    ))
}

/// `GET /signup`.
pub async fn signup_form(session: Session) -> Result<Response, AppError> {
    form_page(
        &session,
        StatusCode::OK,
        "Create an account",
        "/signup",
        None,
    )
    .await
}

/// `POST /signup`: create the user and sign them in.
pub async fn signup(
    State(app): State<Arc<AppState>>,
    ClientIp(client): ClientIp,
    session: Session,
    Form(form): Form<Credentials>,
) -> Result<Response, AppError> {
    let created = if let Err(invalid) = crate::users::validate(&form.username, &form.password) {
        // Refused before any hash, and not counted: counted, a flood of
        // invalid sign-ups from ever new addresses left a counter each
        // (15,000 a second, attack round nine).
        Ok(Err(invalid))
    } else {
        if let Some(wait) = app.limits.sign_up(client).await? {
            return too_many(&session, "Create an account", "/signup", "sign-ups", wait).await;
        }
        app.users
            .create(&form.username, &form.password, client)
            .await
    };
    if created
        .as_ref()
        .is_err_and(|e| e.is::<crate::hashing::Busy>())
    {
        // Not made at all: as for a sign-in the server never checked, it
        // must not count (and a counter per refused request from ever new
        // addresses would pile up).
        app.limits.no_sign_up(client).await?;
    }
    match created? {
        Ok(()) => {
            let account = normalize(&form.username);
            session.log_in(&account).await?;
            session
                .flash("success", "Welcome! Your account is ready.")
                .await?;
            known_from_now_on(&app, &account, Redirect::to("/").into_response())
        }
        Err(SignupError::Taken) => {
            let msg = "That username is taken; choose another.";
            form_page(
                &session,
                StatusCode::CONFLICT,
                "Create an account",
                "/signup",
                Some(("error", msg)),
            )
            .await
        }
        Err(SignupError::Invalid(msg)) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            form_page(
                &session,
                status,
                "Create an account",
                "/signup",
                Some(("error", msg)),
            )
            .await
        }
    }
}

/// The form again with a 429 and `Retry-After`: too many `what` from here.
async fn too_many(
    session: &Session,
    title: &str,
    action: &str,
    what: &str,
    wait: std::time::Duration,
) -> Result<Response, AppError> {
    let msg = format!("Too many {what}. Try again in {} seconds.", wait.as_secs());
    let status = StatusCode::TOO_MANY_REQUESTS;
    let mut page = form_page(session, status, title, action, Some(("error", &msg))).await?;
    page.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
    Ok(page)
}

/// `?bye=1` after sign-out.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    bye: Option<String>,
}

/// `GET /login`.
pub async fn login_form(
    session: Session,
    Query(q): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let note = q.bye.is_some().then_some(("info", "You are signed out."));
    form_page(&session, StatusCode::OK, "Sign in", "/login", note).await
}

/// `POST /login`: count the attempt (A7), check the password, then
/// regenerate the session ID (S3). A failure is a 401 with the form again,
/// saying nothing about which part was wrong; too many attempts are a 429
/// with `Retry-After`, before any password is hashed. A browser the account
/// signed in from before is counted apart from strangers
/// ([`crate::known_browsers`]).
pub async fn login(
    State(app): State<Arc<AppState>>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    session: Session,
    Form(form): Form<Credentials>,
) -> Result<Response, AppError> {
    let account = normalize(&form.username);
    let browser = app
        .known_browsers
        .recognise(&headers, &account, SystemClock.now());
    let browser = browser.as_ref();
    // What can match no account is answered at once, without a counter (a
    // flood of them from ever new addresses would leave one each) or a hash.
    let possible = crate::users::could_sign_in(&account, &form.password);
    if possible {
        if let Some(wait) = app.limits.attempt(&account, client, browser).await? {
            return too_many(&session, "Sign in", "/login", "sign-in attempts", wait).await;
        }
    }
    let verified = if possible {
        app.users.verify(&account, &form.password, client).await
    } else {
        Ok(false)
    };
    if verified
        .as_ref()
        .is_err_and(|e| e.is::<crate::hashing::Busy>())
    {
        // Not checked at all: must not count towards a lockout (a flood that
        // starves the hashers would otherwise lock the victim out).
        app.limits.not_checked(&account, client, browser).await?;
    }
    if !verified? {
        let msg = "Wrong username or password.";
        return form_page(
            &session,
            StatusCode::UNAUTHORIZED,
            "Sign in",
            "/login",
            Some(("error", msg)),
        )
        .await;
    }
    app.limits.succeeded(&account, browser).await?;
    session.log_in(&account).await?;
    end_sessions_past_the_cap(&session).await?;
    session
        .set_remember(form.remember.as_deref() == Some("on"))
        .await?;
    session.flash("success", "Signed in.").await?;
    known_from_now_on(&app, &account, Redirect::to("/").into_response())
}

/// How many sessions one account may have at once. A sign-in beyond that
/// ends the account's sessions used longest ago, so that one account
/// signing in again and again ("remember me" lasts 30 days) cannot fill a
/// bounded store (attack round ten kept 152 on one account).
pub const MAX_SESSIONS_PER_ACCOUNT: usize = 20;

/// End the signed-in account's other sessions used longest ago, leaving
/// room for this one within [`MAX_SESSIONS_PER_ACCOUNT`]. Cookie sessions
/// have no list to bound (and take no room on the server).
async fn end_sessions_past_the_cap(session: &Session) -> Result<(), AppError> {
    let devices = match session.devices().await {
        Ok(list) => list,
        Err(e) if e.kind() == &ErrorKind::InvalidConfig => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let this = session.store_key().await?;
    let mut others: Vec<_> = devices.iter().filter(|d| Some(d.key) != this).collect();
    let Some(over) = (others.len() + 1).checked_sub(MAX_SESSIONS_PER_ACCOUNT) else {
        return Ok(());
    };
    others.sort_by_key(|d| (d.last_seen, d.created_at));
    for oldest in &others[..over] {
        session.revoke_device(&oldest.key).await?;
    }
    Ok(())
}

/// `response` with the cookie that makes this browser known for `account`
/// (signed in just now), renewed on every sign-in.
fn known_from_now_on(
    app: &AppState,
    account: &str,
    mut response: Response,
) -> Result<Response, AppError> {
    let cookie = app.known_browsers.cookie_for(account, SystemClock.now())?;
    let cookie = HeaderValue::try_from(cookie).map_err(anyhow::Error::from)?;
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

/// `POST /logout`: delete the session and expire the cookie (E2).
pub async fn logout(session: Session) -> Result<Response, AppError> {
    session.destroy().await?;
    Ok(Redirect::to("/login?bye=1").into_response())
}
