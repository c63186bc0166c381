//! Refusing weak secrets before they protect anything.
//!
//! A secret's real entropy cannot be measured from one sample, so this module
//! estimates an upper bound from what can be seen (length, alphabet, repetition,
//! distinct bytes) and refuses anything whose bound is under 256 bits, plus a list
//! of placeholder strings that tutorials and templates spread.
//!
//! That bound is blind to meaning: `The quick brown fox jumps over the lazy dog`
//! has 43 characters from a 95-symbol alphabet, so it "holds" 282 bits, and a
//! cookie forged under it signed in as any user. So a key that reads as text is
//! judged a second time, by how many guesses a pattern-aware attacker needs
//! ([`zxcvbn`]: dictionary words, sequences, keyboard patterns, dates, repeats).
//! zxcvbn was made for passwords: its counts saturate at 2^64 and it charges
//! only ten guesses per unmatched character, so it is run on the key's words
//! (split at separators, digit/letter and lower/upper-case boundaries, at most
//! 16 characters each), unmatched characters are charged at the key's alphabet,
//! and the estimate is applied only when most of the key (60 %) is covered by
//! patterns. Keys made by a random generator never come close to that: over
//! 100,000 random 32-byte keys each in base64 and in printable ASCII, at most
//! 40 % of a key was ever covered (by short accidental words). Hex keys are not
//! judged this way (digits and `a`-`f` form dates and sequences by chance) and
//! have no room for words anyway.

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

/// Texts published in docs and tutorials, or famous enough to be tried
/// first, compared after lower-casing and dropping everything but letters and
/// digits; a key that contains one is refused.
const PUBLISHED_TEXTS: &[&str] = &[
    "thequickbrownfoxjumpsoverthelazydog",
    "loremipsumdolorsitamet",
    "correcthorsebatterystaple",
    "keyboardcat",
    "itsasecrettoeverybody",
    "pleasechangeme",
    "thisisasecret",
    "thisismysecret",
    "notasecret",
];

/// The share of a text key that patterns must cover before the
/// pattern-aware estimate applies.
const TEXT_COVERAGE: f64 = 0.6;

/// Longest piece given to zxcvbn at once: its guess counts saturate at 2^64.
const MAX_PIECE: usize = 16;

/// Why a secret was refused; rendered into the start-up error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Weakness {
    Placeholder,
    TooFewBits { estimated: u32 },
    TooFewDistinct { distinct: usize },
    Guessable { estimated: u32 },
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
            Weakness::Guessable { estimated } => format!(
                "it reads as words or a pattern (dictionary words, sequences, keyboard rows, \
                 a published text), which an attacker tries long before random strings: about \
                 {estimated} bits of strength, and {MIN_BITS} are required. A key must be \
                 random, not made up"
            ),
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
    if let Some(guessable) = text_estimate(secret).filter(|bits| *bits < MIN_BITS) {
        return Err(Weakness::Guessable {
            estimated: guessable,
        });
    }
    Ok(estimated)
}

fn is_placeholder(secret: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(secret) else {
        return false;
    };
    let text = text.trim();
    if PLACEHOLDERS.iter().any(|p| p.eq_ignore_ascii_case(text)) {
        return true;
    }
    let folded: String = text
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    PUBLISHED_TEXTS.iter().any(|t| folded.contains(t))
}

/// The pattern-aware estimate in bits of a key that reads as text; `None`
/// for keys that do not (not UTF-8, hex, or mostly not covered by patterns).
fn text_estimate(secret: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(secret).ok()?;
    if text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let per_char = alphabet_bits(secret);
    let length = text.chars().count();
    // Separators between words: which one, of a few.
    let separators = text.chars().filter(|c| !c.is_alphanumeric()).count();
    let mut bits = 2.0 * separators as f64;
    let mut covered = 0;
    for piece in pieces(text) {
        let guess = zxcvbn::zxcvbn(piece, &[]);
        for part in guess.sequence() {
            let len = part.token.chars().count();
            let brute = len as f64 * per_char;
            if matches!(
                part.pattern,
                zxcvbn::matching::patterns::MatchPattern::BruteForce
            ) {
                bits += brute;
            } else {
                covered += len;
                let guesses = part.guesses.unwrap_or(1).max(1) as f64;
                bits += guesses.log2().min(brute);
            }
        }
    }
    let reads_as_text = covered as f64 >= TEXT_COVERAGE * length as f64;
    // Saturating float-to-int cast is the intent here.
    reads_as_text.then(|| bits.floor().min(f64::from(u32::MAX)) as u32)
}

/// The key's words: runs of letters and digits, split where digits and
/// letters meet, where a lower-case letter meets an upper-case one, and every
/// [`MAX_PIECE`] characters.
fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let boundary = match (prev, c.is_alphanumeric()) {
            (_, false) => {
                if let Some(s) = start.take() {
                    out.push(&text[s..i]);
                }
                prev = None;
                continue;
            }
            (Some(p), true) => {
                p.is_numeric() != c.is_numeric() || (p.is_lowercase() && c.is_uppercase())
            }
            (None, true) => false,
        };
        let too_long = start.is_some_and(|s| text[s..i].chars().count() >= MAX_PIECE);
        if boundary || too_long {
            if let Some(s) = start.take() {
                out.push(&text[s..i]);
            }
        }
        start.get_or_insert(i);
        prev = Some(c);
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
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
        // 100,000 draws of the length and alphabet rules: a threshold that
        // refused one random key in 50,000 would fail here most of the time.
        for _ in 0..100_000 {
            let mut raw = [0u8; 32];
            crate::rand::fill(&mut raw);
            let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
            for key in [&raw[..], hex.as_bytes(), b64.as_bytes()] {
                assert!(
                    estimate_bits(key) >= MIN_BITS,
                    "random key refused: {:?}",
                    check(key)
                );
            }
        }
        // The whole check, pattern estimate included, on fewer draws (it is
        // slower; the module docs give the 100,000-draw figures).
        for _ in 0..2_000 {
            let mut raw = [0u8; 32];
            crate::rand::fill(&mut raw);
            let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
            let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
            let mut more = [0u8; 40];
            crate::rand::fill(&mut more);
            let printable: String = more.iter().map(|b| char::from(b'!' + b % 94)).collect();
            for key in [b64.as_bytes(), url.as_bytes(), printable.as_bytes()] {
                assert!(check(key).is_ok(), "random key refused: {:?}", check(key));
            }
        }
    }

    #[test]
    fn keys_that_read_as_words_or_patterns_are_refused() {
        for key in [
            // Each passes the length and alphabet rules alone.
            "The quick brown fox jumps over the lazy dog",
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "qwertyuiopasdfghjklzxcvbnmQWERTYUIOPASDFGHJKLZXCVBNM1234567890",
            "ThisIsMyVerySecretKeyForSigningCookiesInProduction2024!",
            "my-super-long-and-very-secret-session-signing-key-do-not-share",
            "correct horse battery staple correct horse battery staple",
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod",
            "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p1qaz2wsx3edc4rfv5tgb6yhnQ",
        ] {
            let verdict = check(key.as_bytes());
            assert!(
                matches!(
                    verdict,
                    Err(Weakness::Guessable { .. } | Weakness::Placeholder)
                ),
                "{key:?} accepted: {verdict:?}"
            );
        }
    }

    #[test]
    fn the_refusal_says_why_and_how_to_fix_it() {
        let err = Weakness::Guessable { estimated: 72 }.describe();
        assert!(err.contains("reads as words or a pattern"), "{err}");
        assert!(err.contains("72 bits"), "{err}");
    }

    #[test]
    fn pieces_split_at_separators_case_and_digits() {
        assert_eq!(
            pieces("myKey-2024 abcdefghijklmnopqrs"),
            ["my", "Key", "2024", "abcdefghijklmnop", "qrs"]
        );
    }

    #[test]
    fn short_passphrase_refused() {
        assert!(matches!(
            check(b"correct horse battery staple"),
            Err(Weakness::TooFewBits { .. } | Weakness::Placeholder)
        ));
        assert!(matches!(
            check(b"purple monkey dishwasher kettle"),
            Err(Weakness::TooFewBits { .. })
        ));
    }
}
