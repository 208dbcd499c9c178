//! Lists: resourceVersion semantics, limit/continue paging with upstream's
//! token format, selectors, Tables.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lichen_store::Revision;
use serde_json::{Value, json};

use crate::api::Ctx;
use crate::selectors::Filter;
use crate::status::ApiError;
use crate::{body, objects, table};

const EXPIRED_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// Where a list reads: at which revision, after which key.
struct Plan {
    at: Option<Revision>,
    start_after: Option<String>,
    limit: Option<usize>,
    from_continue: bool,
}

fn plan(ctx: &Ctx, prefix: &str) -> Result<Plan, ApiError> {
    let p = &ctx.params;
    let limit = match p.get("limit") {
        None | Some("") => None,
        Some(l) => {
            let n: i64 = l.parse().map_err(|_| ApiError::BadRequest(format!("invalid limit {l:?}")))?;
            usize::try_from(n).ok().filter(|n| *n > 0)
        }
    };
    let rv = p.get("resourceVersion").filter(|v| !v.is_empty());
    let rv_match = p.get("resourceVersionMatch").filter(|v| !v.is_empty());
    if let Some(token) = p.get("continue").filter(|v| !v.is_empty()) {
        if rv.is_some_and(|v| v != "0") {
            return Err(ApiError::BadRequest(
                "specifying resource version is not allowed when using continue".into(),
            ));
        }
        let (rev, start) = decode_continue(token)?;
        return Ok(Plan {
            at: (rev > 0).then_some(rev),
            start_after: Some(format!("{prefix}{start}")),
            limit,
            from_continue: true,
        });
    }
    if rv.is_none() && rv_match.is_some() {
        return Err(ApiError::BadRequest(
            "resourceVersionMatch is forbidden unless resourceVersion is provided".into(),
        ));
    }
    let at = match (rv, rv_match) {
        (None | Some("0"), _) => None,
        (Some(v), m) => {
            let n: Revision =
                v.parse().map_err(|_| ApiError::BadRequest(format!("invalid resource version: {v}")))?;
            match m {
                Some("Exact") => Some(n),
                Some("NotOlderThan") => None,
                None if limit.is_some() => Some(n),
                None => None,
                Some(other) => {
                    return Err(ApiError::BadRequest(format!(
                        "resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""
                    )));
                }
            }
        }
    };
    Ok(Plan { at, start_after: None, limit, from_continue: false })
}

/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>\u0000"}`, base64url.
fn encode_continue(rev: Revision, key_suffix: &str) -> String {
    let t = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": format!("{key_suffix}\u{0}")});
    URL_SAFE_NO_PAD.encode(t.to_string())
}

fn decode_continue(token: &str) -> Result<(Revision, String), ApiError> {
    let bad = |why: &str| ApiError::BadRequest(format!("continue key is not valid: {why}"));
    let raw = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad("invalid JSON"))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad("server does not recognize this encoded key"));
    }
    let rev = v["rv"].as_i64().ok_or_else(|| bad("missing resource version"))?;
    let start = v["start"].as_str().ok_or_else(|| bad("missing start key"))?;
    let start = start.strip_suffix('\u{0}').unwrap_or(start);
    if start.is_empty() || start.starts_with('/') || start.split('/').any(|s| s == ".." || s == ".") {
        return Err(bad("key must not be empty or contain path traversal"));
    }
    Ok((rev, start.to_string()))
}

/// One page of a list.
pub struct Page {
    pub items: Vec<Value>,
    /// The revision every page of this list is read at.
    pub revision: Revision,
    /// The token for the next page, if there is one.
    pub token: Option<String>,
    /// Items after this page (only without selectors, as upstream).
    pub remaining: Option<i64>,
}

/// One page: the matching objects, the revision read at, and where to go on.
pub async fn page(ctx: &Ctx, filter: &Filter) -> Result<Page, ApiError> {
    let prefix = objects::prefix(&ctx.res, &ctx.req.namespace);
    let plan = plan(ctx, &prefix)?;
    let mut at = plan.at;
    let mut start_after = plan.start_after;
    let mut items = Vec::new();
    let chunk = plan.limit.map(|l| l.max(if filter.is_empty() { 1 } else { 100 }));
    loop {
        let (p, s) = (prefix.clone(), start_after.clone());
        let res = ctx.store("", move |st| st.list(&p, s.as_deref(), chunk, at)).await;
        let res = match res {
            Ok(r) => r,
            Err(ApiError::Expired(_)) if plan.from_continue => {
                return Err(ApiError::Expired(EXPIRED_CONTINUE.into()));
            }
            Err(ApiError::Expired(_)) => {
                return Err(ApiError::Expired(
                    "The resourceVersion for the provided list is too old.".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        at = Some(res.revision);
        let n = res.items.len();
        for (i, kv) in res.items.into_iter().enumerate() {
            let obj = objects::decode_for(&ctx.res, &kv)?;
            if !filter.matches(&obj) {
                start_after = Some(kv.key);
                continue;
            }
            items.push(obj);
            start_after = Some(kv.key);
            if plan.limit.is_some_and(|l| items.len() >= l) {
                let more = i + 1 < n || res.more;
                let token = more.then(|| {
                    let suffix = start_after.as_deref().and_then(|k| k.strip_prefix(&prefix)).unwrap_or("");
                    encode_continue(res.revision, suffix)
                });
                let remaining = match (&token, filter.is_empty()) {
                    (Some(_), true) => {
                        let (p, s, rev) = (prefix.clone(), start_after.clone(), res.revision);
                        Some(ctx.store("", move |st| st.count_after(&p, s.as_deref(), rev)).await?)
                    }
                    _ => None,
                };
                return Ok(Page { items, revision: res.revision, token, remaining });
            }
        }
        if !res.more {
            return Ok(Page { items, revision: res.revision, token: None, remaining: None });
        }
    }
}

/// Every object the request's selectors match, at one revision.
pub async fn matching(ctx: &Ctx) -> Result<(Vec<Value>, Revision), ApiError> {
    let filter = Filter::from_request(ctx)?;
    let prefix = objects::prefix(&ctx.res, &ctx.req.namespace);
    let res = ctx.store("", move |st| st.list(&prefix, None, None, None)).await?;
    let mut items = Vec::new();
    for kv in &res.items {
        let obj = objects::decode_for(&ctx.res, kv)?;
        if filter.matches(&obj) {
            items.push(obj);
        }
    }
    Ok((items, res.revision))
}

pub async fn list(ctx: &Ctx) -> Result<Response, ApiError> {
    let filter = Filter::from_request(ctx)?;
    let Page { items, revision, token, remaining } = page(ctx, &filter).await?;
    let mut meta = json!({"resourceVersion": revision.to_string()});
    if let Some(t) = token {
        meta["continue"] = json!(t);
    }
    if let Some(n) = remaining {
        meta["remainingItemCount"] = json!(n);
    }
    if body::wants_table(&ctx.headers) {
        return Ok(body::json(StatusCode::OK, &table::table(ctx, &items, meta), &ctx.headers));
    }
    let list = json!({
        "kind": ctx.res.list_kind,
        "apiVersion": ctx.res.api_version(),
        "metadata": meta,
        "items": items,
    });
    Ok(body::json(StatusCode::OK, &list, &ctx.headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_refuse_traversal() {
        let t = encode_continue(42, "default/c1");
        assert_eq!(decode_continue(&t).ok(), Some((42, "default/c1".to_string())));
        let evil = URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"../x\u0000"}"#);
        assert!(decode_continue(&evil).is_err());
        assert!(decode_continue("!!!").is_err());
    }
}
