//! The admin commands, each printing its result as text or JSON.

use std::io::Write as _;

use anyhow::Context as _;
use latch::{Record, SessionInfo, StoreKey, UnixTime};
use serde::Serialize;

use super::Command;
use super::inventory::Row;
use super::open::Opened;
use super::target;
use crate::exit::Refused;
use crate::timefmt::{span, utc};

/// Run `command` against the open store.
///
/// # Errors
/// Store failures, bad IDs, and [`Refused`] for a session that does not exist.
pub async fn run(opened: &Opened, command: &Command, json: bool) -> anyhow::Result<()> {
    let now = latch::Clock::now(&latch::SystemClock);
    match command {
        Command::List {
            user: Some(user),
            limit,
        } => list_user(opened, user, *limit, now, json).await,
        Command::List { user: None, limit } => list_all(opened, *limit, now, json).await,
        Command::Show { id } => show(opened, &target::store_key(id)?, now, json).await,
        Command::Revoke { id } => revoke(opened, &target::store_key(id)?, json).await,
        Command::RevokeUser { user } => revoke_user(opened, user, json).await,
        Command::Purge { dry_run, batch } => purge(opened, *dry_run, *batch, now, json).await,
        Command::Stats => {
            let stats = opened.inventory.stats(now).await?;
            emit(json, &stats, || {
                format!(
                    "sessions   {}\nlive       {}\nexpired    {}  (purge deletes them)\n\
                     users      {}  (with a live session)\nanonymous  {}  (live, not signed in)",
                    stats.total, stats.live, stats.expired, stats.users, stats.anonymous
                )
            })
        }
    }
}

/// Print `value` as JSON, or the text `text` makes.
fn emit<T: Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    let out = if json {
        serde_json::to_string_pretty(value).context("encoding the result")?
    } else {
        text()
    };
    writeln!(std::io::stdout().lock(), "{out}").context("writing the result")
}

#[derive(Serialize)]
struct Listing {
    sessions: Vec<Row>,
}

async fn list_user(
    opened: &Opened,
    user: &str,
    limit: usize,
    now: UnixTime,
    json: bool,
) -> anyhow::Result<()> {
    let mut infos = user_index(opened)?.list_by_user(user, now).await?;
    infos.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.key.cmp(&b.key)));
    infos.truncate(limit);
    let sessions = infos.into_iter().map(|i| row(i, user, now)).collect();
    let listing = Listing { sessions };
    emit(json, &listing, || table(&listing.sessions, limit, now))
}

fn row(info: SessionInfo, user: &str, now: UnixTime) -> Row {
    Row {
        key: info.key,
        user_id: Some(user.to_owned()),
        created_at: info.created_at,
        last_seen: info.last_seen,
        expires_at: info.expires_at,
        expired: info.expires_at <= now,
        user_agent: info.user_agent,
        ip: info.ip,
        device_proved_at: info.device_proved_at,
    }
}

async fn list_all(opened: &Opened, limit: usize, now: UnixTime, json: bool) -> anyhow::Result<()> {
    let listing = Listing {
        sessions: opened.inventory.list(now, limit).await?,
    };
    emit(json, &listing, || table(&listing.sessions, limit, now))
}

/// Sessions as an aligned table, most recent first.
fn table(rows: &[Row], limit: usize, now: UnixTime) -> String {
    let user = |r: &Row| r.user_id.clone().unwrap_or_else(|| "-".to_owned());
    let expires = |r: &Row| relative(r.expires_at, now);
    let uw = rows
        .iter()
        .map(|r| user(r).len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let ew = rows
        .iter()
        .map(|r| expires(r).len())
        .chain([7])
        .max()
        .unwrap_or(7);
    let mut out = format!(
        "{:<64}  {:<uw$}  {:<20}  {:<ew$}  {}\n",
        "STORE KEY", "USER", "LAST SEEN", "EXPIRES", "IP / USER AGENT"
    );
    for r in rows {
        let client = [r.ip.as_deref(), r.user_agent.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("  ");
        out.push_str(&format!(
            "{:<64}  {:<uw$}  {:<20}  {:<ew$}  {client}\n",
            r.key.to_hex(),
            user(r),
            utc(r.last_seen),
            expires(r),
        ));
    }
    let n = rows.len();
    out.push_str(&format!("{n} session{}", if n == 1 { "" } else { "s" }));
    if n == limit {
        out.push_str(" (the --limit; there may be more)");
    }
    out
}

/// `in 29m 12s` or `expired 3d 2h ago`.
fn relative(t: UnixTime, now: UnixTime) -> String {
    if t > now {
        format!("in {}", span(t - now))
    } else {
        format!("expired {} ago", span(now - t))
    }
}

/// One session in full, as `show` prints it.
#[derive(Serialize)]
struct Shown {
    #[serde(serialize_with = "super::inventory::hex")]
    key: StoreKey,
    user_id: Option<String>,
    created_at: UnixTime,
    last_seen: UnixTime,
    expires_at: UnixTime,
    expired: bool,
    remember: bool,
    version: u64,
    user_agent: Option<String>,
    ip: Option<String>,
    /// Whether the session is bound to a device key (DBSC), and when that
    /// key was last proved.
    device_bound: bool,
    device_proved_at: Option<UnixTime>,
    /// The application's data and latch's own entries, but for the device
    /// binding (summarised above; its challenges are not for display).
    data: latch::Data,
}

async fn show(opened: &Opened, key: &StoreKey, now: UnixTime, json: bool) -> anyhow::Result<()> {
    let record: Record = opened
        .store
        .load(key)
        .await?
        .ok_or_else(|| Refused(format!("no session with store key {key}")))?;
    let device_proved_at = SessionInfo::from_record(*key, &record).device_proved_at;
    let mut data = record.data;
    data.remove("_latch.dbsc");
    let shown = Shown {
        key: *key,
        device_bound: device_proved_at.is_some(),
        device_proved_at,
        expired: record.expires_at <= now,
        user_id: record.user_id,
        created_at: record.created_at,
        last_seen: record.last_seen,
        expires_at: record.expires_at,
        remember: record.remember,
        version: record.version,
        user_agent: record.user_agent,
        ip: record.ip,
        data,
    };
    emit(json, &shown, || {
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_owned());
        format!(
            "key         {}\nuser        {}\ncreated     {}\nlast seen   {}\nexpires     {} ({})\n\
             remember    {}\nversion     {}\nuser agent  {}\nip          {}\ndevice key  {}\ndata\n{}",
            shown.key,
            or_none(&shown.user_id),
            utc(shown.created_at),
            utc(shown.last_seen),
            utc(shown.expires_at),
            relative(shown.expires_at, now),
            if shown.remember { "yes" } else { "no" },
            shown.version,
            or_none(&shown.user_agent),
            or_none(&shown.ip),
            shown.device_proved_at.map_or_else(
                || "not bound".to_owned(),
                |at| format!("bound, last proved {}", utc(at))
            ),
            serde_json::to_string_pretty(&shown.data).unwrap_or_default()
        )
    })
}

async fn revoke(opened: &Opened, key: &StoreKey, json: bool) -> anyhow::Result<()> {
    if !opened.store.delete(key).await? {
        return Err(Refused(format!("no session with store key {key}")).into());
    }
    let out = serde_json::json!({ "key": key.to_hex(), "revoked": true });
    emit(json, &out, || format!("revoked session {key}"))
}

async fn revoke_user(opened: &Opened, user: &str, json: bool) -> anyhow::Result<()> {
    let n = user_index(opened)?.delete_by_user(user, None).await?;
    let out = serde_json::json!({ "user": user, "revoked": n });
    emit(json, &out, || {
        format!(
            "revoked {n} session{} of user {user:?}",
            if n == 1 { "" } else { "s" }
        )
    })
}

async fn purge(
    opened: &Opened,
    dry_run: bool,
    batch: u64,
    now: UnixTime,
    json: bool,
) -> anyhow::Result<()> {
    let due = opened.inventory.purgeable(now).await?;
    if dry_run {
        let out = serde_json::json!({ "dry_run": true, "expired": due, "purged": 0 });
        return emit(json, &out, || {
            format!(
                "{due} expired session{} would be purged (dry run: nothing deleted)",
                plural(due)
            )
        });
    }
    let bar = crate::progress::bar(due, "{bar:30} {pos}/{len} expired sessions purged");
    let limit = usize::try_from(batch).unwrap_or(usize::MAX);
    let (mut purged, mut batches) = (0u64, 0u64);
    // `now` stays fixed, so the sessions due are a fixed set and the loop ends.
    loop {
        let Some(purge) = opened.store.expired_deletion() else {
            anyhow::bail!(
                "this store deletes expired sessions by itself; there is nothing to purge"
            );
        };
        let n = purge.purge_expired(now, limit).await?;
        purged += n;
        batches += 1;
        bar.inc(n);
        if n < batch {
            break;
        }
    }
    bar.finish_and_clear();
    let out = serde_json::json!({ "dry_run": false, "expired": due, "purged": purged, "batches": batches });
    emit(json, &out, || {
        format!(
            "purged {purged} expired session{} in {batches} batch{}",
            plural(purged),
            if batches == 1 { "" } else { "es" }
        )
    })
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The per-user index of the opened store (every store `latch sessions` opens
/// has one).
fn user_index(opened: &super::open::Opened) -> anyhow::Result<&dyn latch::UserIndex> {
    opened
        .store
        .user_index()
        .ok_or_else(|| anyhow::anyhow!("this store keeps no index of sessions by user"))
}
