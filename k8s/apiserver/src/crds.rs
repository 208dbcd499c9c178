//! CustomResourceDefinitions made real: the resource table follows the
//! stored CRDs, and custom resources are pruned, defaulted and validated
//! against their version's schema, printed with its printer columns and
//! scaled through its scale paths.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lichen_apimachinery::crd::{self, CrdInfo, CrdVersion, FieldProblem};
use lichen_store::{StoreError, WatchMessage};
use serde_json::{Value, json};

use crate::api::{Api, Ctx};
use crate::objects;
use crate::status::Cause;

pub const GROUP: &str = "apiextensions.k8s.io";
pub const PLURAL: &str = "customresourcedefinitions";
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// The CRDs in force, by (group, plural).
pub type Custom = BTreeMap<(String, String), CrdInfo>;

const PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

/// Reads every stored CRD and makes the resource table match.
pub fn reload(api: &Api) -> Result<(), StoreError> {
    let list = api.store.list(PREFIX, None, None, None)?;
    let mut custom = Custom::new();
    for kv in &list.items {
        let Ok(obj) = objects::decode(kv) else { continue };
        let info = CrdInfo::read(&obj);
        custom.insert((info.group.clone(), info.names.plural.clone()), info);
    }
    api.set_custom(custom);
    Ok(())
}

/// Keeps the table in step with CRD writes made by anyone (this process's
/// own writes also reload synchronously, before answering).
pub fn spawn_watcher(api: Arc<Api>) {
    let _ = std::thread::Builder::new().name("crds".into()).spawn(move || {
        loop {
            let run = || -> Result<(), StoreError> {
                let rev = api.store.current_revision()?;
                reload(&api)?;
                let mut w = api.store.watch(PREFIX, rev)?;
                loop {
                    match w.blocking_next(Duration::from_secs(30)) {
                        Ok(Some(WatchMessage::Events(_))) => reload(&api)?,
                        Ok(Some(WatchMessage::Closed(e))) => return Err(e),
                        Ok(Some(WatchMessage::Progress(_)) | None) => {}
                        Err(_) => return Ok(()),
                    }
                }
            };
            if let Err(e) = run() {
                tracing::warn!(error = %e, "CRD watcher restarting");
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
}

pub fn is_crd(ctx: &Ctx) -> bool {
    ctx.is(GROUP, PLURAL)
}

/// The CRD version serving this request's resource, if it is custom.
pub fn version(ctx: &Ctx) -> Option<CrdVersion> {
    ctx.api.custom_info(&ctx.res.group, &ctx.res.plural)?.version(&ctx.res.version).cloned()
}

fn cause(p: &FieldProblem) -> Cause {
    Cause { reason: p.reason(), field: p.field.clone(), message: p.body() }
}

/// A CRD being written: validated as upstream, status as its controllers
/// would write it, and the cleanup finalizer.
pub fn admit_crd(obj: &mut Value) -> Vec<Cause> {
    if let Err(problems) = CrdInfo::from_crd(obj) {
        return problems.iter().map(cause).collect();
    }
    obj["status"] = crd::status_for(obj, &objects::now_rfc3339());
    if objects::meta(obj).get("deletionTimestamp").is_none_or(Value::is_null) {
        let m = objects::meta_mut(obj);
        let f = m.entry("finalizers").or_insert(json!([]));
        if let Some(a) = f.as_array_mut()
            && !a.iter().any(|x| x == CLEANUP_FINALIZER)
        {
            a.push(json!(CLEANUP_FINALIZER));
        }
    }
    Vec::new()
}

/// A custom resource being written: pruned, defaulted and validated against
/// its version's schema.
pub fn admit_custom(ctx: &Ctx, obj: &mut Value) -> Vec<Cause> {
    let Some(v) = version(ctx) else { return Vec::new() };
    let mut problems = Vec::new();
    if let Some(schema) = &v.schema {
        crd::prune(schema, obj);
        crd::default(schema, obj);
        problems.extend(crd::validate(schema, obj));
    }
    if let Some(scale) = &v.scale {
        problems.extend(crd::validate_scale(scale, obj, true));
    }
    problems.iter().map(cause).collect()
}

/// The printer columns of a custom resource's version, as the CRD's JSON.
pub fn printer_columns(ctx: &Ctx) -> Option<Value> {
    let v = version(ctx)?;
    let cols: Vec<Value> = v
        .printer_columns
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.type_name, "format": c.format, "description": c.description,
                   "priority": c.priority, "jsonPath": c.json_path})
        })
        .collect();
    Some(json!(cols))
}

/// Reads a simple `.a.b.c` path.
pub fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.').split('.').try_fold(obj, |v, k| v.get(k))
}

/// Sets a simple `.a.b.c` path, creating objects on the way.
pub fn set_path(obj: &mut Value, path: &str, value: Value) {
    let keys: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for k in &keys[..keys.len().saturating_sub(1)] {
        if !cur.get(*k).is_some_and(Value::is_object) {
            cur[*k] = json!({});
        }
        cur = &mut cur[*k];
    }
    if let Some(last) = keys.last() {
        cur[*last] = value;
    }
}
