//! Guessing what a cookie is from its name and value: whether it looks like a
//! session, and how many bits its value could carry at most.

/// Name fragments that mark session and login cookies (`PHPSESSID`,
/// `connect.sid`, `auth_token`, `wordpress_logged_in`, `remember_me`, ...), matched case-insensitively.
const SESSION_HINTS: &[&str] = &[
    "sess", "sid", "auth", "token", "jwt", "login", "logged", "remember",
];

/// Anti-CSRF cookies (`csrftoken`, `XSRF-TOKEN`) are often meant to be read by
/// the page's JavaScript, so they are never taken for sessions.
const NOT_SESSION: &[&str] = &["csrf", "xsrf"];

/// A value this long and random-looking is taken for a session token whatever
/// the name: 22 base64 characters, 32 hex digits, hold about 128 bits.
const RANDOM_MIN_CHARS: usize = 22;

/// The smallest alphabet a value fits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    /// `0-9`.
    Digits,
    /// `0-9a-f` (either case).
    Hex,
    /// `0-9a-z` or `0-9A-Z`.
    Base36,
    /// `0-9a-zA-Z`.
    Base62,
    /// Base64 or base64url (padding ignored).
    Base64,
    /// Anything else.
    Other,
}

impl Alphabet {
    /// The alphabet of `value` (the empty value counts as digits: it carries nothing).
    pub fn of(value: &str) -> Self {
        let all = |f: fn(&char) -> bool| value.chars().all(|c| f(&c));
        if all(char::is_ascii_digit) {
            Alphabet::Digits
        } else if all(char::is_ascii_hexdigit) {
            Alphabet::Hex
        } else if all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
            || all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        {
            Alphabet::Base36
        } else if all(char::is_ascii_alphanumeric) {
            Alphabet::Base62
        } else if all(|c| c.is_ascii_alphanumeric() || "+/-_".contains(*c)) {
            Alphabet::Base64
        } else {
            Alphabet::Other
        }
    }

    /// Bits one character can carry.
    fn bits_per_char(self) -> f64 {
        match self {
            Alphabet::Digits => 10f64.log2(),
            Alphabet::Hex => 4.0,
            Alphabet::Base36 => 36f64.log2(),
            Alphabet::Base62 => 62f64.log2(),
            Alphabet::Base64 => 6.0,
            // The 94 printable ASCII characters.
            Alphabet::Other => 94f64.log2(),
        }
    }
}

/// The most bits `value` can carry: its length times the bits per character of
/// its alphabet. An upper bound: a value that is not uniformly random carries less.
pub fn estimated_bits(value: &str) -> u32 {
    let value = value.trim_end_matches('=');
    let bits = value.chars().count() as f64 * Alphabet::of(value).bits_per_char();
    // Saturating float-to-int conversion is what is wanted here.
    bits.floor() as u32
}

/// Whether a cookie looks like it carries a session or a login.
pub fn session_like(name: &str, value: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if NOT_SESSION.iter().any(|n| lower.contains(n)) {
        return false;
    }
    name_hints_session(&lower) || looks_random(value) || looks_like_jwt(value)
}

fn name_hints_session(lower: &str) -> bool {
    SESSION_HINTS.iter().any(|hint| {
        lower.match_indices(hint).any(|(at, _)| {
            let after = &lower[at + hint.len()..];
            match *hint {
                // "sid" but not "sidebar" or "inside"; "auth" but not "author".
                "sid" => !after.starts_with(|c: char| c.is_ascii_alphabetic()),
                "auth" => !after.starts_with("or"),
                _ => true,
            }
        })
    })
}

/// Long, mixed letters and digits, from an encoding alphabet, with enough
/// distinct characters not to be a word or a pattern.
fn looks_random(value: &str) -> bool {
    let value = value.trim_end_matches('=');
    let distinct = {
        let mut chars: Vec<char> = value.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        chars.len()
    };
    value.len() >= RANDOM_MIN_CHARS
        && !matches!(Alphabet::of(value), Alphabet::Digits | Alphabet::Other)
        && value.chars().any(|c| c.is_ascii_digit())
        && value.chars().any(|c| c.is_ascii_alphabetic())
        && distinct >= 10
}

/// `header.payload.signature` in base64url, the header starting `eyJ` (`{"`).
fn looks_like_jwt(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    let b64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && !parts[1].is_empty()
        && parts.iter().all(|p| b64url(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_follow_alphabet_and_length() {
        assert_eq!(estimated_bits(""), 0);
        assert_eq!(
            estimated_bits(&"a".repeat(43).replace('a', "aZ_9")),
            43 * 4 * 6
        );
        assert_eq!(estimated_bits(&"0123456789abcdef".repeat(2)), 128);
        assert_eq!(estimated_bits("12345"), 16);
        assert_eq!(estimated_bits("ab+/=="), 24);
        assert_eq!(estimated_bits("QUJD"), 20);
        assert_eq!(estimated_bits("a.b"), 19);
    }

    #[test]
    fn session_names() {
        for name in [
            "PHPSESSID",
            "JSESSIONID",
            "connect.sid",
            "sid",
            "__Host-session",
            "auth",
            "auth_token",
            "access_token",
            "jwt",
            "remember_me",
            "wordpress_logged_in_abc",
            "login",
            "_app_sess",
            "ASP.NET_SessionId",
            "sid2",
        ] {
            assert!(session_like(name, "x"), "{name}");
        }
        for name in [
            "theme",
            "lang",
            "sidebar",
            "inside",
            "author",
            "csrftoken",
            "XSRF-TOKEN",
            "_ga",
        ] {
            assert!(!session_like(name, "x"), "{name}");
        }
    }

    #[test]
    fn session_values() {
        assert!(session_like("x", "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA"));
        assert!(session_like("x", "3f2a9c0d4e5b6a7f8e9d0c1b2a3f4e5d"));
        assert!(session_like(
            "x",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_x"
        ));
        assert!(!session_like("x", "GA1.1.1234567890.1700000000"));
        assert!(!session_like("x", "1700000000123456789012345"));
        assert!(!session_like("x", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"));
        assert!(!session_like(
            "csrftoken",
            "3f2a9c0d4e5b6a7f8e9d0c1b2a3f4e5d"
        ));
    }
}
