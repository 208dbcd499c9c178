//! PID 1's log: lines with the time since boot, written to the console and,
//! once `/var` is mounted, to `/var/log/lichen-init.log`.
//!
//! A dozen lines instead of `tracing`: the static PID 1 stays small and has
//! nothing to configure. Levels: `info` for boot phases and service state
//! changes a person watching the console cares about, `warn` for anything
//! degraded that boot survives, `error` for what stops a phase.

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

static SINKS: Mutex<Sinks> = Mutex::new(Sinks { console: None, file: None, quiet: false });

struct Sinks {
    console: Option<File>,
    file: Option<File>,
    quiet: bool,
}

/// Seconds since boot (CLOCK_MONOTONIC).
pub fn uptime() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as f64 + f64::from(u32::try_from(t.tv_nsec).unwrap_or(0)) / 1e9
}

/// Opens `/dev/console` (or whatever path) for log output.
pub fn to_console(path: &str) {
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(path)
        && let Ok(mut s) = SINKS.lock()
    {
        s.console = Some(f);
    }
}

/// Also append to a file (called once `/var/log` exists).
pub fn to_file(path: &str) {
    if let Ok(f) = std::fs::OpenOptions::new().create(true).append(true).open(path)
        && let Ok(mut s) = SINKS.lock()
    {
        s.file = Some(f);
    }
}

/// Stops appending to the log file (before `/var` is unmounted).
pub fn close_file() {
    if let Ok(mut s) = SINKS.lock() {
        s.file = None;
    }
}

/// Used by CLI commands: no console output, print to stderr instead.
pub fn quiet() {
    if let Ok(mut s) = SINKS.lock() {
        s.quiet = true;
    }
}

pub fn write(level: &str, msg: &str) {
    let line = format!("[{:>9.3}] lichen-init{level}: {msg}\n", uptime());
    let Ok(mut s) = SINKS.lock() else { return };
    if s.quiet {
        eprint!("{line}");
        return;
    }
    match s.console.as_mut() {
        Some(c) => {
            let _ = c.write_all(line.as_bytes());
        }
        None => eprint!("{line}"),
    }
    if let Some(f) = s.file.as_mut() {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Raw bytes to the console only (service output mirroring, status lines).
pub fn console_raw(bytes: &[u8]) {
    let Ok(mut s) = SINKS.lock() else { return };
    if s.quiet {
        return;
    }
    match s.console.as_mut() {
        Some(c) => {
            let _ = c.write_all(bytes);
        }
        None => {
            let _ = std::io::stderr().write_all(bytes);
        }
    }
}

#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::write("", &format!($($t)*)) };
}
#[macro_export]
macro_rules! warn {
    ($($t:tt)*) => { $crate::log::write(" WARNING", &format!($($t)*)) };
}
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log::write(" ERROR", &format!($($t)*)) };
}

/// An error and its causes on one line: "a: b: c".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
