//! `spec.names` (and `status.acceptedNames`) rules.

use serde_json::Value;

use crate::crd::definition::CrdNames;
use crate::crd::problem::FieldProblem;
use crate::crd::validate::dns1035_label_errors;

pub(super) fn names(names: &CrdNames, path: &str) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    let label = |out: &mut Vec<FieldProblem>, field: &str, value: &str| {
        let errors = dns1035_label_errors(value);
        if !value.is_empty() && !errors.is_empty() {
            out.push(FieldProblem::invalid(
                format!("{path}.{field}"),
                Value::String(value.into()),
                errors.join(","),
            ));
        }
    };
    let mixed = |out: &mut Vec<FieldProblem>, field: &str, value: &str| {
        let errors = dns1035_label_errors(&value.to_lowercase());
        if !value.is_empty() && !errors.is_empty() {
            let detail = format!("may have mixed case, but should otherwise match: {}", errors.join(","));
            out.push(FieldProblem::invalid(format!("{path}.{field}"), Value::String(value.into()), detail));
        }
    };
    label(&mut out, "plural", &names.plural);
    label(&mut out, "singular", &names.singular);
    mixed(&mut out, "kind", &names.kind);
    mixed(&mut out, "listKind", &names.list_kind);
    for (i, short) in names.short_names.iter().enumerate() {
        let errors = dns1035_label_errors(short);
        if !errors.is_empty() {
            out.push(FieldProblem::invalid(
                format!("{path}.shortNames[{i}]"),
                Value::String(short.clone()),
                errors.join(","),
            ));
        }
    }
    if !names.kind.is_empty() && names.kind == names.list_kind {
        let value = Value::String(names.list_kind.clone());
        out.push(FieldProblem::invalid(
            format!("{path}.listKind"),
            value,
            "kind and listKind may not be the same",
        ));
    }
    for (i, category) in names.categories.iter().enumerate() {
        let errors = dns1035_label_errors(category);
        if !errors.is_empty() {
            let value = Value::String(category.clone());
            out.push(FieldProblem::invalid(format!("{path}.categories[{i}]"), value, errors.join(",")));
        }
    }
    out
}
