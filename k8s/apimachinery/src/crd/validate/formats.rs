//! The string formats CRD schemas may use (upstream's supported list at
//! Kubernetes 1.34+), each checked as kube-openapi's `strfmt` registry
//! checks it, or as closely as a small parser can. Other formats are
//! stripped from the schema and not checked.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Formats by their normalized name (dashes removed).
const SUPPORTED: [&str; 27] = [
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "quantity",
    "k8sshortname",
    "k8slongname",
];

fn normalize(format: &str) -> String {
    format.replace('-', "")
}

/// Whether upstream keeps (and checks) this string format.
pub(crate) fn supported_format(format: &str) -> bool {
    !format.is_empty() && SUPPORTED.contains(&normalize(format).as_str())
}

/// Whether `s` is a valid value of the supported `format`.
pub(super) fn valid(format: &str, s: &str) -> bool {
    match normalize(format).as_str() {
        "bsonobjectid" => s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()),
        "uri" => is_request_uri(s),
        "email" => is_email(s),
        "hostname" => is_hostname(s),
        "ipv4" => s.contains('.') && is_ipv4(s),
        "ipv6" => s.contains(':') && s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(s),
        "mac" => is_mac(s),
        "uuid" => matches(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", s),
        "uuid3" => matches(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$", s),
        "uuid4" => {
            matches(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", s)
        }
        "uuid5" => {
            matches(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", s)
        }
        "isbn" => is_isbn10(s) || is_isbn13(s),
        "isbn10" => is_isbn10(s),
        "isbn13" => is_isbn13(s),
        "creditcard" => is_credit_card(s),
        "ssn" => matches(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$", s),
        "hexcolor" => matches(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$", s),
        "rgbcolor" => is_rgb(s),
        "byte" => {
            matches(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$", s)
        }
        "date" => is_date(s),
        "datetime" => is_date_time(s),
        "duration" => is_duration(s),
        "quantity" => {
            matches(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$", s)
        }
        "k8sshortname" => s.len() <= 63 && matches(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", s),
        "k8slongname" => {
            s.len() <= 253 && matches(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", s)
        }
        _ => true,
    }
}

fn matches(pattern: &str, s: &str) -> bool {
    regex_lite::Regex::new(pattern).is_ok_and(|re| re.is_match(s))
}

/// Go's `url.ParseRequestURI`: an absolute URI or an absolute path.
fn is_request_uri(s: &str) -> bool {
    let scheme = matches(r"^[A-Za-z][A-Za-z0-9+.-]*:", s);
    (scheme || s.starts_with('/')) && !s.chars().any(|c| c.is_control() || c == ' ') && escapes_ok(s)
}

fn escapes_ok(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// Go's `mail.ParseAddress`, for the common forms `a@b.c` and `Name <a@b.c>`.
fn is_email(s: &str) -> bool {
    let address = match (s.rfind('<'), s.ends_with('>')) {
        (Some(open), true) => &s[open + 1..s.len() - 1],
        _ => s.trim(),
    };
    let Some((local, domain)) = address.rsplit_once('@') else { return false };
    let atom = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c);
    !local.is_empty()
        && local.chars().all(atom)
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !domain.is_empty()
        && domain
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-'))
}

/// strfmt's hostname pattern and length limits.
fn is_hostname(s: &str) -> bool {
    let char_ok = |c: char| c.is_alphanumeric() || (!c.is_ascii() && !c.is_whitespace() && !c.is_control());
    let no_double_dash =
        |label: &str| !label.contains("--") && !label.starts_with('-') && !label.ends_with('-');
    if s.len() > 255 || s.split('.').any(|p| p.len() > 63) {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.chars().all(|c| char_ok(c) || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    match labels.as_slice() {
        [one] => label_ok(one) && no_double_dash(one),
        [init @ .., last] => {
            init.iter().all(|l| label_ok(l))
                && label_ok(last)
                && no_double_dash(last)
                && last.chars().count() >= 2
        }
        [] => false,
    }
}

/// Four decimal octets without leading zeros, as Go's `net.ParseIP`.
fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| !(p.len() > 1 && p.starts_with('0')))
        && s.parse::<Ipv4Addr>().is_ok()
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else { return false };
    let max = if is_ipv4(ip) {
        32
    } else if ip.parse::<Ipv6Addr>().is_ok() {
        128
    } else {
        return false;
    };
    !bits.is_empty()
        && bits.len() <= 3
        && bits.bytes().all(|b| b.is_ascii_digit())
        && bits.parse::<u32>().is_ok_and(|b| b <= max)
}

/// Go's `net.ParseMAC`: 6, 8 or 20 octets, `:`- or `-`-separated pairs or
/// `.`-separated groups of four hex digits.
fn is_mac(s: &str) -> bool {
    let hex = |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit());
    let octets = |n: usize| matches!(n, 6 | 8 | 20);
    for sep in [':', '-'] {
        let parts: Vec<&str> = s.split(sep).collect();
        if parts.len() > 1 {
            return octets(parts.len()) && parts.iter().all(|p| hex(p, 2));
        }
    }
    let groups: Vec<&str> = s.split('.').collect();
    groups.len() > 1 && octets(groups.len() * 2) && groups.iter().all(|g| hex(g, 4))
}

fn digits_of(s: &str) -> String {
    s.chars().filter(|c| *c != ' ' && *c != '-').collect()
}

fn is_isbn10(s: &str) -> bool {
    let d = digits_of(s);
    if !matches(r"^(?:[0-9]{9}X|[0-9]{10})$", &d) {
        return false;
    }
    let sum: u32 = d
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let v = if c == 'X' { 10 } else { c.to_digit(10).unwrap_or(0) };
            v * (10 - u32::try_from(i).unwrap_or(0))
        })
        .sum();
    sum.is_multiple_of(11)
}

fn is_isbn13(s: &str) -> bool {
    let d = digits_of(s);
    if d.len() != 13 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = d
        .chars()
        .enumerate()
        .map(|(i, c)| c.to_digit(10).unwrap_or(0) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    sum.is_multiple_of(10)
}

fn is_credit_card(s: &str) -> bool {
    let d: String = s.chars().filter(char::is_ascii_digit).collect();
    let known = r"^(?:4[0-9]{12}(?:[0-9]{3,6})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720)[0-9]{12}|6(?:011|5[0-9][0-9])[0-9]{12,15}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35[0-9]{3})[0-9]{11}|6[27][0-9]{14}|^(81[0-9]{14,17}))$";
    if !matches(known, &d) {
        return false;
    }
    let sum: u32 = d
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let v = c.to_digit(10).unwrap_or(0);
            if i % 2 == 1 { if v * 2 > 9 { v * 2 - 9 } else { v * 2 } } else { v }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn is_rgb(s: &str) -> bool {
    let byte = r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*";
    matches(&format!(r"^rgb\({byte},{byte},{byte}\)$"), s)
}

/// `2006-01-02`, a real calendar date.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r).filter(|p| p.bytes().all(|c| c.is_ascii_digit()))?.parse::<u32>().ok()
    };
    let (Some(year), Some(month), Some(day)) = (num(0..4), num(5..7), num(8..10)) else { return false };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// The RFC 3339 and ISO 8601 layouts strfmt's `ParseDateTime` accepts.
fn is_date_time(s: &str) -> bool {
    let (Some(date), Some(rest)) = (s.get(..10), s.get(10..)) else { return false };
    if !is_date(date) {
        return false;
    }
    let time = r"^[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?$";
    matches(time, rest)
}

/// A Go duration (`1h30m`, `-1.5s`) or strfmt's `3 days` form.
fn is_duration(s: &str) -> bool {
    let go = r"^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$";
    let long = r"^[0-9]+\s*(ns|us|µs|ms|s|m|h|d|w|nanoseconds?|microseconds?|milliseconds?|seconds?|minutes?|hours?|days?|weeks?)$";
    s == "0" || matches(go, s) || matches(long, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_accept_and_reject() {
        let cases: &[(&str, &str, bool)] = &[
            ("date-time", "2024-01-02T03:04:05Z", true),
            ("date-time", "2024-01-02T03:04:05.123+02:00", true),
            ("date-time", "yesterday", false),
            ("date", "2024-02-29", true),
            ("date", "2023-02-29", false),
            ("uuid", "123e4567-e89b-12d3-a456-426614174000", true),
            ("uuid", "not-a-uuid", false),
            ("byte", "aGVsbG8=", true),
            ("byte", "hello!", false),
            ("ipv4", "10.0.0.1", true),
            ("ipv4", "10.0.0.01", false),
            ("ipv6", "fe80::1", true),
            ("cidr", "10.0.0.0/8", true),
            ("cidr", "10.0.0.0/33", false),
            ("mac", "00:1a:2b:3c:4d:5e", true),
            ("hostname", "example.com", true),
            ("hostname", "-bad.com", false),
            ("email", "a@example.com", true),
            ("email", "nope", false),
            ("uri", "https://example.com/x", true),
            ("uri", "relative/path", false),
            ("duration", "1h30m", true),
            ("duration", "soon", false),
            ("quantity", "500Mi", true),
            ("quantity", "lots", false),
            ("k8s-short-name", "my-name", true),
            ("k8s-short-name", "My-Name", false),
            ("isbn10", "0321751043", true),
            ("isbn13", "978-0321751041", true),
            ("creditcard", "4111 1111 1111 1111", true),
            ("creditcard", "4111 1111 1111 1112", false),
            ("hexcolor", "#fff", true),
            ("rgbcolor", "rgb(255, 0, 10)", true),
            ("ssn", "123-45-6789", true),
            ("bsonobjectid", "507f1f77bcf86cd799439011", true),
        ];
        for (format, value, ok) in cases {
            assert!(supported_format(format), "{format}");
            assert_eq!(valid(format, value), *ok, "{format} {value}");
        }
        assert!(!supported_format("int32"));
        assert!(!supported_format("k8s-ip-sloppy"));
    }
}
