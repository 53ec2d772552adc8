//! A real Redis (Debian's `redis-server`) for the cluster tests: on a port free at run time, on
//! the loopback, saving nothing, killed by its PID when the guard drops.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{require_tool, ChildGuard, TempDir};

/// A running redis-server.
#[derive(Debug)]
pub(crate) struct Redis {
    process: Option<ChildGuard>,
    pub(crate) port: u16,
    dir: TempDir,
}

impl Redis {
    /// Starts redis-server on a free port; panics if it does not answer within 10 s.
    pub(crate) fn start() -> Redis {
        require_tool("redis-server", "--version");
        require_tool("redis-cli", "--version");
        let mut dir = TempDir::new("redis");
        // Redis cannot bind port 0: a port free now, tried until one works.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut redis = Redis {
                process: None,
                port,
                dir,
            };
            if redis.spawn() {
                return redis;
            }
            dir = redis.take_dir();
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    fn take_dir(self) -> TempDir {
        let Redis { dir, .. } = self;
        dir
    }

    fn spawn(&mut self) -> bool {
        let stderr = self.dir.file("redis.log");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--logfile"])
            .arg(&stderr)
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.process = Some(ChildGuard::spawn("redis-server", &mut cmd, Some(stderr)));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.cli(&["PING"]) == "PONG" {
                return true;
            }
            if self.process.as_mut().and_then(|p| p.try_wait()).is_some() {
                self.process = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.process = None;
        false
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `redis-cli ARGS` (the real client), bounded to 5 s; its trimmed output.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("timeout")
            .args(["5", "redis-cli", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The stream's lease as stored, if any (JSON text).
    pub(crate) fn lease(&self, stream: &str) -> Option<serde_json::Value> {
        let v = self.cli(&["GET", &format!("ferrocast:lease:{stream}")]);
        (!v.is_empty()).then(|| serde_json::from_str(&v).expect("a lease is JSON"))
    }

    /// Kills the server (nothing is saved: it comes back empty).
    pub(crate) fn stop(&mut self) {
        self.process = None;
    }

    /// Starts it again on the same port.
    pub(crate) fn restart(&mut self) {
        assert!(
            self.spawn(),
            "redis-server did not start again on {}",
            self.port
        );
    }
}
