//! A session's in-request state: what was loaded and what the handler changed.

use std::sync::Arc;

use serde_json::Value;

use crate::cookie::IncomingCookie;
use crate::error::Result;
use crate::id::{SessionId, StoreKey};
use crate::manager::RawRequest;
use crate::record::Record;

/// A closure for [`Session::update`](super::Session::update), kept so it can be
/// re-applied to the latest stored value when a save conflicts.
pub(crate) type UpdateFn = Arc<dyn Fn(Option<&Value>) -> Result<Value> + Send + Sync>;

/// One change a handler made, replayable on top of a newer record.
#[derive(Clone)]
pub(crate) enum Op {
    Insert(String, Value),
    Remove(String),
    Clear,
    Update(String, UpdateFn),
    SetUser(Option<String>),
    SetRemember(bool),
}

impl Op {
    /// Apply this change to `record`.
    pub(crate) fn apply(&self, record: &mut Record) -> Result<()> {
        match self {
            Op::Insert(k, v) => {
                record.data.insert(k.clone(), v.clone());
            }
            Op::Remove(k) => {
                record.data.remove(k);
            }
            // latch's own entries stay: a cookie session's ID and issue time
            // must survive, or a copy from before the `clear` would outlive
            // the next logout.
            Op::Clear => record
                .data
                .retain(|k, _| k.starts_with(super::RESERVED_PREFIX)),
            Op::Update(k, f) => {
                let new = f(record.data.get(k))?;
                record.data.insert(k.clone(), new);
            }
            Op::SetUser(user) => record.user_id.clone_from(user),
            Op::SetRemember(r) => record.remember = *r,
        }
        Ok(())
    }
}

/// Where the session came from.
#[derive(Debug)]
pub(crate) enum Origin {
    /// No valid session arrived: a fresh one, not yet stored anywhere.
    Fresh,
    /// Decoded from a valid signed/sealed cookie.
    Cookie,
    /// Loaded from the store.
    Stored { id: SessionId, key: StoreKey },
}

/// Everything the session knows during one request.
pub(crate) struct State {
    /// The request's headers, not yet parsed ([`SessionManager::start_raw`]);
    /// read on first use instead of `incoming`, `user_agent` and `ip`.
    ///
    /// [`SessionManager::start_raw`]: crate::SessionManager::start_raw
    pub(crate) raw: Option<RawRequest>,
    pub(crate) incoming: IncomingCookie,
    pub(crate) user_agent: Option<String>,
    pub(crate) ip: Option<String>,
    pub(crate) loaded: bool,
    pub(crate) origin: Origin,
    /// The record as this request sees it: as loaded, with `ops` applied.
    pub(crate) record: Record,
    /// The handler's changes, in order, for replay on a conflicting save.
    pub(crate) ops: Vec<Op>,
    pub(crate) regenerate: bool,
    pub(crate) destroyed: bool,
    /// `last_seen` is old enough to be refreshed.
    pub(crate) touch: bool,
    /// The cookie verified under a previous key: re-issue under the current one.
    pub(crate) reissue: bool,
    /// A cookie arrived but was refused: tell the browser to drop it.
    pub(crate) clear_cookie: bool,
    /// The loaded cookie session's random ID and the absolute deadline it was
    /// issued under, kept apart from the record so that nothing the handler
    /// does to the data (`clear`, `set_remember`) can stop logout or
    /// regeneration from revoking that cookie for as long as it is valid.
    pub(crate) cookie_sid: Option<(String, crate::time::UnixTime)>,
}

impl State {
    pub(crate) fn new(
        incoming: IncomingCookie,
        user_agent: Option<String>,
        ip: Option<String>,
    ) -> Self {
        Self {
            raw: None,
            incoming,
            user_agent,
            ip,
            loaded: false,
            origin: Origin::Fresh,
            record: Record::new(0),
            ops: Vec::new(),
            regenerate: false,
            destroyed: false,
            touch: false,
            reissue: false,
            clear_cookie: false,
            cookie_sid: None,
        }
    }

    /// State for a request whose headers are parsed on first use.
    pub(crate) fn raw(raw: RawRequest) -> Self {
        Self {
            raw: Some(raw),
            ..Self::new(IncomingCookie::Absent, None, None)
        }
    }

    /// Apply `op` now and remember it for replay.
    pub(crate) fn push(&mut self, op: Op) -> Result<()> {
        op.apply(&mut self.record)?;
        self.ops.push(op);
        Ok(())
    }

    pub(crate) fn changed(&self) -> bool {
        !self.ops.is_empty()
    }

    /// Whether the record holds nothing worth keeping.
    pub(crate) fn is_empty(&self) -> bool {
        self.record.data.is_empty() && self.record.user_id.is_none()
    }
}
