//! JSON as Python's `json` module reads and writes it for Flask.
//!
//! Flask's session serializer calls `json.dumps(obj, separators=(",", ":"),
//! sort_keys=True, ensure_ascii=True)`. [`write`] produces exactly those bytes
//! (sorted keys, no spaces, `\uXXXX` escapes for everything outside printable
//! ASCII, floats as Python's `repr`), so latch's cookies are byte-identical to
//! Flask's. [`parse`] is a strict reader for authenticated payloads: it refuses
//! what `serde_json::Value` cannot hold without changing it (integers beyond 64
//! bits, non-finite floats, lone surrogates) instead of silently rounding.

mod float;
mod parse;
mod write;

pub(crate) use parse::parse;
pub(crate) use write::write;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_like_python_json_dumps() {
        // Expected strings produced by Python 3.11:
        // json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
        let cases = [
            (
                json!({"b": 1, "a": [true, null, "x"]}),
                r#"{"a":[true,null,"x"],"b":1}"#,
            ),
            (
                json!("é\u{1f512}\"\\\n\u{7f}\u{1}"),
                r#""\u00e9\ud83d\udd12\"\\\n\u007f\u0001""#,
            ),
            (
                json!({"Z": 0, "a": 0, "é": 0, "_": 0}),
                r#"{"Z":0,"_":0,"a":0,"\u00e9":0}"#,
            ),
            (
                json!(-9_223_372_036_854_775_808_i64),
                "-9223372036854775808",
            ),
            (
                json!(18_446_744_073_709_551_615_u64),
                "18446744073709551615",
            ),
            (json!(1.0), "1.0"),
            (json!(-0.0), "-0.0"),
            (json!(0.1), "0.1"),
            (json!(1e16), "1e+16"),
            (json!(1e15), "1000000000000000.0"),
            (json!(9_999_999_999_999_998.0), "9999999999999998.0"),
            (json!(0.0001), "0.0001"),
            (json!(0.00001), "1e-05"),
            (json!(1.5e-7), "1.5e-07"),
            (json!(1.2345678901234568e20), "1.2345678901234568e+20"),
            (json!(5e-324), "5e-324"),
            (json!(1.7976931348623157e308), "1.7976931348623157e+308"),
            (json!(123.456), "123.456"),
        ];
        for (value, expected) in cases {
            let mut out = String::new();
            write(&value, &mut out);
            assert_eq!(out, expected, "for {value}");
        }
    }

    #[test]
    fn parse_round_trips_what_write_produces() {
        let value = json!({"a": [1, -2, 3.5, "\u{1f512}", {"k": null}], "b": false});
        let mut text = String::new();
        write(&value, &mut text);
        assert_eq!(parse(text.as_bytes()).unwrap(), value);
    }

    #[test]
    fn parse_keeps_ints_and_floats_apart() {
        let v = parse(b"[1,1.0,1e2,-0]").unwrap();
        assert!(v[0].is_i64() && v[1].is_f64() && v[2].is_f64() && v[3].is_i64());
    }

    #[test]
    fn parse_refuses_what_it_cannot_hold_exactly() {
        for bad in [
            &b"18446744073709551616"[..],
            b"-9223372036854775809",
            b"NaN",
            b"Infinity",
            b"-Infinity",
            b"1e400",
            br#""\ud800""#,
            br#""\udc00x""#,
            b"{\"a\":1,\"a\":2}",
            b"[1,]",
            b"01",
            b"1.",
            b".5",
            b"\"\x01\"",
            b"\"\xff\"",
            b"[1] x",
            b"",
            b"tru",
        ] {
            assert!(
                parse(bad).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn parse_limits_depth() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(deep.as_bytes()).is_err());
        let ok = "[".repeat(50) + &"]".repeat(50);
        assert!(parse(ok.as_bytes()).is_ok());
    }
}
