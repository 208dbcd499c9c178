//! `lichen server`: the Kubernetes API server, controllers and node agent
//! in one process. It starts once containerd answers and is ready when the
//! node reports Ready: the agent keeps a ready file while it does, so PID 1
//! needs no Kubernetes client to tell.

use std::path::PathBuf;

use crate::supervisor::{Output, Service, Spec};

pub struct Lichen {
    pub program: PathBuf,
    /// The server's state: PKI, datastore (`/var/lib/lichen/server`).
    pub data_dir: PathBuf,
    /// The agent's state (`/var/lib/lichen/agent`).
    pub agent_dir: PathBuf,
    /// Present while the node is Ready (under /run: gone after a reboot).
    pub ready_file: PathBuf,
    /// Air-gap images: the image's own, then the user's.
    pub images_dirs: Vec<PathBuf>,
    /// containerd's socket.
    pub containerd: PathBuf,
    /// Extra names for the API server's certificate (`lichen.yaml`).
    pub tls_sans: Vec<String>,
}

impl Default for Lichen {
    fn default() -> Lichen {
        Lichen {
            program: "/usr/bin/lichen".into(),
            data_dir: "/var/lib/lichen/server".into(),
            agent_dir: "/var/lib/lichen/agent".into(),
            ready_file: "/run/lichen/node-ready".into(),
            images_dirs: vec!["/usr/lib/lichen/images".into(), "/var/lib/lichen/agent/images".into()],
            containerd: super::containerd::SOCKET.into(),
            tls_sans: Vec::new(),
        }
    }
}

impl Service for Lichen {
    fn name(&self) -> &'static str {
        "lichen"
    }

    fn depends_on(&self) -> &'static [&'static str] {
        &["containerd"]
    }

    fn prepare(&mut self) -> std::io::Result<()> {
        for d in [&self.data_dir, &self.agent_dir] {
            std::fs::create_dir_all(d)?;
        }
        if let Some(last) = self.images_dirs.last() {
            std::fs::create_dir_all(last)?;
        }
        // A restarted lichen is not ready until its agent says so again.
        match std::fs::remove_file(&self.ready_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn spec(&self) -> Spec {
        let mut args: Vec<String> = vec![
            "server".into(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
            "--agent-dir".into(),
            self.agent_dir.display().to_string(),
            "--containerd".into(),
            self.containerd.display().to_string(),
            "--ready-file".into(),
            self.ready_file.display().to_string(),
        ];
        for san in &self.tls_sans {
            args.push("--tls-san".into());
            args.push(san.clone());
        }
        for d in &self.images_dirs {
            args.push("--images-dir".into());
            args.push(d.display().to_string());
        }
        Spec {
            program: self.program.clone(),
            args,
            env: vec![
                ("PATH".into(), super::PATH.into()),
                ("HOME".into(), "/root".into()),
                // glibc gives each thread that allocates its own arena (64
                // MiB of address space, real memory once touched); two are
                // plenty for a process this size on a small device.
                ("MALLOC_ARENA_MAX".into(), "2".into()),
            ],
            // Its log is long: kept in /var/log/lichen.log, not on the console.
            output: Output::Log { mirror: false },
        }
    }

    fn ready(&self) -> bool {
        self.ready_file.exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_after_containerd_with_both_image_dirs() {
        let l = Lichen::default();
        assert_eq!(l.depends_on(), ["containerd"]);
        let spec = l.spec();
        let args = spec.args.join(" ");
        assert!(args.starts_with("server --data-dir /var/lib/lichen/server"), "{args}");
        assert!(
            args.contains("--images-dir /usr/lib/lichen/images --images-dir /var/lib/lichen/agent/images")
        );
        assert!(args.contains("--ready-file /run/lichen/node-ready"));
    }

    #[test]
    fn ready_follows_the_file_and_a_restart_clears_it() {
        let d = tempfile::tempdir().unwrap();
        let mut l = Lichen {
            data_dir: d.path().join("server"),
            agent_dir: d.path().join("agent"),
            ready_file: d.path().join("node-ready"),
            images_dirs: vec![d.path().join("agent/images")],
            ..Lichen::default()
        };
        assert!(!l.ready());
        std::fs::write(&l.ready_file, "1\n").unwrap();
        assert!(l.ready());
        l.prepare().unwrap();
        assert!(!l.ready(), "a restart is not ready until the agent says so");
        assert!(d.path().join("agent/images").is_dir());
    }
}
