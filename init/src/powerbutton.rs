//! The ACPI power button: the kernel's `button` driver reports it as an
//! input device named "Power Button"; a press becomes SIGPWR to PID 1, which
//! powers off in order (QEMU's `system_powerdown` presses it).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

const EV_KEY: u16 = 1;
const KEY_POWER: u16 = 116;

/// `/dev/input/eventN` of every device named "Power Button".
pub fn find(sys_input: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir(sys_input) else {
        return found;
    };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with("event") {
            continue;
        }
        let dev_name = std::fs::read_to_string(e.path().join("device/name")).unwrap_or_default();
        if dev_name.trim() == "Power Button" {
            found.push(Path::new("/dev/input").join(name));
        }
    }
    found.sort();
    found
}

/// Whether one `struct input_event` is a power key press. The timestamp
/// comes first and is two longs, so its size depends on the architecture.
pub fn is_power_press(ev: &[u8]) -> bool {
    let tv = 2 * std::mem::size_of::<libc::c_long>();
    let Some(rest) = ev.get(tv..tv + 8) else {
        return false;
    };
    let ty = u16::from_ne_bytes([rest[0], rest[1]]);
    let code = u16::from_ne_bytes([rest[2], rest[3]]);
    let value = i32::from_ne_bytes([rest[4], rest[5], rest[6], rest[7]]);
    ty == EV_KEY && code == KEY_POWER && value == 1
}

/// Watches for power button presses in the background (the device appears
/// once the `button` and `evdev` modules are loaded).
pub fn watch() {
    let _ = std::thread::Builder::new().name("power-button".into()).spawn(|| {
        for _ in 0..60 {
            let devs = find(Path::new("/sys/class/input"));
            if !devs.is_empty() {
                for d in devs {
                    let _ = std::thread::Builder::new().name("power-button".into()).spawn(move || listen(&d));
                }
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        crate::info!("no ACPI power button found");
    });
}

fn listen(dev: &Path) {
    let Ok(mut f) = std::fs::File::open(dev) else {
        return;
    };
    crate::info!("power button at {}", dev.display());
    let size = 2 * std::mem::size_of::<libc::c_long>() + 8;
    let mut buf = vec![0u8; size];
    while f.read_exact(&mut buf).is_ok() {
        if is_power_press(&buf) {
            crate::info!("power button pressed");
            let _ = crate::sys::signals::send(1, libc::SIGPWR);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ty: u16, code: u16, value: i32) -> Vec<u8> {
        let mut v = vec![0u8; 2 * std::mem::size_of::<libc::c_long>()];
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&code.to_ne_bytes());
        v.extend_from_slice(&value.to_ne_bytes());
        v
    }

    #[test]
    fn only_a_power_key_press_counts() {
        assert!(is_power_press(&event(1, 116, 1)));
        assert!(!is_power_press(&event(1, 116, 0)), "release");
        assert!(!is_power_press(&event(0, 0, 0)), "sync");
        assert!(!is_power_press(&event(1, 30, 1)), "another key");
    }

    #[test]
    fn finds_devices_by_name() {
        let d = tempfile::tempdir().unwrap();
        for (ev, name) in [("event0", "Power Button"), ("event1", "AT Translated Set 2 keyboard")] {
            std::fs::create_dir_all(d.path().join(ev).join("device")).unwrap();
            std::fs::write(d.path().join(ev).join("device/name"), format!("{name}\n")).unwrap();
        }
        assert_eq!(find(d.path()), vec![PathBuf::from("/dev/input/event0")]);
    }
}
