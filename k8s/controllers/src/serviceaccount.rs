//! Per-namespace defaults, as upstream's ServiceAccount and root-CA
//! publisher controllers: every active namespace has the `default`
//! ServiceAccount and the `kube-root-ca.crt` ConfigMap with the cluster CA
//! (which service-account token volumes mount). Both come back when
//! deleted; a changed CA is rewritten.

use std::time::Duration;

use lichen_client::Client;
use serde_json::json;
use tokio::task::JoinSet;

use crate::informer::{Change, Informer};
use crate::queue::Queue;
use crate::{Error, Informers, meta};

pub const ROOT_CA: &str = "kube-root-ca.crt";

#[derive(Clone)]
struct Controller {
    client: Client,
    namespaces: Informer,
    accounts: Informer,
    configmaps: Informer,
    ca_pem: String,
}

pub fn start(tasks: &mut JoinSet<()>, client: &Client, informers: &Informers, ca_pem: &str) {
    let queue = Queue::new();
    let c = Controller {
        client: client.clone(),
        namespaces: informers.namespaces.clone(),
        accounts: informers.serviceaccounts.clone(),
        configmaps: informers.configmaps.clone(),
        ca_pem: ca_pem.to_owned(),
    };
    let q = queue.clone();
    informers.namespaces.on_change(move |ch| q.add(meta::name(ch.object())));
    let q = queue.clone();
    informers.serviceaccounts.on_change(move |ch| {
        if matches!(ch, Change::Deleted(_)) && meta::name(ch.object()) == "default" {
            q.add(meta::namespace(ch.object()));
        }
    });
    let q = queue.clone();
    informers.configmaps.on_change(move |ch| {
        if meta::name(ch.object()) == ROOT_CA {
            q.add(meta::namespace(ch.object()));
        }
    });
    let synced =
        vec![informers.namespaces.clone(), informers.serviceaccounts.clone(), informers.configmaps.clone()];
    crate::spawn_workers(tasks, "serviceaccount", &queue, synced, 2, move |ns| {
        let c = c.clone();
        async move { c.sync(&ns).await }
    });
}

impl Controller {
    async fn sync(&self, ns: &str) -> Result<Option<Duration>, Error> {
        let Some(namespace) = self.namespaces.get(ns) else { return Ok(None) };
        if meta::is_terminating(&namespace) || namespace["status"]["phase"] == "Terminating" {
            return Ok(None);
        }
        if self.accounts.get_in(ns, "default").is_none() {
            let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": ns}});
            match self.client.create(&meta::path("v1", "serviceaccounts", ns, ""), &sa).await {
                Ok(v) => self.accounts.assume(&v),
                Err(e) if e.is_conflict() => {}
                // The namespace is going away: nothing to do.
                Err(e) if e.code().is_some_and(|c| c.as_u16() == 403) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        let data = json!({"ca.crt": self.ca_pem});
        match self.configmaps.get_in(ns, ROOT_CA) {
            Some(cm) if cm["data"] == data => {}
            Some(cm) => {
                let mut v = (*cm).clone();
                v["data"] = data;
                let v = self.client.replace(&meta::path("v1", "configmaps", ns, ROOT_CA), &v).await?;
                self.configmaps.assume(&v);
            }
            None => {
                let cm = json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA, "namespace": ns,
                                 "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                    "data": data,
                });
                match self.client.create(&meta::path("v1", "configmaps", ns, ""), &cm).await {
                    Ok(v) => self.configmaps.assume(&v),
                    Err(e) if e.is_conflict() => {}
                    Err(e) if e.code().is_some_and(|c| c.as_u16() == 403) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(None)
    }
}
