//! Watches: a chunked stream of `{"type":…,"object":…}` lines, from the
//! store's watch, with upstream's starting points, selectors (objects
//! entering or leaving the selection become ADDED or DELETED), bookmarks,
//! watch-list (`sendInitialEvents`) and 410 once history is compacted.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use lichen_store::{EventKind, Revision, WatchMessage};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::Ctx;
use crate::selectors::Filter;
use crate::status::ApiError;
use crate::{body, objects, table};

struct Stream {
    ctx: Ctx,
    filter: Filter,
    table: bool,
    bookmarks: bool,
    headers_sent: bool,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Stream {
    fn object(&mut self, obj: &Value) -> Value {
        if !self.table {
            return obj.clone();
        }
        let rv = objects::meta_str(obj, "resourceVersion").map(String::from);
        let t = table::table_with(
            &self.ctx,
            std::slice::from_ref(obj),
            json!({"resourceVersion": rv}),
            !self.headers_sent,
        );
        self.headers_sent = true;
        t
    }

    async fn send(&mut self, kind: &str, obj: &Value) -> bool {
        let object = self.object(obj);
        self.send_raw(kind, object).await
    }

    async fn send_raw(&self, kind: &str, object: Value) -> bool {
        let mut line = json!({"type": kind, "object": object}).to_string().into_bytes();
        line.push(b'\n');
        self.tx.send(Ok(Bytes::from(line))).await.is_ok()
    }

    async fn bookmark(&self, rev: Revision, initial_end: bool) -> bool {
        let mut meta = json!({"resourceVersion": rev.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj =
            json!({"kind": self.ctx.res.kind, "apiVersion": self.ctx.res.api_version(), "metadata": meta});
        self.send_raw("BOOKMARK", obj).await
    }

    async fn error(&self, e: &ApiError) {
        let _ = self.send_raw("ERROR", e.status()).await;
    }
}

pub async fn watch(ctx: Ctx) -> Result<Response, ApiError> {
    let filter = Filter::from_request(&ctx)?;
    let p = &ctx.params;
    let bookmarks = p.flag("allowWatchBookmarks");
    let initial = p.get("sendInitialEvents").map(|_| p.flag("sendInitialEvents"));
    let rv = p.get("resourceVersion").filter(|v| !v.is_empty()).map(String::from);
    let rv_match = p.get("resourceVersionMatch").filter(|v| !v.is_empty());
    if initial.is_some() {
        if rv_match != Some("NotOlderThan") {
            return Err(ApiError::BadRequest(
                "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan".into(),
            ));
        }
        if initial == Some(true) && !bookmarks {
            return Err(ApiError::BadRequest(
                "allowWatchBookmarks: Required value: allowWatchBookmarks must be set to true when sendInitialEvents is set"
                    .into(),
            ));
        }
    } else if rv_match.is_some() {
        return Err(ApiError::BadRequest(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch".into(),
        ));
    }
    let after: Option<Revision> = match rv.as_deref() {
        None | Some("0") => None,
        Some(v) => {
            Some(v.parse().map_err(|_| ApiError::BadRequest(format!("invalid resource version: {v}")))?)
        }
    };
    // Initial ADDED events: always for "0"/unset RV, and for watch-list.
    let send_initial = initial.unwrap_or(after.is_none());
    let timeout = match p.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()) {
        Some(t) => Duration::from_secs(t),
        None => Duration::from_secs(1800 + u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * 7),
    };
    let table = body::wants_table(&ctx.headers);
    let (tx, rx) = mpsc::channel(64);
    let stream = Stream { ctx, filter, table, bookmarks, headers_sent: false, tx };
    tokio::spawn(async move {
        let _ = tokio::time::timeout(timeout, run(stream, after, send_initial, initial == Some(true))).await;
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    Ok(r)
}

async fn run(mut s: Stream, after: Option<Revision>, send_initial: bool, initial_end: bool) {
    let prefix = objects::prefix(&s.ctx.res, &s.ctx.req.namespace);
    let mut from = after.unwrap_or(0);
    if send_initial {
        let p = prefix.clone();
        let snapshot = match s.ctx.store("", move |st| st.list(&p, None, None, None)).await {
            Ok(l) => l,
            Err(e) => return s.error(&e).await,
        };
        for kv in &snapshot.items {
            let obj = match objects::decode_for(&s.ctx.res, kv) {
                Ok(o) => o,
                Err(e) => return s.error(&e).await,
            };
            if s.filter.matches(&obj) && !s.send("ADDED", &obj).await {
                return;
            }
        }
        from = snapshot.revision;
        if initial_end && !s.bookmark(from, true).await {
            return;
        }
    }
    let p = prefix.clone();
    let mut w = match s.ctx.store("", move |st| st.watch(&p, from)).await {
        Ok(w) => w,
        Err(e) => return s.error(&e).await,
    };
    while let Some(msg) = w.next().await {
        match msg {
            WatchMessage::Events(events) => {
                for ev in events {
                    let new = match objects::decode_for(&s.ctx.res, &ev.kv) {
                        Ok(o) => o,
                        Err(e) => return s.error(&e).await,
                    };
                    let old = ev.prev.as_ref().and_then(|kv| objects::decode_for(&s.ctx.res, kv).ok());
                    let old_match = old.as_ref().is_some_and(|o| s.filter.matches(o));
                    let new_match = s.filter.matches(&new);
                    let kind = match ev.kind {
                        EventKind::Delete if new_match => "DELETED",
                        EventKind::Delete => continue,
                        EventKind::Put => match (old_match, new_match) {
                            (false, true) => "ADDED",
                            (true, true) => "MODIFIED",
                            (true, false) => "DELETED",
                            (false, false) => continue,
                        },
                    };
                    if !s.send(kind, &new).await {
                        return;
                    }
                }
            }
            WatchMessage::Progress(rev) => {
                if s.bookmarks && !s.bookmark(rev, false).await {
                    return;
                }
            }
            WatchMessage::Closed(e) => {
                let e = s.ctx.store_error(e, "");
                return s.error(&e).await;
            }
        }
    }
}
