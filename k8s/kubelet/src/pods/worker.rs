//! One task per pod: make the runtime match the spec (sandbox, init
//! containers, sidecars, containers, restarts with back-off, probes),
//! report status, and on deletion stop everything within the grace period
//! and let the API server forget the pod.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::backoff::{Backoff, go_duration};
use super::config::{self, ContainerInput, Mounts};
use super::env::{self, Lookup};
use super::probes::{self, ProbeState};
use super::runtime::{self, Instance, PodRuntime};
use super::status::{self, ContainerView};
use super::volumes;
use crate::Agent;
use crate::client::PatchType;
use crate::cri::{api, describe};
use crate::events::{self, Involved};
use crate::spec::{Container, Handler, Pod};

/// How often a pod is looked at when nothing else wakes its worker (the
/// relist period of upstream's generic PLEG).
const RESYNC: Duration = Duration::from_secs(1);
/// How often API-backed volumes (configMap, secret, projected) are
/// rewritten from the API server while the pod itself does not change.
const VOLUME_REFRESH: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

pub struct Worker {
    agent: Agent,
    uid: String,
    start_time: String,
    views: HashMap<String, ContainerView>,
    crash_backoff: Backoff,
    pull_backoff: Backoff,
    pull_errors: HashMap<String, String>,
    probes: HashMap<(String, ProbeKind), ProbeState>,
    torn_down: bool,
    last_status: Value,
    /// The volume error last reported (one FailedMount event per change).
    mount_error: Option<String>,
    /// The pod's volumes as last written: host paths, when, at which
    /// resourceVersion of the pod.
    volumes: Option<(HashMap<String, PathBuf>, Instant, String)>,
}

impl Worker {
    pub fn new(agent: Agent, uid: String) -> Worker {
        Worker {
            agent,
            uid,
            start_time: crate::now_rfc3339(),
            views: HashMap::new(),
            crash_backoff: Backoff::default(),
            pull_backoff: Backoff::default(),
            pull_errors: HashMap::new(),
            probes: HashMap::new(),
            torn_down: false,
            last_status: Value::Null,
            mount_error: None,
            volumes: None,
        }
    }

    /// Runs until the pod is gone from the API and from the runtime.
    pub async fn run(mut self, mut rx: watch::Receiver<Option<Pod>>) {
        let mut last: Option<Pod> = None;
        loop {
            let current = rx.borrow_and_update().clone();
            let wait = match current {
                Some(pod) => {
                    if let Some(s) = pod.status["startTime"].as_str() {
                        self.start_time = s.to_owned();
                    }
                    let wait = if pod.metadata.deletion_timestamp.is_some() {
                        if self.terminate(&pod).await {
                            return;
                        }
                        Duration::from_secs(2)
                    } else {
                        self.sync(&pod).await
                    };
                    last = Some(pod);
                    wait
                }
                None => {
                    // Gone from the API without our final delete (force
                    // deletion, or deleted while we were away).
                    if let Some(pod) = &last {
                        self.kill(pod, 2).await;
                    }
                    self.remove_everything(last.as_ref()).await;
                    return;
                }
            };
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn involved<'a>(&'a self, pod: &'a Pod, container: Option<&str>) -> Involved<'a> {
        Involved {
            kind: "Pod",
            namespace: &pod.metadata.namespace,
            name: &pod.metadata.name,
            uid: &pod.metadata.uid,
            field_path: container.map(|c| {
                let init = pod.spec.init_containers.iter().any(|x| x.name == c);
                if init { format!("spec.initContainers{{{c}}}") } else { format!("spec.containers{{{c}}}") }
            }),
        }
    }

    fn event(&self, pod: &Pod, container: Option<&str>, warning: bool, reason: &str, message: String) {
        events::record(&self.agent, self.involved(pod, container), warning, reason, message);
    }

    fn pod_ref(pod: &Pod) -> String {
        format!("{}_{}({})", pod.metadata.name, pod.metadata.namespace, pod.metadata.uid)
    }

    /// One pass over a live pod; returns when to look again.
    async fn sync(&mut self, pod: &Pod) -> Duration {
        let is_terminal = |st: &Value| matches!(st["phase"].as_str(), Some("Succeeded" | "Failed"));
        // Our own last verdict counts too: a static pod has no API status,
        // and a status write may have failed.
        let terminal = is_terminal(&pod.status) || is_terminal(&self.last_status) || self.torn_down;
        if terminal {
            if !self.torn_down {
                self.kill(pod, pod.spec.grace_period()).await;
                self.torn_down = true;
            }
            return Duration::from_secs(30);
        }
        let rt = match runtime::inspect(&self.agent.cri, &self.uid).await {
            Ok(rt) => rt,
            Err(e) => {
                tracing::debug!(pod = %pod.metadata.name, error = %describe(&e), "runtime unavailable");
                return Duration::from_secs(2);
            }
        };
        if let Some(deadline) = pod.spec.active_deadline_seconds
            && let Some(start) = lichen_apimachinery::timestamp::parse_rfc3339(&self.start_time)
            && crate::unix_now() - start >= deadline
        {
            self.kill(pod, pod.spec.grace_period()).await;
            let rt = runtime::inspect(&self.agent.cri, &self.uid).await.unwrap_or_default();
            let forced = (
                "Failed",
                "DeadlineExceeded".to_owned(),
                "Pod was active on the node longer than the specified deadline".to_owned(),
            );
            self.event(pod, None, true, "DeadlineExceeded", forced.2.clone());
            self.report(pod, &rt, true, false, Some(forced)).await;
            return Duration::from_secs(5);
        }
        let rt = match self.ensure_sandbox(pod, rt).await {
            Some(rt) => rt,
            None => {
                self.report(pod, &PodRuntime::default(), false, false, None).await;
                return Duration::from_secs(5);
            }
        };
        let Some(sandbox) = rt.sandbox.clone() else { return RESYNC };
        let host_ip = self.agent.cfg.node_ip.to_string();
        let pod_ips = if pod.spec.host_network { vec![host_ip.clone()] } else { sandbox.ips.clone() };
        // hostNetwork sandboxes have no IP of their own: probes go to the node's.
        let probe_ip = pod_ips.first().cloned().unwrap_or_default();
        let mut lookup = Lookup::new(&self.agent, &pod.metadata.namespace);
        // Volumes are written when the pod changes and every VOLUME_REFRESH
        // (configMap and secret updates), not on every one-second sync.
        let fresh = self
            .volumes
            .as_ref()
            .filter(|(_, at, rv)| at.elapsed() < VOLUME_REFRESH && *rv == pod.metadata.resource_version);
        let prepared = match fresh {
            Some((v, _, _)) => Ok(v.clone()),
            None => volumes::prepare(&self.agent.cfg.root_dir, pod, &mut lookup, &pod_ips).await,
        };
        let volumes = match prepared {
            Ok(v) => {
                if fresh.is_none() {
                    self.volumes = Some((v.clone(), Instant::now(), pod.metadata.resource_version.clone()));
                }
                v
            }
            Err(message) => {
                for c in pod.spec.init_containers.iter().chain(&pod.spec.containers) {
                    if rt.latest(&c.name).is_none() {
                        self.views.entry(c.name.clone()).or_default().waiting =
                            Some(("ContainerCreating".into(), message.clone()));
                    }
                }
                if self.mount_error.as_ref() != Some(&message) {
                    self.event(pod, None, true, "FailedMount", message.clone());
                    self.mount_error = Some(message);
                }
                self.report(pod, &rt, false, false, None).await;
                return Duration::from_secs(2);
            }
        };
        let etc_hosts = self.write_etc_hosts(pod, &pod_ips);
        let mut ctx = StartCtx {
            pod,
            volumes: &volumes,
            etc_hosts,
            pod_ips: &pod_ips,
            host_ip: &host_ip,
            sandbox_id: &sandbox.id,
            lookup,
        };

        // Init containers, in order; sidecars keep running. Once a regular
        // container has started, the pod is initialized for good: a sidecar
        // that stops is restarted without holding the others back.
        let started_before = pod.spec.containers.iter().any(|c| rt.latest(&c.name).is_some());
        let mut init_done = true;
        let mut init_failed = false;
        for c in &pod.spec.init_containers {
            let latest = rt.latest(&c.name);
            if c.is_sidecar() {
                match latest {
                    Some(i) if i.running() => {
                        self.probe(pod, c, i, &probe_ip).await;
                        if !started_before && !self.views.get(&c.name).is_some_and(|v| v.started) {
                            init_done = false;
                            break;
                        }
                        continue;
                    }
                    _ => {
                        let exited = latest.is_some_and(Instance::exited);
                        self.restart_or_start(&mut ctx, c, "sidecar", latest, exited).await;
                        if started_before {
                            continue;
                        }
                        init_done = false;
                        break;
                    }
                }
            }
            if started_before {
                continue;
            }
            match latest {
                Some(i) if i.exited() && i.exit_code == 0 => continue,
                Some(i) if i.created() => {
                    // Created but never started (the agent restarted in between).
                    self.start_leftover(c, i).await;
                    init_done = false;
                    break;
                }
                Some(i) if i.running() => {
                    init_done = false;
                    break;
                }
                Some(i) if i.exited() => {
                    if pod.spec.restart_policy() == "Never" {
                        init_failed = true;
                    } else {
                        self.restart_or_start(&mut ctx, c, "init", Some(i), true).await;
                    }
                    init_done = false;
                    break;
                }
                _ => {
                    self.restart_or_start(&mut ctx, c, "init", latest, false).await;
                    init_done = false;
                    break;
                }
            }
        }

        if init_done && !init_failed {
            for c in &pod.spec.containers {
                let latest = rt.latest(&c.name);
                match latest {
                    Some(i) if i.running() => {
                        if i.hash != config::spec_hash(c) && !i.hash.is_empty() {
                            self.event(
                                pod,
                                Some(&c.name),
                                false,
                                "Killing",
                                format!("Container {} definition changed, will be restarted", c.name),
                            );
                            self.stop_container(pod, c, i, pod.spec.grace_period()).await;
                            continue;
                        }
                        self.probe(pod, c, i, &probe_ip).await;
                    }
                    Some(i) if i.exited() => {
                        let restart = match pod.spec.restart_policy() {
                            "Always" => true,
                            "OnFailure" => i.exit_code != 0,
                            _ => false,
                        };
                        if restart {
                            self.restart_or_start(&mut ctx, c, "regular", Some(i), true).await;
                        } else {
                            self.views.entry(c.name.clone()).or_default().waiting = None;
                        }
                    }
                    Some(i) if i.created() => self.start_leftover(c, i).await,
                    _ => {
                        self.restart_or_start(&mut ctx, c, "regular", latest, false).await;
                    }
                }
            }
        }
        // Read back what we did, report, tidy.
        let rt = runtime::inspect(&self.agent.cri, &self.uid).await.unwrap_or(rt);
        self.collect_termination_messages(&rt);
        self.update_views(pod, &rt);
        let st = self.report(pod, &rt, init_done, init_failed, None).await;
        if matches!(st["phase"].as_str(), Some("Succeeded" | "Failed")) {
            self.kill(pod, pod.spec.grace_period()).await;
            self.torn_down = true;
        }
        self.prune(&rt).await;
        RESYNC
    }

    /// Starts a container that was created but never started (the agent
    /// stopped in between); one that will not start is removed and made anew.
    async fn start_leftover(&self, c: &Container, i: &Instance) {
        let mut rtc = self.agent.cri.runtime.clone();
        if let Err(e) = rtc.start_container(api::StartContainerRequest { container_id: i.id.clone() }).await {
            let _ = rtc.remove_container(api::RemoveContainerRequest { container_id: i.id.clone() }).await;
            tracing::warn!(container = %c.name, error = %describe(&e), "cannot start leftover container");
        }
    }

    /// Ready/started flags and back-off waiting reasons from the runtime view.
    fn update_views(&mut self, pod: &Pod, rt: &PodRuntime) {
        for c in pod.spec.init_containers.iter().chain(&pod.spec.containers) {
            let v = self.views.entry(c.name.clone()).or_default();
            match rt.latest(&c.name) {
                Some(i) if i.running() => {
                    v.waiting = None;
                    let started = c.startup_probe.is_none()
                        || self
                            .probes
                            .get(&(c.name.clone(), ProbeKind::Startup))
                            .is_some_and(|p| p.container_id == i.id && p.ok);
                    v.started = started;
                    let ready = if c.readiness_probe.is_some() {
                        self.probes
                            .get(&(c.name.clone(), ProbeKind::Readiness))
                            .is_some_and(|p| p.container_id == i.id && p.ok)
                    } else {
                        true
                    };
                    v.ready = started && ready;
                }
                _ => {
                    v.ready = false;
                    v.started = false;
                }
            }
        }
    }

    /// Makes sure a ready sandbox exists; `None` when it cannot be made now.
    async fn ensure_sandbox(&mut self, pod: &Pod, rt: PodRuntime) -> Option<PodRuntime> {
        if rt.sandbox.as_ref().is_some_and(|s| s.ready) {
            return Some(rt);
        }
        if !*self.agent.runtime_ready.borrow() {
            return None;
        }
        let attempt = match &rt.sandbox {
            Some(old) => {
                // The sandbox died: its containers go with it (upstream
                // kills and recreates the whole pod).
                tracing::info!(pod = %pod.metadata.name, "sandbox not ready; recreating the pod sandbox");
                self.event(
                    pod,
                    None,
                    false,
                    "SandboxChanged",
                    "Pod sandbox changed, it will be killed and re-created.".into(),
                );
                self.kill(pod, 2).await;
                old.attempt + 1
            }
            None => 0,
        };
        let config = config::sandbox_config(&self.agent, pod, attempt);
        if let Err(e) = std::fs::create_dir_all(config::log_directory(&self.agent, pod)) {
            tracing::warn!(error = %e, "cannot create pod log directory");
        }
        let mut rtc = self.agent.cri.runtime.clone();
        let req = api::RunPodSandboxRequest { config: Some(config), runtime_handler: String::new() };
        match rtc.run_pod_sandbox(req).await {
            Ok(_) => {}
            Err(e) => {
                let msg = format!("Failed to create pod sandbox: {}", describe(&e));
                tracing::warn!(pod = %pod.metadata.name, error = %msg, "sandbox");
                self.event(pod, None, true, "FailedCreatePodSandBox", msg.clone());
                for c in pod.spec.init_containers.iter().chain(&pod.spec.containers) {
                    self.views.entry(c.name.clone()).or_default().waiting =
                        Some(("ContainerCreating".into(), msg.clone()));
                }
                return None;
            }
        }
        runtime::inspect(&self.agent.cri, &self.uid)
            .await
            .ok()
            .filter(|rt| rt.sandbox.as_ref().is_some_and(|s| s.ready))
    }

    fn write_etc_hosts(&self, pod: &Pod, ips: &[String]) -> Option<PathBuf> {
        if pod.spec.host_network {
            return None;
        }
        let dir = volumes::pod_dir(&self.agent.cfg.root_dir, &self.uid);
        let path = dir.join("etc-hosts");
        let host = config::hostname(pod);
        let fqdn = pod.spec.subdomain.as_ref().map(|s| {
            format!("{host}.{s}.{}.svc.{}\t", pod.metadata.namespace, self.agent.cfg.cluster_domain)
        });
        let mut text = String::from(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
        );
        for ip in ips {
            text.push_str(&format!("{ip}\t{}{host}\n", fqdn.clone().unwrap_or_default()));
        }
        let _ = std::fs::create_dir_all(&dir);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            let tmp = dir.join(".etc-hosts.tmp");
            if std::fs::write(&tmp, &text).and_then(|_| std::fs::rename(&tmp, &path)).is_err() {
                return None;
            }
        }
        Some(path)
    }

    /// Starts a container, or holds it back while its back-off runs.
    async fn restart_or_start(
        &mut self,
        ctx: &mut StartCtx<'_>,
        c: &Container,
        kind: &'static str,
        latest: Option<&Instance>,
        exited: bool,
    ) {
        let key = c.name.clone();
        if exited && let Some(i) = latest {
            let finished = instant_of(i.finished_at);
            if self.crash_backoff.in_backoff_since(&key, finished) {
                let msg = format!(
                    "back-off {} restarting failed container={} pod={}",
                    go_duration(self.crash_backoff.get(&key)),
                    c.name,
                    Self::pod_ref(ctx.pod)
                );
                let v = self.views.entry(key.clone()).or_default();
                if v.waiting.as_ref().map(|w| w.0.as_str()) != Some("CrashLoopBackOff") {
                    self.event(
                        ctx.pod,
                        Some(&c.name),
                        true,
                        "BackOff",
                        format!(
                            "Back-off restarting failed container {} in pod {}",
                            c.name,
                            Self::pod_ref(ctx.pod)
                        ),
                    );
                }
                self.views.entry(key).or_default().waiting = Some(("CrashLoopBackOff".into(), msg));
                return;
            }
            self.crash_backoff.next(&key, finished);
        }
        let attempt = latest.map(|i| i.attempt + 1).unwrap_or(0);
        match self.start(ctx, c, kind, attempt).await {
            Ok(()) => {
                self.views.entry(key).or_default().waiting = None;
            }
            Err((reason, message)) => {
                let v = self.views.entry(key).or_default();
                let changed = v.waiting.as_ref() != Some(&(reason.clone(), message.clone()));
                v.waiting = Some((reason.clone(), message.clone()));
                if changed && reason != "ImagePullBackOff" {
                    self.event(ctx.pod, Some(&c.name), true, "Failed", format!("Error: {message}"));
                }
            }
        }
    }

    async fn start(
        &mut self,
        ctx: &mut StartCtx<'_>,
        c: &Container,
        kind: &'static str,
        attempt: u32,
    ) -> Result<(), (String, String)> {
        if !volumes::is_dns_label(&c.name) {
            let msg = format!("container name {:?} is not a DNS-1123 label", c.name);
            return Err(("CreateContainerConfigError".to_owned(), msg));
        }
        self.ensure_image(ctx.pod, c).await?;
        let env = env::build(ctx.pod, c, &mut ctx.lookup, ctx.pod_ips, ctx.host_ip)
            .await
            .map_err(|m| ("CreateContainerConfigError".to_owned(), m))?;
        let tdir = volumes::pod_dir(&self.agent.cfg.root_dir, &self.uid).join("containers").join(&c.name);
        let tlog = tdir.join(format!("{attempt}-termination-log"));
        std::fs::create_dir_all(&tdir).and_then(|_| std::fs::write(&tlog, b"")).map_err(|e| {
            ("CreateContainerConfigError".to_owned(), format!("cannot create {}: {e}", tlog.display()))
        })?;
        let input = ContainerInput {
            kind,
            attempt,
            env,
            mounts: Mounts {
                volumes: ctx.volumes,
                etc_hosts: ctx.etc_hosts.as_deref(),
                termination_log: &tlog,
            },
        };
        let cfg = config::container_config(ctx.pod, c, input)
            .map_err(|m| ("CreateContainerConfigError".to_owned(), m))?;
        let sandbox_config = config::sandbox_config(&self.agent, ctx.pod, 0);
        let mut rtc = self.agent.cri.runtime.clone();
        let created = rtc
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: ctx.sandbox_id.to_owned(),
                config: Some(cfg),
                sandbox_config: Some(sandbox_config),
            })
            .await
            .map_err(|e| ("CreateContainerError".to_owned(), describe(&e)))?
            .into_inner();
        let id = created.container_id;
        self.event(ctx.pod, Some(&c.name), false, "Created", format!("Created container: {}", c.name));
        if let Err(e) = rtc.start_container(api::StartContainerRequest { container_id: id.clone() }).await {
            let msg = describe(&e);
            self.event(ctx.pod, Some(&c.name), true, "Failed", format!("Error: {msg}"));
            return Err(("RunContainerError".to_owned(), msg));
        }
        self.event(ctx.pod, Some(&c.name), false, "Started", format!("Started container {}", c.name));
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref())
            && let Err(e) = self
                .handler(
                    c,
                    &id,
                    ctx.pod_ips.first().map(String::as_str).unwrap_or(""),
                    h,
                    Duration::from_secs(30),
                )
                .await
        {
            let msg = format!("PostStartHook failed: {e}");
            self.event(ctx.pod, Some(&c.name), true, "FailedPostStartHook", msg.clone());
            let _ = rtc
                .stop_container(api::StopContainerRequest {
                    container_id: id,
                    timeout: ctx.pod.spec.grace_period(),
                })
                .await;
            return Err(("PostStartHookError".to_owned(), msg));
        }
        Ok(())
    }

    /// Pulls the image as the pull policy says, with upstream's back-off.
    async fn ensure_image(&mut self, pod: &Pod, c: &Container) -> Result<(), (String, String)> {
        let image = c.image.clone();
        if image.is_empty() {
            return Err(("InvalidImageName".into(), "Failed to apply default image tag \"\": couldn't parse image name \"\": invalid reference format".into()));
        }
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| default_pull_policy(&image).into());
        let mut is = self.agent.cri.images.clone();
        let spec = api::ImageSpec { image: image.clone(), ..Default::default() };
        let present = match is
            .image_status(api::ImageStatusRequest { image: Some(spec.clone()), verbose: false })
            .await
        {
            Ok(r) => r.into_inner().image.is_some(),
            Err(e) => return Err(("ErrImagePull".into(), describe(&e))),
        };
        match policy.as_str() {
            "Never" if !present => {
                return Err((
                    "ErrImageNeverPull".into(),
                    format!("Container image \"{image}\" is not present with pull policy of Never"),
                ));
            }
            "Never" => return Ok(()),
            "IfNotPresent" if present => return Ok(()),
            _ => {}
        }
        let key = format!("{}_{image}", pod.metadata.uid);
        let now = Instant::now();
        if self.pull_backoff.in_backoff_since(&key, now - Duration::from_millis(1))
            && self.pull_errors.contains_key(&key)
        {
            let last = self.pull_errors.get(&key).cloned().unwrap_or_default();
            return Err((
                "ImagePullBackOff".into(),
                format!("Back-off pulling image \"{image}\": ErrImagePull: {last}"),
            ));
        }
        self.event(pod, Some(&c.name), false, "Pulling", format!("Pulling image \"{image}\""));
        let auth = self.registry_auth(pod, &image).await;
        let started = Instant::now();
        let req = api::PullImageRequest {
            image: Some(spec),
            auth,
            sandbox_config: Some(config::sandbox_config(&self.agent, pod, 0)),
        };
        match is.pull_image(req).await {
            Ok(_) => {
                self.pull_backoff.reset(&key);
                self.pull_errors.remove(&key);
                self.event(
                    pod,
                    Some(&c.name),
                    false,
                    "Pulled",
                    format!("Successfully pulled image \"{image}\" in {}ms", started.elapsed().as_millis()),
                );
                Ok(())
            }
            Err(e) => {
                let msg = describe(&e);
                self.pull_backoff.next(&key, Instant::now());
                self.pull_errors.insert(key, msg.clone());
                self.event(
                    pod,
                    Some(&c.name),
                    true,
                    "Failed",
                    format!("Failed to pull image \"{image}\": {msg}"),
                );
                Err(("ErrImagePull".into(), msg))
            }
        }
    }

    /// Credentials for the image's registry from the pod's imagePullSecrets
    /// (`kubernetes.io/dockerconfigjson` or `.dockercfg`).
    async fn registry_auth(&self, pod: &Pod, image: &str) -> Option<api::AuthConfig> {
        let registry = registry_of(image);
        for s in &pod.spec.image_pull_secrets {
            let path = format!("/api/v1/namespaces/{}/secrets/{}", pod.metadata.namespace, s.name);
            let Ok(Some(secret)) = self.agent.client.get_opt(&path).await else { continue };
            let data = volumes::decode_data(&secret, true);
            let cfg: Value = data
                .get(".dockerconfigjson")
                .and_then(|b| serde_json::from_slice(b).ok())
                .map(|v: Value| v["auths"].clone())
                .or_else(|| data.get(".dockercfg").and_then(|b| serde_json::from_slice(b).ok()))
                .unwrap_or(Value::Null);
            let Some(auths) = cfg.as_object() else { continue };
            for (server, a) in auths {
                if registry_matches(server, &registry) {
                    return Some(api::AuthConfig {
                        username: a["username"].as_str().unwrap_or("").into(),
                        password: a["password"].as_str().unwrap_or("").into(),
                        auth: a["auth"].as_str().unwrap_or("").into(),
                        server_address: server.clone(),
                        identity_token: a["identitytoken"].as_str().unwrap_or("").into(),
                        registry_token: a["registrytoken"].as_str().unwrap_or("").into(),
                    });
                }
            }
        }
        None
    }

    async fn handler(
        &self,
        c: &Container,
        id: &str,
        pod_ip: &str,
        h: &Handler,
        timeout: Duration,
    ) -> Result<(), String> {
        if let Some(e) = &h.exec {
            return probes::exec(&self.agent.cri, id, &e.command, timeout).await;
        }
        if let Some(g) = &h.http_get {
            let host = g.host.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| pod_ip.to_owned());
            return probes::http_get(&host, probes::port(c, &g.port)?, g, timeout).await;
        }
        if let Some(t) = &h.tcp_socket {
            let host = t.host.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| pod_ip.to_owned());
            return probes::tcp(&host, probes::port(c, &t.port)?, timeout).await;
        }
        if let Some(s) = &h.sleep {
            tokio::time::sleep(Duration::from_secs(s.seconds.max(0).unsigned_abs()).min(timeout)).await;
            return Ok(());
        }
        Err("lifecycle handler has no action".into())
    }

    /// Runs the container's due probes; a failed liveness (or startup)
    /// verdict kills it, and the restart policy takes over.
    async fn probe(&mut self, pod: &Pod, c: &Container, i: &Instance, pod_ip: &str) {
        let started_at = instant_of(i.started_at);
        let kinds = [
            (ProbeKind::Startup, c.startup_probe.as_ref()),
            (ProbeKind::Liveness, c.liveness_probe.as_ref()),
            (ProbeKind::Readiness, c.readiness_probe.as_ref()),
        ];
        let startup_ok = c.startup_probe.is_none()
            || self
                .probes
                .get(&(c.name.clone(), ProbeKind::Startup))
                .is_some_and(|p| p.container_id == i.id && p.ok);
        for (kind, probe) in kinds {
            let Some(p) = probe else { continue };
            if kind != ProbeKind::Startup && !startup_ok {
                continue;
            }
            if kind == ProbeKind::Startup && startup_ok {
                continue;
            }
            let key = (c.name.clone(), kind);
            let state = self
                .probes
                .entry(key.clone())
                .or_insert_with(|| ProbeState::new(&i.id, p, started_at, kind == ProbeKind::Liveness));
            if state.container_id != i.id {
                *state = ProbeState::new(&i.id, p, started_at, kind == ProbeKind::Liveness);
            }
            if Instant::now() < state.next {
                continue;
            }
            let result = probes::run(&self.agent.cri, c, &i.id, pod_ip, p).await;
            let failed = result.is_err();
            let err = result.as_ref().err().cloned();
            let Some(state) = self.probes.get_mut(&key) else { continue };
            let changed = state.record(p, result);
            let verdict = state.ok;
            let name = match kind {
                ProbeKind::Startup => "Startup",
                ProbeKind::Liveness => "Liveness",
                ProbeKind::Readiness => "Readiness",
            };
            if failed && let Some(e) = err {
                self.event(pod, Some(&c.name), true, "Unhealthy", format!("{name} probe failed: {e}"));
            }
            let kill = match kind {
                ProbeKind::Liveness => changed && !verdict,
                ProbeKind::Startup => !verdict && state_failures(&self.probes, &key) >= p.failure_threshold(),
                ProbeKind::Readiness => false,
            };
            if kill {
                self.event(
                    pod,
                    Some(&c.name),
                    false,
                    "Killing",
                    format!("Container {} failed {} probe, will be restarted", c.name, name.to_lowercase()),
                );
                let grace = p.termination_grace_period_seconds.unwrap_or_else(|| pod.spec.grace_period());
                self.stop_container(pod, c, i, grace).await;
                self.probes.remove(&key);
                return;
            }
        }
    }

    async fn stop_container(&self, pod: &Pod, c: &Container, i: &Instance, grace: i64) {
        let mut grace = grace.max(0);
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
            let started = Instant::now();
            let ip = pod.status["podIP"].as_str().unwrap_or("");
            let budget = Duration::from_secs(grace.max(2).unsigned_abs());
            match tokio::time::timeout(budget, self.handler(c, &i.id, ip, h, budget)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => self.event(
                    pod,
                    Some(&c.name),
                    true,
                    "FailedPreStopHook",
                    format!("PreStopHook failed: {e}"),
                ),
                Err(_) => {}
            }
            grace = (grace - i64::try_from(started.elapsed().as_secs()).unwrap_or(0)).max(2);
        }
        let mut rtc = self.agent.cri.runtime.clone();
        if let Err(e) =
            rtc.stop_container(api::StopContainerRequest { container_id: i.id.clone(), timeout: grace }).await
        {
            tracing::warn!(container = %c.name, error = %describe(&e), "stop container");
        }
    }

    /// Stops every container (preStop hooks first, within `grace`) and the sandbox.
    async fn kill(&mut self, pod: &Pod, grace: i64) {
        let Ok(rt) = runtime::inspect(&self.agent.cri, &self.uid).await else { return };
        let running: Vec<(Container, Instance)> = pod
            .spec
            .containers
            .iter()
            .chain(pod.spec.init_containers.iter().rev())
            .filter_map(|c| rt.latest(&c.name).filter(|i| i.running()).map(|i| (c.clone(), i.clone())))
            .collect();
        let announce = !running.is_empty();
        let stops = running.iter().map(|(c, i)| {
            if announce {
                self.event(pod, Some(&c.name), false, "Killing", format!("Stopping container {}", c.name));
            }
            self.stop_container(pod, c, i, grace)
        });
        futures_util::future::join_all(stops).await;
        let mut rtc = self.agent.cri.runtime.clone();
        let ids: Vec<String> =
            rt.sandbox.iter().map(|s| s.id.clone()).chain(rt.old_sandboxes.iter().cloned()).collect();
        for id in ids {
            if let Err(e) = rtc.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: id }).await {
                tracing::warn!(pod = %pod.metadata.name, error = %describe(&e), "stop sandbox");
            }
        }
    }

    /// Graceful deletion: stop, report, remove, let the API server forget
    /// the pod. Returns true when the pod is gone.
    async fn terminate(&mut self, pod: &Pod) -> bool {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or_else(|| pod.spec.grace_period());
        self.kill(pod, grace).await;
        // Without a word from the runtime nothing is known to have stopped:
        // never report a pod gone (its name may be reused at once).
        let Ok(rt) = runtime::inspect(&self.agent.cri, &self.uid).await else { return false };
        if rt.any_running() {
            return false;
        }
        self.collect_termination_messages(&rt);
        self.update_views(pod, &rt);
        for v in self.views.values_mut() {
            v.waiting = None;
        }
        self.report(pod, &rt, true, false, None).await;
        self.remove_everything(Some(pod)).await;
        let path = format!("/api/v1/namespaces/{}/pods/{}", pod.metadata.namespace, pod.metadata.name);
        let opts = json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "preconditions": {"uid": pod.metadata.uid}});
        match self.agent.client.delete(&path, &opts).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() || e.is_conflict() => true,
            Err(e) => {
                tracing::warn!(pod = %pod.metadata.name, error = %e, "final pod delete failed; retrying");
                false
            }
        }
    }

    /// Removes sandboxes, containers, volumes and logs of the pod.
    async fn remove_everything(&mut self, pod: Option<&Pod>) {
        let mut rtc = self.agent.cri.runtime.clone();
        if let Ok(rt) = runtime::inspect(&self.agent.cri, &self.uid).await {
            for id in rt.sandbox.iter().map(|s| s.id.clone()).chain(rt.old_sandboxes) {
                let _ = rtc.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: id.clone() }).await;
                if let Err(e) =
                    rtc.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: id }).await
                {
                    tracing::warn!(uid = %self.uid, error = %describe(&e), "remove sandbox");
                }
            }
            for i in rt.containers.values().flatten() {
                let _ =
                    rtc.remove_container(api::RemoveContainerRequest { container_id: i.id.clone() }).await;
            }
        }
        volumes::remove_pod_dir(&self.agent.cfg.root_dir, &self.uid);
        if let Some(pod) = pod {
            let logs = config::log_directory(&self.agent, pod);
            let _ = std::fs::remove_dir_all(logs);
        }
    }

    /// Keeps the latest two instances of each container (the current one
    /// and the one `--previous` reads) and stops old sandboxes still running.
    async fn prune(&self, rt: &PodRuntime) {
        let mut rtc = self.agent.cri.runtime.clone();
        for list in rt.containers.values() {
            for i in list.iter().skip(2).filter(|i| i.exited()) {
                let _ =
                    rtc.remove_container(api::RemoveContainerRequest { container_id: i.id.clone() }).await;
            }
        }
        // Old sandboxes are stopped (their IPs released) but kept while
        // they hold the instance `--previous` reads; they go with the pod.
        for id in &rt.old_running {
            let _ = rtc.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: id.clone() }).await;
        }
    }

    fn collect_termination_messages(&mut self, rt: &PodRuntime) {
        // Only the instances status shows (the latest two of each) are kept.
        let live: std::collections::HashSet<&str> =
            rt.containers.values().flat_map(|l| l.iter().take(2)).map(|i| i.id.as_str()).collect();
        for v in self.views.values_mut() {
            v.termination_message.retain(|id, _| live.contains(id.as_str()));
        }
        let base = volumes::pod_dir(&self.agent.cfg.root_dir, &self.uid).join("containers");
        for i in rt.containers.values().flat_map(|l| l.iter().take(2)).filter(|i| i.exited()) {
            let v = self.views.entry(i.name.clone()).or_default();
            if v.termination_message.contains_key(&i.id) {
                continue;
            }
            let path = base.join(&i.name).join(format!("{}-termination-log", i.attempt));
            let mut text =
                std::fs::read(&path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            text.truncate(4096);
            if text.is_empty() {
                text = i.message.clone();
            }
            v.termination_message.insert(i.id.clone(), text);
        }
    }

    /// Writes the pod status when it changed; returns it.
    async fn report(
        &mut self,
        pod: &Pod,
        rt: &PodRuntime,
        init_done: bool,
        init_failed: bool,
        forced: Option<(&'static str, String, String)>,
    ) -> Value {
        let host_ip = self.agent.cfg.node_ip.to_string();
        let st = status::pod_status(&status::Inputs {
            pod,
            rt,
            views: &self.views,
            init_done,
            init_failed,
            forced,
            host_ip: &host_ip,
            start_time: &self.start_time,
        });
        self.agent.pods.set_status(&self.uid, &st);
        if st == self.last_status || st == pod.status {
            return st;
        }
        let path = format!("/api/v1/namespaces/{}/pods/{}/status", pod.metadata.namespace, pod.metadata.name);
        // A static pod's status goes to its mirror, which has a UID of its own.
        let patch = if is_static(pod) {
            json!({"status": st})
        } else {
            json!({"metadata": {"uid": pod.metadata.uid}, "status": st})
        };
        match self.agent.client.patch(&path, PatchType::Merge, &patch).await {
            Ok(_) => self.last_status = st.clone(),
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(pod = %pod.metadata.name, error = %e, "pod status update failed"),
        }
        st
    }
}

fn is_static(pod: &Pod) -> bool {
    pod.metadata.annotations.get(super::statics::SOURCE_ANNOTATION).is_some_and(|s| s == "file")
}

fn state_failures(probes: &HashMap<(String, ProbeKind), ProbeState>, key: &(String, ProbeKind)) -> i64 {
    probes.get(key).map(|s| s.failures).unwrap_or(0)
}

/// What starting a container needs from the current sync.
struct StartCtx<'a> {
    pod: &'a Pod,
    volumes: &'a HashMap<String, PathBuf>,
    etc_hosts: Option<PathBuf>,
    pod_ips: &'a [String],
    host_ip: &'a str,
    sandbox_id: &'a str,
    lookup: Lookup,
}

/// The monotonic instant of a CRI wall-clock time (ns since the epoch).
fn instant_of(nanos: i64) -> Instant {
    let now_wall = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let then = Duration::from_nanos(nanos.max(0).unsigned_abs());
    let ago = now_wall.saturating_sub(then);
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

/// `Always` for `:latest` or untagged images, else `IfNotPresent` (the API
/// server defaults this; agents of older servers may see it empty).
pub fn default_pull_policy(image: &str) -> &'static str {
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    match name.split_once(':') {
        Some((_, "latest")) | None => "Always",
        _ => "IfNotPresent",
    }
}

/// The registry host of an image reference (`docker.io` when none is named).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_owned(),
        _ => "docker.io".to_owned(),
    }
}

fn registry_matches(server: &str, registry: &str) -> bool {
    let host = server.trim_start_matches("https://").trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    host == registry
        || (registry == "docker.io" && matches!(host, "index.docker.io" | "registry-1.docker.io"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("busybox:1.36"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/busybox:v1"), "IfNotPresent");
        assert_eq!(default_pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn registries() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox"), "docker.io");
        assert_eq!(registry_of("ghcr.io/x/y:1"), "ghcr.io");
        assert_eq!(registry_of("localhost:5000/y"), "localhost:5000");
        assert!(registry_matches("https://index.docker.io/v1/", "docker.io"));
        assert!(registry_matches("ghcr.io", "ghcr.io"));
        assert!(!registry_matches("ghcr.io", "quay.io"));
    }
}
