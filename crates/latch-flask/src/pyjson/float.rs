//! Python's `repr(float)`, which `json.dumps` uses for floats.

/// Append Python's `repr(f)` for a finite `f`.
///
/// Rust and Python both print the shortest digit string that reads back as the
/// same `f64`; they differ only in layout. Python writes positional notation
/// while the decimal point position `decpt` (value = 0.d1d2... x 10^decpt) is in
/// `-3..=16`, scientific otherwise, with a signed two-digit-minimum exponent and
/// a `.0` on whole numbers (CPython `float_repr_style = 'short'`).
pub(super) fn write_py_float(f: f64, out: &mut String) {
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    let sci = format!("{:e}", f.abs());
    // OK because `{:e}` of a finite float always contains one `e`.
    let (mantissa, exp) = sci.split_once('e').expect("exponent in {:e} output");
    // OK because `{:e}` writes the exponent as a plain decimal integer.
    let exp: i32 = exp.parse().expect("integer exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1;
    if f.is_sign_negative() {
        out.push('-');
    }
    if !(-3..=16).contains(&decpt) {
        scientific(&digits, exp, out);
    } else {
        positional(&digits, decpt, out);
    }
}

fn scientific(digits: &str, exp: i32, out: &mut String) {
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let sign = if exp < 0 { '-' } else { '+' };
    out.push_str(&format!("e{sign}{:02}", exp.unsigned_abs()));
}

fn positional(digits: &str, decpt: i32, out: &mut String) {
    let len = digits.len() as i32;
    if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-decpt) as usize));
        out.push_str(digits);
    } else if decpt >= len {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', (decpt - len) as usize));
        out.push_str(".0");
    } else {
        let (int, frac) = digits.split_at(decpt as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    }
}
