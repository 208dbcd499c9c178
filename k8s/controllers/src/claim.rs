//! Adoption and release of dependents, as upstream's `ClaimObject`: a
//! controller keeps the objects it controls that still match it, releases
//! those that stopped matching, and adopts matching orphans — neither
//! while it (or, for adoption, the orphan) is being deleted. Each change is
//! a merge patch of `ownerReferences` with the dependent's uid as a
//! precondition, put straight into the cache.

use std::sync::Arc;

use lichen_client::{Client, PatchType};
use serde_json::{Value, json};

use crate::informer::Informer;
use crate::{Error, meta};

/// The owner side of a claim.
pub struct Owner<'a> {
    pub obj: &'a Value,
    pub api_version: &'a str,
    pub kind: &'a str,
}

/// The dependents of `owner` in `cache` (of `dependent_api`/`plural`)
/// after claiming: those it controls that `matches` accepts.
pub async fn claim(
    client: &Client,
    cache: &Informer,
    owner: Owner<'_>,
    (dependent_api, plural): (&str, &str),
    matches: impl Fn(&Value) -> bool,
) -> Result<Vec<Arc<Value>>, Error> {
    let uid = meta::uid(owner.obj);
    let owner_deleting = meta::is_terminating(owner.obj);
    let mut owned = Vec::new();
    for obj in cache.list_in(meta::namespace(owner.obj)) {
        let mine = meta::controller_uid(&obj) == uid;
        let fits = matches(&obj);
        if mine && fits {
            owned.push(obj);
            continue;
        }
        let adopt = !mine
            && fits
            && meta::controller_ref(&obj).is_none()
            && !meta::is_terminating(&obj)
            && !owner_deleting;
        let release = mine && !owner_deleting;
        if !adopt && !release {
            continue;
        }
        let mut refs: Vec<Value> = obj["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
        refs.retain(|r| r["controller"] != true);
        if adopt {
            refs.push(meta::owner_ref(owner.obj, owner.api_version, owner.kind));
        }
        let patch = json!({"metadata": {"ownerReferences": refs, "uid": meta::uid(&obj)}});
        let path = meta::path(dependent_api, plural, meta::namespace(&obj), meta::name(&obj));
        match client.patch(&path, PatchType::Merge, &patch).await {
            Ok(v) => {
                cache.assume(&v);
                if adopt {
                    owned.push(Arc::new(v));
                }
            }
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(owned)
}
