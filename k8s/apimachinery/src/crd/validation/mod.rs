//! Validation of a CustomResourceDefinition on create, as upstream's
//! `ValidateCustomResourceDefinition` does it for an apiextensions.k8s.io/v1
//! object: metadata, spec, the status it will get, API approval.
//!
//! Upstream validates the internal form, into which v1 is converted: when
//! every version has the same schema (or subresources, or printer
//! columns) they are moved to the top level, so problems in them are
//! reported at `spec.validation.openAPIV3Schema...`, `spec.subresources...`
//! and `spec.additionalPrinterColumns[i]...`, as kubectl users see them.

mod names;
mod openapi;
mod structural;
#[cfg(test)]
mod tests;
mod version;

use serde_json::Value;

use super::definition::{CrdNames, list, text};
use super::problem::{BadValue, FieldProblem};
use super::validate::dns1035_label_errors;
use crate::selector::validation::dns1123_subdomain_errors;

const APPROVAL_ANNOTATION: &str = "api-approved.kubernetes.io";

/// All problems of `crd`, in upstream's order.
pub(crate) fn validate_crd(crd: &Value) -> Vec<FieldProblem> {
    let spec = &crd["spec"];
    let names = CrdNames::read(&spec["names"]);
    let group = text(&spec["group"]);
    let mut out = metadata_name(&text(&crd["metadata"]["name"]), &names.plural, &group);
    out.extend(spec_problems(spec, &names, &group));
    if !list(&spec["versions"]).iter().any(|v| v["storage"] == true) {
        out.push(FieldProblem {
            value: BadValue::Raw("[]string(nil)".into()),
            ..FieldProblem::invalid(
                "status.storedVersions",
                Value::Null,
                "must have at least one stored version",
            )
        });
    }
    out.extend(api_approval(crd, &group));
    if spec["preserveUnknownFields"] == true {
        let detail = "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead";
        out.push(FieldProblem::invalid("spec.preserveUnknownFields", Value::Bool(true), detail));
    }
    out
}

fn metadata_name(name: &str, plural: &str, group: &str) -> Vec<FieldProblem> {
    if name.is_empty() {
        return vec![FieldProblem::required("metadata.name", "name or generateName is required")];
    }
    let mut messages = dns1123_subdomain_errors(name);
    if name != format!("{plural}.{group}") {
        messages.push(r#"must be spec.names.plural+"."+spec.group"#.to_string());
    }
    messages
        .into_iter()
        .map(|m| FieldProblem::invalid("metadata.name", Value::String(name.into()), m))
        .collect()
}

/// Whether every version has the same value at `key` (absent and `null`
/// count as the same), so upstream moves it to the top level.
fn folded(versions: &[Value], key: &str, empty_array_is_absent: bool) -> bool {
    fn get<'a>(v: &'a Value, key: &str, empty_array_is_absent: bool) -> Option<&'a Value> {
        let value = v.get(key).filter(|x| !x.is_null());
        value.filter(|x| !(empty_array_is_absent && x.as_array().is_some_and(Vec::is_empty)))
    }
    match versions.first() {
        None => false,
        Some(first) => versions
            .iter()
            .all(|v| get(v, key, empty_array_is_absent) == get(first, key, empty_array_is_absent)),
    }
}

fn has_status(subresources: &Value) -> bool {
    subresources.get("status").is_some_and(|s| !s.is_null())
}

fn spec_problems(spec: &Value, names: &CrdNames, group: &str) -> Vec<FieldProblem> {
    let mut out = Vec::new();
    if group.is_empty() {
        out.push(FieldProblem::required("spec.group", ""));
    } else if let errors @ [_, ..] = dns1123_subdomain_errors(group).as_slice() {
        out.push(FieldProblem::invalid("spec.group", Value::String(group.into()), errors.join(",")));
    } else if !group.contains('.') {
        out.push(FieldProblem::invalid(
            "spec.group",
            Value::String(group.into()),
            "should be a domain with at least one dot",
        ));
    }
    match spec["scope"].as_str().unwrap_or("") {
        "" => out.push(FieldProblem::required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => {
            let supported = ["Cluster".to_string(), "Namespaced".to_string()];
            out.push(FieldProblem::not_supported("spec.scope", Value::String(other.into()), &supported));
        }
    }
    let versions = list(&spec["versions"]);
    let schema_folded = folded(versions, "schema", false);
    let subresources_folded = folded(versions, "subresources", false);
    let columns_folded = folded(versions, "additionalPrinterColumns", true);
    let top_schema =
        versions.first().filter(|_| schema_folded).and_then(|v| v.pointer("/schema/openAPIV3Schema"));
    if top_schema.is_none_or(Value::is_null) {
        for (i, v) in versions.iter().enumerate() {
            if v.pointer("/schema/openAPIV3Schema").is_none_or(Value::is_null) {
                out.push(FieldProblem::required(
                    format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    "schemas are required",
                ));
            }
        }
    }
    let top_subresources = versions.first().filter(|_| subresources_folded).map(|v| &v["subresources"]);
    let mut seen: Vec<&str> = Vec::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}]");
        let name = v["name"].as_str().unwrap_or("");
        if seen.contains(&name) {
            unique = false;
        }
        seen.push(name);
        let errors = dns1035_label_errors(name);
        if !errors.is_empty() {
            out.push(FieldProblem::invalid(
                format!("{path}.name"),
                Value::String(name.into()),
                errors.join(","),
            ));
        }
        out.extend(version::deprecation(v, &path));
        if !schema_folded && let Some(schema) = v.pointer("/schema/openAPIV3Schema").filter(|s| !s.is_null())
        {
            let status = has_status(top_subresources.unwrap_or(&v["subresources"]));
            out.extend(openapi::schema(schema, status, &format!("{path}.schema")));
        }
        if !subresources_folded {
            out.extend(version::subresources(&v["subresources"], &format!("{path}.subresources")));
        }
        if !columns_folded {
            out.extend(version::columns(
                &v["additionalPrinterColumns"],
                &format!("{path}.additionalPrinterColumns"),
            ));
        }
        let schema = v.pointer("/schema/openAPIV3Schema").filter(|s| !s.is_null());
        out.extend(version::selectable_fields(
            &v["selectableFields"],
            schema,
            &format!("{path}.selectableFields"),
        ));
    }
    let versions_value = || BadValue::Raw(versions_text(versions));
    if !unique {
        out.push(FieldProblem {
            value: versions_value(),
            ..FieldProblem::invalid("spec.versions", Value::Null, "must contain unique version names")
        });
    }
    if versions.iter().filter(|v| v["storage"] == true).count() != 1 {
        out.push(FieldProblem {
            value: versions_value(),
            ..FieldProblem::invalid(
                "spec.versions",
                Value::Null,
                "must have exactly one version marked as storage version",
            )
        });
    }
    if let Some(first) = versions.first().and_then(|v| v["name"].as_str()).filter(|n| !n.is_empty()) {
        let errors = dns1035_label_errors(first);
        if !errors.is_empty() {
            out.push(FieldProblem::invalid("spec.version", Value::String(first.into()), errors.join(",")));
        }
    }
    for (field, value) in [
        ("plural", &names.plural),
        ("singular", &names.singular),
        ("kind", &names.kind),
        ("listKind", &names.list_kind),
    ] {
        if value.is_empty() {
            out.push(FieldProblem::required(format!("spec.names.{field}"), ""));
        }
    }
    out.extend(names::names(names, "spec.names"));
    if let Some(schema) = top_schema.filter(|s| !s.is_null()) {
        let status = versions.iter().any(|v| has_status(&v["subresources"]));
        out.extend(openapi::schema(schema, status, "spec.validation"));
    }
    if let Some(subresources) = top_subresources {
        out.extend(version::subresources(subresources, "spec.subresources"));
    }
    if columns_folded && let Some(first) = versions.first() {
        out.extend(version::columns(&first["additionalPrinterColumns"], "spec.additionalPrinterColumns"));
    }
    out.extend(conversion(&spec["conversion"]));
    out
}

fn conversion(conversion: &Value) -> Vec<FieldProblem> {
    let strategy = conversion["strategy"].as_str().unwrap_or("None");
    match strategy {
        "None" => Vec::new(),
        "Webhook" => {
            let config = &conversion["webhook"]["clientConfig"];
            let (url, service) = (
                config.get("url").is_some_and(|u| !u.is_null()),
                config.get("service").is_some_and(|s| !s.is_null()),
            );
            if !config.is_object() {
                vec![FieldProblem::required(
                    "spec.conversion.webhookClientConfig",
                    "required when strategy is set to Webhook",
                )]
            } else if url == service {
                vec![FieldProblem::required(
                    "spec.conversion.webhookClientConfig",
                    "exactly one of url or service is required",
                )]
            } else {
                Vec::new()
            }
        }
        other => {
            let supported = ["None".to_string(), "Webhook".to_string()];
            vec![FieldProblem::not_supported(
                "spec.conversion.strategy",
                Value::String(other.into()),
                &supported,
            )]
        }
    }
}

fn api_approval(crd: &Value, group: &str) -> Option<FieldProblem> {
    let protected =
        ["k8s.io", "kubernetes.io"].iter().any(|g| group == *g || group.ends_with(&format!(".{g}")));
    let annotated = crd["metadata"]["annotations"].get(APPROVAL_ANNOTATION).is_some();
    (protected && !annotated).then(|| {
        FieldProblem::required(
            format!("metadata.annotations[{APPROVAL_ANNOTATION}]"),
            format!(
                "protected groups must have approval annotation \"{APPROVAL_ANNOTATION}\", see https://github.com/kubernetes/enhancements/pull/1111"
            ),
        )
    })
}

/// An approximation of Go's `%#v` of the versions, naming each one.
fn versions_text(versions: &[Value]) -> String {
    if versions.is_empty() {
        return "[]apiextensions.CustomResourceDefinitionVersion(nil)".into();
    }
    let each: Vec<String> = versions
        .iter()
        .map(|v| {
            format!(
                "apiextensions.CustomResourceDefinitionVersion{{Name:{}, Served:{}, Storage:{}}}",
                crate::gofmt::quote(v["name"].as_str().unwrap_or("")),
                v["served"] == true,
                v["storage"] == true
            )
        })
        .collect();
    format!("[]apiextensions.CustomResourceDefinitionVersion{{{}}}", each.join(", "))
}
