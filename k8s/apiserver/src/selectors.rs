//! Label and field selectors of list, watch and deletecollection requests.

use serde_json::Value;

use crate::api::Ctx;
use crate::status::ApiError;

/// The selectors of one request, parsed once.
pub struct Filter {
    label: Option<String>,
    field: Option<String>,
}

impl Filter {
    pub fn from_request(ctx: &Ctx) -> Result<Self, ApiError> {
        let label = ctx.params.get("labelSelector").filter(|s| !s.is_empty()).map(String::from);
        let field = ctx.params.get("fieldSelector").filter(|s| !s.is_empty()).map(String::from);
        Ok(Filter { label, field })
    }

    pub fn is_empty(&self) -> bool {
        self.label.is_none() && self.field.is_none()
    }

    pub fn matches(&self, _obj: &Value) -> bool {
        self.is_empty()
    }
}

pub fn format_label_selector(sel: &Value) -> String {
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect())
        .unwrap_or_default();
    parts.sort();
    parts.join(",")
}
