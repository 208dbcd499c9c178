//! Resource quantities printed in canonical form, as upstream's
//! `resource.Quantity.String()` prints the decoded value: `1024Mi` is
//! `1Gi`, `2000` is `2k`, `0.5` is `500m`, `1.5Gi` is `1536Mi`.

/// How the quantity was written, which decides how it is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

const DECIMAL: [(&str, i32); 9] =
    [("n", -9), ("u", -6), ("m", -3), ("k", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18)];
const BINARY: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/// The canonical form of a quantity string, or the string unchanged when
/// it is not a quantity (or too large to reason about).
pub(crate) fn canonical(s: &str) -> String {
    canonicalize(s).unwrap_or_else(|| s.to_string())
}

fn canonicalize(s: &str) -> Option<String> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.len() + frac.len() == 0 || frac.contains('.') {
        return None;
    }
    let (format, mut scale, binary_exp) = match suffix {
        "" => (Format::DecimalSi, 0, 0),
        s if s.starts_with(['e', 'E']) && s.len() > 1 => {
            (Format::DecimalExponent, s[1..].parse::<i32>().ok()?, 0)
        }
        s => match (DECIMAL.iter().find(|(n, _)| *n == s), BINARY.iter().position(|b| *b == s)) {
            (Some((_, exp)), _) => (Format::DecimalSi, *exp, 0),
            (None, Some(i)) if i > 0 => (Format::BinarySi, 0, u32::try_from(i * 10).ok()?),
            _ => return None,
        },
    };
    // value = mantissa * 10^scale, exactly.
    let digits = format!("{int}{frac}");
    let mut mantissa: i128 = digits.parse().ok()?;
    scale = scale.checked_sub(i32::try_from(frac.len()).ok()?)?;
    mantissa = mantissa.checked_mul(2i128.checked_pow(binary_exp)?)?;
    if scale < -9 {
        // Finer than nano: rounded up (away from zero).
        let divisor = 10i128.checked_pow(u32::try_from(-9 - scale).ok()?)?;
        mantissa = (mantissa + divisor - 1) / divisor;
        scale = -9;
    }
    if mantissa == 0 {
        return Some("0".to_string());
    }
    let sign = if negative { "-" } else { "" };
    let integral = (scale >= 0)
        .then(|| mantissa.checked_mul(10i128.pow(u32::try_from(scale).ok()?)))
        .flatten()
        .or_else(|| {
            let divisor = 10i128.checked_pow(u32::try_from(-scale).ok()?)?;
            (mantissa % divisor == 0).then(|| mantissa / divisor)
        });
    match (format, integral) {
        (Format::BinarySi, Some(mut value)) if value >= 1024 => {
            let mut power = 0;
            while value % 1024 == 0 && power < BINARY.len() - 1 {
                value /= 1024;
                power += 1;
            }
            Some(format!("{sign}{value}{}", BINARY[power]))
        }
        _ => {
            while mantissa % 10 == 0 {
                mantissa /= 10;
                scale += 1;
            }
            while scale.rem_euclid(3) != 0 {
                mantissa = mantissa.checked_mul(10)?;
                scale -= 1;
            }
            let suffix = match (format, scale) {
                (_, 0) => String::new(),
                (Format::DecimalExponent, e) => format!("e{e}"),
                (_, e) => DECIMAL.iter().find(|(_, x)| *x == e).map(|(n, _)| n.to_string())?,
            };
            Some(format!("{sign}{mantissa}{suffix}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn canonical_forms_match_upstream() {
        let cases = [
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("100Mi", "100Mi"),
            ("1024", "1024"),
            ("2000", "2k"),
            ("1500", "1500"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("250m", "250m"),
            ("1000m", "1"),
            ("0", "0"),
            ("0Gi", "0"),
            ("512Ki", "512Ki"),
            ("1000Ki", "1000Ki"),
            ("0.1Ki", "102400m"),
            ("1e3", "1e3"),
            ("1.5e3", "1500"),
            ("1E6", "1e6"),
            ("5G", "5G"),
            ("1000000000", "1G"),
            ("0.0000000001", "1n"),
            ("-2Gi", "-2Gi"),
            ("+3", "3"),
            ("12E", "12E"),
            ("12000P", "12E"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input), want, "{input}");
        }
    }

    #[test]
    fn non_quantities_are_kept() {
        for s in ["", "abc", "1.2.3", "5Xi", "e3", "."] {
            assert_eq!(canonical(s), s);
        }
    }
}
