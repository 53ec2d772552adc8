//! What `/healthz` and `/readyz` say, from the listeners' tasks, the drain and the pipelines.
//!
//! - **Live** (`/healthz`): every listener task is serving. HTTP needs no flag: if its task ends,
//!   [`App::run`](crate::App::run) returns an error and the process exits, and a probe that cannot
//!   connect fails anyway. A listener whose task died is started again by its supervisor
//!   ([`crate::supervise`]); while it is down, liveness fails, so a listener that never comes
//!   back gets the pod restarted by the kubelet (or the container by its HEALTHCHECK).
//! - **Ready** (`/readyz`): live, and not draining.
//! - **Pipelines** are reported, not judged: one stream's failing or slow pipeline is that
//!   stream's problem (its own error, its own shed rungs), and taking the pod out of the Service
//!   for it would harm every other stream on the pod.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::http::StatusCode;
use ingest::ListenerHealth;
use serde::Serialize;
use transcode::Outputs;

/// A rung below this realtime factor counts as behind in the report.
const BEHIND_REALTIME: f64 = 0.9;

/// The service's health, shared by the handlers and the supervisors.
#[derive(Debug)]
pub struct Health {
    draining: AtomicBool,
    /// The RTMP listener's task.
    pub rtmp: Arc<ListenerHealth>,
    /// The SRT listener's task (and srt-tokio's listener inside it).
    pub srt: Arc<ListenerHealth>,
    /// The RTMPS listener's task, when `listen.rtmps` is set.
    rtmps: OnceLock<Arc<ListenerHealth>>,
    outputs: Arc<Outputs>,
    /// Cluster mode: the store, whose state the report shows (it does not judge it: streams
    /// that are live go on while the store is down).
    cluster: OnceLock<Arc<cluster::Store>>,
}

/// The body of `/healthz` and `/readyz`.
#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    /// `ok`, `ready`, `draining`, or `listener down`.
    pub status: &'static str,
    /// The drain on shutdown has begun.
    pub draining: bool,
    /// Each listener: `up` or `down`, and how often it was started again.
    pub listeners: Listeners,
    /// Informational: live outputs and rungs behind real time.
    pub pipelines: Pipelines,
    /// Informational, in cluster mode only: whether the cluster store is reachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
}

/// The cluster in a [`Report`].
#[derive(Debug, Serialize, PartialEq)]
pub struct ClusterReport {
    /// `up` or `down`: whether this pod reaches the cluster store (Redis).
    pub store: &'static str,
}

/// Each listener's state in a [`Report`].
#[derive(Debug, Serialize, PartialEq)]
pub struct Listeners {
    /// Always `up` while this answers.
    pub http: ListenerReport,
    /// The RTMP listener.
    pub rtmp: ListenerReport,
    /// The SRT listener.
    pub srt: ListenerReport,
    /// The RTMPS listener, when `listen.rtmps` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtmps: Option<ListenerReport>,
}

/// One listener in a [`Report`].
#[derive(Debug, Serialize, PartialEq)]
pub struct ListenerReport {
    /// `up` or `down`.
    pub state: &'static str,
    /// Times the listener went down and was started again.
    pub restarts: u64,
}

/// The pipelines in a [`Report`].
#[derive(Debug, Serialize, PartialEq)]
pub struct Pipelines {
    /// Outputs with a running pipeline.
    pub running: usize,
    /// Rungs whose realtime factor is below 0.9.
    pub rungs_behind_realtime: usize,
}

impl Health {
    /// Health with every listener down until its task starts, over these outputs.
    pub fn new(outputs: Arc<Outputs>) -> Arc<Health> {
        Arc::new(Health {
            draining: AtomicBool::new(false),
            rtmp: Arc::default(),
            srt: Arc::default(),
            rtmps: OnceLock::new(),
            outputs,
            cluster: OnceLock::new(),
        })
    }

    /// Cluster mode: the report shows `store`'s state.
    pub fn set_cluster(&self, store: Arc<cluster::Store>) {
        let _ = self.cluster.set(store);
    }

    /// RTMPS is on: its listener counts as every other one does.
    pub fn set_rtmps(&self, health: Arc<ListenerHealth>) {
        let _ = self.rtmps.set(health);
    }

    /// The drain began: readiness fails from now on.
    pub fn start_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the drain began.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    fn listeners_up(&self) -> bool {
        self.rtmp.is_up() && self.srt.is_up() && self.rtmps.get().is_none_or(|h| h.is_up())
    }

    /// `/healthz`: 200 while every listener serves, 503 otherwise.
    pub fn liveness(&self) -> (StatusCode, Report) {
        if self.listeners_up() {
            (StatusCode::OK, self.report("ok"))
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                self.report("listener down"),
            )
        }
    }

    /// `/readyz`: 200 while live and not draining, 503 otherwise.
    pub fn readiness(&self) -> (StatusCode, Report) {
        if !self.listeners_up() {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                self.report("listener down"),
            )
        } else if self.is_draining() {
            (StatusCode::SERVICE_UNAVAILABLE, self.report("draining"))
        } else {
            (StatusCode::OK, self.report("ready"))
        }
    }

    fn report(&self, status: &'static str) -> Report {
        let listener = |h: &ListenerHealth| ListenerReport {
            state: if h.is_up() { "up" } else { "down" },
            restarts: h.restarts(),
        };
        let mut running = 0;
        let mut behind = 0;
        for output in self.outputs.all() {
            let status = output.status();
            if status.over || status.paused {
                continue;
            }
            running += 1;
            behind += status
                .rungs
                .iter()
                .filter(|r| r.realtime_factor.is_some_and(|f| f < BEHIND_REALTIME))
                .count();
        }
        Report {
            status,
            draining: self.is_draining(),
            listeners: Listeners {
                http: ListenerReport {
                    state: "up",
                    restarts: 0,
                },
                rtmp: listener(&self.rtmp),
                srt: listener(&self.srt),
                rtmps: self.rtmps.get().map(|h| listener(h)),
            },
            pipelines: Pipelines {
                running,
                rungs_behind_realtime: behind,
            },
            cluster: self.cluster.get().map(|store| ClusterReport {
                store: if store.is_up() { "up" } else { "down" },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn health() -> Arc<Health> {
        let h = Health::new(Outputs::new(Duration::from_secs(1)));
        h.rtmp.up();
        h.srt.up();
        h
    }

    #[test]
    fn live_and_ready_while_every_listener_serves() {
        let h = health();
        assert_eq!(h.liveness().0, StatusCode::OK);
        let (status, report) = h.readiness();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(report.status, "ready");
        assert_eq!(report.listeners.rtmp.state, "up");
    }

    #[test]
    fn a_listener_down_fails_both_and_says_which() {
        let h = health();
        h.srt.down();
        let (status, report) = h.liveness();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(report.listeners.srt.state, "down");
        assert_eq!(report.listeners.srt.restarts, 1);
        assert_eq!(report.listeners.rtmp.state, "up");
        assert_eq!(h.readiness().0, StatusCode::SERVICE_UNAVAILABLE);
        h.srt.up();
        assert_eq!(h.liveness().0, StatusCode::OK);
    }

    #[test]
    fn rtmps_is_reported_and_judged_only_when_it_is_on() {
        let h = health();
        let (_, report) = h.liveness();
        assert_eq!(report.listeners.rtmps, None);
        assert!(!serde_json::to_string(&report).unwrap().contains("rtmps"));
        let rtmps = Arc::new(ListenerHealth::default());
        h.set_rtmps(rtmps.clone());
        assert_eq!(
            h.liveness().0,
            StatusCode::SERVICE_UNAVAILABLE,
            "on, not yet up"
        );
        rtmps.up();
        let (status, report) = h.liveness();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(report.listeners.rtmps.map(|r| r.state), Some("up"));
    }

    #[test]
    fn draining_fails_readiness_only() {
        let h = health();
        h.start_drain();
        assert_eq!(h.liveness().0, StatusCode::OK, "liveness is not readiness");
        let (status, report) = h.readiness();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(report.status, "draining");
        assert!(report.draining);
    }
}
