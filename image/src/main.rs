//! `lichen-image`: the image builder's command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "lichen-image", version, about = "Build Lichen disk images")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a board's disk image.
    Build {
        /// Board file, e.g. board-configs/qemu-x86_64.toml.
        #[arg(long)]
        board: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Statically linked lichen-init for the board's target.
        #[arg(long)]
        init: PathBuf,
        /// The lichen binary (Kubernetes) for the board's target, installed
        /// as /usr/bin/lichen.
        #[arg(long)]
        lichen: Option<PathBuf>,
        /// Cluster secrets made by `secrets init`: ca.crt, ca.key, sa.key,
        /// sa.pub and token go onto BOOT under lichen/secrets/.
        #[arg(long)]
        secrets: Option<PathBuf>,
        /// Directory holding common/ and per-board overlays.
        #[arg(long, default_value = "overlays")]
        overlays: PathBuf,
        /// Package cache (downloads and unpacked trees).
        #[arg(long, env = "LICHEN_CACHE", default_value = "/var/cache/lichen")]
        cache: PathBuf,
        /// Build id recorded in os-release (e.g. the git commit).
        #[arg(long, default_value = "dev")]
        build_id: String,
        /// Rebuild even when no input changed.
        #[arg(long)]
        force: bool,
    },
    /// Cluster secrets for a fleet of devices.
    Secrets {
        #[command(subcommand)]
        cmd: SecretsCmd,
    },
    /// Print one field of a board file (for the Makefile).
    BoardInfo {
        #[arg(long)]
        board: PathBuf,
        /// rust_target, arch or name.
        #[arg(long)]
        field: String,
    },
}

#[derive(Subcommand)]
enum SecretsCmd {
    /// Create (or reuse) the CA, service-account key, admin credentials and
    /// join token in a directory. Keep it private: it holds the cluster's keys.
    Init {
        /// The directory (created with mode 0700).
        #[arg(long)]
        out: PathBuf,
        /// API server URL written into admin.kubeconfig.
        #[arg(long, default_value = "https://127.0.0.1:6443")]
        server: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Build { board, out, init, lichen, secrets, overlays, cache, build_id, force } => {
            let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
                Ok(v) => v
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("SOURCE_DATE_EPOCH={v:?} is not a number"))?,
                Err(_) => 1_700_000_000,
            };
            let opts = lichen_image::build::BuildOptions {
                board_file: board,
                out,
                init_bin: init,
                lichen_bin: lichen,
                secrets,
                overlays,
                cache,
                version: env!("CARGO_PKG_VERSION").to_string(),
                build_id,
                epoch,
                force,
            };
            lichen_image::build::build(&opts)?;
        }
        Cmd::Secrets { cmd: SecretsCmd::Init { out, server } } => {
            let (secrets, report) = lichen_image::secrets::init(&out, &server)?;
            print!("{report}");
            println!("cluster secrets in {} (CA sha256 {})", out.display(), secrets.ca_hash);
        }
        Cmd::BoardInfo { board, field } => {
            let b = lichen_image::board::Board::load(&board)?;
            let v = match field.as_str() {
                "rust_target" => b.rust_target,
                "arch" => b.arch,
                "name" => b.name,
                other => anyhow::bail!("unknown field {other:?}; use rust_target, arch or name"),
            };
            println!("{v}");
        }
    }
    Ok(())
}
