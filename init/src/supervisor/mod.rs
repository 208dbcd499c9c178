//! The service supervisor: starts services once their dependencies are
//! ready, captures their output, restarts them with back-off when they exit,
//! and stops them in reverse order at shutdown.
//!
//! It does not wait for children itself: PID 1's main loop reaps every
//! child (orphans included) and reports the supervisor's own through
//! [`Supervisor::exited`].

pub mod backoff;
pub mod logs;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backoff::Backoff;

/// Where a service's standard streams go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Captured into `/var/log/<name>.log` (and mirrored to the console).
    Log { mirror: bool },
    /// Attached to a terminal device (the console shell).
    Terminal(PathBuf),
}

/// How to run a service.
#[derive(Debug, Clone)]
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub output: Output,
}

/// One supervised service: what it needs, how to run it, when it is ready.
pub trait Service: Send {
    fn name(&self) -> &'static str;
    /// Services that must be ready before this one starts.
    fn depends_on(&self) -> &'static [&'static str] {
        &[]
    }
    /// Runs before every start (write configuration, make directories).
    fn prepare(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn spec(&self) -> Spec;
    /// Readiness probe; polled while the service runs and is not yet ready.
    fn ready(&self) -> bool {
        true
    }
    /// Counted by the boot health check.
    fn essential(&self) -> bool {
        true
    }
    /// The signal that asks it to stop.
    fn stop_signal(&self) -> i32 {
        libc::SIGTERM
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Waiting for dependencies.
    Waiting,
    Running {
        pid: i32,
    },
    /// Exited; starts again at `until`.
    Backoff {
        until: Instant,
    },
    Stopped,
}

struct Entry {
    svc: Box<dyn Service>,
    state: State,
    ready: bool,
    started: Option<Instant>,
    backoff: Backoff,
    restarts: u32,
    last_exit: Option<String>,
}

/// What `lichen-init status` shows of a service.
#[derive(Debug, Clone)]
pub struct ServiceStatus {
    pub name: &'static str,
    pub state: String,
    pub ready: bool,
    pub restarts: u32,
    pub last_exit: Option<String>,
}

pub struct Supervisor {
    entries: Vec<Entry>,
    log_dir: PathBuf,
    log_limit: u64,
    stopping: bool,
    /// How the supervisor starts processes (replaced in tests).
    spawner: Box<Spawner>,
}

/// Starts a service process: (spec, name, log file, log size limit) -> pid.
type Spawner = dyn FnMut(&Spec, &str, &std::path::Path, u64) -> std::io::Result<i32> + Send;

/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(250);

impl Supervisor {
    pub fn new(log_dir: PathBuf) -> Supervisor {
        Supervisor {
            entries: Vec::new(),
            log_dir,
            log_limit: 10 << 20,
            stopping: false,
            spawner: Box::new(spawn),
        }
    }

    #[cfg(test)]
    fn with_spawner(
        spawner: impl FnMut(&Spec, &str, &std::path::Path, u64) -> std::io::Result<i32> + Send + 'static,
    ) -> Supervisor {
        let mut s = Supervisor::new(PathBuf::from("/nonexistent"));
        s.spawner = Box::new(spawner);
        s
    }

    pub fn add(&mut self, svc: Box<dyn Service>) {
        self.entries.push(Entry {
            svc,
            state: State::Waiting,
            ready: false,
            started: None,
            backoff: Backoff::default(),
            restarts: 0,
            last_exit: None,
        });
    }

    fn is_ready(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.svc.name() == name && e.ready)
    }

    /// Starts what can start, polls readiness. Returns how long the main loop
    /// may sleep before calling again.
    pub fn tick(&mut self, now: Instant) -> Duration {
        if self.stopping {
            return Duration::from_secs(1);
        }
        let mut wake = Duration::from_secs(5);
        for i in 0..self.entries.len() {
            let deps_ready = self.entries[i].svc.depends_on().iter().all(|d| self.is_ready(d));
            let e = &mut self.entries[i];
            match e.state.clone() {
                State::Waiting if deps_ready => {
                    self.start(i, now);
                    wake = wake.min(POLL);
                }
                State::Backoff { until } if now >= until => {
                    self.start(i, now);
                    wake = wake.min(POLL);
                }
                State::Backoff { until } => wake = wake.min(until - now),
                State::Running { pid } if !e.ready => {
                    if e.svc.ready() {
                        e.ready = true;
                        let secs = e.started.map(|s| now.duration_since(s).as_secs_f64()).unwrap_or(0.0);
                        crate::info!("service {} ready (pid {pid}, {secs:.2}s after start)", e.svc.name());
                        wake = Duration::ZERO;
                    } else {
                        wake = wake.min(POLL);
                    }
                }
                _ => {}
            }
        }
        wake
    }

    fn start(&mut self, i: usize, now: Instant) {
        let limit = self.log_limit;
        let e = &mut self.entries[i];
        let name = e.svc.name();
        if let Err(err) = e.svc.prepare() {
            let delay = e.backoff.next(Duration::ZERO);
            crate::error!("service {name}: preparing failed: {err}; retrying in {}s", delay.as_secs());
            e.state = State::Backoff { until: now + delay };
            return;
        }
        let spec = e.svc.spec();
        let log_path = self.log_dir.join(format!("{name}.log"));
        match (self.spawner)(&spec, name, &log_path, limit) {
            Ok(pid) => {
                crate::info!("service {name} started (pid {pid})");
                e.state = State::Running { pid };
                e.started = Some(now);
                e.ready = false;
            }
            Err(err) => {
                let delay = e.backoff.next(Duration::ZERO);
                crate::error!(
                    "service {name}: cannot start {}: {err}; retrying in {}s",
                    spec.program.display(),
                    delay.as_secs()
                );
                e.state = State::Backoff { until: now + delay };
            }
        }
    }

    /// A child exited; returns false if it was not one of ours.
    pub fn exited(&mut self, pid: i32, how: &str, now: Instant) -> bool {
        let stopping = self.stopping;
        let Some(e) = self.entries.iter_mut().find(|e| e.state == State::Running { pid }) else {
            return false;
        };
        let ran = e.started.map(|s| now.duration_since(s)).unwrap_or_default();
        e.ready = false;
        e.last_exit = Some(how.to_string());
        if stopping {
            crate::info!("service {} stopped ({how})", e.svc.name());
            e.state = State::Stopped;
            return true;
        }
        let delay = e.backoff.next(ran);
        e.restarts += 1;
        crate::warn!(
            "service {} exited ({how}) after {:.1}s; restarting in {}s (restart {})",
            e.svc.name(),
            ran.as_secs_f64(),
            delay.as_secs(),
            e.restarts
        );
        e.state = State::Backoff { until: now + delay };
        // Dependents keep running: containerd's clients reconnect.
        true
    }

    /// (name, pid, stop signal) of running services, last started first
    /// (stop order).
    pub fn begin_stop(&mut self) -> Vec<(&'static str, i32, i32)> {
        self.stopping = true;
        let mut pids: Vec<(&'static str, i32, i32)> = self
            .entries
            .iter()
            .filter_map(|e| match e.state {
                State::Running { pid } => Some((e.svc.name(), pid, e.svc.stop_signal())),
                _ => None,
            })
            .collect();
        for e in &mut self.entries {
            if !matches!(e.state, State::Running { .. }) {
                e.state = State::Stopped;
            }
        }
        pids.reverse();
        pids
    }

    /// Whether `pid` is a running service.
    pub fn is_running(&self, pid: i32) -> bool {
        self.entries.iter().any(|e| e.state == State::Running { pid })
    }

    pub fn all_stopped(&self) -> bool {
        self.entries.iter().all(|e| !matches!(e.state, State::Running { .. }))
    }

    /// True once every essential service is ready (the boot health check).
    pub fn essentials_ready(&self) -> bool {
        self.entries.iter().filter(|e| e.svc.essential()).all(|e| e.ready)
    }

    pub fn status(&self) -> Vec<ServiceStatus> {
        self.entries
            .iter()
            .map(|e| ServiceStatus {
                name: e.svc.name(),
                state: match &e.state {
                    State::Waiting => "waiting".into(),
                    State::Running { pid } => format!("running pid {pid}"),
                    State::Backoff { .. } => "restarting".into(),
                    State::Stopped => "stopped".into(),
                },
                ready: e.ready,
                restarts: e.restarts,
                last_exit: e.last_exit.clone(),
            })
            .collect()
    }
}

/// Starts a process in its own process group with its output captured.
fn spawn(spec: &Spec, name: &str, log_path: &std::path::Path, limit: u64) -> std::io::Result<i32> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args).env_clear().envs(spec.env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null());
    crate::sys::signals::unblock_in_child(&mut cmd);
    match &spec.output {
        Output::Log { mirror } => {
            // CLOEXEC: later children must not inherit this service's pipe.
            let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
            let write2 = write.try_clone()?;
            cmd.stdout(Stdio::from(write)).stderr(Stdio::from(write2)).process_group(0);
            let child = cmd.spawn()?;
            drop(cmd);
            let log = logs::LogFile::new(log_path, limit);
            let (name, mirror) = (name.to_string(), *mirror);
            let file = std::fs::File::from(read);
            std::thread::Builder::new()
                .name(format!("log-{name}"))
                .spawn(move || logs::pump(&name, file, log, mirror))?;
            pid_of(&child)
        }
        Output::Terminal(dev) => {
            let tty = std::fs::OpenOptions::new().read(true).write(true).open(dev)?;
            cmd.stdin(Stdio::from(tty.try_clone()?))
                .stdout(Stdio::from(tty.try_clone()?))
                .stderr(Stdio::from(tty));
            let child = cmd.spawn()?;
            pid_of(&child)
        }
    }
}

fn pid_of(child: &std::process::Child) -> std::io::Result<i32> {
    i32::try_from(child.id()).map_err(|_| std::io::Error::other("pid out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    struct Svc {
        name: &'static str,
        deps: &'static [&'static str],
        ready: Arc<AtomicBool>,
    }

    impl Service for Svc {
        fn name(&self) -> &'static str {
            self.name
        }
        fn depends_on(&self) -> &'static [&'static str] {
            self.deps
        }
        fn spec(&self) -> Spec {
            Spec {
                program: "/bin/true".into(),
                args: vec![],
                env: vec![],
                output: Output::Log { mirror: false },
            }
        }
        fn ready(&self) -> bool {
            self.ready.load(Ordering::SeqCst)
        }
    }

    fn sup() -> (Supervisor, Arc<AtomicI32>) {
        let next = Arc::new(AtomicI32::new(100));
        let n = next.clone();
        (Supervisor::with_spawner(move |_, _, _, _| Ok(n.fetch_add(1, Ordering::SeqCst))), next)
    }

    #[test]
    fn dependents_wait_for_readiness() {
        let (mut s, _) = sup();
        let ready = Arc::new(AtomicBool::new(false));
        s.add(Box::new(Svc { name: "containerd", deps: &[], ready: ready.clone() }));
        s.add(Box::new(Svc {
            name: "lichen",
            deps: &["containerd"],
            ready: Arc::new(AtomicBool::new(true)),
        }));
        let t0 = Instant::now();
        s.tick(t0);
        let st = s.status();
        assert_eq!(st[0].state, "running pid 100");
        assert_eq!(st[1].state, "waiting");
        s.tick(t0);
        assert_eq!(s.status()[1].state, "waiting");
        ready.store(true, Ordering::SeqCst);
        s.tick(t0); // containerd becomes ready, so lichen starts
        assert_eq!(s.status()[1].state, "running pid 101");
        assert!(!s.essentials_ready());
        s.tick(t0);
        assert!(s.essentials_ready());
    }

    #[test]
    fn crash_restarts_with_growing_backoff() {
        let (mut s, _) = sup();
        s.add(Box::new(Svc { name: "containerd", deps: &[], ready: Arc::new(AtomicBool::new(true)) }));
        let t0 = Instant::now();
        s.tick(t0);
        assert!(s.exited(100, "killed by SIGKILL", t0 + Duration::from_millis(10)));
        assert_eq!(s.status()[0].state, "restarting");
        assert_eq!(s.status()[0].restarts, 1);
        // Not before the back-off (1 s) ends.
        s.tick(t0 + Duration::from_millis(500));
        assert_eq!(s.status()[0].state, "restarting");
        let t1 = t0 + Duration::from_millis(1100);
        s.tick(t1);
        assert_eq!(s.status()[0].state, "running pid 101");
        // Second quick crash: 2 s.
        s.exited(101, "exit 1", t1);
        let wake = s.tick(t1);
        assert_eq!(wake, Duration::from_secs(2));
        assert!(!s.exited(999, "exit 0", t1), "not ours");
    }

    #[test]
    fn stop_order_is_reverse_and_no_restart_while_stopping() {
        let (mut s, _) = sup();
        for name in ["a", "b"] {
            s.add(Box::new(Svc { name, deps: &[], ready: Arc::new(AtomicBool::new(true)) }));
        }
        let t0 = Instant::now();
        s.tick(t0);
        let pids = s.begin_stop();
        assert_eq!(pids, [("b", 101, libc::SIGTERM), ("a", 100, libc::SIGTERM)]);
        assert!(s.is_running(101) && s.is_running(100));
        s.exited(101, "exit 0", t0);
        assert!(!s.is_running(101) && s.is_running(100));
        s.exited(100, "exit 0", t0);
        assert!(s.all_stopped());
        s.tick(t0 + Duration::from_secs(100));
        assert!(s.all_stopped());
    }
}
