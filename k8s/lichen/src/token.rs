//! `lichen token create|list|delete`: bootstrap tokens, the join tokens
//! an operator hands out (with an expiry) and revokes, as kubeadm's and
//! k3s's `token` commands. They are Secrets `kube-system/bootstrap-token-<id>`
//! (see `lichen_apiserver::jointokens`), managed through the API with the
//! server's admin credentials, so this runs on a server node.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

#[derive(clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    cmd: TokenCmd,
    /// The server's state directory (its `pki/` holds the admin
    /// credentials used here).
    #[arg(long, global = true, default_value = "/var/lib/lichen/server")]
    data_dir: PathBuf,
    /// The API server.
    #[arg(long, global = true, default_value = "https://127.0.0.1:6443")]
    server: String,
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create a bootstrap token and print the join token for it.
    Create {
        /// How long it may be used to join (Go duration, e.g. 24h, 90m;
        /// 0 for ever).
        #[arg(long, default_value = "24h")]
        ttl: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List bootstrap tokens (never their secrets).
    List,
    /// Revoke a bootstrap token (by its six-character id, or the whole
    /// token).
    Delete { id: String },
}

/// `lichen token create|list|delete`: bootstrap token Secrets in
/// `kube-system`, through the API with the server's admin credentials.
pub async fn run(args: TokenArgs) -> anyhow::Result<()> {
    use lichen_apiserver::jointokens::{SECRET_PREFIX, SECRET_TYPE};
    use lichen_pki::file;
    let pki = args.data_dir.join("pki");
    let read = |name: &str| {
        let path = pki.join(name);
        std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (run this on a server node, as root)", path.display()))
    };
    let ca_pem = read(file::CA_CERT)?;
    let client = lichen_kubelet::client::Client::new(&lichen_kubelet::client::ClientConfig {
        server: args.server.clone(),
        ca_pem: ca_pem.clone(),
        credentials: lichen_kubelet::client::Credentials::Certificate {
            cert_pem: read(file::ADMIN_CERT)?,
            key_pem: read(file::ADMIN_KEY)?,
        },
    })?
    .with_user_agent("lichen-token");
    const SECRETS: &str = "/api/v1/namespaces/kube-system/secrets";
    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    match args.cmd {
        TokenCmd::Create { ttl, description } => {
            let nanos = lichen_apimachinery::cron::parse_go_duration(&ttl)
                .map_err(|e| anyhow::anyhow!("--ttl {ttl:?}: {e}"))?;
            anyhow::ensure!(nanos >= 0, "--ttl {ttl:?}: must not be negative");
            let (id, secret) = lichen_pki::join::new_bootstrap_token()?;
            let mut data = serde_json::json!({
                "token-id": b64(&id),
                "token-secret": b64(&secret),
                "usage-bootstrap-authentication": b64("true"),
                "usage-bootstrap-signing": b64("true"),
            });
            if nanos > 0 {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
                let at = i64::try_from(now)? + (nanos + 999_999_999) / 1_000_000_000;
                data["expiration"] =
                    serde_json::json!(b64(&lichen_apimachinery::timestamp::format_rfc3339(at)));
            }
            if let Some(d) = &description {
                data["description"] = serde_json::json!(b64(d));
            }
            let obj = serde_json::json!({
                "apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
                "metadata": {"name": format!("{SECRET_PREFIX}{id}"), "namespace": "kube-system"},
                "data": data,
            });
            client.create(SECRETS, &obj).await.context("creating the bootstrap token")?;
            let hash =
                lichen_pki::join::ca_hash_of_pem(&ca_pem).context("the CA file holds no certificate")?;
            let token = lichen_pki::join::JoinToken {
                ca_hash: hash,
                credential: lichen_pki::join::Credential::Bootstrap { id, secret },
            };
            println!("{}", token.render());
        }
        TokenCmd::List => {
            let list = client
                .get(&format!("{SECRETS}?fieldSelector=type%3D{}", SECRET_TYPE.replace('/', "%2F")))
                .await?;
            println!("{:<8} {:<22} {:<40} DESCRIPTION", "TOKEN", "EXPIRES", "USAGES");
            for s in list["items"].as_array().into_iter().flatten() {
                let data = lichen_apiserver::jointokens::decode_data(s);
                let field = |k: &str| data.get(k).cloned().unwrap_or_default();
                let usages: Vec<&str> = ["authentication", "signing"]
                    .into_iter()
                    .filter(|u| field(&format!("usage-bootstrap-{u}")) == "true")
                    .collect();
                let expires =
                    Some(field("expiration")).filter(|e| !e.is_empty()).unwrap_or_else(|| "<never>".into());
                println!(
                    "{:<8} {:<22} {:<40} {}",
                    field("token-id"),
                    expires,
                    usages.join(","),
                    field("description")
                );
            }
        }
        TokenCmd::Delete { id } => {
            // The whole join token or its `<id>.<secret>` also name the id.
            let id = match lichen_pki::join::JoinToken::parse(&id) {
                Ok(lichen_pki::join::JoinToken {
                    credential: lichen_pki::join::Credential::Bootstrap { id, .. },
                    ..
                }) => id,
                _ => id.split('.').next().unwrap_or_default().to_owned(),
            };
            anyhow::ensure!(
                id.len() == 6 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "{id:?} is not a bootstrap token id (six characters of [a-z0-9])"
            );
            match client.delete(&format!("{SECRETS}/{SECRET_PREFIX}{id}"), &serde_json::json!({})).await {
                Ok(_) => println!("bootstrap token {id} deleted"),
                Err(e) if e.is_not_found() => anyhow::bail!("no bootstrap token {id}"),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
