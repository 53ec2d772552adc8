//! Shared helpers for the end-to-end tests: start the real `ferrocast` binary on port 0, talk to
//! it over HTTP, read its metrics, and run real clients (ffmpeg, GStreamer) against it.
//!
//! Every wait is bounded, every child process is killed by its own PID when its guard drops, and
//! every test gets its own temporary directory. Traffic goes to 127.0.0.1 only.
//!
//! Nothing a test starts outlives it:
//! - a [`ChildGuard`] that drops (the test ended, or panicked) kills its child and the child's
//!   descendants, found in /proc before the kill (Chromium, which playwright starts in a process
//!   group of its own, included);
//! - guards are held by the test's own thread, never by a helper thread: libtest ends the
//!   process after a test's panic without unwinding other threads, so a guard there would never
//!   drop (the browser helpers start the player here and only wait elsewhere);
//! - a test that nextest kills at its time limit: nextest signals the test's process group,
//!   which the children share (they are not moved to groups of their own). `tests/hygiene.rs`
//!   checks both.

#![allow(dead_code)] // each test binary uses a different subset

pub(crate) mod hls;
pub(crate) mod publisher;
pub(crate) mod redis;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test, built by cargo for this test target.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_ferrocast");

/// How long the server may take to print its listening addresses.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Polls `f` every 100 ms until it returns `Some`, or panics with `what` after `timeout`.
pub(crate) fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "ferrocast-e2e-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (by its own PID) and reaped when dropped.
#[derive(Debug)]
pub(crate) struct ChildGuard {
    pub(crate) name: String,
    child: Child,
    /// Where its stderr goes, for failure messages.
    pub(crate) stderr_path: Option<PathBuf>,
}

impl ChildGuard {
    pub(crate) fn spawn(name: &str, cmd: &mut Command, stderr_path: Option<PathBuf>) -> ChildGuard {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        ChildGuard {
            name: name.to_owned(),
            child,
            stderr_path,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `STOP`, `CONT`, ...) to this child only.
    pub(crate) fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// The exit status if the process has ended.
    pub(crate) fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits at most `timeout` for the process to end.
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Like [`wait_timeout`](Self::wait_timeout) but panics, with the child's stderr, on timeout.
    pub(crate) fn expect_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_timeout(timeout) {
            Some(s) => s,
            None => panic!(
                "{} (pid {}) still running after {timeout:?}; stderr:\n{}",
                self.name,
                self.pid(),
                self.stderr()
            ),
        }
    }

    /// What the child wrote to stderr so far (when it was sent to a file).
    pub(crate) fn stderr(&self) -> String {
        self.stderr_path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let pid = self.child.id();
        if self.child.try_wait().ok().flatten().is_none() {
            // Its descendants are found before it dies (they are then re-parented); a stopped
            // process still dies of SIGKILL.
            let family = descendants(pid);
            let _ = self.child.kill();
            kill_pids(&family);
            let _ = self.child.wait();
            // Any that a parent was starting meanwhile.
            kill_pids(
                &family
                    .iter()
                    .flat_map(|d| descendants(*d))
                    .collect::<Vec<_>>(),
            );
        } else {
            // It ended by itself; anything it left behind goes too.
            kill_pids(&descendants(pid));
        }
    }
}

/// SIGKILL to each of `pids` (already gone ones are skipped by kill(1)).
fn kill_pids(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The PIDs of `pid`'s descendants (children, theirs, ...) that are alive, from /proc.
pub(crate) fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some((ppid, state)) = stat_of(p) {
            if state != 'Z' {
                parents.push((p, ppid));
            }
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for (p, ppid) in &parents {
            if *ppid == parent && !found.contains(p) {
                found.push(*p);
            }
        }
        i += 1;
    }
    found.remove(0);
    found
}

/// The parent PID and the state letter of process `pid`, if it exists.
fn stat_of(pid: u32) -> Option<(u32, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Whether process `pid` is alive (exists and is not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    stat_of(pid).is_some_and(|(_, state)| state != 'Z')
}

/// A `Command` for the binary with a clean environment: no `FERROCAST_*` variable of the
/// caller's leaks in (an unknown one makes the binary refuse to start).
pub(crate) fn ferrocast_command() -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("FERROCAST_") {
            cmd.env_remove(&k);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// Output of a finished command.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs the binary to completion (for `check-config`, `--version`, refused starts), bounded.
pub(crate) fn run_ferrocast(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Finished {
    let dir = TempDir::new("run");
    let out = dir.file("stdout");
    let err = dir.file("stderr");
    let mut cmd = ferrocast_command();
    cmd.args(args)
        .envs(env.iter().copied())
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"));
    let mut child = ChildGuard::spawn("ferrocast", &mut cmd, Some(err.clone()));
    let status = child.expect_exit(timeout);
    Finished {
        status,
        stdout: std::fs::read_to_string(out).unwrap_or_default(),
        stderr: std::fs::read_to_string(err).unwrap_or_default(),
    }
}

/// A running server on ephemeral ports.
#[derive(Debug)]
pub(crate) struct Server {
    /// Declared before `dir` so the process dies before its directory goes.
    pub(crate) process: ChildGuard,
    /// The public listener (`listen.http`): playback.
    pub(crate) http: SocketAddr,
    /// The admin listener (`listen.admin`): the API, metrics and probes.
    pub(crate) admin: SocketAddr,
    pub(crate) rtmp: SocketAddr,
    /// Every stdout line read so far (the banner).
    pub(crate) banner: Vec<String>,
    pub(crate) dir: TempDir,
}

impl Server {
    /// Starts `ferrocast serve` on 127.0.0.1 port 0 for every listener, plus `args`.
    pub(crate) fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// Like [`start`](Self::start), with extra environment variables for the child only.
    pub(crate) fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = TempDir::new("server");
        let stderr_path = dir.file("server.stderr");
        let mut cmd = ferrocast_command();
        cmd.arg("serve");
        // Port 0 on loopback for every listener `args` does not place itself.
        for flag in ["--http", "--admin", "--rtmp", "--srt"] {
            if !args.contains(&flag) {
                cmd.args([flag, "127.0.0.1:0"]);
            }
        }
        cmd.args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).expect("stderr file"));
        let mut process = ChildGuard::spawn("ferrocast serve", &mut cmd, Some(stderr_path));
        let stdout = process.child.stdout.take().expect("piped stdout");

        // A reader thread keeps draining stdout so the server can never block on a full pipe.
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });

        let deadline = Instant::now() + START_TIMEOUT;
        let mut banner = Vec::new();
        let (mut http, mut rtmp, mut admin) = (None, None, None);
        while http.is_none() || rtmp.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("http listening on ") {
                        http = Some(a.trim().parse().expect("http address in banner"));
                    }
                    if let Some(a) = line.strip_prefix("rtmp listening on ") {
                        rtmp = Some(a.trim().parse().expect("rtmp address in banner"));
                    }
                    if let Some(a) = line.strip_prefix("admin listening on ") {
                        admin = Some(a.trim().parse().expect("admin address in banner"));
                    }
                    banner.push(line);
                }
                Err(_) => {
                    let exited = process.try_wait();
                    panic!(
                        "server did not print its addresses within {START_TIMEOUT:?} (exit: {exited:?})\nstdout:\n{}\nstderr:\n{}",
                        banner.join("\n"),
                        process.stderr()
                    );
                }
            }
        }
        // The rest of the banner (OBS settings, one playback line per stream) follows at once.
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            banner.push(line);
        }
        // Keep draining in the background after we stop looking.
        thread::spawn(move || while rx.recv().is_ok() {});

        Server {
            process,
            http: http.expect("http address"),
            admin: admin.expect("admin address"),
            rtmp: rtmp.expect("rtmp address"),
            banner,
            dir,
        }
    }

    /// `GET path` on the public listener.
    pub(crate) fn get(&self, path: &str) -> HttpResponse {
        http_get(self.http, path)
    }

    /// `GET path` on the admin listener.
    pub(crate) fn get_admin(&self, path: &str) -> HttpResponse {
        http_get(self.admin, path)
    }

    /// `GET path` with a binary body.
    pub(crate) fn get_bytes(&self, path: &str) -> BytesResponse {
        http_get_bytes(self.http, path)
    }

    /// A field of `/proc/PID/status` of the server process, as a number (`Threads`; `VmRSS` in
    /// kB).
    pub(crate) fn proc_status(&self, field: &str) -> u64 {
        proc_status(self.process.pid(), field)
    }

    /// `GET path` on the admin listener, parsed as JSON, asserting 200.
    pub(crate) fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.get_admin(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {}", r.body))
    }

    /// `POST path` on the admin listener (the fault hooks) with an empty body; the status code.
    pub(crate) fn post(&self, path: &str) -> u16 {
        let mut s =
            TcpStream::connect_timeout(&self.admin, Duration::from_secs(5)).expect("connect admin");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"))
    }

    /// `/api/v1/streams/{name}`.
    pub(crate) fn stream(&self, name: &str) -> serde_json::Value {
        self.get_json(&format!("/api/v1/streams/{name}"))
    }

    /// `/metrics`, from the admin listener.
    pub(crate) fn metrics(&self) -> Metrics {
        let r = self.get_admin("/metrics");
        assert_eq!(r.status, 200, "GET /metrics: {}", r.body);
        Metrics::parse(&r.body)
    }

    /// `rtmp://127.0.0.1:PORT/live/KEY`.
    pub(crate) fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{key}", self.rtmp.port())
    }

    /// The server's stderr (its logs) so far.
    pub(crate) fn logs(&self) -> String {
        self.process.stderr()
    }

    /// Waits until `name` is live and `check` accepts its publisher object; panics with the
    /// last answer and the server log otherwise.
    pub(crate) fn wait_live(
        &self,
        name: &str,
        timeout: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.stream(name);
            if s["live"] == true && check(&s["publisher"]) {
                return s["publisher"].clone();
            }
            if Instant::now() >= deadline {
                panic!(
                    "stream {name:?} not live as expected within {timeout:?}; last answer: {s}\nserver log:\n{}",
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `name` is not live.
    pub(crate) fn wait_not_live(&self, name: &str, timeout: Duration) {
        wait_until(timeout, &format!("stream {name:?} to go off air"), || {
            (self.stream(name)["live"] == false).then_some(())
        });
    }
}

/// A minimal HTTP response.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    /// Header names lower-cased.
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: String,
}

impl HttpResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// How long a test's GET waits for its whole answer: above the longest the server holds a request
/// (a plain playlist of a stream between owners, or not started yet, waits out its start budget:
/// four segments plus 2 s, 10 s with the tests' 2 s segments), so that a held answer is read, not
/// a client timeout.
pub(crate) const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// A plain HTTP/1.1 GET with `Connection: close`, bounded by [`HTTP_TIMEOUT`]. Kept in-tree so the
/// tests need no HTTP client crate.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    let r = http_get_bytes(addr, path);
    HttpResponse {
        status: r.status,
        headers: r.headers,
        body: String::from_utf8(r.body)
            .unwrap_or_else(|e| panic!("GET {path}: body is not UTF-8: {e}")),
    }
}

/// A response whose body is kept as bytes (segments, init segments).
#[derive(Debug)]
pub(crate) struct BytesResponse {
    pub(crate) status: u16,
    /// Header names lower-cased.
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Vec<u8>,
}

impl BytesResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Like [`http_get`], for binary bodies.
pub(crate) fn http_get_bytes(addr: SocketAddr, path: &str) -> BytesResponse {
    let timeout = HTTP_TIMEOUT;
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .unwrap_or_else(|e| panic!("connect to {addr} for GET {path}: {e}"));
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: ferrocast-e2e\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("send GET {path}: {e}"));
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("read response to GET {path}: {e}"));
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "GET {path}: malformed response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<BytesResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body)?;
    }
    Some(BytesResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// One sample of an OpenMetrics exposition.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// Samples of one scrape, for assertions on single values (the exposition format itself is
/// checked by Python's reference parser in `foundation.rs`).
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub(crate) text: String,
    pub(crate) samples: Vec<Sample>,
}

impl Metrics {
    pub(crate) fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(parse_sample)
            .collect();
        Metrics {
            text: text.to_owned(),
            samples,
        }
    }

    /// The sum of the samples named `name` whose labels include all of `labels` (0 when none).
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i..]),
        None => line.split_once(' ')?,
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let end = body.find('}')?;
        // Label values here never contain `,` `"` or `}` (names and fixed words), so a plain
        // split is enough.
        for pair in body[..end].split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=')?;
            labels.insert(k.to_owned(), v.trim_matches('"').to_owned());
        }
        &body[end + 1..]
    } else {
        rest
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Panics with an actionable message when an external tool the test drives is missing. CI
/// installs them (`scripts/install-deps.sh`), so a missing tool is a failure, never a skip.
pub(crate) fn require_tool(tool: &str, version_arg: &str) {
    let ok = Command::new(tool)
        .arg(version_arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{tool}` is required by this test but was not found or does not run; install it with `make deps` (scripts/install-deps.sh)"
    );
}

/// True when `gst-inspect-1.0` knows `element`.
pub(crate) fn gst_has(element: &str) -> bool {
    Command::new("gst-inspect-1.0")
        .arg(element)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Test video and audio for ffmpeg: `size` like `1280x720`, for `seconds`.
pub(crate) fn ffmpeg_publish(
    dir: &TempDir,
    tag: &str,
    url: &str,
    size: &str,
    seconds: u32,
) -> ChildGuard {
    require_tool("ffmpeg", "-version");
    ffmpeg_send(dir, tag, (size, seconds, 60), "flv", url)
}

/// ffmpeg sending its test source (`size`, `seconds`, keyframe interval in frames) as `format`
/// to `url`, stderr kept in `dir`.
fn ffmpeg_send(
    dir: &TempDir,
    tag: &str,
    (size, seconds, gop): (&str, u32, u32),
    format: &str,
    url: &str,
) -> ChildGuard {
    let stderr = dir.file(&format!("ffmpeg-{tag}.stderr"));
    let mut cmd = Command::new("ffmpeg");
    ffmpeg_source(&mut cmd, size, seconds, gop);
    cmd.args(["-f", format, url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&stderr).expect("ffmpeg stderr file"));
    ChildGuard::spawn(&format!("ffmpeg {tag}"), &mut cmd, Some(stderr))
}

/// ffmpeg's x264 + AAC test source arguments: `size` at 30 fps for `seconds`, a keyframe every
/// `gop` frames, in real time. At `warning`, libsrt's own log says why a connection was rejected.
pub(crate) fn ffmpeg_source(cmd: &mut Command, size: &str, seconds: u32, gop: u32) {
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=30"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", &gop.to_string(), "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "96k"]);
}

/// ffmpeg publishing MPEG-TS over SRT (libsrt) to `url`, a keyframe a second.
pub(crate) fn ffmpeg_srt(
    dir: &TempDir,
    tag: &str,
    url: &str,
    size: &str,
    seconds: u32,
) -> ChildGuard {
    require_ffmpeg_srt();
    ffmpeg_send(dir, tag, (size, seconds, 30), "mpegts", url)
}

/// Panics unless this ffmpeg speaks SRT (libsrt).
pub(crate) fn require_ffmpeg_srt() {
    require_tool("ffmpeg", "-version");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-protocols"])
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg -protocols");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.trim() == "srt"),
        "this ffmpeg has no SRT protocol (libsrt); install Debian's ffmpeg with `make deps`"
    );
}

/// The `srt listening on ADDR` banner line, right after the RTMP one.
pub(crate) fn srt_addr(server: &Server) -> SocketAddr {
    let rtmp = server
        .banner
        .iter()
        .position(|l| l.starts_with("rtmp listening on "))
        .expect("rtmp line in the banner");
    let line = server.banner.get(rtmp + 1).cloned().unwrap_or_default();
    let addr: SocketAddr = line
        .strip_prefix("srt listening on ")
        .unwrap_or_else(|| panic!("no srt line after the rtmp line: {:?}", server.banner))
        .trim()
        .parse()
        .expect("srt address in the banner");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    addr
}

/// An SRT URL as users write it: libsrt tools (ffmpeg 5.1, srt-live-transmit) take the
/// streamid raw, `#!::` and all, and do not URL-decode it.
pub(crate) fn srt_url(srt: SocketAddr, streamid: &str, extra: &str) -> String {
    format!("srt://127.0.0.1:{}?streamid={streamid}{extra}", srt.port())
}

/// A numeric field of `/proc/PID/status` (`Threads`, `VmRSS` in kB, ...).
pub(crate) fn proc_status(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {field} in {path}:\n{text}"))
}

/// The repository root (tests run with the package folder as their working directory).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Debian's Chromium, or `$CHROMIUM`.
pub(crate) fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

/// Panics with the fix unless node, playwright-core (in tests/browser) and Chromium are there.
pub(crate) fn require_browser_tools() {
    require_tool("node", "--version");
    let pw = repo_root().join("tests/browser/node_modules/playwright-core/package.json");
    assert!(
        pw.is_file(),
        "{} is missing; run `npm ci --prefix tests/browser` (make test does)",
        pw.display()
    );
    assert!(
        Path::new(&chromium()).is_file(),
        "{} not found; install Debian's chromium with `make deps`, or set CHROMIUM",
        chromium()
    );
}

/// hls.js playing `/watch/{stream}` (with `query` added, e.g. `&rung=360p`) in Chromium for
/// `seconds` (`play.mjs`), while the test goes on; [`Player::join`] waits (at most 90 s) for its
/// report.
pub(crate) fn play_in_background(
    server: &Server,
    stream: &str,
    query: &str,
    tag: &str,
    seconds: u32,
) -> Player {
    play_at(
        server.http,
        stream,
        query,
        tag,
        seconds,
        Duration::from_secs(90),
    )
}

/// As [`play_in_background`], against the server at `http`, waiting at most `timeout` on join.
pub(crate) fn play_at(
    http: impl std::fmt::Display,
    stream: &str,
    query: &str,
    tag: &str,
    seconds: u32,
    timeout: Duration,
) -> Player {
    let url = format!("http://{http}/watch/{stream}?engine=hlsjs{query}");
    let dir = TempDir::new(&format!("{tag}-player"));
    let started = dir.file("started.json");
    let browser = browser_start(
        &dir,
        &format!("play-{tag}"),
        "play.mjs",
        &[&url, "hlsjs", &seconds.to_string()],
        &[("PLAY_STARTED_FILE", started.display().to_string())],
    );
    Player {
        browser,
        timeout,
        started,
        _dir: dir,
    }
}

/// A player started by [`play_in_background`]. Held by the test's own thread, so that a failing
/// test kills the browser as it unwinds.
pub(crate) struct Player {
    browser: Browser,
    timeout: Duration,
    started: PathBuf,
    _dir: TempDir,
}

impl Player {
    /// A check, for another thread, of whether the page has started playing.
    #[allow(dead_code)] // not every test that includes this module acts on a playing page
    pub(crate) fn started_check(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let started = self.started.clone();
        move || started.exists()
    }

    /// Waits at most `timeout` for the page to start playing, and returns play.mjs's sample of
    /// that moment (its report's `start`). Panics with the browser's output when it does not.
    #[allow(dead_code)] // not every test that includes this module acts on a playing page
    pub(crate) fn wait_started(&self, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = std::fs::read_to_string(&self.started)
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
            {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "the page did not start playing in {timeout:?}; browser stderr:\n{}",
                self.browser.node.stderr()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for the player's report (see [`browser_report`]).
    pub(crate) fn join(self) -> Result<serde_json::Value, String> {
        Ok(self.browser.report(self.timeout))
    }
}

/// Asserts that each of `rungs` of `stream` went on after one `EXT-X-DISCONTINUITY`, that the
/// ladder was rebuilt once for `reason` (`ferrocast_pipeline_restarts_total`), and that no
/// pipeline failed.
pub(crate) fn check_one_restart(server: &Server, stream: &str, rungs: &[&str], reason: &str) {
    for rung in rungs {
        let r = server.get(&format!("/live/{stream}/{rung}/index.m3u8"));
        assert_eq!(
            r.body.matches("#EXT-X-DISCONTINUITY\n").count(),
            1,
            "{rung}:\n{}",
            r.body
        );
    }
    let m = server.metrics();
    assert_eq!(
        m.value(
            "ferrocast_pipeline_restarts_total",
            &[("stream", stream), ("reason", reason)]
        ),
        1.0,
        "{}",
        m.text
    );
    assert_eq!(
        m.value("ferrocast_pipeline_errors_total", &[("stream", stream)]),
        0.0,
        "{}",
        server.logs()
    );
}

/// The source rung's playlist of `stream` right after a publisher with one break (`what`: a
/// jump, a change) left: still open, sequence numbers without a gap, one
/// `EXT-X-DISCONTINUITY`, and at least three segments after it. Returns the playlist and its
/// text after the discontinuity.
pub(crate) fn source_across_one_break(
    server: &Server,
    stream: &str,
    what: &str,
) -> (hls::MediaPlaylist, String) {
    let pl = hls::parse_media(
        &server
            .get(&format!("/live/{stream}/source/index.m3u8"))
            .body,
    );
    assert!(!pl.ended, "{}", pl.text);
    assert_sequence_without_gap(&pl);
    let parts: Vec<&str> = pl.text.split("#EXT-X-DISCONTINUITY\n").collect();
    assert_eq!(
        parts.len(),
        2,
        "one discontinuity, at the {what}:\n{}",
        pl.text
    );
    let after = parts[1].to_owned();
    let segments = after.lines().filter(|l| l.starts_with("seg-")).count();
    assert!(
        segments >= 3,
        "{segments} segments after the {what}:\n{}",
        pl.text
    );
    (pl, after)
}

/// Asserts that `pl`'s media sequence numbers follow one another without a gap.
pub(crate) fn assert_sequence_without_gap(pl: &hls::MediaPlaylist) {
    let msns: Vec<u64> = pl.segments.iter().map(|s| s.msn).collect();
    assert!(
        msns.windows(2).all(|w| w[1] == w[0] + 1),
        "sequence numbers with a gap: {msns:?}\n{}",
        pl.text
    );
}

/// Runs `node tests/browser/SCRIPT ARGS...` (Chromium from [`chromium`], plus `env`), bounded by
/// `timeout`, with its output in `dir`, and returns the JSON report it prints last. Panics, with
/// its stderr, when it prints none or could not drive the browser (a failed exit or a `fatal`
/// field).
pub(crate) fn browser_report(
    dir: &TempDir,
    tag: &str,
    script: &str,
    args: &[&str],
    env: &[(&str, String)],
    timeout: Duration,
) -> serde_json::Value {
    browser_start(dir, tag, script, args, env).report(timeout)
}

/// A browser script started by [`browser_start`].
pub(crate) struct Browser {
    node: ChildGuard,
    script: String,
    tag: String,
    stdout: PathBuf,
}

/// Starts `node tests/browser/SCRIPT ARGS...` (see [`browser_report`]) and returns at once.
pub(crate) fn browser_start(
    dir: &TempDir,
    tag: &str,
    script: &str,
    args: &[&str],
    env: &[(&str, String)],
) -> Browser {
    let stdout = dir.file(&format!("{tag}.stdout"));
    let stderr = dir.file(&format!("{tag}.stderr"));
    let mut cmd = Command::new("node");
    cmd.arg(repo_root().join("tests/browser").join(script))
        .args(args)
        .env("CHROMIUM", chromium())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).expect("stdout file"))
        .stderr(File::create(&stderr).expect("stderr file"));
    Browser {
        node: ChildGuard::spawn(tag, &mut cmd, Some(stderr)),
        script: script.to_owned(),
        tag: tag.to_owned(),
        stdout,
    }
}

impl Browser {
    /// Waits at most `timeout` for the script to end, and returns its report (see
    /// [`browser_report`]).
    pub(crate) fn report(mut self, timeout: Duration) -> serde_json::Value {
        let (script, tag) = (&self.script, &self.tag);
        let status = self.node.expect_exit(timeout);
        let out = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let report: serde_json::Value = out
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| {
                panic!(
                    "{script} ({tag}) printed no report ({status:?}); is `npm ci --prefix tests/browser` done?\nstdout:\n{out}\nstderr:\n{}",
                    self.node.stderr()
                )
            });
        assert!(
            status.success() && report.get("fatal").is_none(),
            "{script} ({tag}) could not drive Chromium: {report:#}\nstderr:\n{}",
            self.node.stderr()
        );
        report
    }
}

/// What a `play.mjs` report must show when the page played on across a break in the stream:
/// no error left on the page, no media error, the clock advanced more than `min_advance` seconds
/// (the caller says why that is more than the media before the break), and not paused at the
/// end. `logs` goes into the failure message.
pub(crate) fn check_played_across(r: &serde_json::Value, min_advance: f64, logs: &str) {
    let ctx = || format!("{r:#}\nserver log:\n{logs}");
    let end = &r["end"];
    assert!(
        end["errors"].as_array().is_some_and(Vec::is_empty),
        "the page reported errors: {}",
        ctx()
    );
    assert!(end["videoError"].is_null(), "video.error: {}", ctx());
    let advanced = r["advanced"].as_f64().unwrap_or(0.0);
    assert!(
        advanced > min_advance,
        "currentTime advanced only {advanced:.1} s (more than {min_advance} s expected): {}",
        ctx()
    );
    assert!(
        !end["paused"].as_bool().unwrap_or(true),
        "paused at the end: {}",
        ctx()
    );
}

/// `--set http.assets_dir=...` pointing at the hls.js that `npm ci --prefix player` installed,
/// so the player page has hls.js whatever the working directory. Panics with the fix when it is
/// missing.
pub(crate) fn player_assets_arg() -> String {
    let dir = repo_root().join("player/node_modules/hls.js/dist");
    assert!(
        dir.join("hls.min.js").is_file(),
        "{} is missing; run `npm ci --prefix player` (make build/test do)",
        dir.join("hls.min.js").display()
    );
    format!("http.assets_dir={}", dir.display())
}

/// The first GStreamer AAC encoder installed; fails the test with what to install otherwise.
pub(crate) fn gst_aac_encoder() -> &'static str {
    ["avenc_aac", "voaacenc", "fdkaacenc"]
        .into_iter()
        .find(|e| gst_has(e))
        .expect("no GStreamer AAC encoder (avenc_aac, voaacenc or fdkaacenc); install gstreamer1.0-libav with `make deps`")
}

/// True when an API publisher object reports video of this size.
pub(crate) fn has_video(p: &serde_json::Value, width: u64, height: u64) -> bool {
    p["video"]["width"] == width && p["video"]["height"] == height
}

/// `ferrocast_ingest_frames_total` for a stream's video.
pub(crate) fn video_frames(server: &Server, stream: &str) -> f64 {
    server.metrics().value(
        "ferrocast_ingest_frames_total",
        &[("stream", stream), ("kind", "video")],
    )
}

/// A ladder config that stays cheap on two cores: the source repackaged and one 240p x264 rung.
pub(crate) const TWO_RUNG_LADDER: &str = r#"
[transcode]
preset = "ultrafast"

[[transcode.renditions]]
name = "source"
passthrough = true

[[transcode.renditions]]
name = "240p"
height = 240
video_kbps = 400
"#;

/// A server with [`TWO_RUNG_LADDER`], 2 s segments, the player's hls.js, and one stream
/// `name` with `key`; its config file lives in `config`.
pub(crate) fn two_rung_server(config: &TempDir, name: &str, key: &str) -> Server {
    let mut toml = String::from(TWO_RUNG_LADDER);
    toml.push_str(&format!(
        "\n[[streams]]\nname = \"{name}\"\nkey = \"{key}\"\n"
    ));
    let path = config.file("ferrocast.toml");
    std::fs::write(&path, toml).expect("write config");
    Server::start(&[
        "--config",
        path.to_str().expect("UTF-8 temp path"),
        "--set",
        "hls.segment_duration=2s",
        "--set",
        &player_assets_arg(),
    ])
}

/// A setting from the environment (`BENCH_*` knobs), or its default.
pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs ffprobe on `file` and returns its JSON (`-show_streams -show_format`).
pub(crate) fn ffprobe(file: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}
