//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Why the cluster PKI could not be loaded, created or used.
///
/// Messages are short and lowercase and do not repeat the source error: print
/// the chain.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file or directory could not be read, written, synced or renamed.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done, e.g. "cannot write".
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The CA certificate, CA key or service-account key on disk is unusable.
    ///
    /// These are never replaced silently: a new CA or service-account key would
    /// invalidate every kubeconfig, join token and service-account token.
    #[error("refusing to replace {}: {problem}; fix or remove it by hand", path.display())]
    Identity {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A `--tls-san` value (or the hostname) is neither an IP address nor a DNS name.
    #[error(
        "invalid subject alternative name {value:?}: {problem} \
         (use an IP address or a DNS name such as node1.example.com)"
    )]
    InvalidName {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A client certificate request was malformed (empty common name, zero validity).
    #[error("invalid client certificate request: {0}")]
    InvalidRequest(&'static str),
    /// A certificate signing request cannot be signed as it is.
    #[error("certificate signing request refused: {problem}")]
    Csr {
        /// What is wrong with the request.
        problem: String,
    },
    /// The system's random number generator failed.
    #[error("no randomness available")]
    Random,
    /// rcgen refused to generate a key or certificate.
    #[error("cannot generate {what}")]
    Generate {
        /// The key or certificate being made.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
}

impl PkiError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| PkiError::Io { what, path, source }
    }

    pub(crate) fn generate(what: &'static str) -> impl FnOnce(rcgen::Error) -> Self {
        move |source| PkiError::Generate { what, source }
    }
}
