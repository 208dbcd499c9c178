//! Go's formatting where upstream's messages show it: `strconv.Quote`.

/// Go's `strconv.Quote`: double quotes, backslash escapes, `\x` for ASCII
/// control bytes and `\u` for other characters Go does not print.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if !go_prints(c) => {
                let code = u32::from(c);
                if code < 0x10000 {
                    out.push_str(&format!("\\u{code:04x}"));
                } else {
                    out.push_str(&format!("\\U{code:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` for non-ASCII characters:
/// control, separator (other than space) and common format characters are
/// not printed as is.
fn go_prints(c: char) -> bool {
    if c.is_control() || (c.is_whitespace() && c != ' ') {
        return false;
    }
    !matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// Go's `time.Duration.String`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn duration(d: i64) -> String {
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".into(),
            1..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (frac, whole) = fraction(u, prec);
        out = format!("{whole}{frac}{unit}");
    } else {
        let (frac, whole) = fraction(u, 9);
        u = whole;
        let secs = u % 60;
        u /= 60;
        if u > 0 {
            let mins = u % 60;
            u /= 60;
            if u > 0 {
                out.push_str(&format!("{u}h"));
            }
            out.push_str(&format!("{mins}m"));
        }
        out.push_str(&format!("{secs}{frac}s"));
    }
    if neg { format!("-{out}") } else { out }
}

/// Go's `fmtFrac`: `.5` for the last `prec` digits of `v` (trailing zeros
/// and an all-zero fraction dropped), and `v` without them.
fn fraction(mut v: u64, prec: u32) -> (String, u64) {
    let mut digits = String::new();
    let mut printed = false;
    for _ in 0..prec {
        let digit = v % 10;
        printed |= digit != 0;
        if printed {
            digits.insert(0, char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
        }
        v /= 10;
    }
    if printed { (format!(".{digits}"), v) } else { (String::new(), v) }
}
