//! Sign-in throttling (A7): attempts per account and per client address,
//! counted in the session store so every instance of the demo shares them.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use latch::SessionStore;
use latch::throttle::{Throttle, Verdict};

/// How many sign-in attempts one account gets per window. A successful
/// sign-in forgives the account's attempts.
pub const PER_ACCOUNT: u32 = 5;

/// How many sign-in attempts one client address (an IPv6 /64) gets per window,
/// whatever the accounts; successes count too, so a guesser with an account
/// of their own cannot reset it.
pub const PER_CLIENT: u32 = 20;

/// The throttling window.
pub const WINDOW: Duration = Duration::from_secs(300);

/// The two throttles every sign-in attempt passes.
#[derive(Debug, Clone)]
pub struct SignInLimits {
    account: Throttle,
    client: Throttle,
}

impl SignInLimits {
    /// Throttles with the given limits per [`WINDOW`], counted in `store`.
    ///
    /// # Errors
    /// A limit of zero.
    pub fn new(
        store: Arc<dyn SessionStore>,
        per_account: u32,
        per_client: u32,
    ) -> latch::Result<Self> {
        Ok(Self {
            account: Throttle::new("demo/sign-in/account", per_account, WINDOW, store.clone())?,
            client: Throttle::new("demo/sign-in/client", per_client, WINDOW, store)?,
        })
    }

    /// Count an attempt at `account` from `client`; `Some(wait)` when it must
    /// be refused. A client over its limit is refused without counting
    /// against the account, so one guesser cannot lock an account out.
    ///
    /// # Errors
    /// A store failure (answer 503: fail closed).
    pub async fn attempt(
        &self,
        account: &str,
        client: Option<IpAddr>,
    ) -> latch::Result<Option<Duration>> {
        for (throttle, subject) in [
            (&self.client, client_subject(client)),
            (&self.account, account.to_owned()),
        ] {
            if let Verdict::Throttled { retry_after } = throttle.hit(&subject).await? {
                return Ok(Some(retry_after));
            }
        }
        Ok(None)
    }

    /// Forgive the account's attempts after a successful sign-in.
    ///
    /// # Errors
    /// A store failure.
    pub async fn succeeded(&self, account: &str) -> latch::Result<()> {
        self.account.forgive(account).await
    }
}

/// The address a client is counted under, for throttling and connection
/// limits: the address itself for IPv4, its /64 network for IPv6 (one
/// subscriber gets a whole /64 to pick addresses from).
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
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
}
