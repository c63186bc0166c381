//! The JSON API that tests and benchmarks use.

use std::collections::BTreeMap;

use axum::Json;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use latch_axum::Session;
use serde::Deserialize;
use serde_json::json;

use crate::app::{AppError, AppState};

/// The session key holding the scratch map.
const SCRATCH: &str = "scratch";

/// The most entries one session's scratch map holds. With keys of at most 64
/// bytes and values of at most 1024, a full map is about 35 KiB: within the
/// session layer's 64 KiB record limit, so what one anonymous client can make
/// the store keep is bounded (A6).
pub const MAX_SCRATCH_ENTRIES: usize = 32;

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
    session: Session,
    method: Method,
    headers: HeaderMap,
    Path(key): Path<String>,
    Json(body): Json<ScratchValue>,
) -> Result<Response, AppError> {
    latch_axum::csrf::check_origin_with_scheme(&method, None, &headers, app.scheme)?;
    if key.is_empty() || key.len() > 64 || body.value.len() > 1024 {
        let msg = json!({"error": "keys are 1 to 64 bytes and values at most 1024 bytes"});
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(msg)).into_response());
    }
    let key_for_check = key.clone();
    // `update` re-applies on a concurrent save, so parallel PUTs of different
    // keys all land; the entry limit is applied inside it, so it holds on the
    // merged map too. A full map is left as it is and the request refused.
    let stored = session
        .update(SCRATCH, move |map: Option<BTreeMap<String, String>>| {
            let mut map = map.unwrap_or_default();
            if map.contains_key(&key) || map.len() < MAX_SCRATCH_ENTRIES {
                map.insert(key.clone(), body.value.clone());
            }
            map
        })
        .await?;
    if !stored.contains_key(&key_for_check) {
        let msg = json!({"error": format!("the scratch map holds at most {MAX_SCRATCH_ENTRIES} entries")});
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(msg)).into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
