//! The example store against latch's conformance suite. Without a per-user
//! index it opts out of the cases that need one, by name; every other case
//! runs.

use std::sync::Arc;

use latch::SessionStore;
use latch_example_custom_store::MapStore;

async fn make() -> Option<Arc<dyn SessionStore>> {
    Some(Arc::new(MapStore::default()))
}

latch_conformance::store_conformance!(make; except: [
    touch_keeps_the_user_index_current,
    list_by_user_lists_live_sessions_of_that_user_only,
    user_change_moves_index_entry,
    delete_by_user_keeps_current,
    sign_out_elsewhere_needs_the_kept_session,
    racing_sign_outs_elsewhere_leave_one_session,
    revoking_a_device_needs_the_revoking_session,
    devices_list_and_revoke_through_sessions,
    sign_out_elsewhere_through_sessions,
    sign_in_records_its_client,
]);
