//! Nothing a test starts outlives it: the guard that every end-to-end test starts its processes
//! with kills the whole tree (a grandchild in a session of its own included) when it drops,
//! also when the test panics; and a test that its runner kills at the time limit (nextest sends
//! SIGTERM, then SIGKILL, to the test's process group) leaves no process behind, the real
//! server included.

#[path = "support/mod.rs"]
mod support;

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{alive, descendants, wait_until, ChildGuard, Server, TempDir};

/// The file the hanging test writes its processes' PIDs to (set only by the test that starts
/// it).
const PIDS_FILE: &str = "HYGIENE_PIDS_FILE";

/// A shell with two children: one in its own process group and session, as playwright starts
/// Chromium.
fn family() -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 600 & setsid sleep 600 & wait"])
        .stdin(Stdio::null());
    cmd
}

#[test]
fn a_guard_dropped_by_a_panic_kills_its_child_and_every_descendant() {
    let guard = ChildGuard::spawn("sh", &mut family(), None);
    let pid = guard.pid();
    let kids = wait_until(Duration::from_secs(10), "the shell's two children", || {
        let d = descendants(pid);
        (d.len() == 2).then_some(d)
    });
    let held = thread::spawn(move || {
        let _guard = guard;
        panic!("a test fails while it holds the guard (this panic is expected)");
    });
    assert!(held.join().is_err());
    wait_until(Duration::from_secs(10), "the whole tree gone", || {
        (!alive(pid) && kids.iter().all(|k| !alive(*k))).then_some(())
    });
}

/// Started by the test below, never on its own (`--ignored` and the variable): starts the real
/// server and a shell with a child, writes their PIDs, and hangs, as a test whose wait is never
/// answered.
#[test]
#[ignore = "a hanging test, started by a_test_killed_at_its_time_limit_leaves_no_process"]
fn hangs_with_children() {
    let Ok(path) = std::env::var(PIDS_FILE) else {
        return;
    };
    let server = Server::start(&[]);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 600 & wait"]).stdin(Stdio::null());
    let shell = ChildGuard::spawn("sh", &mut cmd, None);
    let kids = wait_until(Duration::from_secs(10), "the shell's child", || {
        let d = descendants(shell.pid());
        (!d.is_empty()).then_some(d)
    });
    let mut pids = vec![server.process.pid(), shell.pid()];
    pids.extend(kids);
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    std::fs::write(&path, list.join("\n") + "\n").expect("write the PIDs");
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

/// A process group of its own, killed (SIGKILL to the group) when dropped.
struct Group(Child);

impl Group {
    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), "--", &format!("-{}", self.0.id())])
            .status();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal("KILL");
        let _ = self.0.wait();
    }
}

#[test]
fn a_test_killed_at_its_time_limit_leaves_no_process() {
    let dir = TempDir::new("hygiene");
    let pids_file = dir.file("pids");
    let stderr = dir.file("stderr");
    let mut cmd = Command::new(std::env::current_exe().expect("this test binary"));
    cmd.args(["--exact", "hangs_with_children", "--ignored", "--nocapture"])
        .env(PIDS_FILE, &pids_file)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).expect("stderr file"));
    let mut test = Group(cmd.spawn().expect("start the hanging test"));
    let pids: Vec<u32> = wait_until(Duration::from_secs(30), "the hanging test's PIDs", || {
        let text = std::fs::read_to_string(&pids_file).ok()?;
        let pids: Vec<u32> = text.lines().filter_map(|l| l.parse().ok()).collect();
        (pids.len() >= 3).then_some(pids)
    });
    assert!(pids.iter().all(|p| alive(*p)), "{pids:?}");

    // What nextest does at `terminate-after`: SIGTERM to the test's process group, a grace
    // period (ours is 10 s), then SIGKILL to the group.
    test.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while test.0.try_wait().expect("try_wait").is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    test.signal("KILL");
    let _ = test.0.wait();
    wait_until(
        Duration::from_secs(15),
        "every process the killed test started gone",
        || pids.iter().all(|p| !alive(*p)).then_some(()),
    );
    drop(test);
    let err = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(
        !err.contains("panicked"),
        "the hanging test failed early:\n{err}"
    );
}
