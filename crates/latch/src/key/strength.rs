//! Refusing weak secrets before they protect anything.
//!
//! A secret's real entropy cannot be measured from one sample, so this module
//! estimates an upper bound from what can be seen (length, alphabet, repetition,
//! distinct bytes) and refuses anything whose bound is under 256 bits, plus a list
//! of placeholder strings that tutorials and templates spread.

/// The strength every secret key must reach, in bits.
pub const MIN_BITS: u32 = 256;

/// Placeholders seen in tutorials, templates and framework docs, compared
/// case-insensitively after trimming. Long ones matter most: short ones are
/// refused for their length anyway, but are listed so the message names the cause.
const PLACEHOLDERS: &[&str] = &[
    "secret",
    "secret-key",
    "secret_key",
    "secretkey",
    "changeme",
    "change-me",
    "change_me",
    "changeit",
    "password",
    "dev",
    "development",
    "test",
    "testing",
    "default",
    "example",
    "insecure",
    "your-secret-key",
    "your_secret_key",
    "your-very-secure-secret-key",
    "your-super-secret-key",
    "super-secret-key",
    "supersecretkey",
    "mysecretkey",
    "my-secret-key",
    "keyboard cat",
    "replace-me",
    "replace-with-a-real-secret",
    "please-change-this-secret-key",
    "this-is-a-secret-key-that-should-be-changed",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "django-insecure-change-me-in-production-please-0123456789",
];

/// Why a secret was refused; rendered into the start-up error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Weakness {
    Placeholder,
    TooFewBits { estimated: u32 },
    TooFewDistinct { distinct: usize },
}

impl Weakness {
    pub(crate) fn describe(&self) -> String {
        match self {
            Weakness::Placeholder => "it is a well-known placeholder value".to_owned(),
            Weakness::TooFewBits { estimated } => format!(
                "it has at most about {estimated} bits of strength, and {MIN_BITS} are required"
            ),
            Weakness::TooFewDistinct { distinct } => {
                format!("it uses only {distinct} distinct bytes")
            }
        }
    }
}

/// Check `secret`; `Ok(estimated_bits)` when it is strong enough.
pub(crate) fn check(secret: &[u8]) -> Result<u32, Weakness> {
    if is_placeholder(secret) {
        return Err(Weakness::Placeholder);
    }
    let distinct = distinct_bytes(secret);
    if distinct < min_distinct(secret.len(), alphabet_size(secret)) {
        return Err(Weakness::TooFewDistinct { distinct });
    }
    let estimated = estimate_bits(secret);
    if estimated < MIN_BITS {
        return Err(Weakness::TooFewBits { estimated });
    }
    Ok(estimated)
}

fn is_placeholder(secret: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(secret) else {
        return false;
    };
    let text = text.trim();
    PLACEHOLDERS.iter().any(|p| p.eq_ignore_ascii_case(text))
}

fn distinct_bytes(secret: &[u8]) -> usize {
    let mut seen = [false; 256];
    for &b in secret {
        seen[usize::from(b)] = true;
    }
    seen.iter().filter(|s| **s).count()
}

/// Upper bound on the secret's entropy: the length of its shortest repeating unit
/// times the bits per symbol of the smallest alphabet that holds it.
fn estimate_bits(secret: &[u8]) -> u32 {
    let unit = shortest_period(secret);
    let bits_per_symbol = alphabet_bits(secret);
    let bits = unit as f64 * bits_per_symbol;
    // Saturating float-to-int cast is the intent here.
    bits.floor().min(f64::from(u32::MAX)) as u32
}

/// Half the distinct symbols a random string of `n` symbols drawn from an
/// alphabet of `k` shows on average (at least 4). A real random key falls below
/// it with negligible probability (64 random hex digits: expected 15.8 distinct,
/// threshold 7); a patterned one ("aaaa...", "abab...") falls far below.
fn min_distinct(n: usize, k: f64) -> usize {
    let n = i32::try_from(n).unwrap_or(i32::MAX);
    let expected = k * (1.0 - (1.0 - 1.0 / k).powi(n));
    // Truncation to a whole count is the intent.
    ((expected / 2.0).floor() as usize).max(4)
}

/// The size of the smallest usual alphabet that holds the secret.
fn alphabet_size(secret: &[u8]) -> f64 {
    alphabet_bits(secret).exp2()
}

fn alphabet_bits(secret: &[u8]) -> f64 {
    let all = |f: fn(&u8) -> bool| secret.iter().all(f);
    if all(u8::is_ascii_digit) {
        10f64.log2()
    } else if all(u8::is_ascii_hexdigit) {
        4.0
    } else if all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(b)) {
        6.0
    } else if all(|b| b.is_ascii_graphic() || *b == b' ') {
        // 95 printable characters.
        95f64.log2()
    } else {
        8.0
    }
}

/// The length of the shortest unit that the secret repeats at least twice
/// (the secret's length when it does not repeat). Only units up to half the
/// length count: a longer "period" is a chance match of a few characters.
fn shortest_period(secret: &[u8]) -> usize {
    let n = secret.len();
    (1..=n / 2)
        .find(|&p| secret.iter().skip(p).zip(secret).all(|(a, b)| a == b))
        .unwrap_or(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_raw_32_bytes_pass() {
        let key: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(97).wrapping_add(13))
            .collect();
        assert_eq!(check(&key), Ok(256));
    }

    #[test]
    fn hex_64_digits_pass_and_hex_48_fail() {
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(check(hex.as_bytes()), Ok(256));
        assert_eq!(
            check(&hex.as_bytes()[..48]),
            Err(Weakness::TooFewBits { estimated: 192 })
        );
    }

    #[test]
    fn base64_of_32_bytes_passes() {
        let b64 = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
        assert!(check(b64.as_bytes()).is_ok());
    }

    #[test]
    fn placeholders_refused_case_insensitively() {
        for p in ["secret", "CHANGEME", "Your-Very-Secure-Secret-Key", " dev "] {
            assert_eq!(check(p.as_bytes()), Err(Weakness::Placeholder), "{p}");
        }
    }

    #[test]
    fn long_placeholder_refused_despite_length() {
        let p = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(check(p.as_bytes()), Err(Weakness::Placeholder));
    }

    #[test]
    fn repeated_pattern_refused() {
        let s = "k3Y!q9#Lz7&Wm2^PaB".repeat(4);
        assert!(check(s.as_bytes()).is_err());
        // Enough distinct digits for 64 hex, but a 32-digit unit repeated.
        let hex = "9f86d081884c7d659a2feaa0c55ad015".repeat(2);
        assert_eq!(
            check(hex.as_bytes()),
            Err(Weakness::TooFewBits { estimated: 128 })
        );
    }

    #[test]
    fn few_distinct_bytes_refused() {
        let s = "ab".repeat(40);
        assert_eq!(
            check(s.as_bytes()),
            Err(Weakness::TooFewDistinct { distinct: 2 })
        );
    }

    #[test]
    fn random_keys_in_every_encoding_pass() {
        use base64::Engine as _;
        // 100,000 draws: a threshold that refused one random key in 50,000
        // would fail here most of the time.
        for _ in 0..100_000 {
            let mut raw = [0u8; 32];
            crate::rand::fill(&mut raw);
            let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
            for key in [&raw[..], hex.as_bytes(), b64.as_bytes()] {
                assert!(check(key).is_ok(), "random key refused: {:?}", check(key));
            }
        }
    }

    #[test]
    fn short_passphrase_refused() {
        assert!(matches!(
            check(b"correct horse battery staple"),
            Err(Weakness::TooFewBits { .. })
        ));
    }
}
