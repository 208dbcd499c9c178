//! What [`crate::Pki::load_or_create`] did, for the log.

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

/// One part of the PKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// `ca.crt` and `ca.key`.
    Ca,
    /// `sa.key` and `sa.pub`.
    ServiceAccountKey,
    /// `server.crt` and `server.key`.
    Serving,
    /// `admin.crt` and `admin.key`.
    Admin,
    /// `admin.kubeconfig`.
    Kubeconfig,
    /// `token` (the join token; fleet secrets only).
    Token,
}

/// What happened to an [`Item`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was there; it was made.
    Created,
    /// What was there is good and was kept as it is.
    Reused,
    /// What was there was replaced (or, for `sa.pub`, rewritten from `sa.key`).
    Replaced(Reason),
}

/// Why something was replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The serving certificate's names differ from the wanted ones.
    SansChanged,
    /// The certificate expires within 30 days (or has expired).
    ExpiresSoon {
        /// When it expires.
        not_after: SystemTime,
    },
    /// A file did not parse, did not match its key or was not signed by the CA.
    Invalid {
        /// The offending file.
        file: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// One file of a pair was missing.
    Missing {
        /// The missing file.
        file: PathBuf,
    },
    /// A derived file (kubeconfig, `sa.pub`) no longer matched what it derives from.
    Stale,
}

/// Everything [`crate::Pki::load_or_create`] did, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One entry per [`Item`].
    pub entries: Vec<(Item, Outcome)>,
}

impl Report {
    /// What happened to `item`.
    pub fn outcome(&self, item: Item) -> Option<&Outcome> {
        self.entries.iter().find(|(i, _)| *i == item).map(|(_, o)| o)
    }

    pub(crate) fn push(&mut self, item: Item, outcome: Outcome) {
        self.entries.push((item, outcome));
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Item::Ca => "cluster CA",
            Item::ServiceAccountKey => "service-account key",
            Item::Serving => "serving certificate",
            Item::Admin => "admin certificate",
            Item::Kubeconfig => "admin kubeconfig",
            Item::Token => "join token",
        })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Created => f.write_str("created"),
            Outcome::Reused => f.write_str("reused"),
            Outcome::Replaced(Reason::SansChanged) => {
                f.write_str("renewed: subject alternative names changed")
            }
            Outcome::Replaced(Reason::ExpiresSoon { not_after }) => {
                let secs = not_after.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                write!(f, "renewed: expires within 30 days (not after {secs} unix time)")
            }
            Outcome::Replaced(Reason::Invalid { file, problem }) => {
                write!(f, "regenerated: {}: {problem}", file.display())
            }
            Outcome::Replaced(Reason::Missing { file }) => {
                write!(f, "regenerated: {} was missing", file.display())
            }
            Outcome::Replaced(Reason::Stale) => f.write_str("rewritten: out of date"),
        }
    }
}

impl fmt::Display for Report {
    /// One line per item: `serving certificate: renewed: subject alternative names changed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (item, outcome) in &self.entries {
            writeln!(f, "{item}: {outcome}")?;
        }
        Ok(())
    }
}
