//! The kernel command line: `lichen.*` parameters.

use lichen_formats::bootenv::Slot;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmdline {
    /// `lichen.slot=a|b`, set by the bootloader.
    pub slot: Option<Slot>,
    /// `lichen.shell=1`: a root shell on the console (QEMU, development).
    pub shell: bool,
    /// `lichen.rescue=1`: stop in the rescue shell before switching root.
    pub rescue: bool,
    /// The last `console=` device (the one /dev/console is), e.g. ttyS0.
    pub console: Option<String>,
    /// Problems worth a warning (unknown slot value).
    pub warnings: Vec<String>,
}

impl Cmdline {
    pub fn parse(text: &str) -> Cmdline {
        let mut c = Cmdline { slot: None, shell: false, rescue: false, console: None, warnings: vec![] };
        for word in text.split_whitespace() {
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            match k {
                "lichen.slot" => match v.parse() {
                    Ok(s) => c.slot = Some(s),
                    Err(_) => c.warnings.push(format!("lichen.slot={v:?} is not a or b")),
                },
                "lichen.shell" => c.shell = flag(v),
                "lichen.rescue" => c.rescue = flag(v),
                "console" => {
                    let dev = v.split(',').next().unwrap_or("");
                    if !dev.is_empty() {
                        c.console = Some(dev.to_string());
                    }
                }
                _ => {}
            }
        }
        c
    }

    pub fn read() -> Cmdline {
        Cmdline::parse(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default())
    }
}

fn flag(v: &str) -> bool {
    matches!(v, "" | "1" | "yes" | "true" | "on")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lichen_parameters_and_last_console() {
        let c = Cmdline::parse(
            "BOOT_IMAGE=/x lichen.slot=b console=tty0 console=ttyS0,115200 lichen.shell=1 quiet\n",
        );
        assert_eq!(c.slot, Some(Slot::B));
        assert!(c.shell);
        assert!(!c.rescue);
        assert_eq!(c.console.as_deref(), Some("ttyS0"));
    }

    #[test]
    fn bad_slot_is_a_warning() {
        let c = Cmdline::parse("lichen.slot=c lichen.rescue");
        assert_eq!(c.slot, None);
        assert!(c.rescue);
        assert_eq!(c.warnings.len(), 1);
    }
}
