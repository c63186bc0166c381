//! A session's in-request state: what was loaded and what the handler changed.
//!
//! The fields are private; the engine and the [`Session`](crate::Session)
//! handle go through methods that keep the state's rules:
//! - the request's input is read when the session is first used, and only
//!   dropped once loading succeeded (a store failure leaves it for a retry);
//! - the record is always what was loaded with the handler's operations
//!   applied in order ([`State::push`]), and those operations are kept for
//!   replay on a newer record;
//! - ending the session ([`State::destroy`]) wins over regenerating it.

use std::sync::Arc;

use serde_json::Value;

use crate::cookie::IncomingCookie;
use crate::dbsc::DeviceStatus;
use crate::error::Result;
use crate::id::{SessionId, StoreKey};
use crate::record::{Record, RecordCell};
use crate::time::UnixTime;
use crate::wire::{RawRequest, RequestMeta};

/// A closure for [`Session::update`](crate::Session::update), kept so it can
/// be re-applied to the latest stored value when a save conflicts.
pub(crate) type UpdateFn = Arc<dyn Fn(Option<&Value>) -> Result<Value> + Send + Sync>;

/// One change a handler made, replayable on top of a newer record.
#[derive(Clone)]
pub(crate) enum Op {
    Insert(String, Value),
    Remove(String),
    /// Remove the application's keys; latch's own (`_latch.`) stay.
    Clear,
    Update(String, UpdateFn),
    SetUser(Option<String>),
    SetRemember(bool),
    /// The client facts of the request that signed in (devices list).
    SetClient(RequestMeta),
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
                .retain(|k, _| k.starts_with(crate::record::RESERVED_PREFIX)),
            Op::Update(k, f) => {
                let new = f(record.data.get(k))?;
                record.data.insert(k.clone(), new);
            }
            Op::SetUser(user) => record.user_id.clone_from(user),
            Op::SetRemember(r) => record.remember = *r,
            Op::SetClient(meta) => {
                record.user_agent.clone_from(&meta.user_agent);
                record.ip.clone_from(&meta.ip);
            }
        }
        Ok(())
    }
}

/// What the adapter handed over about the request, read on first use.
#[derive(Debug)]
pub(crate) enum Input {
    /// The raw headers ([`SessionManager::start_raw`], the adapters' path:
    /// nothing is parsed until a handler uses the session).
    ///
    /// [`SessionManager::start_raw`]: crate::SessionManager::start_raw
    Raw(RawRequest),
    /// `Cookie` header values as text and the client's facts
    /// ([`SessionManager::start`]).
    ///
    /// [`SessionManager::start`]: crate::SessionManager::start
    Headers {
        cookies: Vec<String>,
        meta: RequestMeta,
    },
}

impl Input {
    /// The session cookie `name` among the request's cookies.
    pub(crate) fn incoming(&self, name: &str) -> IncomingCookie {
        match self {
            Input::Raw(raw) => raw.incoming(name),
            Input::Headers { cookies, .. } => {
                crate::cookie::find_session_cookie(cookies.iter().map(String::as_str), name)
            }
        }
    }

    /// What the client said about itself.
    pub(crate) fn meta(&self) -> RequestMeta {
        match self {
            Input::Raw(raw) => raw.meta(),
            Input::Headers { meta, .. } => meta.clone(),
        }
    }
}

/// Where the session came from.
#[derive(Debug)]
pub(crate) enum Origin {
    /// No valid session arrived: a fresh one, not yet stored anywhere.
    Fresh,
    /// Decoded from a valid signed/sealed cookie. `sid` is what revoking it
    /// takes, kept apart from the record so that nothing the handler does to
    /// the data (`clear`, `set_remember`, `log_in`) can change it.
    Cookie { sid: Option<CookieSid> },
    /// Loaded from the store.
    Stored { id: SessionId, key: StoreKey },
}

/// A cookie session's random ID as loaded, the longest a copy of it could be
/// valid, and whether it was signed in.
#[derive(Debug)]
pub(crate) struct CookieSid {
    pub(crate) sid: String,
    pub(crate) until: UnixTime,
    pub(crate) signed_in: bool,
}

/// How this request ends the session, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The session goes on under its ID.
    Keep,
    /// A new ID for the same session (`regenerate`, `log_in`).
    Regenerate,
    /// The session ends (`destroy`); wins over `Regenerate`.
    Destroy,
}

/// A request's view of a session as loaded, for [`State::loaded_from`].
pub(crate) struct Loaded {
    pub(crate) origin: Origin,
    pub(crate) record: RecordCell,
    /// `last_seen` is old enough to be refreshed.
    pub(crate) touch_due: bool,
    /// The cookie verified under a previous key: re-issue under the current one.
    pub(crate) reissue: bool,
}

/// A request's changes, taken out of the state to be saved.
pub(crate) struct Changes {
    /// The record as this request sees it.
    pub(crate) record: RecordCell,
    /// The operations that made it so, for replay on a newer record.
    pub(crate) ops: Vec<Op>,
}

/// A CSRF secret kept in the pre-session CSRF cookie (see `csrf_cookie.rs`).
#[derive(Debug, Clone)]
pub(crate) struct PreSessionCsrf {
    pub(crate) secret: String,
    /// Made by this request (so its cookie must be sent).
    pub(crate) new: bool,
}

/// Everything the session knows during one request.
pub(crate) struct State {
    /// The request's input (its cookies and client facts), kept to the end.
    input: Option<Input>,
    loaded: bool,
    /// When the session was loaded: the request's one reading of the clock,
    /// used again when it finishes (see [`State::now`]).
    now: UnixTime,
    origin: Origin,
    record: RecordCell,
    ops: Vec<Op>,
    ending: Ending,
    touch_due: bool,
    reissue: bool,
    /// A cookie arrived but was refused: tell the browser to drop it.
    refused_cookie: bool,
    /// A fresh session was stored by this request.
    created: bool,
    /// Whether loading checks a device-bound session's bound cookie (not on
    /// the registration and refresh paths, which prove the device instead).
    check_binding: bool,
    /// What few requests use, made on first use: every request moves its
    /// state (into the session's `Arc`, through the futures that hold it),
    /// and these parts would add a quarter to what is moved.
    rare: Option<Box<Rare>>,
}

/// The parts of a request's state that few requests use.
#[derive(Default)]
struct Rare {
    /// The CSRF secret of a visitor without a stored session.
    pre_csrf: Option<PreSessionCsrf>,
    /// Saved before the end of the request ([`Session::save`]): the
    /// `Set-Cookie` a creation made, whether the cookie's lifetime changed,
    /// and whether the session turned out gone.
    ///
    /// [`Session::save`]: crate::Session::save
    early: EarlySave,
    /// What this request proved about the session's device binding.
    device: DeviceStatus,
    /// Response headers of latch's own (a DBSC registration).
    headers: Vec<(&'static str, String)>,
}

/// What a request that saved nothing early reads.
static NO_EARLY_SAVE: EarlySave = EarlySave {
    set_cookie: None,
    resend: false,
    gone: false,
};

/// What an early save ([`Session::save`](crate::Session::save)) leaves for
/// the end of the request.
#[derive(Debug, Default)]
pub(crate) struct EarlySave {
    pub(crate) set_cookie: Option<String>,
    pub(crate) resend: bool,
    pub(crate) gone: bool,
}

impl State {
    /// The state of a request that has not used its session yet.
    pub(crate) fn new(input: Input) -> Self {
        Self {
            input: Some(input),
            loaded: false,
            now: 0,
            origin: Origin::Fresh,
            record: RecordCell::Owned(Record::new(0)),
            ops: Vec::new(),
            ending: Ending::Keep,
            touch_due: false,
            reissue: false,
            refused_cookie: false,
            created: false,
            check_binding: true,
            rare: None,
        }
    }

    /// The rarely used parts, made now if this is their first use.
    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_default()
    }

    /// Whether the session has been loaded (a handler used it).
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// The request's input, read (never taken: if loading fails, a later call
    /// must see the same cookie again rather than start a fresh session, and
    /// its other cookies and client facts are read later on).
    pub(crate) fn input(&self) -> Option<&Input> {
        self.input.as_ref()
    }

    /// Note that a session cookie arrived and was refused.
    pub(crate) fn refuse_cookie(&mut self) {
        self.refused_cookie = true;
    }

    /// The session was found at `now`: use it.
    pub(crate) fn loaded_from(&mut self, loaded: Loaded, now: UnixTime) {
        self.now = now;
        self.origin = loaded.origin;
        self.record = loaded.record;
        self.touch_due = loaded.touch_due;
        self.reissue = loaded.reissue;
        self.loaded = true;
    }

    /// No valid session arrived: start a fresh one created at `now`, with
    /// the client's facts for the devices list.
    pub(crate) fn started_fresh(&mut self, now: UnixTime) {
        let mut record = Record::new(now);
        if let Some(meta) = self.input.as_ref().map(Input::meta) {
            record.user_agent = meta.user_agent;
            record.ip = meta.ip;
        }
        self.now = now;
        self.origin = Origin::Fresh;
        self.record = RecordCell::Owned(record);
        self.loaded = true;
    }

    /// The time this request's session times are taken at: when it was
    /// loaded. One clock reading per request (each costs about 30 ns on the
    /// benchmark machine); a handler that
    /// runs for longer stamps the session with its start, which can only
    /// make the session expire sooner, never later.
    pub(crate) fn now(&self) -> UnixTime {
        self.now
    }

    /// The record as this request sees it.
    pub(crate) fn record(&self) -> &Record {
        self.record.get()
    }

    /// The value under `key`, if any.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.record.get().data.get(key)
    }

    /// Apply `op` now and remember it for replay. A failing `op` changes
    /// nothing and is not kept.
    pub(crate) fn push(&mut self, op: Op) -> Result<()> {
        op.apply(self.record.make_mut())?;
        self.ops.push(op);
        Ok(())
    }

    /// Write one of latch's own entries (not a handler's change: not
    /// replayed, only carried by this request's copy).
    pub(crate) fn set_internal(&mut self, key: &str, value: Value) {
        self.record.make_mut().data.insert(key.to_owned(), value);
    }

    /// Give the session a new ID when the request ends.
    pub(crate) fn regenerate(&mut self) {
        if self.ending != Ending::Destroy {
            self.ending = Ending::Regenerate;
        }
    }

    /// End the session when the request ends.
    pub(crate) fn destroy(&mut self) {
        self.ending = Ending::Destroy;
    }

    /// How the request ends the session.
    pub(crate) fn ending(&self) -> Ending {
        self.ending
    }

    /// Whether the handler changed anything.
    pub(crate) fn changed(&self) -> bool {
        !self.ops.is_empty()
    }

    /// The handler's operations so far.
    pub(crate) fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Whether the record holds nothing worth keeping.
    pub(crate) fn is_empty(&self) -> bool {
        let record = self.record.get();
        record.data.is_empty() && record.user_id.is_none()
    }

    /// Whether `last_seen` is due for a refresh.
    pub(crate) fn touch_due(&self) -> bool {
        self.touch_due
    }

    /// Send the cookie again even though nothing changed (re-keyed, or a
    /// note added to a cookie session).
    pub(crate) fn reissue(&mut self) {
        self.reissue = true;
    }

    /// Whether the cookie must be sent again.
    pub(crate) fn wants_reissue(&self) -> bool {
        self.reissue
    }

    /// What the request's client says about itself.
    pub(crate) fn client(&self) -> RequestMeta {
        self.input.as_ref().map(Input::meta).unwrap_or_default()
    }

    /// Whether a cookie arrived and was refused.
    pub(crate) fn refused_cookie(&self) -> bool {
        self.refused_cookie
    }

    /// Where the session came from.
    pub(crate) fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Whether no valid session arrived with the request.
    pub(crate) fn is_fresh(&self) -> bool {
        matches!(self.origin, Origin::Fresh)
    }

    /// The store key of a stored session.
    pub(crate) fn stored_key(&self) -> Option<StoreKey> {
        match &self.origin {
            Origin::Stored { key, .. } => Some(*key),
            _ => None,
        }
    }

    /// Take the record and the operations out, for a save.
    pub(crate) fn take_changes(&mut self) -> Changes {
        Changes {
            record: std::mem::replace(&mut self.record, RecordCell::Owned(Record::new(0))),
            ops: std::mem::take(&mut self.ops),
        }
    }

    /// The record as the store now holds it (after a save, or a reload).
    pub(crate) fn settle(&mut self, record: RecordCell) {
        self.record = record;
    }

    /// The pre-session CSRF secret, if one is in play.
    pub(crate) fn pre_csrf(&self) -> Option<&PreSessionCsrf> {
        self.rare.as_ref()?.pre_csrf.as_ref()
    }

    /// Keep `csrf` as this request's pre-session CSRF secret.
    pub(crate) fn set_pre_csrf(&mut self, csrf: PreSessionCsrf) {
        self.rare_mut().pre_csrf = Some(csrf);
    }

    /// Note that this request stored the fresh session.
    pub(crate) fn mark_created(&mut self) {
        self.created = true;
    }

    /// The fresh session was stored early under `id`: from here on it is a
    /// stored session whose changes so far are saved; `set_cookie` goes out
    /// with the response.
    pub(crate) fn stored_early(&mut self, id: SessionId, key: StoreKey, set_cookie: String) {
        self.origin = Origin::Stored { id, key };
        self.ops.clear();
        self.created = true;
        self.rare_mut().early.set_cookie = Some(set_cookie);
    }

    /// What an early save left for the end of the request.
    pub(crate) fn early(&self) -> &EarlySave {
        self.rare
            .as_ref()
            .map_or(&NO_EARLY_SAVE, |rare| &rare.early)
    }

    /// What an early save leaves for the end of the request, to change.
    pub(crate) fn early_mut(&mut self) -> &mut EarlySave {
        &mut self.rare_mut().early
    }

    /// The `Set-Cookie` of a session created by an early save, taken to be
    /// sent.
    pub(crate) fn take_early_cookie(&mut self) -> Option<String> {
        self.rare.as_mut()?.early.set_cookie.take()
    }

    /// Whether this request stored the fresh session.
    pub(crate) fn created(&self) -> bool {
        self.created
    }

    /// Load without checking a bound cookie (the DBSC paths).
    pub(crate) fn skip_binding_check(&mut self) {
        self.check_binding = false;
    }

    /// Whether loading checks a device-bound session's bound cookie.
    pub(crate) fn checks_binding(&self) -> bool {
        self.check_binding
    }

    /// Note what this request proved about its device binding.
    pub(crate) fn set_device(&mut self, status: DeviceStatus) {
        self.rare_mut().device = status;
    }

    /// What this request proved about its device binding.
    pub(crate) fn device(&self) -> DeviceStatus {
        self.rare
            .as_ref()
            .map_or(DeviceStatus::Unbound, |rare| rare.device)
    }

    /// Send `name: value` with the response.
    pub(crate) fn add_header(&mut self, name: &'static str, value: String) {
        self.rare_mut().headers.push((name, value));
    }

    /// Take the response headers of latch's own.
    pub(crate) fn take_headers(&mut self) -> Vec<(&'static str, String)> {
        self.rare
            .as_mut()
            .map(|rare| std::mem::take(&mut rare.headers))
            .unwrap_or_default()
    }

    /// The record, to finish a session (stamp times, write latch's entries).
    pub(crate) fn record_mut(&mut self) -> &mut Record {
        self.record.make_mut()
    }

    /// The record as an `Arc`, to hand to a store (which may keep it).
    pub(crate) fn share_record(&mut self) -> std::sync::Arc<Record> {
        self.record.share()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> State {
        let mut state = State::new(Input::Headers {
            cookies: Vec::new(),
            meta: RequestMeta {
                user_agent: Some("ua".into()),
                ip: Some("::1".into()),
            },
        });
        state.started_fresh(100);
        state
    }

    #[test]
    fn a_fresh_state_takes_the_clients_facts_and_drops_the_input() {
        let state = fresh();
        assert!(state.is_loaded() && state.is_fresh());
        assert_eq!(state.record().user_agent.as_deref(), Some("ua"));
        assert_eq!(state.record().ip.as_deref(), Some("::1"));
        assert_eq!(state.record().created_at, 100);
    }

    #[test]
    fn destroy_wins_over_regenerate_in_any_order() {
        let mut state = fresh();
        state.regenerate();
        state.destroy();
        state.regenerate();
        assert_eq!(state.ending(), Ending::Destroy);
    }

    #[test]
    fn a_failing_op_changes_nothing_and_is_not_kept() {
        let mut state = fresh();
        state
            .push(Op::Insert("a".into(), 1.into()))
            .expect("insert");
        let refuse: UpdateFn = Arc::new(|_| Err(crate::Error::store_msg("refused")));
        assert!(state.push(Op::Update("a".into(), refuse)).is_err());
        assert_eq!(state.ops().len(), 1);
        assert_eq!(state.get("a"), Some(&Value::from(1)));
    }

    #[test]
    fn clear_keeps_latchs_own_entries() {
        let mut state = fresh();
        state.set_internal("_latch.sid", "s".into());
        state
            .push(Op::Insert("a".into(), 1.into()))
            .expect("insert");
        state.push(Op::Clear).expect("clear");
        assert_eq!(state.get("a"), None);
        assert_eq!(state.get("_latch.sid"), Some(&Value::from("s")));
    }
}
