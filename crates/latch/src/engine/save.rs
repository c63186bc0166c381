//! Saving a changed server-side session: compare-and-swap, replay on conflict,
//! and group commit of one process's concurrent saves of a session.
//!
//! A save of a session that no other request of this process is saving runs
//! at once, inline. A save of a session that is being saved joins that
//! session's queue and waits; when the running save ends, a flusher task takes
//! the whole queue and writes all its changes with *one* compare-and-swap,
//! replaying every request's operations in arrival order. So 32 concurrent
//! requests on one session cost a handful of store round trips instead of 32
//! serialized ones (or, without coordination, up to 32² failed swaps), and no
//! change is lost. Saves of different sessions never wait for each other.
//! Other processes are still handled by the compare-and-swap: on a conflict
//! the newest record is reloaded and everything replayed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use foldhash::fast::RandomState;
use tokio::sync::oneshot;

use super::Engine;
use super::state::{Changes, Op, State};
use crate::error::{Error, ErrorKind, Result};
use crate::id::StoreKey;
use crate::record::{Record, RecordCell};
use crate::store::{SaveOutcome, SessionStore};
use crate::time::UnixTime;

/// How often a conflicting save is retried before the request fails.
const MAX_SAVE_ATTEMPTS: u32 = 100;

/// How many shards the table of sessions being saved has (less contention on
/// its lock; every session has its own entry either way).
const SAVE_SHARDS: usize = 16;

/// What a save ends in: the record as saved, `None` when the session was
/// deleted meanwhile (logout, revoke, expiry), or the error.
type Outcome = Result<Option<RecordCell>>;

/// The table of the sessions this process is saving right now, in shards.
pub(crate) struct Saving(Box<[SaveShard]>);

impl Default for Saving {
    fn default() -> Self {
        Self((0..SAVE_SHARDS).map(|_| SaveShard::default()).collect())
    }
}

impl std::fmt::Debug for Saving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the session data a shard may hold.
        f.write_str("Saving")
    }
}

impl Saving {
    /// The shard that holds `key`.
    fn shard(&self, key: &StoreKey) -> &SaveShard {
        &self.0[usize::from(key.as_bytes()[0]) % self.0.len()]
    }
}

/// One shard of the table of sessions being saved right now. A session has an
/// entry exactly while a save of it (inline or a flusher) runs.
#[derive(Default)]
struct SaveShard(Mutex<HashMap<StoreKey, Entry, RandomState>>);

/// A session being saved: who waits for the running save.
#[derive(Default)]
struct Entry {
    /// Saves waiting for the running one, in arrival order.
    queue: Vec<Waiting>,
    /// The record the last save wrote, while saves wait: a newer base than
    /// the waiters loaded, so they need not fail a swap first. A hint only;
    /// the compare-and-swap decides.
    last_saved: Option<RecordCell>,
}

struct Waiting {
    changes: Changes,
    reply: oneshot::Sender<Outcome>,
}

impl SaveShard {
    fn lock(&self) -> MutexGuard<'_, HashMap<StoreKey, Entry, RandomState>> {
        // The table is consistent between statements; a panic elsewhere must
        // not stop every later save.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Save `state`'s changes to the session `key`. Returns `false` when the
/// session was deleted meanwhile; its changes are then dropped.
pub(crate) async fn save(
    shared: &Arc<Engine>,
    store: &Arc<dyn SessionStore>,
    key: &StoreKey,
    state: &mut State,
    now: UnixTime,
) -> Result<bool> {
    let shard = shared.saving.shard(key);
    let changes = state.take_changes();
    let waiting = {
        let mut table = shard.lock();
        match table.get_mut(key) {
            Some(saving) => {
                let (reply, outcome) = oneshot::channel();
                saving.queue.push(Waiting { changes, reply });
                Err(outcome)
            }
            None => {
                table.insert(*key, Entry::default());
                Ok(changes)
            }
        }
    };
    let changes = match waiting {
        Ok(changes) => changes,
        Err(outcome) => {
            let outcome = outcome.await.map_err(|_| {
                Error::store_msg("the save of this session was abandoned (shutting down?)")
            })??;
            return Ok(settle(state, outcome));
        }
    };
    let mut turn = Turn {
        shared: Arc::clone(shared),
        store: Arc::clone(store),
        key: *key,
        saved: None,
    };
    let outcome = save_one(shared, store.as_ref(), key, changes, now).await;
    if let Err(err) = &outcome {
        fail_waiting_if_unavailable(shard, key, err);
    }
    let outcome = outcome?;
    if let Some(record) = &outcome {
        if shard.lock().get(key).is_some_and(|s| !s.queue.is_empty()) {
            turn.saved = Some(record.clone());
        }
    }
    drop(turn);
    Ok(settle(state, outcome))
}

/// After a save of `key` failed because the store is unavailable (down, or
/// slower than the store timeout), fail the saves that queued behind it with
/// the same error at once: otherwise each would wait for the failed save and
/// then for a timeout of its own, and answer 503 only after twice the
/// configured timeout.
fn fail_waiting_if_unavailable(shard: &SaveShard, key: &StoreKey, err: &Error) {
    if !err.is_unavailable() {
        return;
    }
    let waiting = match shard.lock().get_mut(key) {
        Some(saving) => std::mem::take(&mut saving.queue),
        None => return,
    };
    for w in waiting {
        let _ = w.reply.send(Err(err.clone()));
    }
}

/// Put a save's outcome into the request's state; `false` when gone.
fn settle(state: &mut State, outcome: Option<RecordCell>) -> bool {
    match outcome {
        Some(record) => {
            state.settle(record);
            true
        }
        None => false,
    }
}

/// The inline save's hold on its session. Dropping it (the save ended, was
/// cancelled with its request, or panicked) hands the session to a flusher if
/// saves are waiting, or removes its entry.
struct Turn {
    shared: Arc<Engine>,
    store: Arc<dyn SessionStore>,
    key: StoreKey,
    saved: Option<RecordCell>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let shard = self.shared.saving.shard(&self.key);
        let mut table = shard.lock();
        let Some(saving) = table.get_mut(&self.key) else {
            return;
        };
        if saving.queue.is_empty() {
            table.remove(&self.key);
            return;
        }
        saving.last_saved = self.saved.take();
        drop(table);
        let flusher = Flusher {
            shared: Arc::clone(&self.shared),
            store: Arc::clone(&self.store),
            key: self.key,
            finished: false,
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(flusher.run());
            }
            // No runtime (it is shutting down): fail the waiters rather than
            // leave them waiting; their requests answer 503.
            Err(_) => drop(flusher),
        }
    }
}

/// Writes every waiting save of one session, batch after batch, until none
/// waits; then removes the session's entry.
struct Flusher {
    shared: Arc<Engine>,
    store: Arc<dyn SessionStore>,
    key: StoreKey,
    /// Set when `run` returns normally, having removed the entry.
    finished: bool,
}

impl Flusher {
    async fn run(mut self) {
        loop {
            let (batch, hint) = {
                let mut table = self.shared.saving.shard(&self.key).lock();
                let Some(saving) = table.get_mut(&self.key) else {
                    self.finished = true;
                    return;
                };
                if saving.queue.is_empty() {
                    table.remove(&self.key);
                    drop(table);
                    self.finished = true;
                    return;
                }
                (std::mem::take(&mut saving.queue), saving.last_saved.take())
            };
            let now = self.shared.clock.now();
            let (changes, replies): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|w| (w.changes, w.reply)).unzip();
            let outcomes = save_group(
                &self.shared,
                self.store.as_ref(),
                &self.key,
                changes,
                hint,
                now,
            )
            .await;
            let saved = outcomes
                .iter()
                .find_map(|o| o.as_ref().ok().and_then(Option::as_ref))
                .cloned();
            let unavailable = outcomes
                .iter()
                .find_map(|o| o.as_ref().err().filter(|e| e.is_unavailable()))
                .cloned();
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A waiter whose request was cancelled no longer listens.
                let _ = reply.send(outcome);
            }
            if let Some(err) = unavailable {
                fail_waiting_if_unavailable(self.shared.saving.shard(&self.key), &self.key, &err);
            }
            if let Some(saving) = self
                .shared
                .saving
                .shard(&self.key)
                .lock()
                .get_mut(&self.key)
            {
                saving.last_saved = saved;
            }
        }
    }

    /// Give up on every waiting save: dropping their reply channels fails them.
    fn abandon(&self) {
        self.shared.saving.shard(&self.key).lock().remove(&self.key);
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // A flusher dropped before it finished (a panicking `update` closure,
        // runtime shutdown, or never spawned) must not leave the session
        // marked as being saved for ever; the saves it held or that wait fail
        // with a store error.
        if !self.finished {
            self.abandon();
        }
    }
}

/// Write the changes of one request (the usual save: nobody else of this
/// process is saving the session) with [`write`], without the group's lists.
async fn save_one(
    shared: &Engine,
    store: &dyn SessionStore,
    key: &StoreKey,
    changes: Changes,
    now: UnixTime,
) -> Outcome {
    let ops = [changes.ops];
    let mut failed = [None];
    let outcome = write(shared, store, key, changes.record, &ops, &mut failed, now).await;
    let [failed] = failed;
    failed.map_or(outcome, Err)
}

/// Write the changes of several requests to one session with one
/// compare-and-swap (more on conflicts); one outcome per request, in order.
async fn save_group(
    shared: &Engine,
    store: &dyn SessionStore,
    key: &StoreKey,
    group: Vec<Changes>,
    hint: Option<RecordCell>,
    now: UnixTime,
) -> Vec<Outcome> {
    let n = group.len();
    let mut failed: Vec<Option<Error>> = (0..n).map(|_| None).collect();
    let newest_loaded = group
        .iter()
        .enumerate()
        .max_by_key(|(i, c)| (c.record.get().version, std::cmp::Reverse(*i)))
        .map(|(i, c)| (i, c.record.get().version));
    let mut ops = Vec::with_capacity(n);
    let mut records = Vec::with_capacity(n);
    for changes in group {
        ops.push(changes.ops);
        records.push(Some(changes.record));
    }
    // The base: the newest record known. A request's record already holds its
    // own changes, so when it is the base its operations are not replayed.
    let record = match (hint, newest_loaded) {
        (Some(hint), Some((_, version))) if hint.get().version > version => {
            replay(shared, hint, &ops, None, &mut failed)
        }
        (_, Some((i, _))) => {
            let base = records[i]
                .take()
                .unwrap_or_else(|| RecordCell::Owned(Record::new(now)));
            replay(shared, base, &ops, Some(i), &mut failed)
        }
        (_, None) => return Vec::new(),
    };
    let outcome = write(shared, store, key, record, &ops, &mut failed, now).await;
    let last = failed.iter().rposition(Option::is_none);
    let mut outcome = Some(outcome);
    // Each request gets its own error if its operations failed to replay, the
    // common outcome otherwise (the last one without a copy).
    failed
        .into_iter()
        .enumerate()
        .map(|(i, err)| match (err, &mut outcome) {
            (Some(err), _) => Err(err),
            (None, outcome) if Some(i) == last => outcome.take().unwrap_or(Ok(None)),
            (None, outcome) => outcome.clone().unwrap_or(Ok(None)),
        })
        .collect()
}

/// Save `record`, which holds every request's changes (`ops`, each request's
/// failure so far in `failed`), with compare-and-swap; on a conflict reload
/// the newest record and replay the operations on it. The outcome common to
/// the requests whose operations applied.
async fn write(
    shared: &Engine,
    store: &dyn SessionStore,
    key: &StoreKey,
    mut record: RecordCell,
    ops: &[Vec<Op>],
    failed: &mut [Option<Error>],
    now: UnixTime,
) -> Outcome {
    let mut expected = record.get().version;
    for attempt in 0..MAX_SAVE_ATTEMPTS {
        let stamped = record.make_mut();
        stamped.version = expected + 1;
        stamped.last_seen = now;
        stamped.expires_at = stamped.deadline(&shared.expiry);
        let saving = record.share();
        match shared
            .timed(
                "saving a session",
                store.save_shared(key, &saving, expected),
            )
            .await?
        {
            SaveOutcome::Saved => return Ok(Some(record)),
            SaveOutcome::Gone => return Ok(None),
            SaveOutcome::Conflict => {}
        }
        backoff(attempt).await;
        let reload = store.load_shared(key);
        let newest = match shared.timed("reloading a session", reload).await? {
            None => return Ok(None),
            Some(newest) if newest.is_expired(now, &shared.expiry) => return Ok(None),
            Some(newest) => newest,
        };
        expected = newest.version;
        record = replay(shared, newest.into(), ops, None, failed);
    }
    Err(Error::new(
        ErrorKind::Conflict,
        format!("session save kept conflicting after {MAX_SAVE_ATTEMPTS} attempts"),
    ))
}

/// Apply each request's operations in order to `record`, skipping `skip`
/// (whose changes `record` already holds). A request whose operations fail
/// (an `update` closure returned an error) is left out whole and marked.
///
/// Each request checked its own record against the size limit, but together
/// they may pass it: then the replay is done again, checking after each
/// request, and the requests that would push the record over fail alone.
fn replay(
    shared: &Engine,
    record: RecordCell,
    ops: &[Vec<Op>],
    skip: Option<usize>,
    failed: &mut [Option<Error>],
) -> RecordCell {
    // The usual save: one request, whose record is the base. Nothing to
    // replay, and its own size was checked, so no copy is needed.
    if ops
        .iter()
        .enumerate()
        .all(|(i, request_ops)| Some(i) == skip || request_ops.is_empty())
    {
        failed.fill(None);
        return record;
    }
    let merged = replay_checked(None, record.clone(), ops, skip, failed);
    if shared.check_record_size(merged.get()).is_ok() {
        return merged;
    }
    replay_checked(Some(shared), record, ops, skip, failed)
}

/// [`replay`]'s loop; with `limit`, a request whose operations leave the
/// record over the size limit is undone and marked too.
fn replay_checked(
    limit: Option<&Engine>,
    mut record: RecordCell,
    ops: &[Vec<Op>],
    skip: Option<usize>,
    failed: &mut [Option<Error>],
) -> RecordCell {
    for (i, request_ops) in ops.iter().enumerate() {
        failed[i] = None;
        if Some(i) == skip || request_ops.is_empty() {
            continue;
        }
        let fallible = limit.is_some() || request_ops.iter().any(|op| matches!(op, Op::Update(..)));
        let before = fallible.then(|| record.clone());
        let changing = record.make_mut();
        let mut outcome = request_ops.iter().try_for_each(|op| op.apply(changing));
        if let (Ok(()), Some(shared)) = (&outcome, limit) {
            outcome = shared.check_record_size(record.get());
        }
        if let Err(err) = outcome {
            failed[i] = Some(err);
            if let Some(before) = before {
                record = before;
            }
        }
    }
    record
}

/// A short randomized pause after a conflict, growing with the attempt, so that
/// many writers racing on one session spread out instead of colliding in lockstep.
///
/// The first conflict reloads at once: within this process saves already take
/// turns, so it most likely met one other process's write, and a timer sleep
/// costs at least a millisecond on tokio's clock.
async fn backoff(attempt: u32) {
    if attempt == 0 {
        return;
    }
    let mut byte = [0u8; 1];
    crate::rand::fill_pooled(&mut byte);
    let cap_us = 50u64 << attempt.min(6);
    let us = u64::from(byte[0]) * cap_us / 255;
    tokio::time::sleep(Duration::from_micros(us)).await;
}
