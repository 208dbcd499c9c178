//! Resource quantities (`500m`, `128Mi`, `1.5`, `2e3`) as upstream's
//! `resource.Quantity` parses them, held exactly in units of 10⁻⁹.

use std::fmt;

/// A parsed quantity: `nanos` is the value × 10⁹ (exact for every suffix;
/// `1Ei` × 10⁹ fits an i128 with room to spare).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    pub nanos: i128,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
pub struct QuantityError;

const NANO: i128 = 1_000_000_000;

impl Quantity {
    /// Parses a quantity string (a JSON number's text works too).
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        let s = s.trim();
        let (negative, body) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = body.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(body.len());
        let (num, suffix) = body.split_at(num_end);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(QuantityError);
        }
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        // value = digits × 10^(scale) where digits has the fraction folded in.
        let mut digits: i128 = 0;
        let mut scale: i32 = 0;
        for c in int.bytes().chain(frac.bytes()) {
            if digits > i128::MAX / 100 {
                // Precision beyond 10⁻⁹ of huge numbers is irrelevant; drop digits.
                scale += 1;
                continue;
            }
            digits = digits * 10 + i128::from(c - b'0');
        }
        scale -= i32::try_from(frac.len()).map_err(|_| QuantityError)?;
        let (mul, exp10): (i128, i32) = match suffix {
            "" => (1, 0),
            "n" => (1, -9),
            "u" => (1, -6),
            "m" => (1, -3),
            "k" => (1, 3),
            "M" => (1, 6),
            "G" => (1, 9),
            "T" => (1, 12),
            "P" => (1, 15),
            "E" => (1, 18),
            "Ki" => (1 << 10, 0),
            "Mi" => (1 << 20, 0),
            "Gi" => (1 << 30, 0),
            "Ti" => (1 << 40, 0),
            "Pi" => (1 << 50, 0),
            "Ei" => (1 << 60, 0),
            e if e.starts_with(['e', 'E']) => {
                let n: i32 = e[1..].parse().map_err(|_| QuantityError)?;
                if !(-100..=100).contains(&n) {
                    return Err(QuantityError);
                }
                (1, n)
            }
            _ => return Err(QuantityError),
        };
        let mut v = digits.checked_mul(mul).ok_or(QuantityError)?;
        let mut e = scale + exp10 + 9;
        while e > 0 {
            v = v.checked_mul(10).ok_or(QuantityError)?;
            e -= 1;
        }
        while e < 0 {
            // Round up as upstream does when it loses precision (ceil).
            let rem = v % 10;
            v /= 10;
            if rem != 0 {
                v += 1;
            }
            e += 1;
        }
        Ok(Quantity { nanos: if negative { -v } else { v } })
    }

    /// Parses a quantity given as a JSON string or number.
    pub fn from_json(v: &serde_json::Value) -> Option<Quantity> {
        match v {
            serde_json::Value::String(s) => Quantity::parse(s).ok(),
            serde_json::Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
            _ => None,
        }
    }

    /// The value in thousandths, rounded up (`MilliValue`).
    pub fn milli(&self) -> i64 {
        clamp(div_ceil(self.nanos, 1_000_000))
    }

    /// The value, rounded up (`Value`).
    pub fn value(&self) -> i64 {
        clamp(div_ceil(self.nanos, NANO))
    }

    /// The value in units of `divisor`, rounded up, as the downward API
    /// reports resources (`ceil(q / divisor)`, at least 1 for non-zero q).
    pub fn divide_ceil(&self, divisor: &Quantity) -> i64 {
        if divisor.nanos <= 0 {
            return self.value();
        }
        clamp(div_ceil(self.nanos, divisor.nanos))
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && (a > 0) == (b > 0) { q + 1 } else { q }
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos % NANO == 0 {
            write!(f, "{}", self.nanos / NANO)
        } else if self.nanos % 1_000_000 == 0 {
            write!(f, "{}m", self.nanos / 1_000_000)
        } else {
            write!(f, "{}n", self.nanos)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|_| panic!("{s} should parse"))
    }

    #[test]
    fn suffixes() {
        assert_eq!(q("500m").milli(), 500);
        assert_eq!(q("1").milli(), 1000);
        assert_eq!(q("1.5").milli(), 1500);
        assert_eq!(q("128Mi").value(), 128 << 20);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("1G").value(), 1_000_000_000);
        assert_eq!(q("2k").value(), 2000);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("1E-3").milli(), 1);
        assert_eq!(q("100n").nanos, 100);
        assert_eq!(q("0.1").milli(), 100);
        assert_eq!(q("-1").value(), -1);
        assert_eq!(q("1Ei").value(), 1 << 60);
    }

    #[test]
    fn rounding_up() {
        assert_eq!(q("1m").value(), 1);
        assert_eq!(q("1n").milli(), 1);
        assert_eq!(q("0.0000000001").nanos, 1);
        assert_eq!(q("1Mi").divide_ceil(&q("1M")), 2);
        assert_eq!(q("250m").divide_ceil(&q("1")), 1);
        assert_eq!(q("250m").divide_ceil(&q("1m")), 250);
    }

    #[test]
    fn bad_input() {
        for s in ["", "m", "1x", "1.2.3", "--1", "1Mii", ".", "1e", "1e1000", "abc"] {
            assert_eq!(Quantity::parse(s), Err(QuantityError), "{s}");
        }
    }

    #[test]
    fn json_numbers() {
        assert_eq!(Quantity::from_json(&serde_json::json!(2)).map(|q| q.milli()), Some(2000));
        assert_eq!(Quantity::from_json(&serde_json::json!("64Mi")).map(|q| q.value()), Some(64 << 20));
        assert_eq!(Quantity::from_json(&serde_json::json!(null)), None);
    }
}
