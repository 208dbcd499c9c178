//! Label and field selectors of list, watch and deletecollection requests.

use lichen_apimachinery::selector::{FieldMatcher, FieldSelector, SelectableFields, Selector};
use serde_json::Value;

use crate::api::Ctx;
use crate::status::ApiError;

/// The selectors of one request, parsed once.
pub struct Filter {
    label: Option<Selector>,
    field: Option<FieldMatcher>,
}

impl Filter {
    /// Parses `labelSelector` and `fieldSelector`; a malformed one, or a
    /// field the kind does not support, is upstream's 400.
    pub fn from_request(ctx: &Ctx) -> Result<Self, ApiError> {
        let label = match ctx.params.get("labelSelector").filter(|s| !s.is_empty()) {
            Some(s) => Some(Selector::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?),
            None => None,
        };
        let field = match ctx.params.get("fieldSelector").filter(|s| !s.is_empty()) {
            Some(s) => {
                let parsed = FieldSelector::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                let fields = match crate::crds::version(ctx) {
                    Some(v) => SelectableFields::custom(ctx.res.namespaced, &v.selectable_fields),
                    None => SelectableFields::built_in(&ctx.res.group, &ctx.res.kind),
                };
                Some(parsed.bind(&fields).map_err(|e| ApiError::BadRequest(e.to_string()))?)
            }
            None => None,
        };
        Ok(Filter { label, field })
    }

    pub fn is_empty(&self) -> bool {
        self.label.as_ref().is_none_or(Selector::is_empty) && self.field.is_none()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.label.as_ref().is_none_or(|l| l.matches_object(obj))
            && self.field.as_ref().is_none_or(|f| f.matches(obj))
    }
}

/// A `metav1.LabelSelector` in the string form (`Scale.status.selector`).
pub fn format_label_selector(sel: &Value) -> String {
    Selector::from_label_selector(Some(sel), "spec.selector").map(|s| s.to_string()).unwrap_or_default()
}
