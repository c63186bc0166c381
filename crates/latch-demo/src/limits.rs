//! Throttling what a client can make the demo do (A6, A7): sign-in attempts per
//! account and per client address, sign-ups and new sessions per client
//! address, all counted in the session store so every instance of the demo
//! shares them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use latch::SessionStore;
use latch::throttle::{Throttle, Verdict};

use crate::known_browsers::KnownBrowser;

/// How many sign-in attempts one account gets per window. A successful
/// sign-in forgives the account's attempts.
pub const PER_ACCOUNT: u32 = 5;

/// How many sign-in attempts one known browser gets per window for the
/// account it knows, counted apart from the account's
/// ([`crate::known_browsers`]): as strict, but strangers cannot spend them.
pub const PER_KNOWN_BROWSER: u32 = PER_ACCOUNT;

/// How many sign-in attempts one client address (an IPv6 /64) gets per window,
/// whatever the accounts; successes count too, so a guesser with an account
/// of their own cannot reset it.
pub const PER_CLIENT: u32 = 20;

/// How many accounts one client address may create per window (each costs a
/// password hash, and a name lookup that says whether it is taken).
pub const SIGN_UPS_PER_CLIENT: u32 = 10;

/// How many new sessions one client address may make per window by writing
/// without a session cookie: bounds the rows an anonymous flood leaves behind
/// (each up to the scratch map's size, kept until the idle timeout).
pub const NEW_SESSIONS_PER_CLIENT: u32 = 100;

/// The throttling window.
pub const WINDOW: Duration = Duration::from_secs(300);

/// The throttles of the demo.
#[derive(Debug, Clone)]
pub struct Limits {
    account: Throttle,
    browser: Throttle,
    client: Throttle,
    sign_up: Throttle,
    new_session: Throttle,
}

impl Limits {
    /// The throttles with their default limits per [`WINDOW`], counted in
    /// `store`, but `new_sessions` new sessions per client.
    ///
    /// # Errors
    /// A limit of zero.
    pub fn new(store: Arc<dyn SessionStore>, new_sessions: u32) -> latch::Result<Self> {
        let throttle = |name, limit| Throttle::new(name, limit, WINDOW, Arc::clone(&store));
        Ok(Self {
            account: throttle("demo/sign-in/account", PER_ACCOUNT)?,
            browser: throttle("demo/sign-in/known-browser", PER_KNOWN_BROWSER)?,
            client: throttle("demo/sign-in/client", PER_CLIENT)?,
            sign_up: throttle("demo/sign-up/client", SIGN_UPS_PER_CLIENT)?,
            new_session: throttle("demo/new-session/client", new_sessions)?,
        })
    }

    /// Count an attempt at `account` from `client`, made by `browser` when
    /// it is known for that account; `Some(wait)` when it must be refused.
    ///
    /// A client over its limit is refused without counting against the
    /// account, so one guesser cannot lock an account out. A known browser's
    /// attempts are counted against that browser instead of the account
    /// (just as strictly), so strangers who spend the account's attempts,
    /// from however many addresses, do not lock its owner out of the
    /// browsers they signed in with (attack round ten).
    ///
    /// Both limits are checked before either is counted, so an attempt that
    /// is refused anyway writes nothing: a flood at an account already locked,
    /// from ever new addresses, had left one counter per address behind
    /// (94,000 in 20 s, which filled the memory store and denied everyone's
    /// sign-in).
    ///
    /// # Errors
    /// A store failure (answer 503: fail closed).
    pub async fn attempt(
        &self,
        account: &str,
        client: Option<IpAddr>,
        browser: Option<&KnownBrowser>,
    ) -> latch::Result<Option<Duration>> {
        let client = client_subject(client);
        let both = [
            (&self.client, client.as_str()),
            self.sign_in_counter(account, browser),
        ];
        for (throttle, subject) in both {
            if let Some(retry_after) = wait(throttle.check(subject).await?) {
                return Ok(Some(retry_after));
            }
        }
        for (throttle, subject) in both {
            if let Some(retry_after) = wait(throttle.hit(subject).await?) {
                return Ok(Some(retry_after));
            }
        }
        Ok(None)
    }

    /// Forgive the attempts counted for a successful sign-in: the account's,
    /// or the known browser's that made it.
    ///
    /// # Errors
    /// A store failure.
    pub async fn succeeded(
        &self,
        account: &str,
        browser: Option<&KnownBrowser>,
    ) -> latch::Result<()> {
        let (throttle, subject) = self.sign_in_counter(account, browser);
        throttle.forgive(subject).await
    }

    /// Take back an attempt that was never checked (every hasher was busy):
    /// a flood that starves the hashers must not lock anybody's account.
    ///
    /// # Errors
    /// A store failure.
    pub async fn not_checked(
        &self,
        account: &str,
        client: Option<IpAddr>,
        browser: Option<&KnownBrowser>,
    ) -> latch::Result<()> {
        let (throttle, subject) = self.sign_in_counter(account, browser);
        throttle.release(subject).await?;
        self.client.release(&client_subject(client)).await
    }

    /// The throttle and subject a sign-in at `account` is counted under
    /// besides its client's: `browser`'s own when it is known, else the
    /// account's, shared by every stranger.
    fn sign_in_counter<'a>(
        &'a self,
        account: &'a str,
        browser: Option<&'a KnownBrowser>,
    ) -> (&'a Throttle, &'a str) {
        match browser {
            Some(known) => (&self.browser, known.subject.as_str()),
            None => (&self.account, account),
        }
    }

    /// Count a sign-up from `client`; `Some(wait)` when it must be refused.
    ///
    /// # Errors
    /// A store failure (answer 503: fail closed).
    pub async fn sign_up(&self, client: Option<IpAddr>) -> latch::Result<Option<Duration>> {
        Ok(wait(self.sign_up.hit(&client_subject(client)).await?))
    }

    /// Take back a sign-up counted by [`sign_up`](Self::sign_up) that was
    /// never made (every hasher was busy).
    ///
    /// # Errors
    /// A store failure.
    pub async fn no_sign_up(&self, client: Option<IpAddr>) -> latch::Result<()> {
        self.sign_up.release(&client_subject(client)).await
    }

    /// Take back a new session counted by [`new_session`](Self::new_session)
    /// that the store did not make after all.
    ///
    /// # Errors
    /// A store failure.
    pub async fn no_new_session(&self, client: Option<IpAddr>) -> latch::Result<()> {
        self.new_session.release(&client_subject(client)).await
    }

    /// Count a new session made by `client`; `Some(wait)` when it must be
    /// refused.
    ///
    /// # Errors
    /// A store failure (answer 503: fail closed).
    pub async fn new_session(&self, client: Option<IpAddr>) -> latch::Result<Option<Duration>> {
        Ok(wait(self.new_session.hit(&client_subject(client)).await?))
    }
}

/// The address a client is counted under, for throttling and connection
/// limits: the address itself for IPv4, its /64 network for IPv6 (one
/// subscriber gets a whole /64 to pick addresses from). An IPv4 client of a
/// dual-stack listener arrives as `::ffff:a.b.c.d` and is counted as the IPv4
/// address it is (not in one /64 with every other IPv4 client).
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        v4 @ IpAddr::V4(_) => v4,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
    }
}

fn wait(verdict: Verdict) -> Option<Duration> {
    match verdict {
        Verdict::Throttled { retry_after } => Some(retry_after),
        Verdict::Allowed { .. } => None,
    }
}

fn client_subject(client: Option<IpAddr>) -> String {
    client.map_or_else(|| "unknown".to_owned(), |ip| client_network(ip).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_subject(Some(a)), client_subject(Some(b)));
        assert_ne!(client_subject(Some(a)), client_subject(Some(other)));
        assert_eq!(client_subject(Some([10, 0, 0, 1].into())), "10.0.0.1");
    }

    #[tokio::test]
    async fn attempts_the_server_never_checked_do_not_lock_an_account() {
        // The attack: a flood of sign-ups starved the hashers, the victim's
        // sign-ins got 503, and those counted until the account was locked.
        let limits = Limits::new(Arc::new(latch::MemoryStore::new()), 10).unwrap();
        let client = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..PER_ACCOUNT * 2 {
            assert_eq!(limits.attempt("vic", client, None).await.unwrap(), None);
            limits.not_checked("vic", client, None).await.unwrap();
        }
        assert_eq!(limits.attempt("vic", client, None).await.unwrap(), None);
    }

    #[tokio::test]
    async fn attempts_refused_anyway_store_nothing() {
        let store = Arc::new(latch::MemoryStore::new());
        let limits = Limits::new(store.clone(), 10).unwrap();
        let first: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..PER_ACCOUNT {
            assert_eq!(
                limits.attempt("vic", Some(first), None).await.unwrap(),
                None
            );
        }
        let counters = store.len();
        // The account is locked: attempts from a thousand new addresses are
        // refused without a counter for any of them.
        for i in 0..1000u32 {
            let client = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(
                limits
                    .attempt("vic", Some(client), None)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        assert_eq!(store.len(), counters);
    }

    #[tokio::test]
    async fn attempts_never_checked_leave_no_counters() {
        // The flood of attack round nine: made-up accounts from ever new
        // addresses while every hasher is busy (each answered 503 and taken
        // back) had left two counters per request.
        let store = Arc::new(latch::MemoryStore::new());
        let limits = Limits::new(store.clone(), 10).unwrap();
        for i in 0..500u32 {
            let client = Some(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
            let account = format!("made-up-{i}");
            assert_eq!(limits.attempt(&account, client, None).await.unwrap(), None);
            limits.not_checked(&account, client, None).await.unwrap();
            assert_eq!(limits.sign_up(client).await.unwrap(), None);
            limits.no_sign_up(client).await.unwrap();
            assert_eq!(limits.new_session(client).await.unwrap(), None);
            limits.no_new_session(client).await.unwrap();
        }
        assert!(store.is_empty(), "{} counters left", store.len());
    }

    #[tokio::test]
    async fn a_known_browser_has_attempts_of_its_own() {
        // Attack round ten: strangers spent the account's attempts and its
        // owner's right password was refused from every address.
        let limits = Limits::new(Arc::new(latch::MemoryStore::new()), 10).unwrap();
        let owner = KnownBrowser {
            subject: "owner's browser".to_owned(),
        };
        let at = |i: u32| Some(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        for i in 0..PER_ACCOUNT {
            assert_eq!(limits.attempt("vic", at(i), None).await.unwrap(), None);
        }
        assert!(limits.attempt("vic", at(99), None).await.unwrap().is_some());
        // The owner's browser is not held up, and its attempts are capped too.
        for _ in 0..PER_KNOWN_BROWSER {
            let made = limits.attempt("vic", at(100), Some(&owner)).await.unwrap();
            assert_eq!(made, None);
        }
        let refused = limits.attempt("vic", at(100), Some(&owner)).await.unwrap();
        assert!(refused.is_some(), "a known browser guessed without limit");
        // Its success, or an attempt never checked, forgives its count alone.
        limits.succeeded("vic", Some(&owner)).await.unwrap();
        assert!(
            limits
                .attempt("vic", at(101), None)
                .await
                .unwrap()
                .is_some()
        );
        let made = limits.attempt("vic", at(100), Some(&owner)).await.unwrap();
        assert_eq!(made, None);
        limits
            .not_checked("vic", at(100), Some(&owner))
            .await
            .unwrap();
        let other = KnownBrowser {
            subject: "another browser".to_owned(),
        };
        assert_eq!(
            limits.attempt("vic", at(102), Some(&other)).await.unwrap(),
            None
        );
    }

    #[test]
    fn ipv4_clients_of_a_dual_stack_listener_are_counted_apart() {
        // The attack: with `--listen [::]:PORT`, every IPv4 client shared one
        // /64 (::ffff:0:0/64), so 20 addresses locked out every IPv4 user.
        let a: IpAddr = "::ffff:127.0.90.1".parse().unwrap();
        let b: IpAddr = "::ffff:127.0.90.2".parse().unwrap();
        assert_eq!(client_network(a), IpAddr::from([127, 0, 90, 1]));
        assert_ne!(client_network(a), client_network(b));
        assert_ne!(client_network(a), client_network("::1".parse().unwrap()));
    }
}
