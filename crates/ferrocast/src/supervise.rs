//! Keeps a listener's task running: when it ends without being asked to, or panics, the socket
//! is bound again and the task started anew, with backoff, while its [`ListenerHealth`] says
//! down. Live RTMP connections are tasks of their own and carry on through a restart; SRT
//! callers share the listener's socket and task (srt-tokio), so they are dropped with it and
//! must reconnect.
//!
//! In debug builds, and only with `TESTING_FERROCAST_FAULTS=1`, [`Faults`] lets a test kill a
//! listener's task and keep it down for a while (`POST /testing/faults/listener/{name}`), so the
//! health endpoints can be checked against a real failure.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingest::ListenerHealth;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The first wait before binding again; doubled per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A task that served this long starts the backoff again from [`FIRST_BACKOFF`].
const BACKOFF_RESET: Duration = Duration::from_secs(60);

/// Which listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// RTMP on TCP.
    Rtmp,
    /// RTMPS (RTMP over TLS) on TCP.
    Rtmps,
    /// SRT on UDP.
    Srt,
}

impl Listener {
    /// Its name in logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Listener::Rtmp => "rtmp",
            Listener::Rtmps => "rtmps",
            Listener::Srt => "srt",
        }
    }

    /// The listener called `name`.
    pub fn from_name(name: &str) -> Option<Listener> {
        match name {
            "rtmp" => Some(Listener::Rtmp),
            "rtmps" => Some(Listener::Rtmps),
            "srt" => Some(Listener::Srt),
            _ => None,
        }
    }
}

/// Test-only fault injection into the supervisors (see the module docs).
#[derive(Debug, Default)]
pub struct Faults {
    rtmp: Fault,
    rtmps: Fault,
    srt: Fault,
}

#[derive(Debug, Default)]
struct Fault {
    kill: Notify,
    /// How long the next restart waits after a kill.
    hold: Mutex<Duration>,
}

impl Faults {
    /// The environment variable that enables fault injection (debug builds only).
    pub const ENV: &'static str = transcode::ENV_TEST_FAULTS;

    /// Fault injection, when this is a debug build and [`Faults::ENV`] is `1`.
    pub fn from_env() -> Option<Arc<Faults>> {
        let enabled = cfg!(debug_assertions) && std::env::var(Self::ENV).is_ok_and(|v| v == "1");
        enabled.then(Arc::default)
    }

    fn fault(&self, listener: Listener) -> &Fault {
        match listener {
            Listener::Rtmp => &self.rtmp,
            Listener::Rtmps => &self.rtmps,
            Listener::Srt => &self.srt,
        }
    }

    /// Kills `listener`'s task; it is started again `down_for` later.
    pub fn kill(&self, listener: Listener, down_for: Duration) {
        let fault = self.fault(listener);
        *fault.hold.lock().unwrap_or_else(|e| e.into_inner()) = down_for;
        fault.kill.notify_one();
    }
}

/// Why a listener's task stopped serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Returned,
    Panicked,
    Killed,
}

/// Runs `serve` on `socket` until `stop` fires and the task returns. Whenever the task ends
/// before that, `bind` makes a new socket (retried with backoff) and `serve` starts again.
pub async fn supervise<S, B, BF, R, RF>(
    listener: Listener,
    health: Arc<ListenerHealth>,
    socket: S,
    bind: B,
    serve: R,
    stop: CancellationToken,
    faults: Option<Arc<Faults>>,
) where
    B: Fn() -> BF,
    BF: Future<Output = std::io::Result<S>>,
    R: Fn(S) -> RF,
    RF: Future<Output = ()> + Send + 'static,
{
    let what = listener.name();
    let mut socket = Some(socket);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let s = match socket.take() {
            Some(s) => s,
            None => match bind().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(listener = what, error = %e, retry_ms = backoff.as_millis() as u64, "cannot bind the listener again yet");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        health.up();
        let served_from = tokio::time::Instant::now();
        let mut task = tokio::spawn(serve(s));
        let killed = async {
            match &faults {
                Some(f) => f.fault(listener).kill.notified().await,
                None => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            r = &mut task => if r.is_err() { Ended::Panicked } else { Ended::Returned },
            _ = killed => {
                task.abort();
                let _ = (&mut task).await;
                Ended::Killed
            }
        };
        if stop.is_cancelled() && ended == Ended::Returned {
            return;
        }
        health.down();
        // A task that served for a while failed afresh: no penalty from failures long ago.
        if served_from.elapsed() >= BACKOFF_RESET {
            backoff = FIRST_BACKOFF;
        }
        tracing::error!(
            listener = what,
            ended = ?ended,
            "the listener task ended unexpectedly; binding the port again"
        );
        let hold = match (&faults, ended) {
            (Some(f), Ended::Killed) => *f
                .fault(listener)
                .hold
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
            _ => Duration::ZERO,
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(hold) => {}
        }
        if ended != Ended::Killed {
            // A task that keeps dying must not spin.
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_task_that_ends_early_is_started_again_and_a_stopped_one_is_not() {
        let health = Arc::new(ListenerHealth::default());
        let starts = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let s = starts.clone();
        let st = stop.clone();
        let serve = move |n: u32| {
            let s = s.clone();
            let st = st.clone();
            async move {
                let count = s.fetch_add(1, Ordering::SeqCst) + 1;
                match count {
                    1 => {}                             // returns early
                    2 => panic!("listener {n} failed"), // panics
                    _ => st.cancelled().await,          // serves until stopped
                }
            }
        };
        let bind = || async { Ok(7u32) };
        let task = tokio::spawn(supervise(
            Listener::Rtmp,
            health.clone(),
            7,
            bind,
            serve,
            stop.clone(),
            None,
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while starts.load(Ordering::SeqCst) < 3 || !health.is_up() {
            assert!(tokio::time::Instant::now() < deadline, "not restarted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(health.restarts(), 2);
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the supervisor ends with its task")
            .unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 3);
    }

    // In virtual time: the test's 5 ms looks and the supervisor's hold are on one clock, so a
    // loaded machine cannot make the test see the kill late (a clean-clone run once measured
    // the hold as under 250 ms of wall time).
    #[tokio::test(start_paused = true)]
    async fn a_killed_task_stays_down_for_the_hold() {
        let health = Arc::new(ListenerHealth::default());
        let faults = Arc::new(Faults::default());
        let stop = CancellationToken::new();
        let st = stop.clone();
        let serve = move |_: ()| {
            let st = st.clone();
            async move { st.cancelled().await }
        };
        let task = tokio::spawn(supervise(
            Listener::Srt,
            health.clone(),
            (),
            || async { Ok(()) },
            serve,
            stop.clone(),
            Some(faults.clone()),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !health.is_up() {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        faults.kill(Listener::Srt, Duration::from_millis(300));
        while health.is_up() {
            assert!(tokio::time::Instant::now() < deadline, "not killed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let down_at = tokio::time::Instant::now();
        while !health.is_up() {
            assert!(tokio::time::Instant::now() < deadline, "not back");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let down_for = down_at.elapsed();
        assert!(
            down_for >= Duration::from_millis(295) && down_for <= Duration::from_millis(305),
            "down for {down_for:?}, held for 300 ms"
        );
        assert_eq!(health.restarts(), 1);
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
