//! The JSON API that tests and benchmarks use.

use std::collections::BTreeMap;

use axum::Json;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use latch_axum::{ClientIp, Session};
use serde::Deserialize;
use serde_json::json;

use crate::error::AppError;
use crate::state::AppState;

/// The session key holding the scratch map.
const SCRATCH: &str = "scratch";

/// The most one session's scratch map holds, in bytes of its JSON: half the
/// session layer's 64 KiB record limit, so what one anonymous client can
/// make the store keep is bounded (A6) with room to spare.
pub const MAX_SCRATCH_BYTES: usize = 32 * 1024;

/// The largest body `PUT /api/scratch/{key}` reads: a 1 KiB value written
/// with six-byte escapes, and room for the JSON around it (attack round 4:
/// a megabyte was buffered to be refused).
pub const MAX_PUT_BODY_BYTES: usize = 8 * 1024;

/// The limit when sessions live in the cookie itself: a browser keeps at
/// most about 4 KiB per cookie, and signing or encryption, base64 and the
/// session's own fields take their share, so the map gets a quarter of it.
/// (A larger map would make latch refuse the cookie at the end of the
/// request, a 500, as the third outside attack showed.)
pub const MAX_SCRATCH_COOKIE_BYTES: usize = 1024;

/// The map's size as stored: its JSON, where a control character takes six
/// bytes (`\u0001`), not one.
fn scratch_bytes(map: &BTreeMap<String, String>) -> usize {
    serde_json::to_vec(map).map_or(usize::MAX, |json| json.len())
}

/// `GET /api/me`: the user and the session's times, or 401.
pub async fn me(session: Session) -> Result<Response, AppError> {
    let Some(user) = session.user_id().await? else {
        return Ok((
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "not signed in"})),
        )
            .into_response());
    };
    let facts = session.facts().await?;
    Ok(Json(json!({"user": user, "session": facts})).into_response())
}

/// `GET /api/scratch`: the session's scratch map.
pub async fn scratch(session: Session) -> Result<Response, AppError> {
    let map: BTreeMap<String, String> = session.get(SCRATCH).await?.unwrap_or_default();
    Ok(Json(map).into_response())
}

/// The body of `PUT /api/scratch/{key}`.
#[derive(Debug, Deserialize)]
pub struct ScratchValue {
    value: String,
}

/// `PUT /api/scratch/{key}`: set one entry, creating the session if needed.
///
/// Cross-site requests are refused by their Origin/Sec-Fetch-Site, and the
/// JSON content type (which `Json` requires) cannot be sent cross-site without
/// a CORS preflight this server never grants.
pub async fn put_scratch(
    State(app): State<Arc<AppState>>,
    ClientIp(client): ClientIp,
    session: Session,
    Path(key): Path<String>,
    Json(body): Json<ScratchValue>,
) -> Result<Response, AppError> {
    if key.is_empty() || key.len() > 64 || body.value.len() > 1024 {
        let msg = json!({"error": "keys are 1 to 64 bytes and values at most 1024 bytes"});
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(msg)).into_response());
    }
    // A write without a session makes one: how many one client may make is
    // bounded, or an anonymous flood fills the store (A6).
    let is_new = session.facts().await?.is_new;
    if is_new {
        if let Some(wait) = app.limits.new_session(client).await? {
            let msg = json!({"error": "too many new sessions from this address; try again later"});
            let mut res = (StatusCode::TOO_MANY_REQUESTS, Json(msg)).into_response();
            res.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from(wait.as_secs()),
            );
            return Ok(res);
        }
    }
    let limit = if app.manager.store().is_some() {
        MAX_SCRATCH_BYTES
    } else {
        MAX_SCRATCH_COOKIE_BYTES
    };
    // `try_update` re-applies on a concurrent save, so parallel PUTs of
    // different keys all land; the size limit is checked inside it, so it
    // holds on the merged map too, and a write the merged map has no room
    // for fails (409) instead of being acknowledged and dropped.
    let stored = session
        .try_update(SCRATCH, move |map: Option<BTreeMap<String, String>>| {
            let mut map = map.unwrap_or_default();
            map.insert(key.clone(), body.value.clone());
            (scratch_bytes(&map) <= limit).then_some(map)
        })
        .await;
    if let Err(err) = &stored {
        if err.kind() == &latch::ErrorKind::UpdateRefused {
            let msg = json!({"error": format!("the scratch map holds at most {limit} bytes of keys and values")});
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(msg)).into_response());
        }
    }
    stored?;
    if is_new {
        // Made here, not after the handler, so that a session the store
        // refuses (full, or down) is not counted against the client: counted
        // anyway, a flood from ever new addresses left a counter per refused
        // request behind (attack round nine).
        if let Err(err) = session.save().await {
            app.limits.no_new_session(client).await?;
            return Err(err.into());
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
