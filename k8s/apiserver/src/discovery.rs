//! Discovery, both forms from the one resource table: the legacy
//! `APIVersions`/`APIGroupList`/`APIResourceList` documents (the Python
//! client) and aggregated `apidiscovery.k8s.io/v2` (kubectl asks for it
//! first and then needs no per-group request).

use std::collections::BTreeMap;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use lichen_apimachinery::resources::Resource;
use serde_json::{Value, json};

use crate::api::Api;
use crate::body;
use crate::status::ApiError;

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// A version and its resources.
type Version = (String, Vec<Resource>);

/// Group name → versions in preference order → resources.
fn groups(api: &Api) -> Vec<(String, Vec<Version>)> {
    let mut out: Vec<(String, Vec<Version>)> = Vec::new();
    for r in api.resources() {
        let gi = match out.iter().position(|(g, _)| *g == r.group) {
            Some(i) => i,
            None => {
                out.push((r.group.clone(), Vec::new()));
                out.len() - 1
            }
        };
        let versions = &mut out[gi].1;
        match versions.iter_mut().find(|(v, _)| *v == r.version) {
            Some((_, rs)) => rs.push(r),
            None => versions.push((r.version.clone(), vec![r])),
        }
    }
    out
}

pub fn root(api: &Api, legacy: bool, headers: &HeaderMap) -> Response {
    let all = groups(api);
    let selected: Vec<_> = all.into_iter().filter(|(g, _)| g.is_empty() == legacy).collect();
    if body::wants_aggregated(headers) {
        let items: Vec<Value> = selected.iter().map(|(g, vs)| aggregated_group(g, vs)).collect();
        let doc = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
        return body::json_with_type(StatusCode::OK, &doc, headers, AGGREGATED);
    }
    if legacy {
        let doc = json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address(headers)}],
        });
        return body::json(StatusCode::OK, &doc, headers);
    }
    let groups: Vec<Value> = selected.iter().map(|(g, vs)| api_group(g, vs)).collect();
    body::json(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
        headers,
    )
}

fn server_address(headers: &HeaderMap) -> String {
    headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("").to_string()
}

fn api_group(name: &str, versions: &[Version]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|(v, _)| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

pub fn group(api: &Api, name: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let all = groups(api);
    let (_, vs) = all.iter().find(|(g, _)| g == name && !g.is_empty()).ok_or(ApiError::NoRoute)?;
    let mut doc = api_group(name, vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Ok(body::json(StatusCode::OK, &doc, headers))
}

pub fn group_version(
    api: &Api,
    group: &str,
    version: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let resources: Vec<Resource> =
        api.resources().into_iter().filter(|r| r.group == group && r.version == version).collect();
    if resources.is_empty() {
        return Err(ApiError::NoRoute);
    }
    let mut list = Vec::new();
    for r in &resources {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        for s in &r.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if s.group != r.group || s.version != r.version {
                sub["group"] = json!(s.group);
                sub["version"] = json!(s.version);
            }
            list.push(sub);
        }
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let doc = json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list});
    Ok(body::json(StatusCode::OK, &doc, headers))
}

fn aggregated_group(name: &str, versions: &[Version]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|(v, rs)| {
            let resources: Vec<Value> = rs.iter().map(aggregated_resource).collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": name, "creationTimestamp": null}, "versions": vs})
}

fn aggregated_resource(r: &Resource) -> Value {
    let mut e = BTreeMap::new();
    e.insert("resource", json!(r.plural));
    e.insert("responseKind", json!({"group": r.group, "version": r.version, "kind": r.kind}));
    e.insert("scope", json!(if r.namespaced { "Namespaced" } else { "Cluster" }));
    e.insert("singularResource", json!(r.singular));
    e.insert("verbs", json!(r.verbs));
    if !r.short_names.is_empty() {
        e.insert("shortNames", json!(r.short_names));
    }
    if !r.categories.is_empty() {
        e.insert("categories", json!(r.categories));
    }
    if !r.subresources.is_empty() {
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|s| {
                json!({
                    "subresource": s.name,
                    "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                    "verbs": s.verbs,
                })
            })
            .collect();
        e.insert("subresources", json!(subs));
    }
    json!(e)
}
