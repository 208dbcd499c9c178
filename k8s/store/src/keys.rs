//! Key ranges and revision checks shared by the backends.

use crate::error::StoreError;
use crate::types::Revision;

/// Rejects keys no backend can store faithfully.
pub(crate) fn validate_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidKey { key: key.to_owned(), reason: "a key must not be empty" });
    }
    Ok(())
}

/// The smallest string greater than every string that starts with `prefix`,
/// or `None` when there is none (empty prefix, or only `char::MAX`).
///
/// Strings compare by their UTF-8 bytes in both backends (Rust's `str` order
/// and SQLite's BINARY collation), and UTF-8 byte order is code point order,
/// so incrementing the last character that can be incremented gives the bound.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The keys a list visits: `[lower, upper)`, where `lower` is exclusive
/// when it comes from `start_after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRange {
    pub lower: String,
    pub lower_inclusive: bool,
    pub upper: Option<String>,
}

impl KeyRange {
    pub(crate) fn new(prefix: &str, start_after: Option<&str>) -> Self {
        let upper = prefix_end(prefix);
        match start_after {
            Some(after) if after >= prefix => {
                KeyRange { lower: after.to_owned(), lower_inclusive: false, upper }
            }
            _ => KeyRange { lower: prefix.to_owned(), lower_inclusive: true, upper },
        }
    }

    /// True when `start_after` lies at or beyond the end of the prefix.
    pub(crate) fn is_empty(&self) -> bool {
        self.upper.as_deref().is_some_and(|upper| self.lower.as_str() >= upper)
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        let above = if self.lower_inclusive { key >= self.lower.as_str() } else { key > self.lower.as_str() };
        above && self.upper.as_deref().is_none_or(|upper| key < upper)
    }
}

/// Checks a read revision against the store's window and resolves `None` to
/// the current revision.
pub(crate) fn read_revision(
    at: Option<Revision>,
    current: Revision,
    compacted: Revision,
) -> Result<Revision, StoreError> {
    let Some(at) = at else { return Ok(current) };
    if at > current {
        return Err(StoreError::FutureRevision { requested: at, current });
    }
    if at < compacted {
        return Err(StoreError::Compacted { requested: at, compacted });
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_character() {
        assert_eq!(prefix_end("a/b/"), Some("a/b0".to_owned()));
        assert_eq!(prefix_end("ab"), Some("ac".to_owned()));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("a\u{10FFFF}"), Some("b".to_owned()));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end("x\u{D7FF}"), Some("x\u{E000}".to_owned()));
    }

    #[test]
    fn range_holds_exactly_the_prefixed_keys_after_start() {
        let r = KeyRange::new("a/", None);
        for key in ["a/", "a/x", "a/\u{10FFFF}\u{10FFFF}"] {
            assert!(r.contains(key), "{key:?}");
        }
        for key in ["a", "a0", "a.", "b/"] {
            assert!(!r.contains(key), "{key:?}");
        }
        let r = KeyRange::new("a/", Some("a/m"));
        assert!(!r.contains("a/m"));
        assert!(r.contains("a/n"));
        // A start key before the prefix does not widen the range.
        let r = KeyRange::new("b/", Some("a/z"));
        assert!(!r.contains("a/zz"));
        assert!(r.contains("b/"));
        // A start key after the prefix leaves nothing.
        assert!(KeyRange::new("a/", Some("b")).is_empty());
        assert!(KeyRange::new("a/", Some("a0")).is_empty());
        assert!(!KeyRange::new("a/", Some("a/\u{10FFFF}")).is_empty());
        assert!(!KeyRange::new("", Some("zzz")).is_empty());
    }

    #[test]
    fn read_revision_enforces_the_window() {
        assert_eq!(read_revision(None, 9, 3).ok(), Some(9));
        assert_eq!(read_revision(Some(3), 9, 3).ok(), Some(3));
        assert!(matches!(
            read_revision(Some(2), 9, 3),
            Err(StoreError::Compacted { requested: 2, compacted: 3 })
        ));
        assert!(matches!(
            read_revision(Some(10), 9, 3),
            Err(StoreError::FutureRevision { requested: 10, current: 9 })
        ));
    }
}
