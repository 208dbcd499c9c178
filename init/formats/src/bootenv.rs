//! The A/B boot state, kept in a GRUB environment block (`grubenv`).
//!
//! The block is exactly [`BLOCK_SIZE`] bytes: the line
//! `# GRUB Environment Block`, then `name=value` lines, then `#` padding.
//! GRUB's `load_env`/`save_env` read and rewrite it in place, so its size
//! never changes. In values, `\` and newline are written with a `\` before
//! them (GRUB's `envblk.c`: a newline becomes `\` followed by a real newline).
//!
//! [`BootState`] is the Lichen state in three variables and the operations on
//! it; [`BootState::next_boot`] is the bootloader's decision, mirrored here so
//! the GRUB and U-Boot scripts can be tested against it.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Size of a GRUB environment block, in bytes.
pub const BLOCK_SIZE: usize = 1024;
/// The first line of every block.
pub const HEADER: &[u8] = b"# GRUB Environment Block\n";
/// Variable holding the slot that last booted well: `a` or `b`.
pub const VAR_ACTIVE: &str = "lichen_active";
/// Variable holding the slot on trial, `a` or `b`, or empty for none.
pub const VAR_TRIAL: &str = "lichen_trial";
/// Variable holding the boots left for the trial slot, in decimal.
pub const VAR_TRIES: &str = "lichen_tries";

/// Errors from reading or writing the environment block and boot state.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BootEnvError {
    #[error("not a GRUB environment block: it must start with \"# GRUB Environment Block\"")]
    BadHeader,
    #[error("malformed environment block at byte {offset}: {reason}")]
    Malformed { offset: usize, reason: &'static str },
    #[error("environment block has invalid UTF-8 at byte {offset}")]
    NotUtf8 { offset: usize },
    #[error("variables need {size} bytes, more than the {BLOCK_SIZE}-byte block")]
    TooLarge { size: usize },
    #[error("{name:?} is not a valid variable name, use ASCII letters, digits and _")]
    BadName { name: String },
    #[error("value of {name} contains a NUL character")]
    BadValue { name: String },
    #[error("{var} is not set")]
    Missing { var: &'static str },
    #[error("{var}={value:?} is not a slot, expected a or b")]
    BadSlot { var: &'static str, value: String },
    #[error("{VAR_TRIES}={value:?} is not a count, expected a decimal number")]
    BadTries { value: String },
}

/// The variables of a GRUB environment block, in file order, names unique.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvBlock {
    vars: Vec<(String, String)>,
}

impl EnvBlock {
    /// An empty block.
    pub fn new() -> EnvBlock {
        EnvBlock::default()
    }

    /// Parses a block as GRUB does: comment lines (`#`) are skipped and a
    /// repeated name keeps its last value. Unlike GRUB, a broken line is an
    /// error rather than the silent end of the block. Any length is accepted;
    /// GRUB's own files are [`BLOCK_SIZE`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<EnvBlock, BootEnvError> {
        let body = bytes.strip_prefix(HEADER).ok_or(BootEnvError::BadHeader)?;
        let base = HEADER.len();
        let mut env = EnvBlock::new();
        let mut p = 0;
        while p < body.len() {
            if body[p] == b'#' {
                p = next_line(body, p);
                continue;
            }
            let malformed = |at: usize, reason| BootEnvError::Malformed { offset: base + at, reason };
            let eq = body[p..]
                .iter()
                .position(|&c| c == b'=' || c == b'\n')
                .map(|i| p + i)
                .filter(|&i| body[i] == b'=')
                .ok_or_else(|| malformed(p, "line has no '='"))?;
            if eq == p {
                return Err(malformed(p, "empty variable name"));
            }
            let mut value = Vec::new();
            let mut q = eq + 1;
            loop {
                match body.get(q) {
                    None => return Err(malformed(q, "last line has no newline")),
                    Some(b'\n') => break,
                    Some(b'\\') => {
                        let &c = body.get(q + 1).ok_or_else(|| malformed(q, "lone '\\' at end"))?;
                        value.push(c);
                        q += 2;
                    }
                    Some(&c) => {
                        value.push(c);
                        q += 1;
                    }
                }
            }
            let name = utf8(&body[p..eq], base + p)?;
            let value = utf8(&value, base + eq + 1)?;
            env.insert(name, value);
            p = q + 1;
        }
        Ok(env)
    }

    /// The block as GRUB writes it: header, variables, `#` padding to
    /// exactly [`BLOCK_SIZE`] bytes.
    pub fn to_bytes(&self) -> Result<[u8; BLOCK_SIZE], BootEnvError> {
        let mut text = HEADER.to_vec();
        for (name, value) in &self.vars {
            text.extend_from_slice(name.as_bytes());
            text.push(b'=');
            for &c in value.as_bytes() {
                if c == b'\\' || c == b'\n' {
                    text.push(b'\\');
                }
                text.push(c);
            }
            text.push(b'\n');
        }
        if text.len() > BLOCK_SIZE {
            return Err(BootEnvError::TooLarge { size: text.len() });
        }
        let mut block = [b'#'; BLOCK_SIZE];
        block[..text.len()].copy_from_slice(&text);
        Ok(block)
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Sets `name` to `value`, in place if it exists, else at the end.
    /// Names are ASCII letters, digits and `_`; values may hold anything but NUL.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), BootEnvError> {
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(BootEnvError::BadName { name: name.to_owned() });
        }
        if value.contains('\0') {
            return Err(BootEnvError::BadValue { name: name.to_owned() });
        }
        self.insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.vars.iter().position(|(n, _)| n == name)?;
        Some(self.vars.remove(i).1)
    }

    /// The variables in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    fn insert(&mut self, name: String, value: String) {
        match self.vars.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.vars.push((name, value)),
        }
    }
}

/// Start of the line after the one at `p`, skipping escaped characters
/// exactly as GRUB's `find_next_line` does.
fn next_line(body: &[u8], mut p: usize) -> usize {
    while p < body.len() {
        match body[p] {
            b'\\' => p += 2,
            b'\n' => break,
            _ => p += 1,
        }
    }
    p + 1
}

fn utf8(bytes: &[u8], offset: usize) -> Result<String, BootEnvError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|e| BootEnvError::NotUtf8 { offset: offset + e.utf8_error().valid_up_to() })
}

/// One of the two root slots.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Slot {
    /// Slot A: partition `ROOT-A`, directory `slot-a`.
    A,
    /// Slot B: partition `ROOT-B`, directory `slot-b`.
    B,
}

impl Slot {
    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// GPT partition name of the slot's root: `ROOT-A` or `ROOT-B`.
    pub fn root_label(self) -> &'static str {
        match self {
            Slot::A => "ROOT-A",
            Slot::B => "ROOT-B",
        }
    }

    /// Directory of the slot's kernel and initramfs: `slot-a` or `slot-b`.
    pub fn dir(self) -> &'static str {
        match self {
            Slot::A => "slot-a",
            Slot::B => "slot-b",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::A => "a",
            Slot::B => "b",
        })
    }
}

/// A string that is not `a` or `b`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{value:?} is not a slot, expected a or b")]
pub struct ParseSlotError {
    /// The rejected text.
    pub value: String,
}

impl FromStr for Slot {
    type Err = ParseSlotError;

    /// Accepts `a` or `b` in either case.
    fn from_str(s: &str) -> Result<Slot, ParseSlotError> {
        match s {
            "a" | "A" => Ok(Slot::A),
            "b" | "B" => Ok(Slot::B),
            _ => Err(ParseSlotError { value: s.to_owned() }),
        }
    }
}

/// Which slot boots, and whether the other one is on trial.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BootState {
    /// The slot that last booted well; the fallback.
    pub active: Slot,
    /// A slot being tried after an update, if any.
    pub trial: Option<Slot>,
    /// Boots of `trial` left before falling back to `active`.
    pub tries_left: u32,
}

impl Default for BootState {
    /// A fresh image: slot A, nothing on trial.
    fn default() -> BootState {
        BootState { active: Slot::A, trial: None, tries_left: 0 }
    }
}

impl BootState {
    /// Reads the state. `lichen_active` is required; a missing or empty
    /// `lichen_trial` means no trial, a missing or empty `lichen_tries` 0.
    pub fn from_env(env: &EnvBlock) -> Result<BootState, BootEnvError> {
        let active = env.get(VAR_ACTIVE).ok_or(BootEnvError::Missing { var: VAR_ACTIVE })?;
        let active = parse_slot(VAR_ACTIVE, active)?;
        let trial = match env.get(VAR_TRIAL).unwrap_or("") {
            "" => None,
            t => Some(parse_slot(VAR_TRIAL, t)?),
        };
        let tries_left = match env.get(VAR_TRIES).unwrap_or("") {
            "" => 0,
            t if t.bytes().all(|c| c.is_ascii_digit()) => {
                t.parse().map_err(|_| BootEnvError::BadTries { value: t.into() })?
            }
            t => return Err(BootEnvError::BadTries { value: t.into() }),
        };
        Ok(BootState { active, trial, tries_left })
    }

    /// Writes the three variables, leaving any others alone.
    pub fn write_to(&self, env: &mut EnvBlock) {
        let trial = self.trial.map(|s| s.to_string()).unwrap_or_default();
        env.insert(VAR_ACTIVE.into(), self.active.to_string());
        env.insert(VAR_TRIAL.into(), trial);
        env.insert(VAR_TRIES.into(), self.tries_left.to_string());
    }

    /// The running system, booted from `booted`, is healthy. If it was the
    /// trial slot, it becomes active and the trial ends; otherwise nothing
    /// changes.
    pub fn mark_good(&mut self, booted: Slot) {
        if self.trial == Some(booted) {
            self.active = booted;
            self.trial = None;
            self.tries_left = 0;
        }
    }

    /// Puts the other slot on trial for `tries` boots (after an update was
    /// written to it). With `tries == 0` the trial ends at the next boot
    /// without booting it.
    pub fn try_other(&mut self, tries: u32) {
        self.trial = Some(self.active.other());
        self.tries_left = tries;
    }

    /// Abandons a trial: the active slot keeps booting.
    pub fn rollback(&mut self) {
        self.trial = None;
        self.tries_left = 0;
    }

    /// The bootloader's decision, which it saves before booting: a trial
    /// with tries left spends one and boots the trial slot; a trial without
    /// tries left is dropped; otherwise the active slot boots.
    pub fn next_boot(&mut self) -> Slot {
        match self.trial {
            Some(slot) if self.tries_left > 0 => {
                self.tries_left -= 1;
                slot
            }
            Some(_) => {
                self.trial = None;
                self.active
            }
            None => self.active,
        }
    }
}

fn parse_slot(var: &'static str, value: &str) -> Result<Slot, BootEnvError> {
    value.parse().map_err(|_| BootEnvError::BadSlot { var, value: value.to_owned() })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Written by `grub-editenv` 2.06: `create`, then `set lichen_active=a
    /// lichen_trial=b lichen_tries=3 saved_entry=lichen` and a value holding
    /// a backslash and a newline.
    const EDITENV: &[u8] = include_bytes!("../tests/data/grubenv-editenv.bin");

    fn padded(text: &str) -> Vec<u8> {
        let mut bytes = text.as_bytes().to_vec();
        bytes.resize(BLOCK_SIZE, b'#');
        bytes
    }

    fn state(active: Slot, trial: Option<Slot>, tries_left: u32) -> BootState {
        BootState { active, trial, tries_left }
    }

    #[test]
    fn reads_a_block_written_by_grub_editenv() {
        assert_eq!(EDITENV.len(), BLOCK_SIZE);
        let env = EnvBlock::parse(EDITENV).unwrap();
        let vars: Vec<_> = env.iter().collect();
        assert_eq!(
            vars,
            [
                ("lichen_active", "a"),
                ("lichen_trial", "b"),
                ("lichen_tries", "3"),
                ("saved_entry", "lichen"),
                ("weird", "back\\slash\nnew line"),
            ]
        );
        assert_eq!(BootState::from_env(&env).unwrap(), state(Slot::A, Some(Slot::B), 3));
        // Writing it back reproduces grub-editenv's bytes after its warning
        // comment, which is not kept.
        let ours = env.to_bytes().unwrap();
        let warning = b"# WARNING: Do not edit this file by tools other than grub-editenv!!!\n";
        let mut expected = EDITENV.to_vec();
        expected.drain(HEADER.len()..HEADER.len() + warning.len());
        assert_eq!(&ours[..BLOCK_SIZE - warning.len()], &expected[..]);
    }

    #[test]
    fn escapes_backslash_and_newline_like_grub() {
        let mut env = EnvBlock::new();
        env.set("x", "a\\b\nc").unwrap();
        let bytes = env.to_bytes().unwrap();
        let expected = padded("# GRUB Environment Block\nx=a\\\\b\\\nc\n");
        assert_eq!(bytes.as_slice(), expected.as_slice());
        assert_eq!(EnvBlock::parse(&bytes).unwrap(), env);
        // GRUB unescapes any character after a backslash.
        let env = EnvBlock::parse(&padded("# GRUB Environment Block\ny=\\q\\=\n")).unwrap();
        assert_eq!(env.get("y"), Some("q="));
    }

    #[test]
    fn block_is_exactly_1024_bytes() {
        let empty = EnvBlock::new().to_bytes().unwrap();
        assert_eq!(empty.as_slice(), padded("# GRUB Environment Block\n").as_slice());

        // Header (25) + "v=" (2) + value + "\n" (1) fills the block exactly.
        let mut env = EnvBlock::new();
        env.set("v", &"x".repeat(BLOCK_SIZE - 28)).unwrap();
        let full = env.to_bytes().unwrap();
        assert_eq!(full[BLOCK_SIZE - 1], b'\n');
        assert_eq!(EnvBlock::parse(&full).unwrap(), env);

        env.set("v", &"x".repeat(BLOCK_SIZE - 27)).unwrap();
        assert_eq!(env.to_bytes(), Err(BootEnvError::TooLarge { size: BLOCK_SIZE + 1 }));
        // Escapes count: 498 newlines take 996 bytes.
        env.set("v", &"\n".repeat(499)).unwrap();
        assert!(matches!(env.to_bytes(), Err(BootEnvError::TooLarge { .. })));
    }

    #[test]
    fn set_replaces_in_place_and_remove_deletes() {
        let mut env = EnvBlock::new();
        env.set("one", "1").unwrap();
        env.set("two", "2").unwrap();
        env.set("one", "uno").unwrap();
        assert_eq!(env.iter().collect::<Vec<_>>(), [("one", "uno"), ("two", "2")]);
        assert_eq!(env.remove("one"), Some("uno".into()));
        assert_eq!(env.remove("one"), None);
        assert_eq!(env.get("one"), None);
        let text = env.to_bytes().unwrap();
        assert!(text.starts_with(b"# GRUB Environment Block\ntwo=2\n#"));
        for bad in ["", "a=b", "a\nb", "#a", "a-b", "ä"] {
            assert_eq!(env.set(bad, "v"), Err(BootEnvError::BadName { name: bad.into() }));
        }
        assert!(matches!(env.set("n", "a\0b"), Err(BootEnvError::BadValue { .. })));
    }

    #[test]
    fn parse_rejects_broken_blocks() {
        assert_eq!(EnvBlock::parse(b""), Err(BootEnvError::BadHeader));
        assert_eq!(EnvBlock::parse(&padded("# GRUB Environment Blok\n")), Err(BootEnvError::BadHeader));
        let cases = [
            ("# GRUB Environment Block\nnoequals\n", 25, "line has no '='"),
            ("# GRUB Environment Block\n=v\n", 25, "empty variable name"),
            ("# GRUB Environment Block\n\n", 25, "line has no '='"),
        ];
        for (text, offset, reason) in cases {
            assert_eq!(
                EnvBlock::parse(&padded(text)),
                Err(BootEnvError::Malformed { offset, reason }),
                "{text:?}"
            );
        }
        // Zeroed storage after the variables, as from a bad write.
        let mut bytes = b"# GRUB Environment Block\na=1\n".to_vec();
        bytes.resize(BLOCK_SIZE, 0);
        assert!(matches!(EnvBlock::parse(&bytes), Err(BootEnvError::Malformed { offset: 29, .. })));
        assert!(matches!(
            EnvBlock::parse(b"# GRUB Environment Block\na=1"),
            Err(BootEnvError::Malformed { .. })
        ));
        let mut bytes = padded("# GRUB Environment Block\na=?\n");
        bytes[27] = 0xff;
        assert_eq!(EnvBlock::parse(&bytes), Err(BootEnvError::NotUtf8 { offset: 27 }));
    }

    #[test]
    fn parse_skips_comments_and_keeps_last_duplicate() {
        let text = "# GRUB Environment Block\n# note\nk=1\n#k=9\nk=2\nj=3\n";
        let env = EnvBlock::parse(&padded(text)).unwrap();
        assert_eq!(env.iter().collect::<Vec<_>>(), [("k", "2"), ("j", "3")]);
        // A file without padding is read too.
        let env = EnvBlock::parse(b"# GRUB Environment Block\nk=1\n").unwrap();
        assert_eq!(env.get("k"), Some("1"));
    }

    #[test]
    fn slot_names() {
        assert_eq!(Slot::A.to_string(), "a");
        assert_eq!(Slot::B.to_string(), "b");
        assert_eq!("B".parse::<Slot>(), Ok(Slot::B));
        assert_eq!("a".parse::<Slot>(), Ok(Slot::A));
        assert_eq!("c".parse::<Slot>(), Err(ParseSlotError { value: "c".into() }));
        assert!(" a".parse::<Slot>().is_err());
        assert_eq!(Slot::A.other(), Slot::B);
        assert_eq!(Slot::B.other(), Slot::A);
        assert_eq!((Slot::A.root_label(), Slot::B.root_label()), ("ROOT-A", "ROOT-B"));
        assert_eq!((Slot::A.dir(), Slot::B.dir()), ("slot-a", "slot-b"));
    }

    #[test]
    fn boot_state_round_trips_through_the_block() {
        let mut env = EnvBlock::new();
        env.set("saved_entry", "lichen").unwrap();
        let s = state(Slot::B, Some(Slot::A), 2);
        s.write_to(&mut env);
        let bytes = env.to_bytes().unwrap();
        assert!(bytes.starts_with(
            b"# GRUB Environment Block\nsaved_entry=lichen\nlichen_active=b\nlichen_trial=a\nlichen_tries=2\n#"
        ));
        let env = EnvBlock::parse(&bytes).unwrap();
        assert_eq!(BootState::from_env(&env).unwrap(), s);
        assert_eq!(env.get("saved_entry"), Some("lichen"));

        let mut env = EnvBlock::new();
        BootState::default().write_to(&mut env);
        assert_eq!(env.get(VAR_TRIAL), Some(""));
        assert_eq!(BootState::from_env(&env).unwrap(), BootState::default());
    }

    #[test]
    fn boot_state_reports_bad_variables() {
        let env = |vars: &[(&str, &str)]| {
            let mut env = EnvBlock::new();
            for (k, v) in vars {
                env.set(k, v).unwrap();
            }
            BootState::from_env(&env)
        };
        assert_eq!(env(&[]), Err(BootEnvError::Missing { var: VAR_ACTIVE }));
        assert_eq!(
            env(&[(VAR_ACTIVE, "c")]),
            Err(BootEnvError::BadSlot { var: VAR_ACTIVE, value: "c".into() })
        );
        assert_eq!(
            env(&[(VAR_ACTIVE, "a"), (VAR_TRIAL, "x")]),
            Err(BootEnvError::BadSlot { var: VAR_TRIAL, value: "x".into() })
        );
        for tries in ["-1", "+1", "three", "99999999999", " 1"] {
            assert_eq!(
                env(&[(VAR_ACTIVE, "a"), (VAR_TRIES, tries)]),
                Err(BootEnvError::BadTries { value: tries.into() })
            );
        }
        assert_eq!(env(&[(VAR_ACTIVE, "B")]), Ok(state(Slot::B, None, 0)));
    }

    #[test]
    fn update_that_boots_well_becomes_active() {
        let mut s = BootState::default();
        s.try_other(3);
        assert_eq!(s, state(Slot::A, Some(Slot::B), 3));
        assert_eq!(s.next_boot(), Slot::B);
        assert_eq!(s, state(Slot::A, Some(Slot::B), 2));
        s.mark_good(Slot::B);
        assert_eq!(s, state(Slot::B, None, 0));
        assert_eq!(s.next_boot(), Slot::B);
        assert_eq!(s.next_boot(), Slot::B);
    }

    #[test]
    fn update_that_never_boots_falls_back_when_tries_run_out() {
        let mut s = BootState::default();
        s.try_other(2);
        assert_eq!(s.next_boot(), Slot::B);
        assert_eq!(s.next_boot(), Slot::B);
        assert_eq!(s, state(Slot::A, Some(Slot::B), 0));
        assert_eq!(s.next_boot(), Slot::A);
        assert_eq!(s, state(Slot::A, None, 0));
        // Healthy again on A: nothing to change, B stays inactive.
        s.mark_good(Slot::A);
        assert_eq!(s, state(Slot::A, None, 0));
        assert_eq!(s.next_boot(), Slot::A);
    }

    #[test]
    fn mark_good_of_the_fallback_keeps_the_trial_and_rollback_ends_it() {
        let mut s = state(Slot::A, Some(Slot::B), 1);
        s.mark_good(Slot::A);
        assert_eq!(s, state(Slot::A, Some(Slot::B), 1));
        s.rollback();
        assert_eq!(s, state(Slot::A, None, 0));
        assert_eq!(s.next_boot(), Slot::A);
        // Zero tries: the trial is dropped without booting it.
        s.try_other(0);
        assert_eq!(s.next_boot(), Slot::A);
        assert_eq!(s.trial, None);
    }

    proptest! {
        #[test]
        fn blocks_round_trip(
            vars in prop::collection::btree_map("[a-z_][a-z0-9_]{0,12}", "(?s).{0,24}", 0..12)
        ) {
            let mut env = EnvBlock::new();
            for (k, v) in &vars {
                env.set(k, &v.replace('\0', "")).unwrap();
            }
            match env.to_bytes() {
                Ok(bytes) => prop_assert_eq!(EnvBlock::parse(&bytes).unwrap(), env),
                Err(BootEnvError::TooLarge { size }) => prop_assert!(size > BLOCK_SIZE),
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }

        #[test]
        fn parse_never_panics(tail in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut bytes = HEADER.to_vec();
            bytes.extend(tail);
            let _ = EnvBlock::parse(&bytes);
        }

        #[test]
        fn next_boot_never_boots_a_trial_more_than_tries(tries in 0u32..6, boots in 0usize..12) {
            let mut s = BootState::default();
            s.try_other(tries);
            let trial_boots = (0..boots).filter(|_| s.next_boot() == Slot::B).count();
            prop_assert_eq!(trial_boots, boots.min(tries as usize));
            prop_assert_eq!(s.active, Slot::A);
        }
    }
}
