//! The only code that runs `nft`: apply a table in one transaction,
//! delete it, list it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// A failed `nft` run.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("running {nft}")]
    Spawn {
        nft: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{nft} {args} ({status}): {message}")]
    Failed { nft: PathBuf, args: String, status: ExitStatus, message: String },
}

impl NftError {
    /// The binary is not there (not installed, not on PATH).
    pub fn is_missing(&self) -> bool {
        matches!(self, NftError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Runs `nft <args>` with `stdin` as its input; returns its stdout.
fn run(nft: &Path, args: &[&str], stdin: &str) -> Result<String, NftError> {
    let spawn = |source| NftError::Spawn { nft: nft.to_owned(), source };
    let mut child = Command::new(nft)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    if let Some(mut input) = child.stdin.take() {
        // A write error (nft exited early) shows in its status and stderr.
        let _ = input.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().map_err(spawn)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(NftError::Failed {
        nft: nft.to_owned(),
        args: args.join(" "),
        status: out.status,
        message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// The transaction replacing `table ip <name>` by `definition`: the
/// `add` makes the `delete` valid when the table does not exist yet, and
/// nft applies the file atomically.
pub fn transaction(table: &str, definition: &str) -> String {
    format!("add table ip {table}\ndelete table ip {table}\n{definition}")
}

/// Replaces the table in one transaction.
pub fn apply(nft: &Path, table: &str, definition: &str) -> Result<(), NftError> {
    run_file(nft, &transaction(table, definition))
}

/// Runs `commands` as one transaction (`nft -f -`).
pub fn run_file(nft: &Path, commands: &str) -> Result<(), NftError> {
    run(nft, &["-f", "-"], commands).map(drop)
}

/// Checks a transaction without committing it (`nft -c`).
pub fn check(nft: &Path, table: &str, definition: &str) -> Result<(), NftError> {
    run(nft, &["-c", "-f", "-"], &transaction(table, definition)).map(drop)
}

/// Deletes the table; nothing to do when it is not there.
pub fn delete(nft: &Path, table: &str) -> Result<(), NftError> {
    run(nft, &["-f", "-"], &transaction(table, "")).map(drop)
}

/// The table as the kernel has it (`nft list table`), or `None` when it
/// does not exist.
pub fn list(nft: &Path, table: &str) -> Result<Option<String>, NftError> {
    match run(nft, &["list", "table", "ip", table], "") {
        Ok(text) => Ok(Some(text)),
        Err(NftError::Failed { message, .. }) if message.contains("No such file or directory") => Ok(None),
        Err(e) => Err(e),
    }
}

/// `nft --version`, to find out whether nft can run at all.
pub fn version(nft: &Path) -> Result<String, NftError> {
    run(nft, &["--version"], "").map(|v| v.trim().to_owned())
}

/// Whether the kernel's `table` has the chains and rules of `rs` (the
/// periodic check of the proxy and NetworkPolicy; an error or a missing
/// table counts as a difference).
pub async fn kernel_matches(nft: &Path, table: &str, rs: &crate::proxy::ruleset::Ruleset) -> bool {
    let (n, t) = (nft.to_path_buf(), table.to_owned());
    match tokio::task::spawn_blocking(move || list(&n, &t)).await {
        Ok(Ok(Some(listing))) => crate::proxy::ruleset::listed_counts(&listing) == rs.counts(),
        Ok(Ok(None)) => false,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, %table, "listing the table failed");
            false
        }
        Err(_) => false,
    }
}

/// Programs `want` into `table`: the update from `applied` when there is
/// one, else the whole table, in one transaction. `None` when nothing
/// changed; else whether the table was replaced whole, and how it went.
pub async fn program(
    nft: &Path,
    table: &str,
    applied: Option<&crate::proxy::ruleset::Ruleset>,
    want: &crate::proxy::ruleset::Ruleset,
) -> Option<(bool, Result<(), NftError>)> {
    let (text, full) = match applied.and_then(|old| want.update_from(old)) {
        Some(update) if update.is_empty() => return None,
        Some(update) => (update, false),
        None => (transaction(table, &want.definition()), true),
    };
    let n = nft.to_path_buf();
    let result = tokio::task::spawn_blocking(move || run_file(&n, &text)).await.unwrap_or_else(|e| {
        Err(NftError::Spawn { nft: nft.to_path_buf(), source: std::io::Error::other(e) })
    });
    Some((full, result))
}

/// Returns once `nft` runs; until then `what` (e.g. "service proxy") is
/// off, which is said once, and `nft` is tried every minute.
pub async fn wait_until_available(nft: &Path, table: &str, what: &str) {
    let mut said = false;
    loop {
        let n = nft.to_path_buf();
        match tokio::task::spawn_blocking(move || version(&n)).await {
            Ok(Ok(version)) => {
                tracing::info!(nft = %nft.display(), %version, %table, "{what} starting");
                return;
            }
            Ok(Err(e)) if !said => {
                tracing::error!(error = %e, "{what} disabled until nft can run (install nftables)");
                said = true;
            }
            _ => {}
        }
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}
