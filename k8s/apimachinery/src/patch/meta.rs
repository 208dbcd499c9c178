//! What a strategic merge patch needs to know about a field: upstream keeps
//! it in Go struct tags (`patchStrategy`, `patchMergeKey`) and publishes it in
//! OpenAPI as `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key`.
//! The OpenAPI module implements [`PatchMeta`] from the schemas; tests use
//! small hand-written tables.

/// How a strategic merge patch treats one field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMeta {
    /// `x-kubernetes-patch-merge-key`: lists of objects are merged element by
    /// element, matched on this key (`name` for containers, `containerPort`
    /// for ports).
    pub merge_key: Option<String>,
    /// `x-kubernetes-patch-strategy` contains `merge`: a list is merged (by
    /// `merge_key` for objects, as a set for primitives) instead of replaced.
    pub merge: bool,
    /// `x-kubernetes-patch-strategy` contains `retainKeys`: after merging,
    /// keys of this object absent from the patch are dropped (volume sources).
    pub retain_keys: bool,
    /// `x-kubernetes-patch-strategy: replace` (or no strategy on a list): the
    /// patch value replaces the field.
    pub replace: bool,
    /// The field is a map of string to something (`additionalProperties`),
    /// so its keys are data, not field names.
    pub is_map: bool,
}

/// Patch metadata for one kind, looked up by field path from the object's
/// root with list indexes and map keys left out: `["spec", "template",
/// "spec", "containers", "ports"]` for a Deployment's container ports.
pub trait PatchMeta {
    /// Metadata of the field at `path`; the default (no merge key, no
    /// strategy) for unknown fields, which is what upstream does for custom
    /// resources: maps merge, lists are replaced.
    fn field(&self, path: &[&str]) -> FieldMeta;
}

/// No strategic information at all: maps merge, lists are replaced. What
/// upstream uses for custom resources (which refuse SMP) and for JSON merge
/// patch.
pub struct NoMeta;

impl PatchMeta for NoMeta {
    fn field(&self, _path: &[&str]) -> FieldMeta {
        FieldMeta::default()
    }
}
