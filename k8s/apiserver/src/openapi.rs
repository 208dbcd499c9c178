//! `/openapi/v3`: the index and one document per group-version, built from
//! the resource table once and cached until the table changes (CRDs), with
//! upstream's hash URLs, ETags, 304s and 301s for stale hashes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lichen_apimachinery::openapi::{self, SerializedDocument};
use lichen_apimachinery::resources::Resource;

use crate::api::{Api, Params};
use crate::status::ApiError;

/// Documents by `v3_path` (`api/v1`, `apis/apps/v1`).
pub type Documents = BTreeMap<String, Arc<SerializedDocument>>;

/// Builds every group-version's document: built-in ones from the embedded
/// schemas, custom ones from their CRDs.
pub fn build(resources: &[Resource], custom: &crate::crds::Custom) -> Documents {
    let mut gvs: BTreeMap<(String, String), Vec<Resource>> = BTreeMap::new();
    for r in resources {
        gvs.entry((r.group.clone(), r.version.clone())).or_default().push(r.clone());
    }
    gvs.into_iter()
        .map(|((g, v), rs)| {
            let is_custom = rs.iter().any(|r| custom.contains_key(&(r.group.clone(), r.plural.clone())));
            let doc = if is_custom {
                let schemas: Vec<Option<serde_json::Value>> = rs
                    .iter()
                    .map(|r| {
                        custom
                            .get(&(r.group.clone(), r.plural.clone()))
                            .and_then(|i| i.version(&r.version))
                            .and_then(|ver| ver.schema.clone())
                    })
                    .collect();
                let crs: Vec<openapi::CustomResourceSchema> = rs
                    .iter()
                    .zip(&schemas)
                    .map(|(resource, schema)| openapi::CustomResourceSchema {
                        resource,
                        schema: schema.as_ref(),
                    })
                    .collect();
                openapi::crd_v3_document(&g, &v, &crs)
            } else {
                openapi::v3_document(&g, &v, &rs)
            };
            (openapi::v3_path(&g, &v), Arc::new(openapi::serialize_v3(&doc)))
        })
        .collect()
}

fn with_etag(mut r: Response, hash: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&openapi::etag(hash)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

fn not_modified(headers: &HeaderMap, hash: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == openapi::etag(hash)))
}

fn json_bytes(bytes: Vec<u8>) -> Response {
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub fn serve(api: &Api, path: &str, params: &Params, headers: &HeaderMap) -> Result<Response, ApiError> {
    let docs = api.openapi_documents();
    let rest = path.trim_start_matches("/openapi/v3").trim_start_matches('/');
    if rest.is_empty() {
        let index = openapi::v3_index(docs.iter().map(|(p, d)| {
            let (g, v) = split(p);
            openapi::v3_index_entry(g, v, &d.hash)
        }));
        let bytes = index.to_string().into_bytes();
        let hash = openapi::v3_hash(&bytes);
        if not_modified(headers, &hash) {
            return Ok(with_etag(StatusCode::NOT_MODIFIED.into_response(), &hash));
        }
        return Ok(with_etag(json_bytes(bytes), &hash));
    }
    let doc = docs.get(rest).ok_or(ApiError::NoRoute)?;
    if let Some(h) = params.get("hash")
        && h != doc.hash
    {
        let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
        let (g, v) = split(rest);
        if let Ok(loc) = HeaderValue::from_str(&openapi::v3_url(g, v, &doc.hash)) {
            r.headers_mut().insert(header::LOCATION, loc);
        }
        return Ok(r);
    }
    if not_modified(headers, &doc.hash) {
        return Ok(with_etag(StatusCode::NOT_MODIFIED.into_response(), &doc.hash));
    }
    let mut r = with_etag(json_bytes(doc.bytes.clone()), &doc.hash);
    if params.get("hash").is_some() {
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, immutable"));
    }
    Ok(r)
}

/// `/openapi/v2`: an empty Swagger 2.0 document (no paths, no
/// definitions). kubectl asks for it, as gnostic protobuf, only when a
/// group-version is missing from the v3 index; with a document to read it
/// goes on to say "no matches for kind" as against upstream, where a 404
/// would make it fail validation instead. Schemas are served by v3 only.
pub fn serve_v2(headers: &HeaderMap) -> Response {
    const TITLE: &str = "Kubernetes";
    const VERSION: &str = "v1.37.0";
    let protobuf = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/com.github.proto-openapi.spec.v2"));
    if !protobuf {
        let doc = serde_json::json!({"swagger": "2.0", "info": {"title": TITLE, "version": VERSION},
                                     "paths": {}, "definitions": {}});
        return json_bytes(doc.to_string().into_bytes());
    }
    // openapi_v2.Document { swagger = 1; info = 2 (Info { title = 1; version = 2 }) }.
    let field = |num: u8, bytes: &[u8]| -> Vec<u8> {
        let mut out = vec![(num << 3) | 2, u8::try_from(bytes.len()).unwrap_or(0)];
        out.extend_from_slice(bytes);
        out
    };
    let info = [field(1, TITLE.as_bytes()), field(2, VERSION.as_bytes())].concat();
    let doc = [field(1, b"2.0"), field(2, &info)].concat();
    let mut r = (StatusCode::OK, doc).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
    );
    r
}

/// `api/v1` → ("", "v1"); `apis/apps/v1` → ("apps", "v1").
fn split(path: &str) -> (&str, &str) {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["api", v] => ("", v),
        ["apis", g, v] => (g, v),
        _ => ("", ""),
    }
}
