//! The bus thread: end of stream, errors (told apart by whether a hardware element posted
//! them), warnings and latency changes of one pipeline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use gst::prelude::*;

use crate::accel::{Backend, Stage};
use crate::shared::Shared;
use crate::sink::{AcceleratorFault, ChunkSink, Failure};

/// Names of the pipeline's hardware elements, with the stage and backend each serves: an error
/// posted by one of them (or by anything inside it) is an accelerator failure.
pub(crate) type HardwareElements = Arc<Mutex<Vec<(String, Stage, Backend)>>>;

/// Watches `bus` until `stop`, end of stream or an error; at the last two, tells `sink` and
/// sends on `eos_tx`.
pub(crate) fn watch_bus(
    bus: gst::Bus,
    pipeline: gst::glib::WeakRef<gst::Pipeline>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    sink: Arc<dyn ChunkSink>,
    eos_tx: mpsc::Sender<()>,
    hardware: HardwareElements,
) {
    while !stop.load(Ordering::SeqCst) {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                sink.on_eos();
                let _ = eos_tx.send(());
                return;
            }
            gst::MessageView::Error(e) => {
                let source = e
                    .src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default();
                let message = match e.debug() {
                    Some(d) => format!("{source}: {} ({d})", e.error()),
                    None => format!("{source}: {}", e.error()),
                };
                let accelerator = e.src().and_then(|src| hardware_fault(src, &hardware));
                // The sink hears of the failure before `push` reports `Closed`, so an owner that
                // rebuilds on accelerator failures has decided by then.
                sink.on_failure(Failure {
                    message,
                    accelerator,
                });
                shared.failed.store(true, Ordering::SeqCst);
                // Stop burning CPU on a broken stream; the owner still calls finish or drops.
                if let Some(p) = pipeline.upgrade() {
                    let _ = p.set_state(gst::State::Null);
                }
                let _ = eos_tx.send(());
                return;
            }
            gst::MessageView::Warning(w) => {
                tracing::warn!(source = ?w.src().map(|s| s.path_string()), "{}", w.error());
            }
            gst::MessageView::Latency(_) => {
                if let Some(p) = pipeline.upgrade() {
                    let _ = p.recalculate_latency();
                }
            }
            _ => {}
        }
    }
}

/// The hardware element `src` is, or is inside, if any.
fn hardware_fault(src: &gst::Object, hardware: &HardwareElements) -> Option<AcceleratorFault> {
    let list = hardware.lock().ok()?;
    let mut current = Some(src.clone());
    while let Some(obj) = current {
        let name = obj.name();
        if let Some((element, stage, backend)) = list.iter().find(|(n, ..)| *n == name.as_str()) {
            return Some(AcceleratorFault {
                stage: *stage,
                backend: *backend,
                element: element.clone(),
            });
        }
        current = obj.parent();
    }
    None
}
