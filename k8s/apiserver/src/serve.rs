//! The accept loop and the routes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::{FromRef, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use lichen_store::Store;
use tokio_rustls::TlsAcceptor;

use crate::api::Api;
use crate::authn::Identity;
use crate::health::{self, Check};
use crate::version::Info;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("listening socket")]
    Listen(#[source] std::io::Error),
    #[error("client for node agents: {0}")]
    KubeletClient(String),
    #[error("service-account key")]
    ServiceAccountKey(#[source] crate::satokens::jwt::KeyError),
    #[error("creating the system namespaces")]
    Bootstrap(#[source] lichen_store::StoreError),
}

#[derive(Clone)]
struct AppState {
    store: Arc<dyn Store>,
    version: Arc<Info>,
    api: Arc<Api>,
}

impl FromRef<AppState> for Arc<Api> {
    fn from_ref(s: &AppState) -> Self {
        s.api.clone()
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(|s, q| health_endpoint("healthz", s, q)))
        .route("/livez", get(|s, q| health_endpoint("livez", s, q)))
        .route("/readyz", get(|s, q| health_endpoint("readyz", s, q)))
        .route("/cacerts", get(cacerts))
        .fallback(crate::api::handle)
        .with_state(state)
}

/// The cluster CA, unauthenticated, as k3s's `/cacerts`: a joining agent
/// fetches it before it trusts the server, and trusts it only if its hash
/// is the one its join token pins.
async fn cacerts(State(s): State<AppState>) -> Response {
    if s.api.join.ca_pem.is_empty() {
        return crate::status::ApiError::NoRoute.into_response();
    }
    let mut r = s.api.join.ca_pem.clone().into_response();
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/x-pem-file"),
    );
    r
}

async fn version(State(s): State<AppState>) -> Json<Info> {
    Json((*s.version).clone())
}

async fn health_endpoint(
    what: &'static str,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let store = s.store.clone();
    let datastore =
        tokio::task::spawn_blocking(move || store.current_revision().is_ok()).await.unwrap_or(false);
    let checks = [Check { name: "ping", ok: true }, Check { name: "datastore", ok: datastore }];
    let (code, body) = health::render(what, &checks, &q);
    (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response()
}

/// How long requests in flight may take to finish once shutdown starts.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// What [`Server::new`] needs besides the store.
pub struct Options {
    pub version: Info,
    /// Where Services get their cluster IPs.
    pub service_cidr: crate::services::ServiceCidr,
    /// Bearer tokens (`--token-file`); empty for none.
    pub tokens: crate::tokens::Tokens,
    /// How to reach node agents for logs, exec, attach and port-forward.
    pub kubelet_client: crate::nodeproxy::KubeletClient,
    /// The service-account signing key (PKCS#8 PEM); empty: no tokens.
    pub service_account_key_pem: String,
    /// Its public half (SPKI PEM), checked against the key; may be empty.
    pub service_account_pub_pem: String,
    /// The port the API is (or will be) served on: the `kubernetes`
    /// Service's endpoints name it.
    pub port: u16,
    /// The address other nodes and pods reach this server at; the
    /// `kubernetes` Service's endpoints. None: no endpoints are written.
    pub advertise_address: Option<std::net::IpAddr>,
    /// The CA served at `/cacerts` and the join tokens accepted.
    pub join: crate::jointokens::JoinConfig,
}

impl Options {
    /// Options for `version` with everything else off or default: service
    /// CIDR 10.43.0.0/16, no token file, no agent client, no
    /// service-account key, port 6443, no advertised address, no join.
    pub fn new(version: Info) -> Options {
        Options {
            version,
            service_cidr: crate::services::ServiceCidr::default(),
            tokens: crate::tokens::Tokens::default(),
            kubelet_client: crate::nodeproxy::KubeletClient::default(),
            service_account_key_pem: String::new(),
            service_account_pub_pem: String::new(),
            port: 6443,
            advertise_address: None,
            join: crate::jointokens::JoinConfig::default(),
        }
    }
}

/// The API server before it listens: the routes on the datastore, with the
/// system objects in place and the background workers (CRD watcher,
/// finalizers) running. Components in the same process call it through
/// [`Server::local`]; [`Server::serve`] answers the network.
pub struct Server {
    app: Router,
    api: Arc<Api>,
    store: Arc<dyn Store>,
}

impl Server {
    pub fn new(store: Arc<dyn Store>, opts: Options) -> Result<Server, ServeError> {
        let mut api = Api::new(store.clone(), opts.service_cidr)
            .with_tokens(opts.tokens)
            .with_join(opts.join)
            .with_kubelet_client(opts.kubelet_client)?;
        if !opts.service_account_key_pem.trim().is_empty() {
            let issuer = crate::satokens::Issuer::from_pem(
                &opts.service_account_key_pem,
                &opts.service_account_pub_pem,
            )
            .map_err(ServeError::ServiceAccountKey)?;
            api = api.with_service_account_issuer(issuer);
        }
        let api = Arc::new(api);
        crate::bootstrap::ensure(&api, opts.port, opts.advertise_address).map_err(ServeError::Bootstrap)?;
        crate::crds::reload(&api).map_err(ServeError::Bootstrap)?;
        crate::crds::spawn_watcher(api.clone());
        crate::finalizers::spawn(api.clone());
        let app =
            router(AppState { store: store.clone(), version: Arc::new(opts.version), api: api.clone() });
        Ok(Server { app, api, store })
    }

    /// The routes as `identity` sees them, for callers in this process: the
    /// same authorization, admission and watches as over the network.
    pub fn local(&self, identity: Identity) -> Router {
        self.app.clone().layer(Extension(identity))
    }

    pub fn api(&self) -> Arc<Api> {
        self.api.clone()
    }

    /// Serves on `listener` until `shutdown` completes, then lets requests
    /// in flight finish.
    pub async fn serve(
        self,
        listener: std::net::TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServeError> {
        listener.set_nonblocking(true).map_err(ServeError::Listen)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(ServeError::Listen)?;
        let acceptor = TlsAcceptor::from(tls);
        let (app, store) = (self.app, self.store);
        // Bookmarks: every open watch learns the current revision once a
        // minute, so clients can resume after compaction without relisting.
        let progress = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                let s = store.clone();
                let _ = tokio::task::spawn_blocking(move || s.request_progress()).await;
            }
        });
        tokio::pin!(shutdown);
        // Connections are watched so that shutdown lets requests in flight
        // finish (watches are cut after the grace period).
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => {
                    // A failed accept (EMFILE, a reset) must not stop the server.
                    let Ok((tcp, peer)) = accepted else { continue };
                    let (acceptor, app) = (acceptor.clone(), app.clone());
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            tracing::debug!(%peer, "TLS handshake failed");
                            return;
                        };
                        let identity = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(|c| crate::authn::from_certificate(c.as_ref()));
                        let app = match identity {
                            Some(id) => app.layer(Extension(id)),
                            None => app,
                        };
                        let service = TowerToHyperService::new(app);
                        let builder = auto::Builder::new(TokioExecutor::new());
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                        let _ = watcher.watch(conn.into_owned()).await;
                    });
                }
            }
        }
        drop(listener);
        progress.abort();
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
            tracing::info!("connections still open after {} s; closing them", SHUTDOWN_GRACE.as_secs());
        }
        Ok(())
    }
}
