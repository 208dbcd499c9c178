//! `meta.k8s.io/v1 Table` answers for kubectl get: the printers' columns and
//! cells, with each row's object as `PartialObjectMetadata` (upstream's
//! default `includeObject=Metadata`).

use lichen_apimachinery::printers;
use serde_json::{Value, json};

use crate::api::Ctx;
use crate::objects;

pub fn table(ctx: &Ctx, objs: &[Value], list_meta: Value) -> Value {
    table_with(ctx, objs, list_meta, true)
}

/// `headers` false leaves out the column definitions (watch events after the
/// first, as upstream).
pub fn table_with(ctx: &Ctx, objs: &[Value], list_meta: Value, headers: bool) -> Value {
    let now = objects::now_unix();
    let include = ctx.params.get("includeObject").unwrap_or("Metadata");
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let object = match include {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": objects::meta(o),
                }),
            };
            let mut row = json!({"cells": row_cells(ctx, o, now), "object": object});
            if let Some(c) = printers::row_conditions(&ctx.res.group, &ctx.res.kind, o)
                && let Some(r) = row.as_object_mut()
            {
                r.insert("conditions".into(), json!(c));
            }
            row
        })
        .collect();
    let mut meta = list_meta;
    if let Some(m) = meta.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    let columns = if headers { json!(row_columns(ctx)) } else { json!([]) };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn row_columns(ctx: &Ctx) -> Vec<Value> {
    if let Some(apc) = crate::crds::printer_columns(ctx) {
        return printers::CustomColumns::lenient(&apc).columns().iter().map(|c| json!(c)).collect();
    }
    printers::columns(&ctx.res.group, &ctx.res.kind).iter().map(|c| json!(c)).collect()
}

fn row_cells(ctx: &Ctx, obj: &Value, now: i64) -> Vec<Value> {
    if let Some(apc) = crate::crds::printer_columns(ctx) {
        return printers::CustomColumns::lenient(&apc).cells(obj, now);
    }
    printers::cells(&ctx.res.group, &ctx.res.kind, obj, now)
}
