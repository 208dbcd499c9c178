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
/// (threads spawned later inherit the mask, and so would children: every
/// child is started through [`unblock_in_child`]).
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

/// Makes `cmd`'s child start with no signal blocked. A child inherits its
/// parent's signal mask across fork and exec, and `std::process::Command`
/// does not reset it: without this a service would never see the SIGTERM
/// that asks it to stop (Go programs such as containerd unblock signals
/// themselves; tokio's signal handling does not).
pub fn unblock_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe functions may be called: sigemptyset and
    // pthread_sigmask are, and the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            match libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) {
                0 => Ok(()),
                rc => Err(io::Error::from_raw_os_error(rc)),
            }
        });
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked_in_child() -> String {
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", "grep SigBlk /proc/self/status"]);
        unblock_in_child(&mut cmd);
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    }

    #[test]
    fn children_start_with_no_signal_blocked() {
        // In a thread of its own: the mask is per thread.
        std::thread::spawn(|| {
            block().unwrap();
            let own = std::fs::read_to_string("/proc/thread-self/status").unwrap();
            let own = own.lines().find(|l| l.starts_with("SigBlk")).unwrap().to_owned();
            assert!(!own.ends_with("0000000000000000"), "this thread blocks signals: {own}");
            // Whether std's spawn resets the mask depends on its spawn path
            // (on the device, statically linked, it did not); with
            // unblock_in_child it never matters.
            let reset = blocked_in_child();
            assert!(reset.trim().ends_with("0000000000000000"), "{reset}");
        })
        .join()
        .unwrap();
    }
}
