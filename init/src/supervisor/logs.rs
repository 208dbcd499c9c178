//! Service output: each line goes to `/var/log/<service>.log` (rotated at a
//! size limit, one old file kept) and, prefixed with the service name, to
//! the console.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

pub struct LogFile {
    path: PathBuf,
    limit: u64,
    file: Option<File>,
    size: u64,
}

impl LogFile {
    pub fn new(path: &Path, limit: u64) -> LogFile {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        LogFile { path: path.to_path_buf(), limit, file: None, size }
    }

    pub fn write_line(&mut self, line: &[u8]) {
        if self.size + line.len() as u64 > self.limit {
            self.file = None;
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            let _ = std::fs::rename(&self.path, old);
            self.size = 0;
        }
        if self.file.is_none() {
            self.file = OpenOptions::new().create(true).append(true).open(&self.path).ok();
        }
        if let Some(f) = self.file.as_mut()
            && f.write_all(line).is_ok()
        {
            self.size += line.len() as u64;
        }
    }
}

/// Copies `input` line by line until EOF (the service and everything that
/// inherited its output are gone).
pub fn pump(name: &str, input: impl Read, mut log: LogFile, mirror: bool) {
    let mut reader = BufReader::new(input);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        log.write_line(&line);
        if mirror {
            let mut out = format!("[{name}] ").into_bytes();
            out.extend_from_slice(&line);
            crate::log::console_raw(&out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_the_limit_keeping_one_old_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("svc.log");
        let log = LogFile::new(&p, 100);
        let input: Vec<u8> = (0..30).flat_map(|i| format!("line {i:02}\n").into_bytes()).collect();
        pump("svc", &input[..], log, false);
        let cur = std::fs::read_to_string(&p).unwrap();
        let old = std::fs::read_to_string(d.path().join("svc.log.1")).unwrap();
        assert!(cur.len() <= 100 && old.len() <= 100);
        assert!(cur.ends_with("line 29\n"), "{cur}");
        assert!(old.contains("line 2"), "{old}");
    }
}
