//! Signals for PID 1: the signals init acts on are blocked and collected with
//! `sigtimedwait`, so they are handled in the main loop, not in handlers.
//!
//! The kernel drops signals to PID 1 whose disposition is SIG_DFL, even when
//! they are blocked, so each gets a no-op handler first.

use std::io;
use std::time::Duration;

/// What the main loop reacts to.
pub const HANDLED: &[libc::c_int] =
    &[libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGPWR, libc::SIGHUP];

extern "C" fn ignore(_: libc::c_int) {}

fn set_of(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set it is given; sigaddset
    // only writes into that set; every signal number is valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// Installs no-op handlers and blocks [`HANDLED`] in the calling thread
/// (threads spawned later inherit the mask; children get an empty mask from
/// `std::process::Command`).
pub fn block() -> io::Result<()> {
    for s in HANDLED {
        // SAFETY: a zeroed sigaction with a valid extern "C" handler and an
        // empty mask is a valid argument; the old action is not requested.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = ignore as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(*s, &sa, std::ptr::null_mut())
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let set = set_of(HANDLED);
    // SAFETY: `set` is an initialised sigset_t; the old mask is not requested.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Waits up to `timeout` for one of [`HANDLED`]; `None` on timeout.
pub fn wait(timeout: Duration) -> Option<libc::c_int> {
    let set = set_of(HANDLED);
    // c_long is 32 bits on armv7, where this conversion can fail.
    #[allow(clippy::unnecessary_fallible_conversions)]
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::try_from(timeout.subsec_nanos()).unwrap_or(0),
    };
    // SAFETY: `set` and `ts` are initialised and outlive the call; the
    // siginfo out-parameter may be null.
    let rc = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    (rc > 0).then_some(rc)
}

/// Sends `sig` to process `pid` (negative: a process group; -1: everyone
/// but init).
pub fn send(pid: i32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPWR => "SIGPWR",
        libc::SIGHUP => "SIGHUP",
        libc::SIGKILL => "SIGKILL",
        _ => "signal",
    }
}
