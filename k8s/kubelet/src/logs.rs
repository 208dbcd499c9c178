//! `kubectl logs` on the node: find the container instance the request
//! means (current or `previous`), then stream its CRI log file through
//! [`lichen_apimachinery::crilog`], following it while the container runs.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use lichen_apimachinery::crilog::{self, Flow, Options};
use tokio::sync::mpsc;

use crate::Agent;
use crate::cri::api;

/// A refusal, with the HTTP status and upstream's message.
#[derive(Debug)]
pub struct LogError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

fn bad(message: String) -> LogError {
    LogError { code: 400, reason: "BadRequest", message }
}

/// The options and `previous` flag of a `/containerLogs` query (the
/// `PodLogOptions` query parameters).
pub fn parse_query(query: &str) -> Result<(Options, bool), LogError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|e| bad(format!("invalid query: {e}")))?;
    let get = |k: &str| pairs.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let flag = |k: &str| get(k).is_some_and(|v| v == "true" || v == "1");
    let num = |k: &str| -> Result<Option<i64>, LogError> {
        get(k).map(|v| v.parse::<i64>().map_err(|_| bad(format!("invalid {k}: {v:?}")))).transpose()
    };
    let mut opts = Options { timestamps: flag("timestamps"), follow: flag("follow"), ..Default::default() };
    if let Some(n) = num("tailLines")? {
        if n < 0 {
            return Err(bad("tailLines must be greater than or equal to 0".into()));
        }
        opts.tail_lines = Some(n.unsigned_abs());
    }
    if let Some(n) = num("limitBytes")? {
        if n < 1 {
            return Err(bad("limitBytes must be greater than 0".into()));
        }
        opts.limit_bytes = Some(n.unsigned_abs());
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut since: Option<(i64, u32)> = None;
    if let Some(s) = num("sinceSeconds")? {
        if s < 1 {
            return Err(bad("sinceSeconds must be greater than 0".into()));
        }
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX) - s;
        since = Some((secs, now.subsec_nanos()));
    }
    if let Some(t) = get("sinceTime") {
        let at = lichen_apimachinery::timestamp::parse_rfc3339_nanos(t)
            .ok_or_else(|| bad(format!("invalid sinceTime: {t:?}")))?;
        since = Some(since.map_or(at, |s| s.max(at)));
    }
    opts.since = since;
    Ok((opts, flag("previous")))
}

/// The log file and container id a request means, from the pod status
/// the agent last reported.
pub async fn locate(
    agent: &Agent,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<(PathBuf, String), LogError> {
    let Some(p) = agent.pods.find(ns, pod) else {
        return Err(LogError {
            code: 404,
            reason: "NotFound",
            message: format!("pod {pod:?} not found on this node"),
        });
    };
    let all = p.status["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(p.status["initContainerStatuses"].as_array().into_iter().flatten());
    let known = p.spec.containers.iter().chain(&p.spec.init_containers).any(|c| c.name == container);
    if !known {
        return Err(bad(format!("container {container} is not valid for pod {pod}")));
    }
    let Some(st) = all.into_iter().find(|s| s["name"] == container) else {
        return Err(bad(format!("container \"{container}\" in pod \"{pod}\" is not available")));
    };
    let id = if previous {
        st["lastState"]["terminated"]["containerID"].as_str().ok_or_else(|| {
            bad(format!("previous terminated container \"{container}\" in pod \"{pod}\" not found"))
        })?
    } else if let Some(reason) =
        st["state"]["waiting"]["reason"].as_str().filter(|_| st["containerID"].is_null())
    {
        return Err(bad(format!("container \"{container}\" in pod \"{pod}\" is waiting to start: {reason}")));
    } else {
        st["containerID"]
            .as_str()
            .ok_or_else(|| bad(format!("container \"{container}\" in pod \"{pod}\" is not available")))?
    };
    let id = id.trim_start_matches("containerd://").to_owned();
    let mut rt = agent.cri.runtime.clone();
    let status = rt
        .container_status(api::ContainerStatusRequest { container_id: id.clone(), verbose: false })
        .await
        .map_err(|e| LogError { code: 500, reason: "InternalError", message: crate::cri::describe(&e) })?
        .into_inner()
        .status
        .unwrap_or_default();
    if status.log_path.is_empty() {
        return Err(bad(format!("container \"{container}\" in pod \"{pod}\" has no log file")));
    }
    Ok((PathBuf::from(status.log_path), id))
}

/// Streams the log: chunks arrive on the channel; it closes at the end (or
/// when the receiver goes away).
pub fn stream(agent: Agent, path: PathBuf, id: String, opts: Options) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        if let Err(e) = follow(&agent, &path, &id, &opts, &tx).await {
            tracing::debug!(path = %path.display(), error = %e, "log stream ended");
        }
    });
    rx
}

async fn follow(
    agent: &Agent,
    path: &PathBuf,
    id: &str,
    opts: &Options,
    tx: &mpsc::Sender<Bytes>,
) -> std::io::Result<()> {
    // Local file reads are short and bounded: they run on the task
    // directly rather than bouncing through the blocking pool.
    let mut file = std::fs::File::open(path)?;
    let mut offset = match opts.tail_lines {
        Some(n) => crilog::tail_start(&mut file, n)?,
        None => 0,
    };
    let mut writer = crilog::Writer::new(opts);
    loop {
        file.seek(SeekFrom::Start(offset))?;
        let mut reader = BufReader::with_capacity(64 * 1024, (&mut file).take(1 << 20));
        let mut out = Vec::new();
        let progress = writer.write_all_from(&mut reader, &mut out)?;
        offset += progress.consumed;
        if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
            return Ok(());
        }
        if matches!(progress.flow, Flow::LimitReached) {
            return Ok(());
        }
        if progress.consumed > 0 {
            continue;
        }
        // At the end of what is written so far.
        let running = opts.follow && container_running(agent, id).await;
        if !running {
            file.seek(SeekFrom::Start(offset))?;
            let mut out = Vec::new();
            writer.write_to_end(&mut BufReader::new(&mut file), &mut out)?;
            if !out.is_empty() {
                let _ = tx.send(Bytes::from(out)).await;
            }
            return Ok(());
        }
        if tx.is_closed() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn container_running(agent: &Agent, id: &str) -> bool {
    let mut rt = agent.cri.runtime.clone();
    match rt
        .container_status(api::ContainerStatusRequest { container_id: id.to_owned(), verbose: false })
        .await
    {
        Ok(r) => {
            r.into_inner().status.is_some_and(|s| s.state == api::ContainerState::ContainerRunning as i32)
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let (o, prev) = parse_query("follow=true&tailLines=5&timestamps=true&previous=true")
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert!(o.follow && o.timestamps && prev);
        assert_eq!(o.tail_lines, Some(5));
        let (o, _) = parse_query("sinceTime=2026-01-01T00%3A00%3A00Z&limitBytes=10")
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(o.since, Some((1_767_225_600, 0)));
        assert_eq!(o.limit_bytes, Some(10));
        assert_eq!(parse_query("tailLines=x").map(|_| ()).unwrap_err().message, "invalid tailLines: \"x\"");
        assert_eq!(parse_query("limitBytes=0").map(|_| ()).unwrap_err().code, 400);
    }
}
