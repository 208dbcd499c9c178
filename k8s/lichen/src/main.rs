//! `lichen`: the combined Kubernetes process. This binary only wires the
//! components together.
//!
//! So far `lichen server` creates or reuses the cluster PKI, opens the
//! datastore and serves `/version` and the health endpoints over TLS; the
//! Kubernetes resources, controllers and the agent come next.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "lichen", version, about = "Lichen's Kubernetes process")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the API server (and, later, controllers and the agent).
    Server {
        /// State: PKI, datastore.
        #[arg(long, default_value = "/var/lib/lichen/server")]
        data_dir: PathBuf,
        /// Address to serve the API on.
        #[arg(long, default_value = "0.0.0.0:6443")]
        bind: SocketAddr,
        /// Extra names or IPs for the serving certificate (repeatable).
        #[arg(long = "tls-san")]
        tls_san: Vec<String>,
        /// The range Services get cluster IPs from (IPv4).
        #[arg(long, default_value = "10.43.0.0/16")]
        service_cidr: lichen_apiserver::services::ServiceCidr,
        /// Static bearer tokens: CSV lines `token,user,uid,"group1,group2"`,
        /// as kube-apiserver's `--token-auth-file`.
        #[arg(long = "token-file")]
        token_file: Option<PathBuf>,
        #[command(flatten)]
        datastore: Datastore,
    },
}

/// Where the cluster state lives and how its history is trimmed.
#[derive(clap::Args, Clone)]
struct Datastore {
    /// `sqlite` (in the data directory) or `memory` (for tests and
    /// benchmarks: everything is lost at exit).
    #[arg(long = "datastore", default_value = "sqlite", value_parser = ["sqlite", "memory"])]
    backend: String,
    /// Seconds between compactions of the datastore's history.
    #[arg(long, default_value_t = 300)]
    compact_interval: u64,
    /// Revisions of history compaction keeps (watchers further behind
    /// must list again).
    #[arg(long, default_value_t = 1000)]
    compact_keep: i64,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Server { data_dir, bind, tls_san, service_cidr, token_file, datastore } => {
            let tokens = match &token_file {
                Some(path) => lichen_apiserver::tokens::Tokens::load(path)?,
                None => lichen_apiserver::tokens::Tokens::default(),
            };
            server(data_dir, bind, tls_san, service_cidr, tokens, datastore)
        }
    }
}

fn server(
    data_dir: PathBuf,
    bind: SocketAddr,
    tls_san: Vec<String>,
    service_cidr: lichen_apiserver::services::ServiceCidr,
    tokens: lichen_apiserver::tokens::Tokens,
    datastore: Datastore,
) -> anyhow::Result<()> {
    // LICHEN_LOG=debug logs every request; info by default.
    let level = std::env::var("LICHEN_LOG").ok().and_then(|l| l.parse().ok()).unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).with_max_level(level).init();
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let listener = std::net::TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
    let port = listener.local_addr()?.port();
    let hostname = hostname();
    let mut opts = lichen_pki::PkiOptions::new(data_dir.join("pki"), &hostname);
    opts.extra_sans = tls_san;
    opts.server_url = format!("https://127.0.0.1:{port}");
    if !bind.ip().is_unspecified() {
        opts.node_ips.push(bind.ip());
    }
    let (pki, report) = lichen_pki::Pki::load_or_create(&opts).context("cluster PKI")?;
    eprintln!("lichen: PKI in {}:\n{report}", pki.dir.display());
    let store: Arc<dyn lichen_store::Store> = if datastore.backend == "memory" {
        Arc::new(lichen_store::MemoryStore::new())
    } else {
        let db = data_dir.join("db");
        std::fs::create_dir_all(&db)?;
        let sqlite = Arc::new(lichen_store::SqliteStore::open(db.join("state.db")).context("datastore")?);
        compactor(sqlite.clone(), datastore.compact_interval, datastore.compact_keep);
        sqlite
    };
    let tls =
        lichen_apiserver::tls::server_config(&pki.serving.cert_pem, &pki.serving.key_pem, &pki.ca_cert_pem)?;
    let version = lichen_apiserver::version::Info::new(
        env!("CARGO_PKG_VERSION"),
        option_env!("LICHEN_GIT_COMMIT").unwrap_or("unknown"),
    );
    // Datastore calls run on blocking threads; SQLite serializes writes, so
    // a few threads do (each would otherwise cost a malloc arena and stack).
    let rt = tokio::runtime::Builder::new_multi_thread().max_blocking_threads(8).enable_all().build()?;
    rt.block_on(async move {
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        let cfg = lichen_apiserver::Config { listener, tls, version, service_cidr, tokens };
        eprintln!(
            "lichen: server ready on https://{bind} (port {port}) in {} ms; admin kubeconfig: {}",
            started.elapsed().as_millis(),
            pki.dir.join(lichen_pki::file::ADMIN_KUBECONFIG).display()
        );
        lichen_apiserver::serve(cfg, store, shutdown).await
    })?;
    eprintln!("lichen: server stopped");
    Ok(())
}

/// Trims the datastore's history every `compact_interval` seconds, keeping
/// the last `compact_keep` revisions (as kine: failures are logged and
/// retried, never silently dropped).
fn compactor(store: Arc<lichen_store::SqliteStore>, interval: u64, keep: i64) {
    let spawned = std::thread::Builder::new().name("compactor".into()).spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(interval.max(1)));
            match store.compact_older_than(keep) {
                Ok(rev) => tracing::debug!(compacted = rev, "datastore compacted"),
                Err(e) => tracing::warn!(error = %e, "datastore compaction failed; retrying next interval"),
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no compaction thread");
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "lichen".into())
}
