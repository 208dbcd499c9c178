//! CronJob schedules as upstream Kubernetes reads and evaluates them: the
//! standard five-field parser of robfig/cron v3 (`cron.ParseStandard`),
//! its `Next`, the `spec.timeZone` rules of `pkg/apis/batch/validation`,
//! and the controller's `mostRecentScheduleTime`.
//!
//! Semantics kept from upstream, quirks included:
//! - day-of-week is 0-6 (7 is rejected); names `jan`..`dec`, `sun`..`sat`
//!   in any case; `?` is `*`; `N/step` means `N-max/step`; `*-5` is `*`;
//!   a field of only commas parses and never matches.
//! - day-of-month and day-of-week: when either field starts with `*` or `?`
//!   (and its step is 1), both must match; otherwise either may. So
//!   `0 0 */2 * 1` fires on odd days *or* Mondays, `0 0 * * 1` on Mondays.
//! - `@yearly @annually @monthly @weekly @daily @midnight @hourly` and
//!   `@every <Go duration>` (whole seconds, at least one second).
//! - `TZ=`/`CRON_TZ=` (any `TZ` at all) in the schedule is refused:
//!   `spec.timeZone` is the only way to name a zone.
//! - Time zones follow Go's `time` package: a wall time skipped by a
//!   spring-forward does not fire that day; a wall time repeated by a
//!   fall-back fires twice (robfig walks absolute hours and minutes).
//! - A schedule with no time in the next five years (`0 0 30 2 *`) yields
//!   no next time.
//!
//! Pure logic: the only I/O is the time zone database, read from the
//! system zoneinfo when present and from a copy bundled into the binary
//! otherwise.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::timestamp::{civil_from_days, days_from_civil};

/// The most missed start times upstream's controller tolerates before it
/// warns; see [`MissedSchedules::too_many`].
pub const MAX_MISSED: u32 = 100;
/// Event reason when more than [`MAX_MISSED`] start times were missed.
pub const TOO_MANY_MISSED_REASON: &str = "TooManyMissedTimes";
/// Event message when more than [`MAX_MISSED`] start times were missed, as upstream.
pub const TOO_MANY_MISSED_MESSAGE: &str =
    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew";

/// A parsed `spec.schedule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Spec(Spec),
    /// `@every`: a fixed delay in whole seconds (at least 1).
    Every(i64),
}

/// Bit sets of the matching values, as robfig's `SpecSchedule`. Bit 63 of
/// `dom` and `dow` records a leading `*`/`?` with step 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spec {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
}

const STAR: u64 = 1 << 63;

/// One of the five fields of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    const ALL: [Field; 5] = [Field::Minute, Field::Hour, Field::DayOfMonth, Field::Month, Field::DayOfWeek];

    fn bounds(self) -> (u64, u64) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 6),
        }
    }

    fn names(self) -> &'static [&'static str] {
        const MONTHS: &[&str] =
            &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
        const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        match self {
            Field::Month => MONTHS,
            Field::DayOfWeek => DAYS,
            _ => &[],
        }
    }

    /// The value of a name (`jan` = 1, `sun` = 0), any case.
    fn name_value(self, token: &str) -> Option<u64> {
        // Go's strings.ToLower, which also maps 'İ' to 'i'.
        let lower: String = token
            .chars()
            .flat_map(|c| if c == 'İ' { 'i'.to_lowercase() } else { c.to_lowercase() })
            .collect();
        let pos = self.names().iter().position(|n| *n == lower)?;
        let first = if self == Field::Month { 1 } else { 0 };
        u64::try_from(pos).ok().map(|p| p + first)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        })
    }
}

/// Why a schedule does not parse. The text is the inner message of
/// `spec.schedule: Invalid value: "...": <message>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("empty spec string")]
    Empty,
    #[error("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")]
    TimeZoneInSchedule,
    #[error(
        "expected exactly 5 fields (minute hour day-of-month month day-of-week), found {}: [{}]",
        .fields.len(),
        .fields.join(" ")
    )]
    FieldCount { fields: Vec<String> },
    #[error("{field} field {expr:?}: {problem}")]
    Field { field: Field, expr: String, problem: FieldProblem },
    #[error(
        "unrecognized descriptor: {0} (use @yearly, @annually, @monthly, @weekly, @daily, @midnight, \
         @hourly or @every <duration>)"
    )]
    Descriptor(String),
    #[error("failed to parse duration {spec}: {problem}")]
    Every { spec: String, problem: DurationError },
}

/// What is wrong with one comma-separated part of a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    #[error("too many hyphens")]
    TooManyHyphens,
    #[error("too many slashes")]
    TooManySlashes,
    #[error("{0:?} is not a number")]
    NotANumber(String),
    #[error("{token:?} is not a number or a name ({first}..{last})")]
    NotANumberOrName { token: String, first: &'static str, last: &'static str },
    #[error("{0} is too large")]
    TooLarge(String),
    #[error("negative number ({0}) not allowed")]
    Negative(i64),
    #[error("beginning of range ({start}) below minimum ({min})")]
    BelowMinimum { start: u64, min: u64 },
    #[error("end of range ({end}) above maximum ({max}){}", if *.max == 6 && *.end == 7 { " (use 0 or sun for Sunday)" } else { "" })]
    AboveMaximum { end: u64, max: u64 },
    #[error("beginning of range ({start}) beyond end of range ({end})")]
    StartAfterEnd { start: u64, end: u64 },
    #[error("step of range should be a positive number")]
    ZeroStep,
}

/// Go's `time.ParseDuration` errors, without its `time: ` prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {0:?}")]
    Invalid(String),
    #[error("missing unit in duration {0:?} (use ns, us, ms, s, m or h)")]
    MissingUnit(String),
    #[error("unknown unit {unit:?} in duration {duration:?} (use ns, us, ms, s, m or h)")]
    UnknownUnit { unit: String, duration: String },
}

impl Schedule {
    /// Parses a schedule as `cron.ParseStandard` does, refusing `TZ=` and
    /// `CRON_TZ=` as the API server's validation does.
    pub fn parse(spec: &str) -> Result<Schedule, CronError> {
        if spec.is_empty() {
            return Err(CronError::Empty);
        }
        if spec.contains("TZ") {
            return Err(CronError::TimeZoneInSchedule);
        }
        if spec.starts_with('@') {
            return parse_descriptor(spec);
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(CronError::FieldCount { fields: fields.iter().map(|f| f.to_string()).collect() });
        };
        let mut bits = [0u64; 5];
        for ((slot, text), field) in bits.iter_mut().zip([minute, hour, dom, month, dow]).zip(Field::ALL) {
            *slot = parse_field(text, field)?;
        }
        let [minute, hour, dom, month, dow] = bits;
        Ok(Schedule { kind: Kind::Spec(Spec { minute, hour, dom, month, dow }) })
    }

    /// The first time the schedule fires strictly after `t`, in whole
    /// seconds, with wall-clock fields read in `tz` (robfig's `Next`).
    /// `None` when nothing matches within five years.
    pub fn next_after(&self, t: SystemTime, tz: &TimeZone) -> Option<SystemTime> {
        // Go drops the nanoseconds: `t.Add(delay - nanos)` for @every,
        // `t.Add(1s - nanos)` as the first candidate otherwise.
        let secs = unix_seconds(t);
        match &self.kind {
            Kind::Every(delay) => secs.checked_add(*delay).and_then(from_unix),
            Kind::Spec(spec) => spec.next(secs.checked_add(1)?, tz).and_then(from_unix),
        }
    }
}

impl FromStr for Schedule {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Schedule, CronError> {
        Schedule::parse(s)
    }
}

fn parse_descriptor(spec: &str) -> Result<Schedule, CronError> {
    // The lowest value of a field as a bit: minute 0, hour 0, day 1, January.
    let (min, hour, dom, month) = (1 << 0, 1 << 0, 1 << 1, 1 << 1);
    let all = |field: Field| {
        let (lo, hi) = field.bounds();
        bits(lo, hi, 1) | STAR
    };
    let s = |minute, hour, dom, month, dow| {
        Ok(Schedule { kind: Kind::Spec(Spec { minute, hour, dom, month, dow }) })
    };
    match spec {
        "@yearly" | "@annually" => s(min, hour, dom, month, all(Field::DayOfWeek)),
        "@monthly" => s(min, hour, dom, all(Field::Month), all(Field::DayOfWeek)),
        "@weekly" => s(min, hour, all(Field::DayOfMonth), all(Field::Month), 1 << 0),
        "@daily" | "@midnight" => {
            s(min, hour, all(Field::DayOfMonth), all(Field::Month), all(Field::DayOfWeek))
        }
        "@hourly" => {
            s(min, all(Field::Hour), all(Field::DayOfMonth), all(Field::Month), all(Field::DayOfWeek))
        }
        _ => match spec.strip_prefix("@every ") {
            Some(text) => {
                let nanos = parse_go_duration(text)
                    .map_err(|problem| CronError::Every { spec: spec.to_string(), problem })?;
                // robfig's Every: at least a second, sub-second part dropped.
                Ok(Schedule { kind: Kind::Every((nanos / 1_000_000_000).max(1)) })
            }
            None => Err(CronError::Descriptor(spec.to_string())),
        },
    }
}

/// A field is a comma-separated list of ranges; empty parts are skipped.
fn parse_field(text: &str, field: Field) -> Result<u64, CronError> {
    let mut out = 0;
    for expr in text.split(',').filter(|e| !e.is_empty()) {
        out |= parse_range(expr, field).map_err(|problem| CronError::Field {
            field,
            expr: expr.to_string(),
            problem,
        })?;
    }
    Ok(out)
}

/// `*` | `?` | number | number-number, then optionally `/step`.
fn parse_range(expr: &str, field: Field) -> Result<u64, FieldProblem> {
    let (min, max) = field.bounds();
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end, mut extra);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        // Anything after a hyphen is ignored here, as upstream: `*-5` is `*`.
        (start, end, extra) = (min, max, STAR);
    } else {
        start = parse_int_or_name(low_and_high[0], field)?;
        end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], field)?,
            _ => return Err(FieldProblem::TooManyHyphens),
        };
        extra = 0;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = parse_int(range_and_step[1], field, false)?;
            if low_and_high.len() == 1 {
                end = max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(FieldProblem::TooManySlashes),
    };
    if start < min {
        return Err(FieldProblem::BelowMinimum { start, min });
    }
    if end > max {
        return Err(FieldProblem::AboveMaximum { end, max });
    }
    if start > end {
        return Err(FieldProblem::StartAfterEnd { start, end });
    }
    if step == 0 {
        return Err(FieldProblem::ZeroStep);
    }
    Ok(bits(start, end, step) | extra)
}

fn parse_int_or_name(token: &str, field: Field) -> Result<u64, FieldProblem> {
    match field.name_value(token) {
        Some(v) => Ok(v),
        None => parse_int(token, field, true),
    }
}

/// Go's `strconv.Atoi` (optional sign, ASCII digits), then no negatives.
fn parse_int(token: &str, field: Field, names_allowed: bool) -> Result<u64, FieldProblem> {
    let (negative, digits) = match token.as_bytes().first() {
        Some(b'-') => (true, &token[1..]),
        Some(b'+') => (false, &token[1..]),
        _ => (false, token),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        let names = field.names();
        return Err(match (names_allowed, names.first(), names.last()) {
            (true, Some(first), Some(last)) => {
                FieldProblem::NotANumberOrName { token: token.to_string(), first, last }
            }
            _ => FieldProblem::NotANumber(token.to_string()),
        });
    }
    let value: i64 = token.parse().map_err(|_| FieldProblem::TooLarge(token.to_string()))?;
    if negative && value != 0 {
        return Err(FieldProblem::Negative(value));
    }
    Ok(value.unsigned_abs())
}

/// The bits `start, start+step, ..` up to `end` (all at most 63).
fn bits(start: u64, end: u64, step: u64) -> u64 {
    let mut out = 0;
    let mut i = start;
    while i <= end {
        out |= 1 << i;
        i = match i.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    out
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_go_duration(orig: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid(orig.to_string());
    let mut s = orig;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        (negative, s) = (true, rest);
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let mut value: u64 = 0;
        for b in s[..int_len].bytes() {
            value =
                value.checked_mul(10).and_then(|v| v.checked_add(u64::from(b - b'0'))).ok_or_else(invalid)?;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        s = &s[int_len..];
        let (mut frac, mut scale, mut frac_len) = (0u64, 1f64, 0);
        if let Some(rest) = s.strip_prefix('.') {
            frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for b in rest[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                match frac.checked_mul(10).and_then(|v| v.checked_add(u64::from(b - b'0'))) {
                    Some(v) if v <= LIMIT => {
                        frac = v;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            s = &rest[frac_len..];
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        let unit_len = s.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(s.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(orig.to_string()));
        }
        let unit_text = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match unit_text {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(DurationError::UnknownUnit {
                    unit: unit_text.to_string(),
                    duration: orig.to_string(),
                });
            }
        };
        if value > LIMIT / unit {
            return Err(invalid());
        }
        value *= unit;
        if frac > 0 {
            // As Go: float64 arithmetic, truncated.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
            let part = (frac as f64 * (unit as f64 / scale)) as u64;
            value = value.checked_add(part).filter(|v| *v <= LIMIT).ok_or_else(invalid)?;
        }
        total = total.checked_add(value).filter(|v| *v <= LIMIT).ok_or_else(invalid)?;
    }
    if negative {
        // total <= 2^63, so the negation fits.
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// A time zone for `spec.timeZone`.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeZone {
    name: String,
    tz: jiff::tz::TimeZone,
}

/// Why a `spec.timeZone` is refused; messages as upstream's validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeZoneError {
    #[error("timeZone must be nil or non-empty string")]
    Empty,
    #[error("timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")]
    Local,
    #[error("unknown time zone {0}")]
    Unknown(String),
}

impl TimeZone {
    /// UTC: what an unset `spec.timeZone` means on a Lichen node, whose
    /// controller runs with a UTC local time.
    pub fn utc() -> TimeZone {
        TimeZone { name: "UTC".to_string(), tz: jiff::tz::TimeZone::UTC }
    }

    /// Loads an IANA zone (`Europe/Berlin`), checked as upstream's
    /// `validateTimeZone` and Go's `time.LoadLocation` (names are
    /// case-sensitive). The system zoneinfo wins; the bundled copy fills in.
    pub fn load(name: &str) -> Result<TimeZone, TimeZoneError> {
        if name.is_empty() {
            return Err(TimeZoneError::Empty);
        }
        let component_ok = |part: &str| {
            (1..=14).contains(&part.len())
                && part != "."
                && part != ".."
                && !part.starts_with('-')
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
        };
        if !name.split('/').all(component_ok) {
            return Err(TimeZoneError::Unknown(name.to_string()));
        }
        if name.eq_ignore_ascii_case("local") {
            return Err(TimeZoneError::Local);
        }
        if name == "UTC" {
            return Ok(TimeZone::utc());
        }
        // jiff matches names in any case; Go's LoadLocation does not.
        let exact = |tz: jiff::tz::TimeZone| (tz.iana_name() == Some(name)).then_some(tz);
        let found = jiff::tz::db()
            .get(name)
            .ok()
            .and_then(exact)
            .or_else(|| jiff::tz::TimeZoneDatabase::bundled().get(name).ok().and_then(exact));
        match found {
            Some(tz) => Ok(TimeZone { name: name.to_string(), tz }),
            None => Err(TimeZoneError::Unknown(name.to_string())),
        }
    }

    /// The zone of a CronJob: `spec.timeZone` when set, else UTC.
    pub fn for_cronjob(time_zone: Option<&str>) -> Result<TimeZone, TimeZoneError> {
        time_zone.map_or_else(|| Ok(TimeZone::utc()), TimeZone::load)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The UTC offset in seconds at a Unix second.
    fn offset(&self, unix: i64) -> i64 {
        jiff::Timestamp::from_second(unix).map_or(0, |ts| i64::from(self.tz.to_offset(ts).seconds()))
    }

    /// Wall-clock fields at a Unix second.
    fn civil(&self, unix: i64) -> Civil {
        let local = unix + self.offset(unix);
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
        Civil { year, month, day, hour, minute, second, weekday: (days + 4).rem_euclid(7) }
    }

    /// Go's `time.Date(year, month, day, hour, min, sec, 0, loc)`: fields
    /// out of range carry over; a wall time in a gap or overlap resolves
    /// as Go's lookup does (the offset in force at the wall time read as
    /// UTC, corrected once).
    fn date(&self, year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> i64 {
        let (year, month) = (year + (month - 1).div_euclid(12), (month - 1).rem_euclid(12) + 1);
        let local = (days_from_civil(year, month, 1) + day - 1) * 86_400 + hour * 3600 + minute * 60 + second;
        local - self.offset(local - self.offset(local))
    }

    /// Go's `t.AddDate(0, months, days)`.
    fn add_date(&self, unix: i64, months: i64, days: i64) -> i64 {
        let c = self.civil(unix);
        self.date(c.year, c.month + months, c.day + days, c.hour, c.minute, c.second)
    }
}

/// Wall-clock fields (weekday 0 = Sunday).
#[derive(Debug, Clone, Copy)]
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    weekday: i64,
}

fn has(set: u64, value: i64) -> bool {
    u32::try_from(value).ok().and_then(|v| 1u64.checked_shl(v)).is_some_and(|bit| set & bit != 0)
}

impl Spec {
    fn day_matches(&self, c: Civil) -> bool {
        let dom = has(self.dom, c.day);
        let dow = has(self.dow, c.weekday);
        if self.dom & STAR != 0 || self.dow & STAR != 0 { dom && dow } else { dom || dow }
    }

    /// robfig's `SpecSchedule.Next` from `t`, the first candidate second
    /// (already one past the caller's time): walk months, then days, hours,
    /// minutes, seconds, restarting from months whenever a field wraps.
    fn next(&self, start: i64, tz: &TimeZone) -> Option<i64> {
        if self.minute & !STAR == 0 || self.hour & !STAR == 0 {
            // Upstream would scan five years of hours to find nothing.
            return None;
        }
        let mut t = start;
        let mut added = false;
        let year_limit = tz.civil(t).year + 5;
        'wrap: loop {
            if tz.civil(t).year > year_limit {
                return None;
            }
            while !has(self.month, tz.civil(t).month) {
                if !added {
                    added = true;
                    let c = tz.civil(t);
                    t = tz.date(c.year, c.month, 1, 0, 0, 0);
                }
                t = tz.add_date(t, 1, 0);
                if tz.civil(t).month == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_matches(tz.civil(t)) {
                if !added {
                    added = true;
                    let c = tz.civil(t);
                    t = tz.date(c.year, c.month, c.day, 0, 0, 0);
                }
                t = tz.add_date(t, 0, 1);
                // Midnight moved by a DST change: back to 00:00 if it is
                // now 01:00, on to the next day if it is 23:00.
                let hour = tz.civil(t).hour;
                if hour != 0 {
                    t += if hour > 12 { (24 - hour) * 3600 } else { -hour * 3600 };
                }
                if tz.civil(t).day == 1 {
                    continue 'wrap;
                }
            }
            while !has(self.hour, tz.civil(t).hour) {
                if !added {
                    added = true;
                    let c = tz.civil(t);
                    t = tz.date(c.year, c.month, c.day, c.hour, 0, 0);
                }
                t += 3600;
                if tz.civil(t).hour == 0 {
                    continue 'wrap;
                }
            }
            while !has(self.minute, tz.civil(t).minute) {
                if !added {
                    added = true;
                    // Go's Truncate works on absolute time, not wall time.
                    t -= t.rem_euclid(60);
                }
                t += 60;
                if tz.civil(t).minute == 0 {
                    continue 'wrap;
                }
            }
            // The seconds field of the standard parser is 0: step to the
            // next wall-clock minute and start over.
            let second = tz.civil(t).second;
            if second != 0 {
                added = true;
                t += 60 - second;
                continue 'wrap;
            }
            return Some(t);
        }
    }
}

/// The schedule times a CronJob is due for, as upstream's
/// `mostRecentScheduleTime` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissedSchedules {
    /// The latest schedule time in `(earliest, now]`, if any.
    pub most_recent: Option<SystemTime>,
    /// How many schedule times fall in `(earliest, now]`, counted up to
    /// `MAX_MISSED + 1`. Upstream calls 1 "none missed" (the one due now).
    pub count: u32,
}

impl MissedSchedules {
    /// More than [`MAX_MISSED`] start times missed: upstream records a
    /// [`TOO_MANY_MISSED_REASON`] warning and still starts the most recent.
    pub fn too_many(&self) -> bool {
        self.count > MAX_MISSED
    }
}

/// The schedule has no time after the earliest time considered (upstream's
/// text for a schedule such as `0 0 30 2 *`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time difference between two schedules is less than 1 second")]
pub struct NeverScheduled;

/// The earliest time the controller considers: the last schedule time, else
/// the creation time, moved up to `now - startingDeadlineSeconds` when that
/// is later (as upstream's `mostRecentScheduleTime`).
pub fn earliest_time(
    created: SystemTime,
    last_scheduled: Option<SystemTime>,
    starting_deadline_seconds: Option<i64>,
    now: SystemTime,
) -> SystemTime {
    let earliest = last_scheduled.unwrap_or(created);
    let Some(deadline_secs) = starting_deadline_seconds else { return earliest };
    let deadline = if deadline_secs >= 0 {
        now.checked_sub(Duration::from_secs(deadline_secs.unsigned_abs()))
    } else {
        now.checked_add(Duration::from_secs(deadline_secs.unsigned_abs()))
    };
    match deadline {
        Some(d) if d > earliest => d,
        _ => earliest,
    }
}

/// The most recent schedule time in `(earliest, now]` and how many there
/// are (see [`earliest_time`] for `earliest`).
///
/// Unlike upstream, which estimates the count from the gap between the
/// first two times and can then skip the most recent time of an irregular
/// schedule (`0 9 * * 1-5` after a weekend), this counts exactly, walking
/// at most `MAX_MISSED + 1` times, and finds the most recent one by a
/// widening search back from `now`.
pub fn most_recent_schedule_time(
    schedule: &Schedule,
    tz: &TimeZone,
    earliest: SystemTime,
    now: SystemTime,
) -> Result<MissedSchedules, NeverScheduled> {
    let first = schedule.next_after(earliest, tz).ok_or(NeverScheduled)?;
    if now < first {
        return Ok(MissedSchedules { most_recent: None, count: 0 });
    }
    let (mut last, mut previous, mut count) = (first, first, 1);
    while count <= MAX_MISSED {
        match schedule.next_after(last, tz) {
            Some(t) if t <= now => (previous, last, count) = (last, t, count + 1),
            _ => return Ok(MissedSchedules { most_recent: Some(last), count }),
        }
    }
    // Many missed: search back from now with a window that doubles from
    // the interval between the last two times walked.
    let mut span = last.duration_since(previous).unwrap_or_default().max(Duration::from_secs(1));
    loop {
        let start = now.checked_sub(span).filter(|s| *s > last).unwrap_or(last);
        let mut found = None;
        let mut t = start;
        while let Some(next) = schedule.next_after(t, tz).filter(|n| *n <= now) {
            found = Some(next);
            t = next;
        }
        if let Some(most_recent) = found.or((start == last).then_some(last)) {
            return Ok(MissedSchedules { most_recent: Some(most_recent), count });
        }
        span = span.saturating_mul(2);
    }
}

/// A `SystemTime` as Unix seconds, rounded down.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() == 0 { -secs } else { -secs - 1 }
        }
    }
}

fn from_unix(secs: i64) -> Option<SystemTime> {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 { UNIX_EPOCH.checked_add(d) } else { UNIX_EPOCH.checked_sub(d) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::{format_rfc3339, parse_rfc3339};
    use proptest::prelude::*;

    fn at(s: &str) -> SystemTime {
        from_unix(parse_rfc3339(s).expect("test timestamp")).expect("in range")
    }

    fn show(t: Option<SystemTime>) -> String {
        t.map_or_else(|| "none".to_string(), |t| format_rfc3339(unix_seconds(t)))
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::load(name).expect("zone in the database")
    }

    fn next(schedule: &str, zone: &str, from: &str) -> String {
        let schedule = Schedule::parse(schedule).expect("valid schedule");
        show(schedule.next_after(at(from), &tz(zone)))
    }

    #[test]
    fn next_times_in_utc() {
        let cases = [
            ("*/5 * * * *", "2024-01-01T00:00:00Z", "2024-01-01T00:05:00Z"),
            ("*/5 * * * *", "2024-01-01T00:02:30Z", "2024-01-01T00:05:00Z"),
            ("5/15 * * * *", "2024-01-01T00:06:00Z", "2024-01-01T00:20:00Z"),
            ("5/15 * * * *", "2024-01-01T00:50:00Z", "2024-01-01T01:05:00Z"),
            ("1-30/2 * * * *", "2024-01-01T00:29:00Z", "2024-01-01T01:01:00Z"),
            ("5 10 * * *", "2024-01-01T10:05:30Z", "2024-01-02T10:05:00Z"),
            ("0 0 31 * *", "2024-01-31T00:00:00Z", "2024-03-31T00:00:00Z"),
            ("0 0 31 * *", "2024-03-31T00:00:00Z", "2024-05-31T00:00:00Z"),
            ("0 0 31 * *", "2024-07-31T00:00:00Z", "2024-08-31T00:00:00Z"),
            ("0 0 29 2 *", "2023-01-01T00:00:00Z", "2024-02-29T00:00:00Z"),
            ("0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
            // 2100 is not a leap year and 2104 is past robfig's five years.
            ("0 0 29 2 *", "2096-03-01T00:00:00Z", "none"),
            ("0 0 30 2 *", "2024-01-01T00:00:00Z", "none"),
            ("59 23 31 12 *", "2024-12-31T23:59:00Z", "2025-12-31T23:59:00Z"),
            // Names, any case; ranges and lists of names.
            ("0 0 1 Feb *", "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z"),
            ("0 0 * * sUn", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"),
            ("0 12 * JAN,jul mon-fri", "2024-01-05T12:00:00Z", "2024-01-08T12:00:00Z"),
            ("0 12 * JAN,jul mon-fri", "2024-01-31T12:00:00Z", "2024-07-01T12:00:00Z"),
            ("0 0 1 jan/3 *", "2024-01-01T00:00:00Z", "2024-04-01T00:00:00Z"),
            // Day-of-month or day-of-week when both are restricted.
            ("0 0 13 * FRI", "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"),
            ("0 0 13 * FRI", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z"),
            // A step over 1 drops the star: odd days or Mondays...
            ("0 0 */2 * 1", "2024-01-07T00:00:00Z", "2024-01-08T00:00:00Z"),
            // ...a step of 1 keeps it: Mondays only.
            ("0 0 */1 * 1", "2024-01-02T00:00:00Z", "2024-01-08T00:00:00Z"),
            ("0 0 ? * 1", "2024-01-02T00:00:00Z", "2024-01-08T00:00:00Z"),
            // 1-31 is no star: every day, as it is or Mondays.
            ("0 0 1-31 * 1", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"),
            ("0 0 * * 0", "2024-02-26T00:00:00Z", "2024-03-03T00:00:00Z"),
            ("@yearly", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
            ("@annually", "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z"),
            ("@monthly", "2024-01-31T00:00:00Z", "2024-02-01T00:00:00Z"),
            ("@weekly", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"),
            ("@daily", "2024-02-28T12:00:00Z", "2024-02-29T00:00:00Z"),
            ("@midnight", "2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z"),
            ("@hourly", "2024-01-01T10:59:59Z", "2024-01-01T11:00:00Z"),
            ("@every 90m", "2024-01-01T00:00:00Z", "2024-01-01T01:30:00Z"),
            ("@every 1h30m", "2024-01-01T00:00:07Z", "2024-01-01T01:30:07Z"),
            ("@every 1.5s", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z"),
            ("@every 500ms", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z"),
            ("@every -1h", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z"),
            ("@every 0", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z"),
        ];
        for (schedule, from, want) in cases {
            assert_eq!(next(schedule, "UTC", from), want, "{schedule} after {from}");
        }
    }

    #[test]
    fn next_after_drops_the_fraction() {
        let t = at("2024-01-01T00:00:00Z") + Duration::from_millis(500);
        let every = Schedule::parse("@every 1m").expect("valid");
        assert_eq!(show(every.next_after(t, &TimeZone::utc())), "2024-01-01T00:01:00Z");
        let minutely = Schedule::parse("* * * * *").expect("valid");
        assert_eq!(show(minutely.next_after(t, &TimeZone::utc())), "2024-01-01T00:01:00Z");
        let before_epoch = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(show(minutely.next_after(before_epoch, &TimeZone::utc())), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn daylight_saving_time() {
        let cases = [
            // Berlin springs forward on 2024-03-31 at 02:00 CET: 02:30 does
            // not exist that day and does not fire.
            ("30 2 * * *", "Europe/Berlin", "2024-03-30T01:30:00Z", "2024-04-01T00:30:00Z"),
            ("0 3 * * *", "Europe/Berlin", "2024-03-30T02:00:00Z", "2024-03-31T01:00:00Z"),
            ("0 0 * * *", "Europe/Berlin", "2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z"),
            ("*/30 * * * *", "Europe/Berlin", "2024-03-31T00:30:00Z", "2024-03-31T01:00:00Z"),
            // It falls back on 2024-10-27 at 03:00 CEST: 02:30 fires twice.
            ("30 2 * * *", "Europe/Berlin", "2024-10-26T23:00:00Z", "2024-10-27T00:30:00Z"),
            ("30 2 * * *", "Europe/Berlin", "2024-10-27T00:30:00Z", "2024-10-27T01:30:00Z"),
            ("30 2 * * *", "Europe/Berlin", "2024-10-27T01:30:00Z", "2024-10-28T01:30:00Z"),
            ("0 12 * * *", "Europe/Berlin", "2024-10-26T10:00:00Z", "2024-10-27T11:00:00Z"),
            // New York springs forward on 2024-03-10 at 02:00 EST.
            ("30 2 * * *", "America/New_York", "2024-03-09T07:30:00Z", "2024-03-11T06:30:00Z"),
            ("0 12 * * *", "America/New_York", "2024-03-09T17:00:00Z", "2024-03-10T16:00:00Z"),
            // It falls back on 2024-11-03 at 02:00 EDT: 01:30 fires twice.
            ("30 1 * * *", "America/New_York", "2024-11-03T04:00:00Z", "2024-11-03T05:30:00Z"),
            ("30 1 * * *", "America/New_York", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z"),
            ("30 1 * * *", "America/New_York", "2024-11-03T06:30:00Z", "2024-11-04T06:30:00Z"),
            ("0 0 * * *", "America/New_York", "2024-11-02T04:00:00Z", "2024-11-03T04:00:00Z"),
            ("0 0 * * *", "America/New_York", "2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z"),
            // @every ignores the zone.
            ("@every 1h", "America/New_York", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z"),
            // Leap day in a zone east of UTC.
            ("0 0 29 2 *", "Europe/Berlin", "2023-06-01T00:00:00Z", "2024-02-28T23:00:00Z"),
        ];
        for (schedule, zone, from, want) in cases {
            assert_eq!(next(schedule, zone, from), want, "{schedule} in {zone} after {from}");
        }
    }

    #[test]
    fn go_time_date_resolves_gaps_and_overlaps() {
        // Go's time.Date: a wall time in a gap takes the offset before the
        // gap in Berlin (forward) but after it in New York (backward); in an
        // overlap Berlin takes the later instant, New York the earlier.
        let berlin = tz("Europe/Berlin");
        assert_eq!(format_rfc3339(berlin.date(2024, 3, 31, 2, 30, 0)), "2024-03-31T01:30:00Z");
        assert_eq!(format_rfc3339(berlin.date(2024, 10, 27, 2, 30, 0)), "2024-10-27T01:30:00Z");
        let new_york = tz("America/New_York");
        assert_eq!(format_rfc3339(new_york.date(2024, 3, 10, 2, 30, 0)), "2024-03-10T06:30:00Z");
        assert_eq!(format_rfc3339(new_york.date(2024, 11, 3, 1, 30, 0)), "2024-11-03T05:30:00Z");
        // Months and days carry over.
        assert_eq!(format_rfc3339(TimeZone::utc().date(2024, 13, 32, 0, 0, 0)), "2025-02-01T00:00:00Z");
    }

    #[test]
    fn errors_say_which_field_and_value() {
        let cases = [
            ("", "empty spec string"),
            ("CRON_TZ=UTC 0 * * * *", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
            ("TZ=Europe/Berlin @daily", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
            (
                "* * * *",
                "expected exactly 5 fields (minute hour day-of-month month day-of-week), found 4: [* * * *]",
            ),
            (
                "0 0 0 * * *",
                "expected exactly 5 fields (minute hour day-of-month month day-of-week), found 6: [0 0 0 * * *]",
            ),
            (
                " @daily",
                "expected exactly 5 fields (minute hour day-of-month month day-of-week), found 1: [@daily]",
            ),
            ("61 * * * *", "minute field \"61\": end of range (61) above maximum (59)"),
            ("0 24 * * *", "hour field \"24\": end of range (24) above maximum (23)"),
            ("0 0 0 * *", "day-of-month field \"0\": beginning of range (0) below minimum (1)"),
            ("0 0 * 13 *", "month field \"13\": end of range (13) above maximum (12)"),
            (
                "0 0 * * 7",
                "day-of-week field \"7\": end of range (7) above maximum (6) (use 0 or sun for Sunday)",
            ),
            (
                "0 0 * * 1-7",
                "day-of-week field \"1-7\": end of range (7) above maximum (6) (use 0 or sun for Sunday)",
            ),
            ("5-3 * * * *", "minute field \"5-3\": beginning of range (5) beyond end of range (3)"),
            ("70/5 * * * *", "minute field \"70/5\": beginning of range (70) beyond end of range (59)"),
            ("*/0 * * * *", "minute field \"*/0\": step of range should be a positive number"),
            ("1-2-3 * * * *", "minute field \"1-2-3\": too many hyphens"),
            ("1/2/3 * * * *", "minute field \"1/2/3\": too many slashes"),
            ("x * * * *", "minute field \"x\": \"x\" is not a number"),
            ("1,5-x * * * *", "minute field \"5-x\": \"x\" is not a number"),
            ("*/ * * * *", "minute field \"*/\": \"\" is not a number"),
            ("-5 * * * *", "minute field \"-5\": \"\" is not a number"),
            ("*/-5 * * * *", "minute field \"*/-5\": negative number (-5) not allowed"),
            (
                "99999999999999999999 * * * *",
                "minute field \"99999999999999999999\": 99999999999999999999 is too large",
            ),
            ("0 0 * JANUARY *", "month field \"JANUARY\": \"JANUARY\" is not a number or a name (jan..dec)"),
            (
                "0 0 * * mon-funday",
                "day-of-week field \"mon-funday\": \"funday\" is not a number or a name (sun..sat)",
            ),
            ("*/mon * * * *", "minute field \"*/mon\": \"mon\" is not a number"),
            ("0 0 * * */sun", "day-of-week field \"*/sun\": \"sun\" is not a number"),
            (
                "@Daily",
                "unrecognized descriptor: @Daily (use @yearly, @annually, @monthly, @weekly, @daily, @midnight, \
                 @hourly or @every <duration>)",
            ),
            (
                "@daily 0",
                "unrecognized descriptor: @daily 0 (use @yearly, @annually, @monthly, @weekly, @daily, @midnight, \
                 @hourly or @every <duration>)",
            ),
            (
                "@every 1d",
                "failed to parse duration @every 1d: unknown unit \"d\" in duration \"1d\" (use ns, us, ms, s, m or h)",
            ),
            (
                "@every 5",
                "failed to parse duration @every 5: missing unit in duration \"5\" (use ns, us, ms, s, m or h)",
            ),
            ("@every x", "failed to parse duration @every x: invalid duration \"x\""),
            ("@every ", "failed to parse duration @every : invalid duration \"\""),
            (
                "@every 1h ",
                "failed to parse duration @every 1h : unknown unit \"h \" in duration \"1h \" (use ns, us, ms, s, m or h)",
            ),
            ("@every 3000000h", "failed to parse duration @every 3000000h: invalid duration \"3000000h\""),
        ];
        for (schedule, want) in cases {
            let err = Schedule::parse(schedule).expect_err(schedule);
            assert_eq!(err.to_string(), want, "{schedule:?}");
        }
    }

    #[test]
    fn upstream_quirks_that_parse() {
        let same = |a: &str, b: &str| {
            assert_eq!(Schedule::parse(a).expect(a), Schedule::parse(b).expect(b), "{a} vs {b}");
        };
        same("*-5 * * * *", "* * * * *");
        same("*-5/2 * * * *", "*/2 * * * *");
        same("+5 * * * *", "5 * * * *");
        same("05 * * * *", "5 * * * *");
        same("1,,2 * * * *", "1,2 * * * *");
        same("0/100 * * * *", "0 * * * *");
        same("*/61 * * * *", "0 * * * *");
        same("0 0 * * SUN-sat", "0 0 * * 0-6");
        same("0 0\t* *  *", "0 0 * * *");
        same("0 0 1 1 *", "@yearly");
        same("0 0 * * 0", "@weekly");
        same("0 * * * *", "@hourly");
        // A field of commas matches nothing: the schedule never fires.
        let never = Schedule::parse(", * * * *").expect("parses as upstream");
        assert_eq!(never.next_after(at("2024-01-01T00:00:00Z"), &TimeZone::utc()), None);
        // A "TZ" anywhere is refused, as upstream's validation does.
        assert_eq!(Schedule::parse("0 0 * * TZ"), Err(CronError::TimeZoneInSchedule));
        assert!("@every 2h45m".parse::<Schedule>().is_ok());
    }

    #[test]
    fn go_durations() {
        let cases = [
            ("0", 0),
            ("-0", 0),
            ("1ns", 1),
            ("1.5h", 5_400_000_000_000),
            ("2h45m", 9_900_000_000_000),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("1.h.5s", 3_600_500_000_000),
            ("1µs", 1_000),
            ("1μs", 1_000),
            ("-1m", -60_000_000_000),
            ("+3s", 3_000_000_000),
            ("9223372036854775807ns", i64::MAX),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_duration(text), Ok(want), "{text}");
        }
        for bad in ["", "-", ".", "s", "1", "1.5", "9223372036854775808ns", "1hh", "1h-5m"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_as_upstream_validates_them() {
        assert_eq!(tz("Europe/Berlin").name(), "Europe/Berlin");
        assert_eq!(tz("America/Argentina/Buenos_Aires").name(), "America/Argentina/Buenos_Aires");
        assert_eq!(tz("Etc/GMT+5").name(), "Etc/GMT+5");
        assert_eq!(tz("UTC").name(), "UTC");
        let err = |name: &str| TimeZone::load(name).expect_err(name).to_string();
        assert_eq!(err(""), "timeZone must be nil or non-empty string");
        assert_eq!(
            err("Local"),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
        );
        assert_eq!(
            err("local"),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
        );
        assert_eq!(err("europe/berlin"), "unknown time zone europe/berlin");
        assert_eq!(err("Mars/Olympus_Mons"), "unknown time zone Mars/Olympus_Mons");
        assert_eq!(err("../etc/passwd"), "unknown time zone ../etc/passwd");
        assert_eq!(err("/Europe/Berlin"), "unknown time zone /Europe/Berlin");
        assert_eq!(err("America/Argentina_Buenos_Aires"), "unknown time zone America/Argentina_Buenos_Aires");
        assert_eq!(TimeZone::for_cronjob(None).expect("utc").name(), "UTC");
        assert_eq!(TimeZone::for_cronjob(Some("Asia/Tokyo")).expect("tokyo").name(), "Asia/Tokyo");
    }

    #[test]
    fn bundled_database_serves_without_system_zoneinfo() {
        let bundled = jiff::tz::TimeZoneDatabase::bundled();
        let berlin = bundled.get("Europe/Berlin").expect("bundled copy of the tzdb");
        let summer = jiff::Timestamp::from_second(1_719_792_000).expect("2024-07-01");
        assert_eq!(berlin.to_offset(summer).seconds(), 7200);
    }

    fn missed(schedule: &str, zone: &str, earliest: &str, now: &str) -> (String, u32) {
        let schedule = Schedule::parse(schedule).expect("valid");
        let got = most_recent_schedule_time(&schedule, &tz(zone), at(earliest), at(now)).expect("fires");
        (show(got.most_recent), got.count)
    }

    #[test]
    fn most_recent_schedule_time_counts_missed_starts() {
        let none = ("none".to_string(), 0);
        assert_eq!(missed("0 * * * *", "UTC", "2024-01-01T10:00:00Z", "2024-01-01T10:30:00Z"), none);
        // now itself counts.
        assert_eq!(
            missed("0 * * * *", "UTC", "2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"),
            ("2024-01-01T11:00:00Z".to_string(), 1)
        );
        assert_eq!(
            missed("0 * * * *", "UTC", "2024-01-01T10:00:00Z", "2024-01-01T13:30:00Z"),
            ("2024-01-01T13:00:00Z".to_string(), 3)
        );
        // Earliest after now: nothing due.
        assert_eq!(missed("* * * * *", "UTC", "2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z"), none);
        // Upstream estimates 3 from the Thursday-Friday gap and finds nothing
        // after its estimate; Friday 09:00 is the one to start.
        assert_eq!(
            missed("0 9 * * 1-5", "UTC", "2024-01-03T09:00:00Z", "2024-01-08T08:00:00Z"),
            ("2024-01-05T09:00:00Z".to_string(), 2)
        );
        assert_eq!(
            missed("@every 1h", "UTC", "2024-01-01T10:00:00Z", "2024-01-01T13:30:00Z"),
            ("2024-01-01T13:00:00Z".to_string(), 3)
        );
        // Both 02:30s of a fall-back night count.
        assert_eq!(
            missed("30 2 * * *", "Europe/Berlin", "2024-10-26T22:00:00Z", "2024-10-27T02:00:00Z"),
            ("2024-10-27T01:30:00Z".to_string(), 2)
        );
    }

    #[test]
    fn too_many_missed_still_finds_the_most_recent() {
        let schedule = Schedule::parse("* * * * *").expect("valid");
        let got = most_recent_schedule_time(
            &schedule,
            &TimeZone::utc(),
            at("2024-01-01T00:00:00Z"),
            at("2024-01-02T00:00:30Z"),
        )
        .expect("fires");
        assert!(got.too_many());
        assert_eq!(got.count, MAX_MISSED + 1);
        assert_eq!(show(got.most_recent), "2024-01-02T00:00:00Z");
        // Exactly 100 is not too many.
        let got = most_recent_schedule_time(
            &schedule,
            &TimeZone::utc(),
            at("2024-01-01T00:00:00Z"),
            at("2024-01-01T01:40:00Z"),
        )
        .expect("fires");
        assert_eq!((got.count, got.too_many()), (100, false));
        // Weekdays for a year, a weekend at the end: back from Sunday to Friday.
        assert_eq!(
            missed("0 9 * * 1-5", "UTC", "2023-01-01T00:00:00Z", "2024-01-07T12:00:00Z"),
            ("2024-01-05T09:00:00Z".to_string(), 101)
        );
        // Leap days, minute by minute, four years later.
        assert_eq!(
            missed("* * 29 2 *", "UTC", "2024-02-29T00:00:00Z", "2027-06-01T00:00:00Z"),
            ("2024-02-29T23:59:00Z".to_string(), 101)
        );
    }

    #[test]
    fn never_scheduled_is_an_error() {
        let schedule = Schedule::parse("0 0 30 2 *").expect("parses");
        let err = most_recent_schedule_time(
            &schedule,
            &TimeZone::utc(),
            at("2024-01-01T00:00:00Z"),
            at("2025-01-01T00:00:00Z"),
        )
        .expect_err("never fires");
        assert_eq!(err.to_string(), "time difference between two schedules is less than 1 second");
    }

    #[test]
    fn earliest_time_honours_starting_deadline() {
        let created = at("2024-01-01T00:00:00Z");
        let last = at("2024-01-01T10:00:00Z");
        let now = at("2024-01-01T12:00:00Z");
        assert_eq!(show(Some(earliest_time(created, None, None, now))), "2024-01-01T00:00:00Z");
        assert_eq!(show(Some(earliest_time(created, Some(last), None, now))), "2024-01-01T10:00:00Z");
        assert_eq!(show(Some(earliest_time(created, Some(last), Some(600), now))), "2024-01-01T11:50:00Z");
        assert_eq!(show(Some(earliest_time(created, Some(last), Some(86_400), now))), "2024-01-01T10:00:00Z");
    }

    /// The first minute after `t` whose wall-clock fields match, scanning
    /// minute by minute for `window` minutes.
    fn brute_force(spec: &Spec, tz: &TimeZone, t: i64, window: i64) -> Option<i64> {
        let first = t.div_euclid(60) * 60 + 60;
        (0..window).map(|i| first + i * 60).find(|&m| {
            let c = tz.civil(m);
            has(spec.month, c.month)
                && spec.day_matches(c)
                && has(spec.hour, c.hour)
                && has(spec.minute, c.minute)
        })
    }

    fn field_expr(min: u64, max: u64) -> impl Strategy<Value = String> {
        let part = prop_oneof![
            Just("*".to_string()),
            Just("?".to_string()),
            (1..=max.min(20)).prop_map(|s| format!("*/{s}")),
            (min..=max).prop_map(|v| v.to_string()),
            (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            (min..=max, min..=max, 1..=7u64).prop_map(|(a, b, s)| format!("{}-{}/{s}", a.min(b), a.max(b))),
            (min..=max, 1..=15u64).prop_map(|(a, s)| format!("{a}/{s}")),
        ];
        proptest::collection::vec(part, 1..=3).prop_map(|parts| parts.join(","))
    }

    fn schedule_text() -> impl Strategy<Value = String> {
        (field_expr(0, 59), field_expr(0, 23), field_expr(1, 31), field_expr(1, 12), field_expr(0, 6))
            .prop_map(|(mi, h, dom, mo, dow)| format!("{mi} {h} {dom} {mo} {dow}"))
    }

    /// Unix seconds in 2020..2030, often within a few days of a DST change.
    fn instant() -> impl Strategy<Value = i64> {
        const CHANGES: [i64; 8] = [
            1_711_846_800, // 2024-03-31T01:00:00Z Berlin
            1_729_990_800, // 2024-10-27T01:00:00Z Berlin
            1_710_054_000, // 2024-03-10T07:00:00Z New York
            1_730_613_600, // 2024-11-03T06:00:00Z New York
            1_743_296_400, // 2025-03-30T01:00:00Z Berlin
            1_761_440_400, // 2025-10-26T01:00:00Z Berlin
            1_741_503_600, // 2025-03-09T07:00:00Z New York
            1_762_063_200, // 2025-11-02T06:00:00Z New York
        ];
        prop_oneof![
            1_577_836_800..1_893_456_000i64,
            (0..CHANGES.len(), -3 * 86_400..86_400i64).prop_map(|(i, d)| CHANGES[i] + d),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn next_after_matches_a_minute_by_minute_scan(
            text in schedule_text(),
            t in instant(),
            zone in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York"]),
        ) {
            let schedule = Schedule::parse(&text).expect("generated schedules are valid");
            let Kind::Spec(spec) = &schedule.kind else { unreachable!("five fields") };
            let zone = tz(zone);
            let window = 3 * 24 * 60;
            let got = schedule.next_after(from_unix(t).expect("in range"), &zone).map(unix_seconds);
            if let Some(next) = got {
                prop_assert!(next > t);
                prop_assert_eq!(next.rem_euclid(60), 0);
            }
            match brute_force(spec, &zone, t, window) {
                Some(want) => prop_assert_eq!(got, Some(want), "{}", text),
                None => prop_assert!(got.is_none_or(|n| n >= t + window * 60), "{} gave {:?}", text, got),
            }
        }

        #[test]
        fn parse_never_panics(text in "[0-9a-zA-Z*?/,@ -]{0,30}") {
            let _ = Schedule::parse(&text);
        }
    }
}
