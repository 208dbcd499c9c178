//! Self-test of the node harness (`tests/common/node.rs`): containerd in a
//! network namespace of its own imports the images the harness builds, runs
//! a container from one, survives a restart, and leaves nothing behind.
//! Needs root, containerd, ctr, runc and busybox-static; skipped otherwise.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::node::{self, Containerd, INDEX_HTML, Netns};

const BUSYBOX_REF: &str = "docker.io/lichen/busybox:test";
const PAUSE_REF: &str = "docker.io/lichen/pause:test";

#[test]
fn containerd_in_a_netns_runs_the_busybox_image_and_cleans_up() {
    if let Some(why) = node::missing_prerequisite() {
        eprintln!("node harness self-test skipped: {why}");
        return;
    }
    let tmp = tempfile::Builder::new().prefix("lichen-harness").tempdir_in("/tmp").unwrap();
    let busybox_tar = tmp.path().join("busybox.tar");
    let pause_tar = tmp.path().join("pause.tar");

    let t = Instant::now();
    node::build_busybox_image(&busybox_tar, BUSYBOX_REF);
    node::build_pause_image(&pause_tar, PAUSE_REF);
    eprintln!("images built in {} ms", t.elapsed().as_millis());
    let again = tmp.path().join("again.tar");
    node::build_busybox_image(&again, BUSYBOX_REF);
    assert_eq!(
        node::read_bytes(&busybox_tar),
        node::read_bytes(&again),
        "image tarballs are not deterministic"
    );

    let netns = Netns::create("harness");
    let netns_name = netns.name().to_string();
    let mut containerd = Containerd::start(&netns, &tmp.path().join("containerd"), PAUSE_REF);
    eprintln!("containerd accepted connections after {} ms", containerd.started_in().as_millis());
    let socket = containerd.socket().to_path_buf();
    let dir = containerd.dir().to_path_buf();
    assert_runs_in(&netns, containerd.pid().unwrap());

    let t = Instant::now();
    containerd.import(&busybox_tar);
    containerd.import(&pause_tar);
    eprintln!("both images imported in {} ms", t.elapsed().as_millis());
    let images = containerd.images();
    assert!(images.iter().any(|i| i == BUSYBOX_REF), "{BUSYBOX_REF} not in {images:?}");
    assert!(images.iter().any(|i| i == PAUSE_REF), "{PAUSE_REF} not in {images:?}");

    // A unique id: runc's state for this container would otherwise sit in
    // a path shared with other tests' containerds.
    let id = format!("t1-{}", std::process::id());
    let t = Instant::now();
    let mut run = containerd.ctr_in_netns();
    run.args(["run", "--rm", "--runc-root"]).arg(containerd.runc_root()).args([
        BUSYBOX_REF,
        &id,
        "/bin/sh",
        "-c",
        "echo hello; cat /var/www/index.html",
    ]);
    let out = node::run_ok(run);
    eprintln!("ctr run --rm took {} ms", t.elapsed().as_millis());
    assert_eq!(out, format!("hello\n{INDEX_HTML}"));

    // A long-running task from the pause image: it must survive a
    // containerd restart (the shim keeps it) and be cleaned up on drop.
    let pause_id = format!("pause-{}", std::process::id());
    let mut run = containerd.ctr_in_netns();
    run.args(["run", "-d", "--runc-root"]).arg(containerd.runc_root()).args([PAUSE_REF, &pause_id]);
    node::run_ok(run);
    // The --rm container's shim exits on its own, shortly after ctr returns.
    let deadline = Instant::now() + Duration::from_secs(10);
    while node::shims_of(&socket).len() != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let shims = node::shims_of(&socket);
    assert_eq!(shims.len(), 1, "want one shim, for the pause task: {shims:?}");

    containerd.restart();
    eprintln!("containerd restarted, accepted connections after {} ms", containerd.started_in().as_millis());
    assert_runs_in(&netns, containerd.pid().unwrap());
    let images = containerd.images();
    assert!(images.iter().any(|i| i == BUSYBOX_REF), "{BUSYBOX_REF} lost over restart: {images:?}");
    assert!(images.iter().any(|i| i == PAUSE_REF), "{PAUSE_REF} lost over restart: {images:?}");
    let mut tasks = containerd.ctr();
    tasks.args(["tasks", "ls"]);
    let tasks = node::run_ok(tasks);
    assert!(
        tasks.lines().any(|l| l.starts_with(&pause_id) && l.contains("RUNNING")),
        "pause task not running after restart:\n{tasks}"
    );
    assert!(
        !node::mounts_under(&dir).is_empty(),
        "the running task's rootfs should be mounted under {dir:?}"
    );

    let pid = containerd.pid().unwrap();
    let t = Instant::now();
    drop(containerd);
    eprintln!("containerd cleaned up in {} ms", t.elapsed().as_millis());
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "containerd {pid} still running");
    let shims = node::shims_of(&socket);
    assert!(shims.is_empty(), "shims left: {shims:?}");
    let mounts = node::mounts_under(tmp.path());
    assert!(mounts.is_empty(), "still mounted: {mounts:?}");

    drop(netns);
    let mut list = Command::new("ip");
    list.args(["netns", "list"]);
    let list = node::run_ok(list);
    assert!(
        !list.lines().any(|l| l.split_whitespace().next() == Some(&netns_name)),
        "{netns_name} left:\n{list}"
    );
}

/// Asserts that `pid` is containerd itself (nsenter exec'd it) and lives
/// in `netns`.
fn assert_runs_in(netns: &Netns, pid: u32) {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_else(|e| panic!("containerd (pid {pid}) is gone: {e}"));
    assert_eq!(comm.trim(), "containerd", "pid {pid} is not containerd");
    let link = std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .unwrap_or_else(|e| panic!("reading the netns of pid {pid}: {e}"));
    let inode =
        std::fs::metadata(netns.path()).unwrap_or_else(|e| panic!("{}: {e}", netns.path().display())).ino();
    assert_eq!(link.to_string_lossy(), format!("net:[{inode}]"), "containerd is not in {}", netns.name());
}

/// When containerd is gone before the harness drops it (a test stopped it,
/// or it crashed), the shims and the containers they hold are still found
/// and removed.
#[test]
fn a_task_left_by_a_stopped_containerd_is_cleaned_up() {
    if let Some(why) = node::missing_prerequisite() {
        eprintln!("node harness self-test skipped: {why}");
        return;
    }
    let tmp = tempfile::Builder::new().prefix("lichen-harness").tempdir_in("/tmp").unwrap();
    let pause_tar = tmp.path().join("pause.tar");
    node::build_pause_image(&pause_tar, PAUSE_REF);
    let netns = Netns::create("harness-orphan");
    let mut containerd = Containerd::start(&netns, &tmp.path().join("containerd"), PAUSE_REF);
    containerd.import(&pause_tar);
    let id = format!("orphan-{}", std::process::id());
    let mut run = containerd.ctr_in_netns();
    run.args(["run", "-d", "--runc-root"]).arg(containerd.runc_root()).args([PAUSE_REF, &id]);
    node::run_ok(run);
    let mut pids = containerd.ctr();
    pids.args(["tasks", "ls"]);
    let listing = node::run_ok(pids);
    let task_pid: u32 = listing
        .lines()
        .find(|l| l.starts_with(&id))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid for {id} in:\n{listing}"));
    let socket = containerd.socket().to_path_buf();

    containerd.stop();
    assert_eq!(node::shims_of(&socket).len(), 1, "the shim outlives containerd");
    assert!(Path::new(&format!("/proc/{task_pid}")).exists(), "the task outlives containerd");
    let cgroup = Path::new("/sys/fs/cgroup/memory/k8s.io").join(&id);
    assert!(cgroup.is_dir(), "the task's cgroup {} is missing", cgroup.display());
    let shim_socket = node::shim_socket(&socket, "k8s.io", &id);
    assert!(shim_socket.exists(), "the shim's socket {} is missing", shim_socket.display());
    drop(containerd);

    assert!(node::shims_of(&socket).is_empty(), "shim left");
    assert!(!shim_socket.exists(), "{} left", shim_socket.display());
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{task_pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!Path::new(&format!("/proc/{task_pid}")).exists(), "task {task_pid} still running");
    let mounts = node::mounts_under(tmp.path());
    assert!(mounts.is_empty(), "still mounted: {mounts:?}");
    assert!(!cgroup.exists(), "{} left", cgroup.display());
}
