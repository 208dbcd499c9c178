//! Hard eviction thresholds in upstream's `--eviction-hard` syntax
//! (`memory.available<100Mi,nodefs.available<10%`). They set the node's
//! MemoryPressure and DiskPressure conditions (which the node lifecycle
//! controller turns into taints) and are subtracted from capacity for
//! allocatable.
//!
//! As upstream: a list that names some signals leaves the others at zero,
//! which turns them off (upstream's documented behaviour: "the values of
//! other parameters will not be inherited as the default values"); `0%`
//! and `100%` are off, and a quantity must be positive.

use std::fmt;
use std::str::FromStr;

use lichen_apimachinery::quantity::Quantity;

/// One threshold: an amount, or a percentage of the resource's capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Bytes(u64),
    Percent(f64),
}

impl Threshold {
    pub const OFF: Threshold = Threshold::Bytes(0);

    /// The threshold in bytes for a resource of `capacity` bytes.
    // The float is exact enough: capacities are far below 2^53 bytes and a
    // percentage is within 0..=100, so the product fits a u64.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    pub fn bytes_of(self, capacity: u64) -> u64 {
        match self {
            Threshold::Bytes(b) => b,
            Threshold::Percent(p) => (capacity as f64 * p / 100.0) as u64,
        }
    }

    /// Whether `available` bytes of `capacity` are below the threshold.
    pub fn crossed(self, capacity: u64, available: u64) -> bool {
        capacity > 0 && available < self.bytes_of(capacity)
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Bytes(b) if b % (1 << 20) == 0 => write!(f, "{}Mi", b >> 20),
            Threshold::Bytes(b) => write!(f, "{b}"),
            Threshold::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// The signals Lichen's agent watches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub memory_available: Threshold,
    pub nodefs_available: Threshold,
}

impl Default for Thresholds {
    /// Upstream's defaults for these two signals.
    fn default() -> Self {
        Thresholds {
            memory_available: Threshold::Bytes(100 << 20),
            nodefs_available: Threshold::Percent(10.0),
        }
    }
}

impl fmt::Display for Thresholds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memory.available<{},nodefs.available<{}", self.memory_available, self.nodefs_available)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("eviction threshold {0:?} is not <signal><<value> (e.g. nodefs.available<10%)")]
    Syntax(String),
    #[error(
        "eviction signal {0:?} is not one Lichen's agent watches (it watches memory.available and nodefs.available)"
    )]
    UnknownSignal(String),
    #[error(
        "eviction threshold {signal}: {value:?} is neither a quantity (100Mi) nor a percentage from 0% to 100%"
    )]
    Value { signal: String, value: String },
    #[error("eviction signal {0:?} is given twice")]
    Duplicate(String),
    #[error("eviction threshold {0}: a quantity must be positive (0% turns the signal off)")]
    NotPositive(String),
}

impl FromStr for Thresholds {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let mut memory = None;
        let mut nodefs = None;
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (signal, value) = item.split_once('<').ok_or_else(|| ParseError::Syntax(item.to_owned()))?;
            let (signal, value) = (signal.trim(), value.trim());
            let slot = match signal {
                "memory.available" => &mut memory,
                "nodefs.available" => &mut nodefs,
                _ => return Err(ParseError::UnknownSignal(signal.to_owned())),
            };
            if slot.is_some() {
                return Err(ParseError::Duplicate(signal.to_owned()));
            }
            let bad = || ParseError::Value { signal: signal.to_owned(), value: value.to_owned() };
            *slot = Some(match value.strip_suffix('%') {
                Some(p) => {
                    let p: f64 = p.trim().parse().map_err(|_| bad())?;
                    if !(0.0..=100.0).contains(&p) {
                        return Err(bad());
                    }
                    // As upstream: 0% and 100% are off.
                    if p == 0.0 || p == 100.0 { Threshold::OFF } else { Threshold::Percent(p) }
                }
                None => {
                    let q = Quantity::parse(value).map_err(|_| bad())?;
                    let bytes = u64::try_from(q.value()).map_err(|_| bad())?;
                    if bytes == 0 {
                        return Err(ParseError::NotPositive(signal.to_owned()));
                    }
                    Threshold::Bytes(bytes)
                }
            });
        }
        Ok(Thresholds {
            memory_available: memory.unwrap_or(Threshold::OFF),
            nodefs_available: nodefs.unwrap_or(Threshold::OFF),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_syntax() {
        let t: Thresholds = "memory.available<100Mi,nodefs.available<10%".parse().unwrap();
        assert_eq!(t, Thresholds::default());
        let t: Thresholds = " nodefs.available < 2.5% ".parse().unwrap();
        assert_eq!(t.nodefs_available, Threshold::Percent(2.5));
        assert_eq!(t.memory_available, Threshold::OFF, "unnamed signals are off, as upstream");
        let t: Thresholds = "memory.available<1Gi,nodefs.available<500M".parse().unwrap();
        assert_eq!(t.memory_available, Threshold::Bytes(1 << 30));
        assert_eq!(t.nodefs_available, Threshold::Bytes(500_000_000));
        assert_eq!(Thresholds::default().to_string(), "memory.available<100Mi,nodefs.available<10%");
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let err = |s: &str| s.parse::<Thresholds>().unwrap_err().to_string();
        assert!(err("imagefs.available<15%").contains("\"imagefs.available\" is not one"));
        assert!(err("nodefs.available=10%").contains("is not <signal><<value>"));
        assert!(err("nodefs.available<110%").contains("neither a quantity"));
        assert!(err("nodefs.available<-1").contains("neither a quantity"));
        assert!(err("memory.available<lots").contains("neither a quantity"));
        assert!(err("nodefs.available<1%,nodefs.available<2%").contains("given twice"));
        assert!(err("memory.available<0").contains("must be positive"));
        let off: Thresholds = "memory.available<0%,nodefs.available<100%".parse().unwrap();
        assert_eq!(off, Thresholds { memory_available: Threshold::OFF, nodefs_available: Threshold::OFF });
    }

    #[test]
    fn crossing() {
        let ten = Threshold::Percent(10.0);
        assert!(ten.crossed(1000, 99));
        assert!(!ten.crossed(1000, 100));
        assert!(!ten.crossed(0, 0), "an unknown capacity never reports pressure");
        assert!(!Threshold::OFF.crossed(1000, 0));
        assert!(!Threshold::Percent(0.0).crossed(1000, 0));
        assert!(Threshold::Bytes(100).crossed(1 << 40, 99));
    }
}
