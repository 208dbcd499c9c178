//! Durations and timestamps the way upstream prints them:
//! `k8s.io/apimachinery/pkg/util/duration.HumanDuration` and the RFC 3339
//! timestamps of `metav1.Time` (parsed and formatted by `crate::timestamp`).

pub(crate) use crate::timestamp::{GO_ZERO_TIME, format_rfc3339, parse_rfc3339};

/// A succinct, human-readable duration with about two significant figures,
/// exactly as upstream's `duration.HumanDuration`: `45s`, `3m20s`, `95m`,
/// `5h10m`, `30h`, `3d4h`, `400d`, `3y120d`, `12y`.
///
/// Up to one second in the future counts as now (`0s`), further is
/// `<invalid>`. Years are 365 days.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".to_string();
    }
    if secs < 0 {
        return "0s".to_string();
    }
    if secs < 60 * 2 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Upstream's `translateTimestampSince`: the human duration from an RFC 3339
/// timestamp to `now_unix`, `<unknown>` when the timestamp is unset, zero or
/// unparseable.
pub(crate) fn since(timestamp: Option<&str>, now_unix: i64) -> String {
    match timestamp.and_then(parse_rfc3339) {
        Some(t) if t != GO_ZERO_TIME => human_duration(now_unix.saturating_sub(t)),
        _ => "<unknown>".to_string(),
    }
}

/// The `Created At` cell of the default printer: the creation timestamp
/// normalized to UTC, Go's zero time when unset.
pub(crate) fn created_at(timestamp: Option<&str>) -> String {
    format_rfc3339(timestamp.and_then(parse_rfc3339).unwrap_or(GO_ZERO_TIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60;
    const HOUR: i64 = 3600;
    const DAY: i64 = 86_400;
    const YEAR: i64 = 365 * DAY;

    #[test]
    fn human_duration_at_every_boundary() {
        let cases = [
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (59, "59s"),
            (119, "119s"),
            (2 * MIN, "2m"),
            (2 * MIN + 1, "2m1s"),
            (9 * MIN + 59, "9m59s"),
            (10 * MIN, "10m"),
            (10 * MIN + 59, "10m"),
            (179 * MIN + 59, "179m"),
            (3 * HOUR, "3h"),
            (3 * HOUR + MIN, "3h1m"),
            (7 * HOUR + 59 * MIN + 59, "7h59m"),
            (8 * HOUR, "8h"),
            (47 * HOUR + 59 * MIN, "47h"),
            (48 * HOUR, "2d"),
            (49 * HOUR, "2d1h"),
            (8 * DAY - 1, "7d23h"),
            (8 * DAY, "8d"),
            (2 * YEAR - 1, "729d"),
            (2 * YEAR, "2y"),
            (2 * YEAR + DAY, "2y1d"),
            (8 * YEAR - 1, "7y364d"),
            (8 * YEAR, "8y"),
            (100 * YEAR + 5 * DAY, "100y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn created_at_is_utc_or_go_zero_time() {
        assert_eq!(created_at(Some("2024-02-29T14:30:05+02:00")), "2024-02-29T12:30:05Z");
        assert_eq!(created_at(None), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn since_reports_unknown_for_unset_or_zero_times() {
        let now = 1_700_000_000;
        assert_eq!(since(None, now), "<unknown>");
        assert_eq!(since(Some("0001-01-01T00:00:00Z"), now), "<unknown>");
        assert_eq!(since(Some("garbage"), now), "<unknown>");
        assert_eq!(since(Some(&format_rfc3339(now - 131 * MIN)), now), "131m");
    }
}
