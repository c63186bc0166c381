//! The one place latch draws randomness: the operating system's CSPRNG.

/// Fill `buf` from the OS CSPRNG.
///
/// # Panics
/// When the OS has no usable random source. Continuing without randomness would
/// mint guessable session IDs and nonces, so failing loudly is the only safe answer.
pub(crate) fn fill(buf: &mut [u8]) {
    // OK because a platform without a CSPRNG cannot run latch safely at all.
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}
