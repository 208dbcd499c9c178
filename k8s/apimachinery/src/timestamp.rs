//! RFC 3339 timestamps as Kubernetes writes them (`metav1.Time`), without
//! a date library: Go's accepted forms in, UTC with whole seconds out.

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) as Unix seconds: what an
/// unset `metav1.Time` reads as.
pub const GO_ZERO_TIME: i64 = -62_135_596_800;

/// Parses an RFC 3339 timestamp (`2024-05-01T10:00:00Z`, optional fraction,
/// `Z` or `±hh:mm` offset) as Go's `time.Parse(time.RFC3339, ...)` accepts
/// it, returning Unix seconds (the fraction is dropped).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    if let [b'.' | b',', tail @ ..] = rest {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = &tail[n..];
    }
    let offset = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Formats Unix seconds as RFC 3339 in UTC without a fraction, as Go's
/// `t.UTC().Format(time.RFC3339)`.
pub fn format_rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Formats Unix seconds and microseconds as `metav1.MicroTime` does:
/// `2026-11-25T20:40:28.123456Z`.
pub fn format_rfc3339_micros(unix: i64, micros: u32) -> String {
    let whole = format_rfc3339(unix);
    format!("{}.{micros:06}Z", whole.trim_end_matches('Z'))
}

/// Parses an RFC 3339 timestamp as [`parse_rfc3339`] does, keeping the
/// fraction: Unix seconds and nanoseconds, as Go's
/// `time.Parse(time.RFC3339Nano, ...)` reads them.
///
/// As in Go, the fraction may have any number of digits (containerd strips
/// trailing zeros, so 1 to 9 is what CRI logs carry); digits past the ninth
/// are dropped, not rounded.
pub fn parse_rfc3339_nanos(s: &str) -> Option<(i64, u32)> {
    let unix = parse_rfc3339(s)?;
    // `parse_rfc3339` checked the shape: a fraction, if any, starts at byte 19.
    let nanos = match s.as_bytes().get(19..) {
        Some([b'.' | b',', tail @ ..]) => {
            let frac = tail.iter().take_while(|c| c.is_ascii_digit()).take(9);
            let (value, len) = frac.fold((0u32, 0u32), |(v, n), c| (v * 10 + u32::from(c - b'0'), n + 1));
            value * 10u32.pow(9 - len)
        }
        _ => 0,
    };
    Some((unix, nanos))
}

/// Formats Unix seconds and nanoseconds as RFC 3339 in UTC with exactly nine
/// fraction digits, as Go's `t.UTC().Format("2006-01-02T15:04:05.000000000Z07:00")`
/// (the kubelet's `RFC3339NanoFixed`): `2026-11-25T10:00:00.123400000Z`.
/// `nanos` of a second or more carry into `unix`.
pub fn format_rfc3339_nanos(unix: i64, nanos: u32) -> String {
    let unix = unix + i64::from(nanos / 1_000_000_000);
    let whole = format_rfc3339(unix);
    format!("{}.{:09}Z", whole.trim_end_matches('Z'), nanos % 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_like_go() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T12:30:05Z"), Some(1_709_209_805));
        assert_eq!(parse_rfc3339("2024-02-29T14:30:05.123456+02:00"), Some(1_709_209_805));
        assert_eq!(parse_rfc3339("2024-02-29T07:30:05-05:00"), Some(1_709_209_805));
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), Some(GO_ZERO_TIME));
        for bad in [
            "",
            "2023-02-29T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_utc_and_round_trips() {
        assert_eq!(format_rfc3339(1_709_209_805), "2024-02-29T12:30:05Z");
        assert_eq!(format_rfc3339_micros(1_709_209_805, 42), "2024-02-29T12:30:05.000042Z");
        assert_eq!(format_rfc3339(GO_ZERO_TIME), "0001-01-01T00:00:00Z");
        for t in [0, 951_782_400, 4_102_444_799, -1] {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
        }
    }

    #[test]
    fn parses_every_fraction_length_to_nanos() {
        let expected = [
            0,
            100_000_000,
            120_000_000,
            123_000_000,
            123_400_000,
            123_450_000,
            123_456_000,
            123_456_700,
            123_456_780,
            123_456_789,
        ];
        let digits = "123456789";
        for (len, want) in expected.into_iter().enumerate() {
            let s = if len == 0 {
                "2026-11-25T10:00:00Z".to_string()
            } else {
                format!("2026-11-25T10:00:00.{}Z", &digits[..len])
            };
            assert_eq!(parse_rfc3339_nanos(&s), Some((1_795_600_800, want)), "{s}");
        }
        // Go drops digits past the ninth rather than rounding or refusing them.
        assert_eq!(
            parse_rfc3339_nanos("2026-11-25T10:00:00.1234567899Z"),
            Some((1_795_600_800, 123_456_789))
        );
        assert_eq!(parse_rfc3339_nanos("2026-11-25T10:00:00.000000001Z"), Some((1_795_600_800, 1)));
    }

    #[test]
    fn parses_offsets_with_nanos() {
        assert_eq!(parse_rfc3339_nanos("2026-11-25T11:00:00.5+01:00"), Some((1_795_600_800, 500_000_000)));
        assert_eq!(parse_rfc3339_nanos("2026-11-25T04:30:00.25-05:30"), Some((1_795_600_800, 250_000_000)));
        assert_eq!(parse_rfc3339_nanos("1969-12-31T23:59:59.75Z"), Some((-1, 750_000_000)));
        for bad in [
            "",
            "2026-11-25T10:00:00.Z",
            "2026-11-25T10:00:00.1",
            "2026-11-25T10:00:00.1x",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339_nanos(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_nine_fraction_digits() {
        assert_eq!(format_rfc3339_nanos(1_795_600_800, 0), "2026-11-25T10:00:00.000000000Z");
        assert_eq!(format_rfc3339_nanos(1_795_600_800, 123_400_000), "2026-11-25T10:00:00.123400000Z");
        assert_eq!(format_rfc3339_nanos(1_795_600_800, 1), "2026-11-25T10:00:00.000000001Z");
        assert_eq!(format_rfc3339_nanos(-1, 999_999_999), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(format_rfc3339_nanos(1_795_600_799, 1_000_000_000), "2026-11-25T10:00:00.000000000Z");
    }

    proptest::proptest! {
        #[test]
        fn nanos_round_trip(unix in GO_ZERO_TIME..253_402_300_800i64, nanos in 0u32..1_000_000_000) {
            let s = format_rfc3339_nanos(unix, nanos);
            proptest::prop_assert_eq!(s.len(), 30);
            proptest::prop_assert_eq!(parse_rfc3339_nanos(&s), Some((unix, nanos)));
            proptest::prop_assert_eq!(parse_rfc3339(&s), Some(unix));
        }

        #[test]
        fn nanos_agree_with_whole_seconds(unix in GO_ZERO_TIME..253_402_300_800i64, off in -23i64 * 60..=23 * 60) {
            // The same instant written with an offset, as a runtime in a local zone writes it.
            let local = format_rfc3339(unix + off * 60);
            let sign = if off < 0 { '-' } else { '+' };
            let s = format!("{}{sign}{:02}:{:02}", local.trim_end_matches('Z'), off.abs() / 60, off.abs() % 60);
            proptest::prop_assert_eq!(parse_rfc3339(&s), Some(unix));
            proptest::prop_assert_eq!(parse_rfc3339_nanos(&s), Some((unix, 0)));
        }
    }
}
