//! The one place latch draws randomness: the operating system's CSPRNG.
//!
//! Keys come straight from the OS ([`fill`]): one system call each.
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
//! absent, so a repeat is refused, never shared).
//!
//! For an AEAD nonce a repeat would not be harmless: two different messages
//! sealed under one key and nonce give away their XOR and the authenticator's
//! key. Cookie nonces therefore come from a [`NonceSource`]: 16 pooled bytes
//! *and the whole message* (associated data and plaintext) through a keyed
//! PRF, HMAC-SHA256 under a key of its own. In the normal case the pooled bytes
//! are fresh and the nonce is as random as one read from the OS. If they ever
//! repeat (a fork), the nonce still differs for any different message, and the
//! same message gives the same ciphertext: an observer learns only that two
//! cookies are equal. This is the synthetic-IV idea (RFC 5297) used as a
//! hedge, so no state of this process can make a nonce repeat for different
//! messages. Messages over 512 bytes, where hashing costs more than a system
//! call, take their nonce from the OS directly, as every nonce did before.

use std::cell::RefCell;
use std::sync::OnceLock;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;
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

/// Fill `buf` straight from the OS CSPRNG: for keys.
///
/// # Panics
/// When the OS has no usable random source. Continuing without randomness would
/// mint guessable keys and nonces, so failing loudly is the only safe answer.
pub(crate) fn fill(buf: &mut [u8]) {
    os_fill(buf);
}

/// Fill `buf` with OS CSPRNG output through this thread's pool: for
/// identifiers, never for keys; nonces go through a [`NonceSource`] (see the
/// module docs).
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

/// Pooled random bytes per nonce, fed to the PRF beside the message.
const NONCE_SEED: usize = 16;

/// The largest plaintext whose nonce goes through the PRF. Hashing grows
/// with the message and the `getrandom` call it saves does not (about
/// 0.45 µs of CPU on the project's machine): in the micro-benchmark, sealing
/// 100 bytes got cheaper with the PRF and sealing 2600 bytes dearer, so
/// messages past this size take their nonce from the OS.
const HEDGE_MAX: usize = 512;

/// AEAD nonces that never repeat for two different messages under one key,
/// even if the random pool did (see the module docs).
pub(crate) struct NonceSource {
    /// HMAC-SHA256 keyed once (its key schedule absorbed), cloned per nonce.
    prf: Hmac<Sha256>,
    /// The PRF with the first associated data it saw already absorbed: a
    /// codec seals nearly always for one cookie name, so each nonce then
    /// costs only the blocks of its seed and plaintext.
    bound: OnceLock<Bound>,
}

/// The keyed PRF after one associated data, padded to whole blocks.
struct Bound {
    aad: Box<[u8]>,
    prf: Hmac<Sha256>,
}

/// SHA-256's block size, to which the associated data is padded.
const BLOCK: usize = 64;

impl NonceSource {
    /// A source keyed with `key`, which must be used for nothing else (derive
    /// it for this job alone).
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self {
            // OK because HMAC accepts keys of any length.
            prf: Hmac::new_from_slice(key).expect("HMAC takes any key size"),
            bound: OnceLock::new(),
        }
    }

    /// Fill `nonce` (at most 32 bytes) for sealing `plain` with the
    /// associated data `aad`.
    pub(crate) fn fill(&self, nonce: &mut [u8], aad: &[u8], plain: &[u8]) {
        if plain.len() > HEDGE_MAX {
            // Hashing a large message costs more than a system call: take
            // the nonce straight from the OS, fresh every time.
            return os_fill(nonce);
        }
        let mut seed = [0u8; NONCE_SEED];
        fill_pooled(&mut seed);
        self.derive(&seed, nonce, aad, plain);
        seed.zeroize();
    }

    /// The nonce for `seed` and the message: a function of all three.
    ///
    /// The PRF reads `len(aad) | aad | zeros to a whole block | seed |
    /// plain`. The encoding is unambiguous, so no two different messages
    /// feed it the same bytes: `len(aad)` fixes where the associated data
    /// and its padding end, the seed has a fixed length, and the plaintext
    /// is the rest (HMAC takes input of any length; SHA-256's own padding
    /// encodes the total). An earlier version also wrote `len(plain)`: it
    /// added nothing, and its 8 bytes pushed a small session's input (seed
    /// and a 30-byte payload) into a second SHA-256 block.
    fn derive(&self, seed: &[u8; NONCE_SEED], nonce: &mut [u8], aad: &[u8], plain: &[u8]) {
        let mut prf = self.with_aad(aad);
        prf.update(seed);
        prf.update(plain);
        let out = prf.finalize().into_bytes();
        nonce.copy_from_slice(&out[..nonce.len()]);
    }

    /// The keyed PRF with `aad` absorbed, prepared once for the first `aad`.
    fn with_aad(&self, aad: &[u8]) -> Hmac<Sha256> {
        let bound = self.bound.get_or_init(|| Bound {
            aad: aad.into(),
            prf: self.absorb(aad),
        });
        if *bound.aad == *aad {
            bound.prf.clone()
        } else {
            self.absorb(aad)
        }
    }

    fn absorb(&self, aad: &[u8]) -> Hmac<Sha256> {
        let mut head = Vec::with_capacity((8 + aad.len()).next_multiple_of(BLOCK));
        head.extend_from_slice(&(aad.len() as u64).to_be_bytes());
        head.extend_from_slice(aad);
        head.resize(head.len().next_multiple_of(BLOCK), 0);
        let mut prf = self.prf.clone();
        prf.update(&head);
        prf
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

    fn source() -> NonceSource {
        NonceSource::new(&[7; 32])
    }

    #[test]
    fn nonces_are_fresh_for_the_same_message() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let mut nonce = [0u8; 24];
            source().fill(&mut nonce, b"aad", b"the same message");
            assert!(seen.insert(nonce), "a repeated nonce");
        }
    }

    #[test]
    fn large_messages_get_fresh_nonces_from_the_os() {
        let big = vec![1u8; HEDGE_MAX + 1];
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            let mut nonce = [0u8; 12];
            source().fill(&mut nonce, b"aad", &big);
            assert!(seen.insert(nonce), "a repeated nonce");
        }
    }

    #[test]
    fn a_repeated_seed_still_gives_different_messages_different_nonces() {
        // What a fork could do to the pool: the same seed twice.
        let seed = [42u8; NONCE_SEED];
        let source = source();
        let nonce = |aad: &[u8], plain: &[u8]| {
            let mut n = [0u8; 12];
            source.derive(&seed, &mut n, aad, plain);
            n
        };
        // The first call prepares the PRF for "name"; later ones reuse it.
        let base = nonce(b"name", b"plain");
        assert_ne!(base, nonce(b"name", b"plaiN"), "plaintext");
        assert_ne!(base, nonce(b"other", b"plain"), "associated data");
        // Moving bytes between the two is a different message too.
        assert_ne!(base, nonce(b"nam", b"eplain"), "boundaries");
        // Zeros that look like padding are still part of the message.
        assert_ne!(base, nonce(b"name\0", b"plain"), "padding");
        // A plaintext that is a prefix of another is another message.
        assert_ne!(base, nonce(b"name", b"plain\0"), "trailing zero");
        assert_ne!(base, nonce(b"name", b"plai"), "prefix");
        // The same message under the same seed: the same nonce, so the same
        // ciphertext, which reveals only that the two are equal.
        assert_eq!(base, nonce(b"name", b"plain"));
        // The prepared state and a fresh one agree.
        let mut fresh = [0u8; 12];
        NonceSource::new(&[7; 32]).derive(&seed, &mut fresh, b"name", b"plain");
        assert_eq!(base, fresh);
        // Another key, another nonce.
        let mut other = [0u8; 12];
        NonceSource::new(&[8; 32]).derive(&seed, &mut other, b"name", b"plain");
        assert_ne!(base, other);
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
