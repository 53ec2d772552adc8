//! What the machine offers and what the accelerator policy makes of it: probed once at start-up,
//! then consulted by every publish, and counted when hardware is missing or fails.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pipeline::accel::{
    self, AcceleratorPolicy, Capabilities, FailurePolicy, Selection, SessionBudget,
};

use crate::config::{Accelerator, Nvidia, OnAcceleratorFailure, Transcode};

/// Environment variable that must be `1` for `transcode.test_fault_encoder` to be honoured: the
/// fault injection is a testing knob, unreachable from a configuration file alone.
pub const ENV_TEST_FAULTS: &str = "TESTING_FERROCAST_FAULTS";

/// Why a stream went without the hardware it was promised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardwareIssue {
    /// The machine has no usable element for a promised stage.
    Unavailable,
    /// Every hardware encoder session was in use.
    SessionLimit,
    /// A hardware element failed mid-stream.
    RuntimeError,
}

impl HardwareIssue {
    /// Every issue, in label order.
    pub const ALL: [HardwareIssue; 3] = [
        HardwareIssue::Unavailable,
        HardwareIssue::SessionLimit,
        HardwareIssue::RuntimeError,
    ];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            HardwareIssue::Unavailable => "unavailable",
            HardwareIssue::SessionLimit => "session_limit",
            HardwareIssue::RuntimeError => "runtime_error",
        }
    }
}

/// Counts per [`HardwareIssue`].
#[derive(Debug, Default)]
pub struct IssueCounts([AtomicU64; 3]);

impl IssueCounts {
    fn count(&self, issue: HardwareIssue) {
        self.0[issue as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// How often `issue` happened.
    pub fn get(&self, issue: HardwareIssue) -> u64 {
        self.0[issue as usize].load(Ordering::Relaxed)
    }

    /// The issues that happened, by label (for the API).
    pub fn by_label(&self) -> BTreeMap<&'static str, u64> {
        HardwareIssue::ALL
            .into_iter()
            .map(|i| (i.label(), self.get(i)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// The accelerator state of the service: the probe, the selected chain, the encoder sessions.
#[derive(Debug)]
pub struct Hardware {
    /// `transcode.accelerator`.
    pub policy: AcceleratorPolicy,
    /// `transcode.on_accelerator_failure`.
    pub on_failure: FailurePolicy,
    /// The probe's findings.
    pub capabilities: Capabilities,
    /// The chain every stream starts with.
    pub selection: Selection,
    /// NVENC sessions, per rung.
    pub sessions: Arc<SessionBudget>,
    /// Set when publishes must be refused (promised hardware missing under `fail`).
    pub refusal: Option<String>,
    /// Fallbacks to software, by reason.
    pub fallbacks: IssueCounts,
    /// Publishes refused or streams ended for want of hardware, by reason.
    pub refusals: IssueCounts,
}

impl Hardware {
    /// Probes the running GStreamer and selects the chain for this configuration.
    pub fn probe(transcode: &Transcode, nvidia: &Nvidia) -> Hardware {
        Hardware::from_registry(transcode, nvidia, &accel::GstRegistry::new())
    }

    /// As [`Hardware::probe`], over any element registry (tests inject a fake).
    pub fn from_registry(
        transcode: &Transcode,
        nvidia: &Nvidia,
        registry: &dyn accel::ElementRegistry,
    ) -> Hardware {
        let policy = match transcode.accelerator {
            Accelerator::Auto => AcceleratorPolicy::Auto,
            Accelerator::Nvidia => AcceleratorPolicy::Nvidia,
            Accelerator::Software => AcceleratorPolicy::Software,
        };
        let on_failure = match transcode.on_accelerator_failure {
            OnAcceleratorFailure::Fallback => FailurePolicy::Fallback,
            OnAcceleratorFailure::Fail => FailurePolicy::Fail,
        };
        let capabilities = accel::probe(registry, nvidia.device);
        let mut selection = accel::select(&capabilities, policy);
        let faults_allowed = std::env::var(ENV_TEST_FAULTS).is_ok_and(|v| v == "1");
        if let Some(after) = transcode.fault_encoder_after() {
            if faults_allowed {
                tracing::warn!(
                    after,
                    "TEST ONLY: every rung's encoder is a fault-injecting stand-in for NVENC"
                );
                selection = selection.with_fault_encoder(after);
            } else {
                tracing::warn!("transcode.test_fault_encoder is ignored: it is a testing knob and needs {ENV_TEST_FAULTS}=1");
            }
        }
        let refusal = (on_failure == FailurePolicy::Fail && !selection.unmet.is_empty()).then(|| {
            format!(
                "transcode.accelerator = \"{}\" with on_accelerator_failure = \"fail\", but {}; \
                 check the NVIDIA driver and container runtime (NVIDIA_DRIVER_CAPABILITIES=compute,video,utility) \
                 or set on_accelerator_failure = \"fallback\"",
                policy.as_str(),
                selection.unmet.join("; ")
            )
        });
        let limit = nvidia.max_encode_sessions;
        Hardware {
            policy,
            on_failure,
            capabilities,
            selection,
            sessions: SessionBudget::new((limit > 0).then_some(limit)),
            refusal,
            fallbacks: IssueCounts::default(),
            refusals: IssueCounts::default(),
        }
    }

    /// Logs what was found and chosen (once, at start-up).
    pub fn log(&self) {
        tracing::info!(probe = %self.capabilities.summary(), "accelerator probe");
        tracing::info!(
            policy = self.policy.as_str(),
            on_failure = self.on_failure.as_str(),
            chain = %self.selection.describe(),
            "accelerator selection"
        );
        for (stage, why) in &self.selection.fallbacks {
            tracing::info!(stage = stage.as_str(), "software {}: {why}", stage.as_str());
        }
        if let Some(r) = &self.refusal {
            tracing::error!("publishes will be refused: {r}");
        } else if !self.selection.unmet.is_empty() {
            self.fallback(HardwareIssue::Unavailable);
            tracing::warn!(unmet = ?self.selection.unmet, "promised hardware is missing; falling back to software");
        }
    }

    /// Counts a fall back to software.
    pub(crate) fn fallback(&self, issue: HardwareIssue) {
        self.fallbacks.count(issue);
    }

    /// Counts a publish refused, or a stream ended, for want of hardware.
    pub(crate) fn refuse(&self, issue: HardwareIssue) {
        self.refusals.count(issue);
    }
}
