//! Loads the user's `lichen.yaml` from BOOT, falling back to the last
//! configuration that was good when the file is broken: a typo on the SD
//! card costs the change, never the device.

use std::path::Path;

use lichen_formats::config::{self, Config};

/// The file on BOOT.
pub const ON_BOOT: &str = "/boot/lichen.yaml";
/// The last configuration that parsed, on DATA.
pub const LAST_GOOD: &str = "/var/lib/lichen/config/lichen.yaml";

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Boot,
    /// BOOT's file is broken (the message says how); the last good one is used.
    LastGood {
        error: String,
    },
    /// No file, or a broken one and no last good one: defaults.
    Defaults {
        error: Option<String>,
    },
}

/// Reads `on_boot`; a good file becomes the new last good one.
pub fn load(on_boot: &Path, last_good: &Path) -> (Config, Source) {
    let text = match std::fs::read_to_string(on_boot) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (Config::default(), Source::Defaults { error: None });
        }
        Err(e) => return fallback(last_good, format!("{}: {e}", on_boot.display())),
    };
    match config::parse(&on_boot.display().to_string(), &text) {
        Ok(cfg) => {
            if std::fs::read_to_string(last_good).ok().as_deref() != Some(text.as_str())
                && let Err(e) = crate::secrets::write_atomic(last_good, text.as_bytes(), 0o600)
            {
                crate::warn!("config: cannot keep a copy as the last good one: {}", crate::log::chain(&e));
            }
            (cfg, Source::Boot)
        }
        Err(e) => fallback(last_good, e.to_string()),
    }
}

fn fallback(last_good: &Path, error: String) -> (Config, Source) {
    let parsed = std::fs::read_to_string(last_good)
        .ok()
        .and_then(|t| config::parse(&last_good.display().to_string(), &t).ok());
    match parsed {
        Some(cfg) => (cfg, Source::LastGood { error }),
        None => (Config::default(), Source::Defaults { error: Some(error) }),
    }
}

/// Loads the device's configuration and says on the console what it used.
pub fn load_on_device() -> Config {
    let (cfg, source) = load(Path::new(ON_BOOT), Path::new(LAST_GOOD));
    match source {
        Source::Boot => crate::info!("config: {ON_BOOT}"),
        Source::LastGood { error } => {
            crate::error!("config: {error}");
            crate::warn!("config: using the last good configuration ({LAST_GOOD}) until {ON_BOOT} is fixed");
        }
        Source::Defaults { error: Some(error) } => {
            crate::error!("config: {error}");
            crate::warn!("config: using the defaults until {ON_BOOT} is fixed");
        }
        Source::Defaults { error: None } => crate::info!("config: no {ON_BOOT}; defaults"),
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_file_falls_back_to_the_last_good_one() {
        let d = tempfile::tempdir().unwrap();
        let (boot, good) = (d.path().join("lichen.yaml"), d.path().join("data/lichen.yaml"));
        assert_eq!(load(&boot, &good), (Config::default(), Source::Defaults { error: None }));

        std::fs::write(&boot, "hostname: edge-1\n").unwrap();
        let (cfg, src) = load(&boot, &good);
        assert_eq!((cfg.hostname.as_deref(), src), (Some("edge-1"), Source::Boot));
        assert!(good.exists());

        std::fs::write(&boot, "hostname: edge-2\nntp_server: [1.2.3.4]\n").unwrap();
        let (cfg, src) = load(&boot, &good);
        assert_eq!(cfg.hostname.as_deref(), Some("edge-1"), "the last good configuration");
        let Source::LastGood { error } = src else { panic!("{src:?}") };
        assert!(error.contains("line 2") && error.contains("ntp_server"), "{error}");
        assert_eq!(std::fs::read_to_string(&good).unwrap(), "hostname: edge-1\n", "last good kept");
    }

    #[test]
    fn a_broken_file_and_no_last_good_one_gives_defaults_and_the_error() {
        let d = tempfile::tempdir().unwrap();
        let (boot, good) = (d.path().join("lichen.yaml"), d.path().join("data/lichen.yaml"));
        std::fs::write(&boot, "hostname: [\n").unwrap();
        let (cfg, src) = load(&boot, &good);
        assert_eq!(cfg, Config::default());
        assert!(matches!(src, Source::Defaults { error: Some(_) }), "{src:?}");
        assert!(!good.exists());
    }
}
