//! When an essential step fails, PID 1 says what failed and why, then offers
//! a shell on the console. It never exits (that would panic the kernel) and
//! never reboots by itself into the same failure.

use std::process::Command;
use std::time::Duration;

/// Prints `what` and runs a shell on the console, again and again: leaving
/// the shell starts another; `reboot -f` or `poweroff -f` end the boot.
pub fn rescue(what: &str) -> ! {
    crate::log::console_raw(
        format!(
            "\n\
             ************************************************************\n\
             lichen-init: boot stopped: {what}\n\
             A rescue shell follows on this console. `reboot -f` restarts,\n\
             `poweroff -f` powers off.\n\
             ************************************************************\n\n"
        )
        .as_bytes(),
    );
    crate::error!("boot stopped: {what}");
    loop {
        let shell = ["/bin/sh", "/bin/busybox"].into_iter().find(|p| std::path::Path::new(p).exists());
        match shell {
            Some(sh) => {
                let mut cmd = Command::new(sh);
                if sh.ends_with("busybox") {
                    cmd.arg("sh");
                }
                cmd.env("PATH", crate::services::PATH).env("PS1", "(rescue) # ");
                crate::sys::signals::unblock_in_child(&mut cmd);
                match cmd.status() {
                    Ok(_) => crate::info!("rescue shell exited; starting another"),
                    Err(e) => {
                        crate::error!("cannot start the rescue shell {sh}: {e}");
                        std::thread::sleep(Duration::from_secs(10));
                    }
                }
            }
            None => {
                crate::error!("no shell in this image; halted. Power-cycle the device.");
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Turns a panic into a rescue shell instead of a kernel panic.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("internal error: {info}");
        rescue(&msg);
    }));
}
