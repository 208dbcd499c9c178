//! A root shell on the console (`lichen.shell=1`, set by boards whose console
//! is private, such as QEMU's serial port). busybox `setsid -c` gives the
//! shell the terminal as its controlling tty, so Ctrl-C works.

use std::path::PathBuf;

use crate::supervisor::{Output, Service, Spec};

pub struct ConsoleShell {
    pub tty: PathBuf,
}

impl Service for ConsoleShell {
    fn name(&self) -> &'static str {
        "console-shell"
    }

    fn spec(&self) -> Spec {
        Spec {
            program: "/bin/busybox".into(),
            args: ["setsid", "-c", "/bin/sh", "-l"].map(String::from).to_vec(),
            env: vec![
                ("PATH".into(), super::PATH.into()),
                ("HOME".into(), "/root".into()),
                ("TERM".into(), "linux".into()),
                ("ENV".into(), "/etc/profile".into()),
            ],
            output: Output::Terminal(self.tty.clone()),
        }
    }

    fn essential(&self) -> bool {
        false
    }

    /// An interactive busybox shell ignores SIGTERM and SIGHUP from outside
    /// its terminal, and has nothing to save: end it at once.
    fn stop_signal(&self) -> i32 {
        libc::SIGKILL
    }
}
