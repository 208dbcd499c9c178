//! The Kubernetes API on top of the store: the resource table, dispatch of
//! `/api` and `/apis` requests to discovery and the resource handlers, and
//! the mapping of store errors to `Status`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use lichen_apimachinery::resources::{self, Resource};
use lichen_store::{Store, StoreError};

use crate::authn::Identity;
use crate::request::{self, ResourceRequest, Target, Verb};
use crate::status::{ApiError, qualified};
use crate::{crud, discovery, list, watch};

/// The API's shared state.
pub struct Api {
    pub store: Arc<dyn Store>,
    resources: RwLock<Vec<Resource>>,
    /// OpenAPI v3 documents, built on first use and dropped when the
    /// resource table changes.
    openapi: RwLock<Option<Arc<crate::openapi::Documents>>>,
    /// CustomResourceDefinitions in force.
    custom: RwLock<Arc<crate::crds::Custom>>,
    pub service_cidr: crate::services::ServiceCidr,
    /// Held while a Service's addresses are chosen and written, so two
    /// Services never get the same one.
    pub service_lock: tokio::sync::Mutex<()>,
    /// Bearer tokens of `--token-file`.
    pub tokens: crate::tokens::Tokens,
    /// Join tokens: the CA they pin and the cluster's own token.
    pub join: crate::jointokens::JoinConfig,
    /// Roles and bindings as of the store's current revision.
    pub rbac: crate::rbac::Cache,
    /// The client for node agents (logs, exec, port-forward).
    node_client: Option<Arc<crate::nodeproxy::NodeClient>>,
    /// Issues and verifies service-account tokens; `None` without a key.
    sa_issuer: Option<crate::satokens::Issuer>,
}

/// The query parameters of one request (a name may repeat; the first wins,
/// as Go's `url.Values.Get`).
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(format!("malformed query: {e}")))?;
        let mut m = HashMap::new();
        for (k, v) in pairs {
            m.entry(k).or_insert(v);
        }
        Ok(Params(m))
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// A boolean parameter, read as Go's `strconv.ParseBool` does (the
    /// Python client sends `watch=True`).
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("1" | "t" | "T" | "true" | "TRUE" | "True"))
    }

    /// Every parameter (first value of each name).
    pub fn pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone()))
    }

    pub fn dry_run(&self) -> bool {
        self.get("dryRun").is_some_and(|v| v == "All")
    }
}

/// Everything a resource handler needs about one request.
pub struct Ctx {
    pub api: Arc<Api>,
    pub req: ResourceRequest,
    pub res: Resource,
    pub params: Params,
    pub headers: HeaderMap,
    pub identity: Identity,
}

impl Ctx {
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.res.group == group && self.res.plural == plural
    }

    pub fn qualified(&self) -> String {
        qualified(&self.res.group, &self.res.plural)
    }

    pub fn not_found(&self, name: &str) -> ApiError {
        ApiError::NotFound {
            resource: self.qualified(),
            group: self.res.group.clone(),
            plural: self.res.plural.clone(),
            name: name.into(),
        }
    }

    /// Maps a store error for object `name` of this request's resource.
    pub fn store_error(&self, e: StoreError, name: &str) -> ApiError {
        match e {
            StoreError::AlreadyExists { .. } => ApiError::AlreadyExists {
                resource: self.qualified(),
                group: self.res.group.clone(),
                plural: self.res.plural.clone(),
                name: name.into(),
            },
            StoreError::NotFound { .. } => self.not_found(name),
            StoreError::Conflict { .. } => self.conflict(name),
            StoreError::Compacted { requested, compacted } => {
                ApiError::Expired(format!("too old resource version: {requested} ({compacted})"))
            }
            StoreError::FutureRevision { requested, current } => {
                ApiError::Timeout(format!("Too large resource version: {requested}, current: {current}"))
            }
            StoreError::TooSlow => ApiError::Internal("watcher fell too far behind".into()),
            StoreError::InvalidKey { key, reason } => {
                ApiError::BadRequest(format!("invalid object name in {key:?}: {reason}"))
            }
            e @ (StoreError::Open { .. }
            | StoreError::SchemaTooNew { .. }
            | StoreError::Backend { .. }
            | StoreError::Corrupt { .. }) => ApiError::Internal(format!("datastore: {e}")),
        }
    }

    pub fn conflict(&self, name: &str) -> ApiError {
        ApiError::Conflict {
            resource: self.qualified(),
            group: self.res.group.clone(),
            plural: self.res.plural.clone(),
            name: name.into(),
            detail:
                "the object has been modified; please apply your changes to the latest version and try again"
                    .into(),
        }
    }

    /// Runs a store call off the async threads (SQLite blocks).
    pub async fn store<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.api.store.clone();
        match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.store_error(e, name)),
            Err(e) => Err(ApiError::internal(e)),
        }
    }
}

impl Api {
    pub fn new(store: Arc<dyn Store>, service_cidr: crate::services::ServiceCidr) -> Self {
        Api {
            store,
            resources: RwLock::new(resources::builtin()),
            openapi: RwLock::new(None),
            custom: RwLock::new(Arc::new(crate::crds::Custom::new())),
            service_cidr,
            service_lock: tokio::sync::Mutex::new(()),
            tokens: crate::tokens::Tokens::default(),
            join: crate::jointokens::JoinConfig::default(),
            rbac: crate::rbac::Cache::default(),
            node_client: None,
            sa_issuer: None,
        }
    }

    /// Issues and accepts service-account tokens signed with this key.
    pub fn with_service_account_issuer(mut self, issuer: crate::satokens::Issuer) -> Self {
        self.sa_issuer = Some(issuer);
        self
    }

    pub fn service_account_issuer(&self) -> Option<&crate::satokens::Issuer> {
        self.sa_issuer.as_ref()
    }

    /// Accepts the bearer tokens of a token file.
    pub fn with_tokens(mut self, tokens: crate::tokens::Tokens) -> Self {
        self.tokens = tokens;
        self
    }

    /// Accepts join tokens for this CA and this cluster token.
    pub fn with_join(mut self, join: crate::jointokens::JoinConfig) -> Self {
        self.join = join;
        self
    }

    /// Configures how node agents are reached; empty material disables it.
    pub fn with_kubelet_client(
        mut self,
        k: crate::nodeproxy::KubeletClient,
    ) -> Result<Self, crate::ServeError> {
        self.node_client =
            crate::nodeproxy::NodeClient::new(&k).map_err(crate::ServeError::KubeletClient)?.map(Arc::new);
        Ok(self)
    }

    pub fn node_client(&self) -> Option<Arc<crate::nodeproxy::NodeClient>> {
        self.node_client.clone()
    }

    pub fn openapi_documents(&self) -> Arc<crate::openapi::Documents> {
        if let Ok(cached) = self.openapi.read()
            && let Some(d) = cached.as_ref()
        {
            return d.clone();
        }
        let docs = Arc::new(crate::openapi::build(&self.resources(), &self.custom()));
        if let Ok(mut slot) = self.openapi.write() {
            *slot = Some(docs.clone());
        }
        docs
    }

    /// Replaces the custom resources: the table becomes the built-in
    /// resources plus those of `custom`, and OpenAPI is rebuilt on next use.
    pub fn set_custom(&self, custom: crate::crds::Custom) {
        let mut all = resources::builtin();
        for info in custom.values() {
            for r in info.resources() {
                if !all.iter().any(|b| b.group == r.group && b.plural == r.plural && b.version == r.version) {
                    all.push(r);
                }
            }
        }
        if let Ok(mut t) = self.resources.write() {
            *t = all;
        }
        if let Ok(mut c) = self.custom.write() {
            *c = Arc::new(custom);
        }
        if let Ok(mut o) = self.openapi.write() {
            *o = None;
        }
    }

    /// The CRD behind a custom resource.
    pub fn custom_info(&self, group: &str, plural: &str) -> Option<lichen_apimachinery::crd::CrdInfo> {
        self.custom.read().ok()?.get(&(group.to_string(), plural.to_string())).cloned()
    }

    pub fn custom(&self) -> Arc<crate::crds::Custom> {
        self.custom.read().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn resources(&self) -> Vec<Resource> {
        self.resources.read().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Resource> {
        let all = self.resources.read().ok()?;
        all.iter().find(|r| r.group == group && r.version == version && r.plural == plural).cloned()
    }
}

/// Entry point for every path the fixed routes do not serve.
pub async fn handle(
    State(api): State<Arc<Api>>,
    identity: Option<Extension<Identity>>,
    req: Request,
) -> Response {
    let started = std::time::Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let user = identity.as_ref().map(|Extension(i)| i.user.clone()).unwrap_or_default();
    let response = match dispatch(api, identity.map(|Extension(i)| i), req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(
        %method, path, user, status = response.status().as_u16(), micros = started.elapsed().as_micros(), "request"
    );
    response
}

async fn dispatch(api: Arc<Api>, identity: Option<Identity>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    // Kept for the streaming subresources, which relay an upgraded connection.
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let method = parts.method.clone();
    // Authentication and authorization come before routing, as upstream's
    // filters: a path nobody may see is 401/403, not 404.
    let identity = crate::authn::authenticate(&api, identity, &parts.headers).await?;
    let params = Params::parse(parts.uri.query())?;
    let path = parts.uri.path();
    let target = request::parse(&parts.method, path, params.flag("watch"));
    if !matches!(target, Some(Target::Resource(_))) {
        let request = crate::authz::non_resource(&parts.method, path);
        crate::authz::authorize_request(&api, &identity, &request).await?;
    }
    if path == "/openapi/v2" {
        return Ok(crate::openapi::serve_v2(&parts.headers));
    }
    if path == "/openapi/v3" || path.starts_with("/openapi/v3/") {
        return crate::openapi::serve(&api, path, &params, &parts.headers);
    }
    if crate::satokens::oidc::is_discovery(path) {
        return crate::satokens::oidc::serve(api.service_account_issuer(), &method, path, &parts.headers);
    }
    let Some(target) = target else {
        return Err(ApiError::NoRoute);
    };
    match target {
        Target::Root { legacy } => Ok(discovery::root(&api, legacy, &parts.headers)),
        Target::Group(g) => discovery::group(&api, &g, &parts.headers),
        Target::GroupVersion { group, version } => {
            discovery::group_version(&api, &group, &version, &parts.headers)
        }
        Target::Resource(req) => {
            let attributes = crate::authz::resource_attributes(&req, &params);
            crate::authz::authorize_request(&api, &identity, &crate::rbac::Request::Resource(attributes))
                .await?;
            let res = api.find(&req.group, &req.version, &req.plural).ok_or(ApiError::NoRoute)?;
            if !res.namespaced && !req.namespace.is_empty() {
                return Err(ApiError::NoRoute);
            }
            let ctx = Ctx { api, req, res, params, headers: parts.headers, identity };
            if crate::reviews::is_review(&ctx.res) {
                return crate::reviews::create(&ctx, body).await;
            }
            if crate::binding::is_binding(&ctx) {
                if ctx.req.verb != Verb::Create {
                    return Err(ApiError::MethodNotSupported {
                        verb: ctx.req.verb.as_str().into(),
                        resource: "bindings".into(),
                    });
                }
                return crate::binding::create(&ctx, body).await;
            }
            if crate::satokens::request::is_token_request(&ctx) {
                return crate::satokens::request::create(&ctx, body).await;
            }
            if crate::eviction::is_eviction(&ctx) {
                return crate::eviction::create(&ctx, body).await;
            }
            if crate::nodeproxy::is_node_proxy(&ctx) {
                return crate::nodeproxy::handle(&ctx, &method, &raw_query, upgrade).await;
            }
            let crd_write =
                crate::crds::is_crd(&ctx) && !matches!(ctx.req.verb, Verb::Get | Verb::List | Verb::Watch);
            let api = ctx.api.clone();
            let answer = resource(ctx, body).await;
            if crd_write {
                // The new resources are served before the client hears back.
                let _ = tokio::task::spawn_blocking(move || crate::crds::reload(&api)).await;
            }
            answer
        }
    }
}

async fn resource(ctx: Ctx, body: Body) -> Result<Response, ApiError> {
    if let Some(sub) = ctx.req.subresource.as_deref()
        && !ctx.res.subresources.iter().any(|s| s.name == sub)
    {
        return Err(ApiError::NoRoute);
    }
    match ctx.req.verb {
        Verb::Get => crud::get(&ctx).await,
        Verb::List => list::list(&ctx).await,
        Verb::Watch => watch::watch(ctx).await,
        Verb::Create => crud::create(&ctx, body).await,
        Verb::Update => crud::update(&ctx, body).await,
        Verb::Patch => crud::patch(&ctx, body).await,
        Verb::Delete => crud::delete(&ctx, body).await,
        Verb::DeleteCollection => crud::delete_collection(&ctx, body).await,
    }
}
