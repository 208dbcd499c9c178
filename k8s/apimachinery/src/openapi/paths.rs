//! The `paths` of a v3 document: one entry per URL the API server serves
//! for a group-version, with the operations each resource's verbs allow,
//! named as upstream's installer names them (`readCoreV1NamespacedPod`,
//! `deleteAppsV1CollectionNamespacedDeployment`).

use serde_json::{Map, Value, json};

use super::definitions::REF_PREFIX;
use super::params;
use crate::resources::{Resource, Subresource};

/// What the server answers with. JSON only: Lichen reads protobuf request
/// bodies but always responds in JSON.
const MEDIA: &[&str] = &["application/json"];
/// List and watch responses: JSON or a stream of watch events.
const LIST_MEDIA: &[&str] = &["application/json", "application/json;stream=watch"];
/// Patch types for built-in kinds.
const PATCH_MEDIA: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];
/// Patch types for custom resources, which refuse strategic merge patch.
const CUSTOM_PATCH_MEDIA: &[&str] =
    &["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"];

const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";

/// Subresources that are streams, served by `connect` operations.
const CONNECT: &[&str] = &["attach", "exec", "portforward", "proxy"];

/// Where the schemas of a group-version's kinds are.
pub struct Api<'a> {
    pub group: &'a str,
    pub version: &'a str,
    /// The definition name of a kind (group, version, kind), if there is one.
    pub schema_name: &'a dyn Fn(&str, &str, &str) -> Option<String>,
    /// Built-in kinds accept strategic merge patch; custom resources do not.
    pub strategic_merge_patch: bool,
}

/// `/api/v1` for the core group, `/apis/<group>/<version>` otherwise.
pub fn root(group: &str, version: &str) -> String {
    if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") }
}

/// upstream's `ToValidOperationID`: keep letters, `_` and non-leading
/// digits; capitalise the letter after anything else.
fn operation_id_part(s: &str, capitalize_first: bool) -> String {
    let mut out = String::new();
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_ascii_digit()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

fn group_name(group: &str) -> &str {
    if group.is_empty() { "core" } else { group.strip_suffix(".k8s.io").unwrap_or(group) }
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`, `StableExampleComV1`.
pub fn operation_prefix(group: &str, version: &str) -> String {
    operation_id_part(group_name(group), true) + &operation_id_part(version, true)
}

/// `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
pub fn tag(group: &str, version: &str) -> String {
    format!("{}_{}", operation_id_part(group_name(group), false), operation_id_part(version, false))
}

fn title(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{REF_PREFIX}{name}")})
}

fn content(schema: &Value, media: &[&str]) -> Value {
    Value::Object(media.iter().map(|m| (m.to_string(), json!({"schema": schema}))).collect())
}

fn responses(codes: &[(&str, &str)], schema: &Value, media: &[&str]) -> Value {
    let mut out = Map::new();
    for (code, description) in codes {
        out.insert(code.to_string(), json!({"content": content(schema, media), "description": description}));
    }
    out.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(out)
}

/// One operation of a path.
struct Op {
    method: &'static str,
    description: String,
    id: String,
    action: Option<&'static str>,
    gvk: Option<(String, String, String)>,
    params: Vec<Value>,
    body: Option<Value>,
    responses: Value,
}

/// The operations of one path and its path-level parameters.
#[derive(Default)]
struct PathItem {
    ops: Vec<Op>,
    params: Vec<Value>,
}

impl PathItem {
    fn into_value(self, tag: &str) -> Value {
        let mut item = Map::new();
        for op in self.ops {
            let mut o = Map::new();
            o.insert("description".into(), Value::String(op.description));
            o.insert("operationId".into(), Value::String(op.id));
            if !op.params.is_empty() {
                o.insert("parameters".into(), Value::Array(op.params));
            }
            if let Some(body) = op.body {
                o.insert("requestBody".into(), body);
            }
            o.insert("responses".into(), op.responses);
            o.insert("tags".into(), json!([tag]));
            if let Some(action) = op.action {
                o.insert("x-kubernetes-action".into(), Value::String(action.into()));
            }
            if let Some((group, version, kind)) = op.gvk {
                o.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!({"group": group, "kind": kind, "version": version}),
                );
            }
            item.insert(op.method.into(), Value::Object(o));
        }
        if !self.params.is_empty() {
            item.insert("parameters".into(), Value::Array(self.params));
        }
        Value::Object(item)
    }
}

/// The `paths` of a group-version document.
pub fn paths(api: &Api, resources: &[Resource]) -> Map<String, Value> {
    let root = root(api.group, api.version);
    let tag = tag(api.group, api.version);
    let prefix = operation_prefix(api.group, api.version);
    let mut out = Map::new();
    let discovery = Op {
        method: "get",
        description: "get available resources".into(),
        id: format!("get{prefix}APIResources"),
        action: None,
        gvk: None,
        params: Vec::new(),
        body: None,
        responses: responses(&[("200", "OK")], &schema_ref(API_RESOURCE_LIST), MEDIA),
    };
    out.insert(format!("{root}/"), PathItem { ops: vec![discovery], params: Vec::new() }.into_value(&tag));
    for resource in resources {
        let builder = ResourcePaths { api, resource, root: &root, prefix: &prefix };
        for (path, item) in builder.items() {
            if !item.ops.is_empty() {
                out.insert(path, item.into_value(&tag));
            }
        }
    }
    out
}

struct ResourcePaths<'a> {
    api: &'a Api<'a>,
    resource: &'a Resource,
    root: &'a str,
    prefix: &'a str,
}

impl ResourcePaths<'_> {
    fn has(&self, verb: &str) -> bool {
        self.resource.verbs.iter().any(|v| v == verb)
    }

    fn kind(&self) -> &str {
        &self.resource.kind
    }

    fn gvk(&self) -> Option<(String, String, String)> {
        Some((self.resource.group.clone(), self.resource.version.clone(), self.resource.kind.clone()))
    }

    /// `$ref` to a kind's schema, or a bare object if it has none.
    fn schema_of(&self, group: &str, version: &str, kind: &str) -> Value {
        match (self.api.schema_name)(group, version, kind) {
            Some(name) => schema_ref(&name),
            None => json!({"type": "object"}),
        }
    }

    fn object(&self) -> Value {
        self.schema_of(&self.resource.group, &self.resource.version, &self.resource.kind)
    }

    fn list(&self) -> Value {
        self.schema_of(&self.resource.group, &self.resource.version, &self.resource.list_kind)
    }

    /// `Namespaced` or nothing: the scope part of operation names.
    fn scope(&self) -> &'static str {
        if self.resource.namespaced { "Namespaced" } else { "" }
    }

    /// The collection path, the item path, and their path parameters.
    fn base(&self, watch: bool) -> (String, Vec<Value>) {
        let watch = if watch { "/watch" } else { "" };
        if self.resource.namespaced {
            (
                format!("{}{watch}/namespaces/{{namespace}}/{}", self.root, self.resource.plural),
                vec![params::namespace()],
            )
        } else {
            (format!("{}{watch}/{}", self.root, self.resource.plural), Vec::new())
        }
    }

    fn items(&self) -> Vec<(String, PathItem)> {
        let (collection, scope_params) = self.base(false);
        let item_path = format!("{collection}/{{name}}");
        let mut item_params = vec![params::name(self.kind())];
        item_params.extend(scope_params.iter().cloned());
        let mut out = vec![
            (collection, self.collection(scope_params.clone())),
            (item_path.clone(), self.item(item_params.clone())),
        ];
        if self.resource.namespaced && self.has("list") {
            out.push((format!("{}/{}", self.root, self.resource.plural), self.all_namespaces()));
        }
        if self.has("watch") {
            out.extend(self.watches(&scope_params));
        }
        for sub in &self.resource.subresources {
            out.extend(self.subresource(sub, &item_path, &item_params));
        }
        out
    }

    fn op(&self, method: &'static str, verb: &str, rest: &str, description: String) -> Op {
        Op {
            method,
            description,
            id: format!("{verb}{}{rest}", self.prefix),
            action: None,
            gvk: self.gvk(),
            params: Vec::new(),
            body: None,
            responses: Value::Null,
        }
    }

    fn write_params(&self) -> Vec<Value> {
        vec![params::dry_run(), params::field_manager(false), params::field_validation()]
    }

    fn patch_params(&self) -> Vec<Value> {
        vec![params::dry_run(), params::field_manager(true), params::field_validation(), params::force()]
    }

    fn body(schema: &Value) -> Value {
        json!({"content": content(schema, &["*/*"]), "required": true})
    }

    fn patch_body(&self) -> Value {
        let media = if self.api.strategic_merge_patch { PATCH_MEDIA } else { CUSTOM_PATCH_MEDIA };
        json!({"content": content(&schema_ref(PATCH), media), "required": true})
    }

    fn delete_body() -> Value {
        json!({"content": content(&schema_ref(DELETE_OPTIONS), &["*/*"])})
    }

    fn collection(&self, mut path_params: Vec<Value>) -> PathItem {
        let (kind, scope) = (self.kind(), self.scope());
        let mut ops = Vec::new();
        if self.has("deletecollection") {
            let mut op = self.op(
                "delete",
                "delete",
                &format!("Collection{scope}{kind}"),
                format!("delete collection of {kind}"),
            );
            op.action = Some("deletecollection");
            op.params = params::delete_collection();
            op.body = Some(Self::delete_body());
            op.responses = responses(&[("200", "OK")], &schema_ref(STATUS), MEDIA);
            ops.push(op);
        }
        if self.has("list") {
            let mut op = self.op(
                "get",
                "list",
                &format!("{scope}{kind}"),
                format!("list or watch objects of kind {kind}"),
            );
            op.action = Some("list");
            op.params = params::list();
            op.responses = responses(&[("200", "OK")], &self.list(), LIST_MEDIA);
            ops.push(op);
        }
        if self.has("create") {
            let mut op = self.op("post", "create", &format!("{scope}{kind}"), format!("create a {kind}"));
            op.action = Some("post");
            op.params = self.write_params();
            op.body = Some(Self::body(&self.object()));
            op.responses =
                responses(&[("200", "OK"), ("201", "Created"), ("202", "Accepted")], &self.object(), MEDIA);
            ops.push(op);
        }
        path_params.push(params::pretty());
        PathItem { ops, params: path_params }
    }

    fn item(&self, mut path_params: Vec<Value>) -> PathItem {
        let (kind, scope) = (self.kind(), self.scope());
        let rest = format!("{scope}{kind}");
        let mut ops = Vec::new();
        if self.has("delete") {
            let mut op = self.op("delete", "delete", &rest, format!("delete a {kind}"));
            op.action = Some("delete");
            op.params = params::delete();
            op.body = Some(Self::delete_body());
            op.responses = responses(&[("200", "OK"), ("202", "Accepted")], &schema_ref(STATUS), MEDIA);
            ops.push(op);
        }
        if self.has("get") {
            let mut op = self.op("get", "read", &rest, format!("read the specified {kind}"));
            op.action = Some("get");
            op.responses = responses(&[("200", "OK")], &self.object(), MEDIA);
            ops.push(op);
        }
        if self.has("patch") {
            let mut op = self.op("patch", "patch", &rest, format!("partially update the specified {kind}"));
            op.action = Some("patch");
            op.params = self.patch_params();
            op.body = Some(self.patch_body());
            op.responses = responses(&[("200", "OK"), ("201", "Created")], &self.object(), MEDIA);
            ops.push(op);
        }
        if self.has("update") {
            let mut op = self.op("put", "replace", &rest, format!("replace the specified {kind}"));
            op.action = Some("put");
            op.params = self.write_params();
            op.body = Some(Self::body(&self.object()));
            op.responses = responses(&[("200", "OK"), ("201", "Created")], &self.object(), MEDIA);
            ops.push(op);
        }
        path_params.push(params::pretty());
        PathItem { ops, params: path_params }
    }

    fn all_namespaces(&self) -> PathItem {
        let kind = self.kind();
        let mut op = self.op(
            "get",
            "list",
            &format!("{kind}ForAllNamespaces"),
            format!("list or watch objects of kind {kind}"),
        );
        op.action = Some("list");
        op.responses = responses(&[("200", "OK")], &self.list(), LIST_MEDIA);
        let mut path_params = params::list();
        path_params.push(params::pretty());
        path_params.sort_by_key(param_order);
        PathItem { ops: vec![op], params: path_params }
    }

    fn watches(&self, scope_params: &[Value]) -> Vec<(String, PathItem)> {
        let (kind, scope) = (self.kind(), self.scope());
        let (collection, _) = self.base(true);
        let event = schema_ref(WATCH_EVENT);
        let watch_item =
            |rest: String, description: String, action: &'static str, mut path_params: Vec<Value>| {
                let mut op = self.op("get", "watch", &rest, description);
                op.action = Some(action);
                op.responses = responses(&[("200", "OK")], &event, LIST_MEDIA);
                path_params.extend(params::list());
                path_params.push(params::pretty());
                path_params.sort_by_key(param_order);
                PathItem { ops: vec![op], params: path_params }
            };
        let list_description = format!(
            "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
        );
        let item_description = format!(
            "watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation \
             instead, filtered to a single item with the 'fieldSelector' parameter."
        );
        let mut item_params = vec![params::name(kind)];
        item_params.extend(scope_params.iter().cloned());
        let mut out = vec![
            (
                collection.clone(),
                watch_item(
                    format!("{scope}{kind}List"),
                    list_description.clone(),
                    "watchlist",
                    scope_params.to_vec(),
                ),
            ),
            (
                format!("{collection}/{{name}}"),
                watch_item(format!("{scope}{kind}"), item_description, "watch", item_params),
            ),
        ];
        if self.resource.namespaced {
            out.push((
                format!("{}/watch/{}", self.root, self.resource.plural),
                watch_item(format!("{kind}ListForAllNamespaces"), list_description, "watchlist", Vec::new()),
            ));
        }
        out
    }

    fn subresource(
        &self,
        sub: &Subresource,
        item_path: &str,
        item_params: &[Value],
    ) -> Vec<(String, PathItem)> {
        let (kind, scope) = (self.kind(), self.scope());
        let path = format!("{item_path}/{}", sub.name);
        let rest = format!("{scope}{kind}{}", title(&sub.name));
        let has = |verb: &str| sub.verbs.iter().any(|v| v == verb);
        let gvk = if sub.kind.is_empty() {
            self.gvk()
        } else {
            Some((sub.group.clone(), sub.version.clone(), sub.kind.clone()))
        };
        let object = if sub.kind.is_empty() {
            self.object()
        } else {
            self.schema_of(&sub.group, &sub.version, &sub.kind)
        };
        let mut path_params = item_params.to_vec();
        let mut ops = Vec::new();
        if CONNECT.contains(&sub.name.as_str()) {
            for (verb, method, http) in [("get", "get", "GET"), ("create", "post", "POST")] {
                if has(verb) {
                    let mut op = self.op(
                        method,
                        "connect",
                        &format!("{}{rest}", title(method)),
                        format!("connect {http} requests to {} of {kind}", sub.name),
                    );
                    op.action = Some("connect");
                    op.responses = responses(&[("200", "OK")], &json!({"type": "string"}), &["*/*"]);
                    ops.push(op);
                }
            }
            return vec![(path, PathItem { ops, params: path_params })];
        }
        if sub.name == "log" {
            if has("get") {
                let mut op = self.op("get", "read", &rest, format!("read log of the specified {kind}"));
                op.action = Some("get");
                op.params = params::log();
                op.responses = responses(&[("200", "OK")], &json!({"type": "string"}), &["text/plain"]);
                ops.push(op);
            }
            path_params.push(params::pretty());
            return vec![(path, PathItem { ops, params: path_params })];
        }
        let name = &sub.name;
        if has("get") {
            let mut op = self.op("get", "read", &rest, format!("read {name} of the specified {kind}"));
            op.action = Some("get");
            op.gvk = gvk.clone();
            op.responses = responses(&[("200", "OK")], &object, MEDIA);
            ops.push(op);
        }
        if has("patch") {
            let mut op =
                self.op("patch", "patch", &rest, format!("partially update {name} of the specified {kind}"));
            op.action = Some("patch");
            op.gvk = gvk.clone();
            op.params = self.patch_params();
            op.body = Some(self.patch_body());
            op.responses = responses(&[("200", "OK"), ("201", "Created")], &object, MEDIA);
            ops.push(op);
        }
        if has("create") {
            let mut op = self.op("post", "create", &rest, format!("create {name} of a {kind}"));
            op.action = Some("post");
            op.gvk = gvk.clone();
            op.params = self.write_params();
            op.body = Some(Self::body(&object));
            op.responses =
                responses(&[("200", "OK"), ("201", "Created"), ("202", "Accepted")], &object, MEDIA);
            ops.push(op);
        }
        if has("update") {
            let mut op = self.op("put", "replace", &rest, format!("replace {name} of the specified {kind}"));
            op.action = Some("put");
            op.gvk = gvk;
            op.params = self.write_params();
            op.body = Some(Self::body(&object));
            op.responses = responses(&[("200", "OK"), ("201", "Created")], &object, MEDIA);
            ops.push(op);
        }
        path_params.push(params::pretty());
        vec![(path, PathItem { ops, params: path_params })]
    }
}

/// Path parameters first (as upstream lists them), then query parameters
/// by name.
fn param_order(p: &Value) -> (bool, String) {
    let location = p["in"].as_str().unwrap_or_default();
    let name = p["name"].as_str().unwrap_or_default();
    (location != "path", name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_follow_upstream() {
        assert_eq!(operation_prefix("", "v1"), "CoreV1");
        assert_eq!(operation_prefix("apps", "v1"), "AppsV1");
        assert_eq!(operation_prefix("rbac.authorization.k8s.io", "v1"), "RbacAuthorizationV1");
        assert_eq!(operation_prefix("stable.example.com", "v1beta1"), "StableExampleComV1beta1");
        assert_eq!(tag("", "v1"), "core_v1");
        assert_eq!(tag("rbac.authorization.k8s.io", "v1"), "rbacAuthorization_v1");
        assert_eq!(root("", "v1"), "/api/v1");
        assert_eq!(root("apps", "v1"), "/apis/apps/v1");
    }
}
