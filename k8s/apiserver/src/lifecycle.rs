//! An object's life: what the server sets on create, what an update may not
//! change, and deletion with finalizers, grace periods and propagation.

use serde_json::{Value, json};

use crate::api::{Ctx, Params};
use crate::objects;
use crate::status::ApiError;

use crate::crud::MAX_ATTEMPTS;

/// Fields the server owns on create: uid, creationTimestamp, generation;
/// deletion fields and the resourceVersion are dropped.
pub fn prepare_create(ctx: &Ctx, obj: &mut Value, name: &str) {
    let has_generation = objects::has_generation(&ctx.res);
    let m = objects::meta_mut(obj);
    m.insert("name".into(), json!(name));
    m.insert("uid".into(), json!(objects::new_uid()));
    m.insert("creationTimestamp".into(), json!(objects::now_rfc3339()));
    for f in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
        m.remove(f);
    }
    if has_generation {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
    crate::defaults::on_create(&ctx.res, obj);
    if ctx.is(CERTIFICATES, "certificatesigningrequests") {
        set_requester(&ctx.identity, obj);
    }
}

const CERTIFICATES: &str = "certificates.k8s.io";

/// A new CertificateSigningRequest names who asked for it, from the
/// authenticated identity (whatever the body says), and starts without
/// conditions or a certificate: nobody creates a pre-approved request. The
/// approver's SubjectAccessReview is about this user.
fn set_requester(who: &crate::authn::Identity, obj: &mut Value) {
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    spec["username"] = json!(who.user);
    for (field, empty) in
        [("uid", who.uid.is_empty()), ("groups", who.groups.is_empty()), ("extra", who.extra.is_empty())]
    {
        if empty && let Some(s) = spec.as_object_mut() {
            s.remove(field);
        }
    }
    if !who.uid.is_empty() {
        spec["uid"] = json!(who.uid);
    }
    if !who.groups.is_empty() {
        spec["groups"] = json!(who.groups);
    }
    if !who.extra.is_empty() {
        spec["extra"] = json!(who.extra);
    }
    obj["status"] = json!({});
}

/// The object an update stores: `new` with the fields the server owns taken
/// from `current`; a `status` update changes only the status, a main-resource
/// update never does when the kind has a status subresource.
pub fn merge_update(ctx: &Ctx, sub: Option<&str>, current: &Value, mut new: Value) -> Value {
    match sub {
        Some("status") => {
            let mut out = current.clone();
            match new.get("status") {
                Some(s) => out["status"] = s.clone(),
                None => {
                    if let Some(o) = out.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            return out;
        }
        Some("finalize") => {
            let mut out = current.clone();
            out["spec"]["finalizers"] = new["spec"]["finalizers"].clone();
            return out;
        }
        Some("approval") => {
            let mut out = current.clone();
            out["status"]["conditions"] = new["status"]["conditions"].clone();
            return out;
        }
        _ => {}
    }
    if ctx.res.subresources.iter().any(|s| s.name == "status") {
        match current.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    // A request's spec (its key, signer and requester) never changes.
    if ctx.is(CERTIFICATES, "certificatesigningrequests") {
        new["spec"] = current["spec"].clone();
    }
    let cur_meta = objects::meta(current).clone();
    let bump = objects::has_generation(&ctx.res) && objects::spec_changed(current, &new);
    let m = objects::meta_mut(&mut new);
    for f in
        ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name"]
    {
        match cur_meta.get(f) {
            Some(v) => m.insert(f.into(), v.clone()),
            None => m.remove(f),
        };
    }
    m.remove("resourceVersion");
    m.remove("selfLink");
    let generation = cur_meta.get("generation").and_then(Value::as_i64);
    match generation {
        Some(g) => m.insert("generation".into(), json!(if bump { g + 1 } else { g })),
        None => m.remove("generation"),
    };
    crate::defaults::on_update(&ctx.res, &mut new);
    new
}

/// Deleting (deletionTimestamp set) and no finalizer left: the object goes.
pub fn finalized(obj: &Value) -> bool {
    let m = objects::meta(obj);
    m.get("deletionTimestamp").is_some_and(|t| !t.is_null())
        && m.get("finalizers").and_then(Value::as_array).is_none_or(Vec::is_empty)
}

/// `metav1.DeleteOptions`, from the body or the query.
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    pub propagation: Option<String>,
    pub grace_period: Option<i64>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn parse(body: &[u8], params: &Params) -> Result<Self, ApiError> {
        let mut o = DeleteOptions { dry_run: params.dry_run(), ..Default::default() };
        if let Some(p) = params.get("propagationPolicy") {
            o.propagation = Some(p.to_string());
        }
        if let Some(g) = params.get("gracePeriodSeconds") {
            o.grace_period = Some(
                g.parse().map_err(|_| ApiError::BadRequest(format!("invalid gracePeriodSeconds {g:?}")))?,
            );
        }
        if !body.iter().all(u8::is_ascii_whitespace) {
            let v: Value = if body.starts_with(b"k8s\0") {
                crate::protobuf::decode(body)?
            } else {
                serde_json::from_slice(body)
                    .map_err(|e| ApiError::BadRequest(format!("json parse error: {e}")))?
            };
            if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
                o.propagation = Some(p.to_string());
            }
            if v.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
                o.propagation = Some("Orphan".into());
            }
            if let Some(g) = v.get("gracePeriodSeconds").and_then(Value::as_i64) {
                o.grace_period = Some(g);
            }
            o.uid = v["preconditions"]["uid"].as_str().map(String::from);
            o.resource_version = v["preconditions"]["resourceVersion"].as_str().map(String::from);
            if v.get("dryRun").and_then(Value::as_array).is_some_and(|d| d.iter().any(|x| x == "All")) {
                o.dry_run = true;
            }
        }
        match o.propagation.as_deref() {
            None | Some("Background" | "Foreground" | "Orphan") => Ok(o),
            Some(p) => Err(ApiError::BadRequest(format!(
                "propagationPolicy: Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
            ))),
        }
    }
}

/// Deletes one object (or marks it for deletion when finalizers or a grace
/// period hold it); returns the object and whether it is gone already.
pub async fn delete_one(ctx: &Ctx, name: &str, opts: &DeleteOptions) -> Result<(Value, bool), ApiError> {
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            tokio::task::yield_now().await;
        }
        let (current, rev) = crate::crud::current(ctx, name).await?;
        let m = objects::meta(&current);
        if let Some(uid) = &opts.uid
            && m["uid"].as_str() != Some(uid)
        {
            return Err(precondition(ctx, name, "UID", uid, m["uid"].as_str().unwrap_or("")));
        }
        if let Some(rv) = &opts.resource_version
            && *rv != rev.to_string()
        {
            return Err(precondition(ctx, name, "ResourceVersion", rv, &rev.to_string()));
        }
        let mut marked = current.clone();
        let finalizer = match opts.propagation.as_deref() {
            Some("Foreground") => Some("foregroundDeletion"),
            Some("Orphan") => Some("orphan"),
            _ => None,
        };
        let mm = objects::meta_mut(&mut marked);
        let mut finalizers: Vec<Value> =
            mm.get("finalizers").and_then(Value::as_array).cloned().unwrap_or_default();
        if let Some(f) = finalizer
            && !finalizers.iter().any(|x| x == f)
        {
            finalizers.push(json!(f));
        }
        let is_ns = ctx.res.group.is_empty() && ctx.res.plural == "namespaces";
        let grace = pod_grace(ctx, &current, opts);
        let hold = !finalizers.is_empty() || is_ns || grace > 0;
        if hold {
            if !finalizers.is_empty() {
                mm.insert("finalizers".into(), json!(finalizers));
            }
            if mm.get("deletionTimestamp").is_none_or(Value::is_null) {
                let at = std::time::SystemTime::now() + std::time::Duration::from_secs(grace.unsigned_abs());
                mm.insert("deletionTimestamp".into(), json!(objects::rfc3339(at)));
                mm.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            if is_ns {
                marked["status"]["phase"] = json!("Terminating");
            }
            if marked == current || opts.dry_run {
                return Ok((marked, false));
            }
            let key = objects::key(&ctx.res, &ctx.req.namespace, name);
            let value = objects::encode_for(&ctx.res, &marked)?;
            match ctx.store(name, move |s| s.update(&key, &value, rev)).await {
                Ok(kv) => {
                    objects::set_resource_version(&mut marked, kv.mod_revision);
                    return Ok((marked, false));
                }
                Err(ApiError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        if opts.dry_run {
            return Ok((current, true));
        }
        let key = objects::key(&ctx.res, &ctx.req.namespace, name);
        match ctx.store(name, move |s| s.delete(&key, Some(rev))).await {
            Ok(kv) => {
                let mut gone = current;
                objects::set_resource_version(&mut gone, kv.mod_revision);
                return Ok((gone, true));
            }
            Err(ApiError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ctx.conflict(name))
}

/// A scheduled pod is deleted gracefully (the node stops it first); an
/// unscheduled one at once.
fn pod_grace(ctx: &Ctx, pod: &Value, opts: &DeleteOptions) -> i64 {
    if !(ctx.res.group.is_empty() && ctx.res.plural == "pods") {
        return 0;
    }
    let scheduled = pod["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let done = matches!(pod["status"]["phase"].as_str(), Some("Succeeded" | "Failed"));
    if !scheduled || done {
        return 0;
    }
    opts.grace_period
        .unwrap_or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64().unwrap_or(30))
        .max(0)
}

pub(crate) fn precondition(ctx: &Ctx, name: &str, what: &str, want: &str, have: &str) -> ApiError {
    ApiError::Conflict {
        resource: ctx.qualified(),
        group: ctx.res.group.clone(),
        plural: ctx.res.plural.clone(),
        name: name.into(),
        detail: format!("Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"),
    }
}

/// Creating in a namespace needs the namespace, and not a terminating one.
pub async fn check_namespace_open(ctx: &Ctx, name: &str) -> Result<(), ApiError> {
    let ns = ctx.req.namespace.clone();
    let Some(nsres) = ctx.api.find("", "v1", "namespaces") else { return Ok(()) };
    let key = objects::key(&nsres, "", &ns);
    let found = ctx.store(&ns, move |s| s.get(&key, None)).await?;
    let Some(kv) = found else {
        return Err(ApiError::NotFound {
            resource: "namespaces".into(),
            group: String::new(),
            plural: "namespaces".into(),
            name: ns,
        });
    };
    let obj = objects::decode(&kv)?;
    if objects::meta(&obj).get("deletionTimestamp").is_some_and(|t| !t.is_null()) {
        return Err(ApiError::Forbidden(format!(
            "{} {:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            ctx.qualified(),
            name
        )));
    }
    Ok(())
}

/// Equal but for the resourceVersion: an update that changes nothing is not
/// written (upstream answers with the current object and revision).
pub fn unchanged(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        objects::meta_mut(&mut v).remove("resourceVersion");
        v
    };
    strip(a) == strip(b)
}
