//! What a write does to `managedFields`, as upstream's field manager does
//! it: an update gives its manager the fields it changed and takes them
//! from everyone else; an apply merges a configuration, gives the applier
//! exactly the fields it applied, prunes what it applied before and no
//! longer does (unless someone else manages it), and refuses to change
//! fields other managers own unless forced.

use serde_json::Value;

use super::conflict::{Conflict, Conflicts};
use super::element::{Path, PathElement};
use super::managers::{Entry, ManagedFields, ManagerId, Operation};
use super::merge::{merge, remove_items};
use super::schema::TypeRef;
use super::set::Set;
use super::value;
use super::walk::{Comparison, WalkError, compare, to_field_set};

/// Upstream keeps at most this many updaters; older ones are merged.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The annotation client-side apply keeps its last configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager whose client-side apply conflicts are upgraded: `kubectl
/// apply --server-side` takes over what `kubectl apply` set.
const UPGRADING_MANAGER: &str = "kubectl";

/// The part of an object an endpoint does not write (upstream's reset
/// fields), which its managers therefore never own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    Nothing,
    /// The main resource of a kind with a `status` subresource.
    Status,
    /// The `status` subresource.
    AllButStatus,
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("{}", .0.message())]
    Conflicts(Conflicts),
    #[error("invalid apply configuration")]
    Config(#[source] WalkError),
    #[error("invalid live object")]
    Live(#[source] WalkError),
}

/// One write's view of field management.
#[derive(Debug, Clone)]
pub struct Updater<'a> {
    pub ty: TypeRef<'a>,
    pub reset: Reset,
    /// The version of the request (`apps/v1`).
    pub api_version: String,
    /// The request's time, RFC 3339.
    pub now: String,
}

/// Fields nobody owns: type and identity metadata the server sets.
fn stripped() -> Set {
    let mut s = Set::new();
    for p in [&["apiVersion"][..], &["kind"], &["metadata"]] {
        s.insert(&Path::fields(p).0);
    }
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&Path::fields(&["metadata", f]).0);
    }
    s
}

impl Updater<'_> {
    /// `set` without what this endpoint does not write.
    fn keep(&self, set: &Set) -> Set {
        let status = PathElement::field("status");
        match self.reset {
            Reset::Nothing => set.clone(),
            Reset::Status => set.recursive_difference(&Set::from_paths(&[Path::fields(&["status"])])),
            Reset::AllButStatus => {
                let mut out = Set::new();
                if set.is_member(&status) {
                    out.insert_member(status.clone());
                }
                if let Some(c) = set.child(&status) {
                    out.insert_child(status, c.clone());
                }
                out
            }
        }
    }

    fn compare(&self, before: &Value, after: &Value) -> Result<Comparison, WalkError> {
        let c = compare(before, after, self.ty)?;
        Ok(Comparison {
            added: self.keep(&c.added),
            modified: self.keep(&c.modified),
            removed: self.keep(&c.removed),
        })
    }

    fn finish(&self, managed: &mut ManagedFields) {
        let strip = stripped();
        for e in &mut managed.entries {
            e.fields = e.fields.difference(&strip);
        }
        managed.drop_empty();
        managed.cap_updaters(MAX_UPDATE_MANAGERS);
    }

    /// A create, update or non-apply patch by `id` turned `live` into `new`
    /// (both without `managedFields`; `live` is `{}` on create).
    pub fn update(
        &self,
        live: &Value,
        new: &Value,
        managed: &mut ManagedFields,
        id: &ManagerId,
    ) -> Result<(), WalkError> {
        let cmp = self.compare(live, new)?;
        let changed = cmp.changed();
        for e in &mut managed.entries {
            e.fields = e.fields.difference(&changed).difference(&cmp.removed);
        }
        let taken = changed.difference(&stripped());
        if !taken.is_empty() {
            let mut entry =
                managed.take(id).unwrap_or(Entry { id: id.clone(), time: None, fields: Set::new() });
            entry.id.api_version.clone_from(&self.api_version);
            entry.fields = entry.fields.union(&taken);
            entry.time = Some(self.now.clone());
            managed.put(entry);
        }
        self.finish(managed);
        Ok(())
    }

    /// Server-side apply of `config` by `id` on `live` (without
    /// `managedFields`; `{}` when the object does not exist yet). Returns
    /// the new object.
    pub fn apply(
        &self,
        live: &Value,
        config: &Value,
        managed: &mut ManagedFields,
        id: &ManagerId,
        force: bool,
    ) -> Result<Value, ApplyError> {
        let applied = self.keep(&to_field_set(config, self.ty).map_err(ApplyError::Config)?);
        let merged = merge(live, config, self.ty).map_err(ApplyError::Config)?;
        let last = managed.take(id);
        let pruned = match &last {
            Some(last) if !last.fields.is_empty() => {
                let others = managed.entries.iter().fold(Set::new(), |acc, e| acc.union(&e.fields));
                let kept = others.union(&applied).with_parent_fields();
                let gone = last.fields.with_parent_fields().difference(&kept);
                remove_items(&merged, &gone, self.ty)
            }
            _ => merged,
        };
        let cmp = self.compare(live, &pruned).map_err(ApplyError::Live)?;
        let changed = cmp.changed();
        if !force {
            let mut conflicts: Vec<Conflict> = Vec::new();
            for e in &managed.entries {
                for path in e.fields.intersection(&changed).paths() {
                    conflicts.push(Conflict { manager: e.id.clone(), path });
                }
            }
            if !conflicts.is_empty()
                && id.manager == UPGRADING_MANAGER
                && let Some(allowed) = self.allowed_by_last_applied(live)
            {
                conflicts.retain(|c| !allowed.has(&c.path.0));
            }
            if !conflicts.is_empty() {
                return Err(ApplyError::Conflicts(Conflicts::new(conflicts)));
            }
        }
        for e in &mut managed.entries {
            e.fields = e.fields.difference(&changed).difference(&cmp.removed);
        }
        let time = match last {
            Some(Entry { time: Some(t), .. }) if value::equal(live, &pruned) => t,
            _ => self.now.clone(),
        };
        let mut applier = id.clone();
        applier.operation = Operation::Apply;
        applier.api_version.clone_from(&self.api_version);
        managed.put(Entry { id: applier, time: Some(time), fields: applied });
        self.finish(managed);
        Ok(pruned)
    }

    /// The fields `kubectl apply` (client-side) last applied and that still
    /// have those values: `kubectl apply --server-side` may take them over
    /// without conflicts.
    fn allowed_by_last_applied(&self, live: &Value) -> Option<Set> {
        let text = live.get("metadata")?.get("annotations")?.get(LAST_APPLIED)?.as_str()?;
        let last: Value = serde_json::from_str(text).ok()?;
        if last.get("apiVersion").and_then(Value::as_str) != Some(self.api_version.as_str()) {
            return None;
        }
        let set = to_field_set(&last, self.ty).ok()?;
        let cmp = compare(&last, live, self.ty).ok()?;
        Some(set.difference(&cmp.modified).difference(&cmp.added).difference(&cmp.removed))
    }
}
