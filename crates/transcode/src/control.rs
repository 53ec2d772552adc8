//! What the feeder is asked to do from other threads, typed: the pipeline's streaming threads
//! ask it to go on in software, the fault hook asks it to shed a rung or bring one back. The
//! feeder drains the queue between frames; nothing else acts on it.

use std::sync::Mutex;

/// One thing the feeder is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    /// A hardware element failed and the policy says go on in software: rebuild the pipeline.
    Fallback(Fallback),
    /// Shed rung `rung` (by index), or bring it back.
    ForceShed {
        /// The rung.
        rung: usize,
        /// Shed (true) or back.
        shed: bool,
    },
}

/// The hardware element whose failure the stream goes on from in software.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fallback {
    /// The element.
    pub(crate) element: String,
    /// Its backend.
    pub(crate) backend: String,
    /// The pipeline's error.
    pub(crate) message: String,
}

impl std::fmt::Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) failed: {}",
            self.element, self.backend, self.message
        )
    }
}

/// The queue of [`Control`]s, in the order they were sent.
#[derive(Debug, Default)]
pub(crate) struct ControlQueue(Mutex<Vec<Control>>);

impl ControlQueue {
    /// Asks the feeder for `control`.
    pub(crate) fn send(&self, control: Control) {
        self.0.lock().expect("control lock").push(control);
    }

    /// Whether a fallback to software waits for the feeder.
    pub(crate) fn falling_back(&self) -> bool {
        self.0
            .lock()
            .expect("control lock")
            .iter()
            .any(|c| matches!(c, Control::Fallback(_)))
    }

    /// Takes the fallback waiting, if any (a pipeline fails once; the first one counts).
    pub(crate) fn take_fallback(&self) -> Option<Fallback> {
        let mut first = None;
        self.0.lock().expect("control lock").retain(|c| match c {
            Control::Fallback(f) => {
                first.get_or_insert_with(|| f.clone());
                false
            }
            _ => true,
        });
        first
    }

    /// Takes the sheds and comebacks asked for, in order.
    pub(crate) fn take_forced(&self) -> Vec<(usize, bool)> {
        let mut forced = Vec::new();
        self.0.lock().expect("control lock").retain(|c| match c {
            Control::ForceShed { rung, shed } => {
                forced.push((*rung, *shed));
                false
            }
            _ => true,
        });
        forced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feeder_takes_each_kind_of_control_in_order() {
        let q = ControlQueue::default();
        let fallback = |m: &str| Fallback {
            element: "nvh264enc0".into(),
            backend: "nvidia".into(),
            message: m.into(),
        };
        q.send(Control::ForceShed {
            rung: 0,
            shed: true,
        });
        q.send(Control::Fallback(fallback("first")));
        q.send(Control::Fallback(fallback("second")));
        q.send(Control::ForceShed {
            rung: 0,
            shed: false,
        });
        assert!(q.falling_back());
        assert_eq!(
            q.take_fallback(),
            Some(fallback("first")),
            "the first failure counts"
        );
        assert!(!q.falling_back() && q.take_fallback().is_none());
        assert_eq!(q.take_forced(), [(0, true), (0, false)]);
        assert!(q.take_forced().is_empty());
        assert_eq!(
            fallback("boom").to_string(),
            "nvh264enc0 (nvidia) failed: boom"
        );
    }
}
