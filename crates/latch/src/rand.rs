//! The one place latch draws randomness: the operating system's CSPRNG.
//!
//! Keys and AEAD nonces come straight from the OS ([`fill`]): one system
//! call each.
//!
//! Identifiers ([`fill_pooled`]: session IDs, CSRF secrets and masks, DBSC
//! tokens) come from the same OS output read 4 KiB at a time into a
//! per-thread pool, each byte handed out once and zeroed in the pool as it
//! goes. A `getrandom` call costs about 0.6 µs on the project's machine (a
//! virtual machine), a tenth of a whole request, and one per new session made
//! new sessions measurably slower than peers with a user-space generator.
//! There is no user-space generator here, so no seed to protect or reseed.
//! What a pool cannot survive is `fork` without `exec` (which tokio does not
//! support either): both halves would hand out the same bytes. For an
//! identifier that is harmless (stores create a session only if its ID is
//! absent, so a repeat is refused, never shared); for a nonce it would not be,
//! which is why nonces never come from the pool.

use std::cell::RefCell;

use zeroize::Zeroize as _;

/// Bytes read from the OS at a time.
const POOL_BYTES: usize = 4096;

/// Requests larger than this go to the OS directly.
const MAX_POOLED: usize = 256;

struct Pool {
    bytes: Box<[u8; POOL_BYTES]>,
    /// How many bytes from the start have been handed out (and zeroed).
    used: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool {
        bytes: Box::new([0; POOL_BYTES]),
        used: POOL_BYTES,
    });
}

/// Fill `buf` straight from the OS CSPRNG: for keys and nonces.
///
/// # Panics
/// When the OS has no usable random source. Continuing without randomness would
/// mint guessable keys and nonces, so failing loudly is the only safe answer.
pub(crate) fn fill(buf: &mut [u8]) {
    os_fill(buf);
}

/// Fill `buf` with OS CSPRNG output through this thread's pool: for
/// identifiers, never for nonces or keys (see the module docs).
///
/// # Panics
/// As [`fill`].
pub(crate) fn fill_pooled(buf: &mut [u8]) {
    if buf.len() > MAX_POOLED {
        return os_fill(buf);
    }
    let pooled = POOL.try_with(|pool| {
        let Ok(mut pool) = pool.try_borrow_mut() else {
            return false;
        };
        if POOL_BYTES - pool.used < buf.len() {
            os_fill(&mut pool.bytes[..]);
            pool.used = 0;
        }
        let start = pool.used;
        let end = start + buf.len();
        buf.copy_from_slice(&pool.bytes[start..end]);
        pool.bytes[start..end].zeroize();
        pool.used = end;
        true
    });
    // The thread is exiting (its pool is gone) or the pool is in use further
    // up this thread's stack: straight from the OS.
    if pooled != Ok(true) {
        os_fill(buf);
    }
}

fn os_fill(buf: &mut [u8]) {
    // OK because a platform without a CSPRNG cannot run latch safely at all.
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_handed_out_once_and_zeroed_in_the_pool() {
        let mut seen = std::collections::HashSet::new();
        // Across several refills, with odd sizes that straddle the boundary.
        for i in 0..2000 {
            let mut id = vec![0u8; 24 + i % 17];
            fill_pooled(&mut id);
            assert!(seen.insert(id), "a repeated draw");
        }
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert!(pool.bytes[..pool.used].iter().all(|&b| b == 0));
        });
        let mut big = vec![0u8; 4096];
        fill_pooled(&mut big);
        assert!(big.iter().any(|&b| b != 0));
    }

    #[test]
    fn threads_have_pools_of_their_own() {
        let draw = || {
            let mut b = [0u8; 32];
            fill_pooled(&mut b);
            b
        };
        let here = draw();
        let there = std::thread::spawn(draw).join().expect("thread");
        assert_ne!(here, there);
    }
}
