//! The store conformance suite: every behaviour a latch [`latch::SessionStore`] must have,
//! written once and run against every backend.
//!
//! In a store crate's tests:
//! ```text
//! async fn make() -> Option<Arc<dyn SessionStore>> { Some(Arc::new(MyStore::new())) }
//! latch_conformance::store_conformance!(make);
//! ```
//! `make` returns `None` to skip (after saying so loudly) when its server is not
//! available; see [`skip_or_fail`]. Every case uses fresh random keys and user
//! names, so cases can share one store and run in parallel.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cases;
pub mod device;
pub mod faults;
pub mod requests;
pub mod servers;

/// Generate one `#[tokio::test]` per conformance case, each calling `$make` for
/// its store.
///
/// A store that cannot do what some cases test opts out of them by name,
/// `store_conformance!(make; except: [case, ...])`: those tests then say
/// they were skipped (on standard error, shown with `--nocapture` and for
/// failures) and pass. The cases of the per-user index and of the deletion
/// of expired sessions expect the store to have those capabilities
/// ([`latch::UserIndex`], [`latch::ExpiredDeletion`]); a store without one
/// must opt out of them. The list of cases below is checked against
/// `cases.rs` by this crate's tests, so a case cannot be written and never
/// run.
#[macro_export]
macro_rules! store_conformance {
    ($make:path) => {
        $crate::store_conformance!($make; except: []);
    };
    ($make:path; except: [$($skip:ident),* $(,)?]) => {
        $crate::store_conformance!(@cases $make; [$(stringify!($skip)),*];
            create_never_overwrites,
            load_returns_every_field,
            load_of_unknown_key_is_none,
            save_is_compare_and_swap,
            save_replaces_every_field,
            save_never_resurrects_deleted,
            shared_records_keep_the_contract_and_stay_isolated,
            in_process_answers_match_the_store,
            unsaved_changes_stay_with_their_request,
            touch_refreshes_times_only,
            touch_keeps_the_user_index_current,
            delete_reports_presence,
            list_by_user_lists_live_sessions_of_that_user_only,
            user_change_moves_index_entry,
            delete_by_user_keeps_current,
            sign_out_elsewhere_needs_the_kept_session,
            racing_sign_outs_elsewhere_leave_one_session,
            revoking_a_device_needs_the_revoking_session,
            purge_removes_only_expired_in_batches,
            records_over_the_size_limit_are_refused,
            concurrent_writers_of_distinct_keys_all_kept,
            concurrent_counter_updates_are_exact,
            concurrent_logout_is_not_undone,
            regenerate_kills_old_id_and_keeps_data,
            regenerate_does_not_revive_an_ended_session,
            regenerate_keeps_changes_saved_meanwhile,
            logout_replay_is_refused,
            idle_and_absolute_expiry_to_the_second,
            anonymous_reads_create_nothing,
            devices_list_and_revoke_through_sessions,
            sign_out_elsewhere_through_sessions,
            sign_in_records_its_client,
            device_binding_round_trips
        );
    };
    (@cases $make:path; $skipped:tt; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let skipped: &[&str] = &$skipped;
                if skipped.contains(&stringify!($case)) {
                    eprintln!(
                        "SKIPPED: conformance case {} (this store opts out of it)",
                        stringify!($case)
                    );
                    return;
                }
                if let Some(store) = $make().await {
                    $crate::cases::$case(store).await;
                }
            }
        )*
    };
}

/// Every conformance case, one after the other, on one `store`, except those
/// named in `except`: for set-ups too costly to start once per case (a private
/// TLS server, a cluster), which a single test starts, runs this on, and
/// stops. Prints the name of each case as it starts, so a failure is easy to
/// place.
pub async fn run_all(store: cases::Store, except: &[&str]) {
    use futures_util::FutureExt as _;
    let all: Vec<(&str, futures_util::future::BoxFuture<'static, ()>)> = vec![
        (
            "create_never_overwrites",
            cases::create_never_overwrites(store.clone()).boxed(),
        ),
        (
            "load_returns_every_field",
            cases::load_returns_every_field(store.clone()).boxed(),
        ),
        (
            "load_of_unknown_key_is_none",
            cases::load_of_unknown_key_is_none(store.clone()).boxed(),
        ),
        (
            "save_is_compare_and_swap",
            cases::save_is_compare_and_swap(store.clone()).boxed(),
        ),
        (
            "save_replaces_every_field",
            cases::save_replaces_every_field(store.clone()).boxed(),
        ),
        (
            "save_never_resurrects_deleted",
            cases::save_never_resurrects_deleted(store.clone()).boxed(),
        ),
        (
            "shared_records_keep_the_contract_and_stay_isolated",
            cases::shared_records_keep_the_contract_and_stay_isolated(store.clone()).boxed(),
        ),
        (
            "in_process_answers_match_the_store",
            cases::in_process_answers_match_the_store(store.clone()).boxed(),
        ),
        (
            "unsaved_changes_stay_with_their_request",
            cases::unsaved_changes_stay_with_their_request(store.clone()).boxed(),
        ),
        (
            "touch_refreshes_times_only",
            cases::touch_refreshes_times_only(store.clone()).boxed(),
        ),
        (
            "touch_keeps_the_user_index_current",
            cases::touch_keeps_the_user_index_current(store.clone()).boxed(),
        ),
        (
            "delete_reports_presence",
            cases::delete_reports_presence(store.clone()).boxed(),
        ),
        (
            "list_by_user_lists_live_sessions_of_that_user_only",
            cases::list_by_user_lists_live_sessions_of_that_user_only(store.clone()).boxed(),
        ),
        (
            "user_change_moves_index_entry",
            cases::user_change_moves_index_entry(store.clone()).boxed(),
        ),
        (
            "delete_by_user_keeps_current",
            cases::delete_by_user_keeps_current(store.clone()).boxed(),
        ),
        (
            "sign_out_elsewhere_needs_the_kept_session",
            cases::sign_out_elsewhere_needs_the_kept_session(store.clone()).boxed(),
        ),
        (
            "racing_sign_outs_elsewhere_leave_one_session",
            cases::racing_sign_outs_elsewhere_leave_one_session(store.clone()).boxed(),
        ),
        (
            "revoking_a_device_needs_the_revoking_session",
            cases::revoking_a_device_needs_the_revoking_session(store.clone()).boxed(),
        ),
        (
            "purge_removes_only_expired_in_batches",
            cases::purge_removes_only_expired_in_batches(store.clone()).boxed(),
        ),
        (
            "records_over_the_size_limit_are_refused",
            cases::records_over_the_size_limit_are_refused(store.clone()).boxed(),
        ),
        (
            "concurrent_writers_of_distinct_keys_all_kept",
            cases::concurrent_writers_of_distinct_keys_all_kept(store.clone()).boxed(),
        ),
        (
            "concurrent_counter_updates_are_exact",
            cases::concurrent_counter_updates_are_exact(store.clone()).boxed(),
        ),
        (
            "concurrent_logout_is_not_undone",
            cases::concurrent_logout_is_not_undone(store.clone()).boxed(),
        ),
        (
            "regenerate_kills_old_id_and_keeps_data",
            cases::regenerate_kills_old_id_and_keeps_data(store.clone()).boxed(),
        ),
        (
            "regenerate_does_not_revive_an_ended_session",
            cases::regenerate_does_not_revive_an_ended_session(store.clone()).boxed(),
        ),
        (
            "regenerate_keeps_changes_saved_meanwhile",
            cases::regenerate_keeps_changes_saved_meanwhile(store.clone()).boxed(),
        ),
        (
            "logout_replay_is_refused",
            cases::logout_replay_is_refused(store.clone()).boxed(),
        ),
        (
            "idle_and_absolute_expiry_to_the_second",
            cases::idle_and_absolute_expiry_to_the_second(store.clone()).boxed(),
        ),
        (
            "anonymous_reads_create_nothing",
            cases::anonymous_reads_create_nothing(store.clone()).boxed(),
        ),
        (
            "devices_list_and_revoke_through_sessions",
            cases::devices_list_and_revoke_through_sessions(store.clone()).boxed(),
        ),
        (
            "sign_out_elsewhere_through_sessions",
            cases::sign_out_elsewhere_through_sessions(store.clone()).boxed(),
        ),
        (
            "sign_in_records_its_client",
            cases::sign_in_records_its_client(store.clone()).boxed(),
        ),
        (
            "device_binding_round_trips",
            cases::device_binding_round_trips(store.clone()).boxed(),
        ),
    ];
    for (name, case) in all {
        if except.contains(&name) {
            eprintln!("SKIPPED: conformance case {name} (this store opts out of it)");
            continue;
        }
        eprintln!("conformance case {name}");
        case.await;
    }
}

/// For tests that need an external server: when `LATCH_REQUIRE_BACKENDS=1` a
/// missing server fails the test; otherwise print a loud skip notice and return
/// `None`.
///
/// # Panics
/// When `LATCH_REQUIRE_BACKENDS=1` (as CI sets it).
pub fn skip_or_fail<T>(what: &str, why: &str) -> Option<T> {
    if std::env::var("LATCH_REQUIRE_BACKENDS").is_ok_and(|v| v == "1") {
        panic!("{what} is required (LATCH_REQUIRE_BACKENDS=1) but unavailable: {why}");
    }
    eprintln!(
        "SKIPPED: {what} unavailable ({why}); set LATCH_REQUIRE_BACKENDS=1 to make this a failure"
    );
    None
}

#[cfg(test)]
mod tests {
    /// The macro's list and the functions in `cases.rs` are the same set: a
    /// case written and not listed would never run.
    #[test]
    fn every_case_is_listed_once() {
        let cases: std::collections::BTreeSet<&str> = include_str!("cases.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("pub async fn "))
            .filter_map(|l| l.split_once('(').map(|(name, _)| name))
            .collect();
        let lib = include_str!("lib.rs");
        let list = &lib[lib
            .find("@cases $make; [$(stringify!($skip)),*];")
            .expect("the list")..];
        let list = &list[list.find(';').expect("list start") + 1..];
        let list =
            &list[list.find(';').expect("list start") + 1..list.find(");").expect("list end")];
        let listed: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let set: std::collections::BTreeSet<&str> = listed.iter().copied().collect();
        assert_eq!(set.len(), listed.len(), "a case listed twice: {listed:?}");
        assert_eq!(set, cases, "the macro's list and cases.rs differ");
        let run_all = &lib[lib.find("pub async fn run_all").expect("run_all")..];
        let run_all = &run_all[run_all.find("vec![").expect("its list")..];
        let run_all = &run_all[..run_all.find("];").expect("its end")];
        // Each case is called as `cases::name(store.clone())`, however
        // rustfmt lays the entries out.
        let in_run_all: std::collections::BTreeSet<&str> = run_all
            .split("cases::")
            .skip(1)
            .filter_map(|rest| rest.split_once('(').map(|(name, _)| name))
            .collect();
        assert_eq!(in_run_all, cases, "run_all's list and cases.rs differ");
    }
}
