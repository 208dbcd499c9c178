//! Printing JSON values as Go prints the unstructured values kubectl's
//! JSONPath finds: scalars with `fmt.Fprint` (`%v`), maps and slices with
//! `json.Marshal` (sorted keys, HTML-safe escapes).

use serde_json::Value;

/// The text of one JSONPath result (`JSONPath.PrintResults` of one value);
/// `null` prints as `null`.
pub(crate) fn result_text(v: &Value) -> String {
    match v {
        Value::Object(_) | Value::Array(_) => {
            let mut out = String::new();
            write_json(&mut out, v);
            out
        }
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => format_float_v(f),
            (None, None) => n.to_string(),
        },
    }
}

/// Go's `json.Marshal` of an unstructured value.
fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (None, Some(f)) => out.push_str(&format_float_json(f)),
            (None, None) => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The shortest decimal digits of `f` (no sign) and the position of the
/// decimal point relative to them, as Go's `strconv` computes them.
fn shortest_digits(f: f64) -> (String, i32) {
    // Rust's `{:e}` is the shortest representation that round-trips.
    let s = format!("{:e}", f.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse::<i32>().unwrap_or(0) + 1)
}

fn fixed(digits: &str, dp: i32) -> String {
    let nd = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let zeros = |n: i32| "0".repeat(usize::try_from(n).unwrap_or(0));
    if dp <= 0 {
        format!("0.{}{digits}", zeros(-dp))
    } else if dp >= nd {
        format!("{digits}{}", zeros(dp - nd))
    } else {
        let (int, frac) = digits.split_at(usize::try_from(dp).unwrap_or(0));
        format!("{int}.{frac}")
    }
}

fn exponent(digits: &str, dp: i32, min_exp_digits: usize) -> String {
    let (first, rest) = digits.split_at(1.min(digits.len()));
    let mantissa = if rest.is_empty() { first.to_string() } else { format!("{first}.{rest}") };
    let exp = dp - 1;
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:0width$}", exp.abs(), width = min_exp_digits)
}

fn special(f: f64) -> Option<String> {
    if f.is_nan() {
        Some("NaN".to_string())
    } else if f.is_infinite() {
        Some(if f > 0.0 { "+Inf" } else { "-Inf" }.to_string())
    } else if f == 0.0 {
        Some(if f.is_sign_negative() { "-0" } else { "0" }.to_string())
    } else {
        None
    }
}

/// `fmt.Sprint(f)`: `%g` with the shortest digits, exponent form when the
/// exponent is below -4 or at least 6 (`1e+06`, `1.5e-05`).
pub(crate) fn format_float_v(f: f64) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let (digits, dp) = shortest_digits(f);
    let exp = dp - 1;
    let body = if !(-4..6).contains(&exp) { exponent(&digits, dp, 2) } else { fixed(&digits, dp) };
    if f < 0.0 { format!("-{body}") } else { body }
}

/// `json.Marshal(f)`: fixed notation unless tiny or huge, `1e-7` style.
fn format_float_json(f: f64) -> String {
    if let Some(s) = special(f) {
        return s;
    }
    let (digits, dp) = shortest_digits(f);
    let abs = f.abs();
    let body = if !(1e-6..1e21).contains(&abs) { exponent(&digits, dp, 1) } else { fixed(&digits, dp) };
    if f < 0.0 { format!("-{body}") } else { body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_like_go_fmt() {
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (100000.0, "100000"),
            (1234567.0, "1.234567e+06"),
            (1e6, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (-2.5, "-2.5"),
            (1e100, "1e+100"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float_v(f), want, "{f}");
        }
    }

    #[test]
    fn json_like_go_marshal() {
        assert_eq!(format_float_json(1e-7), "1e-7");
        assert_eq!(format_float_json(1e21), "1e+21");
        assert_eq!(format_float_json(1234567.0), "1234567");
        let v = json!({"b": [1, 2.5, true, null], "a": "<x&y>\n"});
        assert_eq!(result_text(&v), r#"{"a":"\u003cx\u0026y\u003e\n","b":[1,2.5,true,null]}"#);
        assert_eq!(result_text(&json!("plain")), "plain");
        assert_eq!(result_text(&json!(3)), "3");
        assert_eq!(result_text(&json!(false)), "false");
    }
}
